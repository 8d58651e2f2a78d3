/**
 * Kubernetes user impersonation: a request carrying `Impersonate-User` (and optionally
 * `Impersonate-Group`, repeatable, and `Impersonate-Uid`) acts as that identity, provided
 * the authenticated requester may `impersonate` it — `users` (or `serviceaccounts` for a
 * `system:serviceaccount:NS:NAME` user), `groups` and `uids` in the core API group, as
 * kube-apiserver checks. The legacy proxy uses it to act as each legacy caller with its own
 * privileged identity.
 *
 * Runs after authentication and before authorization: it replaces the request's identity
 * (`setRequestUser`), and everything after it — RBAC, admission (quotas), audit — sees the
 * impersonated user. As in kube, the impersonated user gets `system:authenticated` added
 * (`system:unauthenticated` for `system:anonymous`); the requester's name is kept in
 * `extra.impersonator` for the audit log.
 */
import type { IncomingMessage } from 'node:http';
import { ApiError, badRequest } from '../errors.js';
import { requestUser, setRequestUser, type UserInfo } from './user.js';

/** What the requester asks to become, as kube's authorizer sees it (verb `impersonate`). */
export interface ImpersonationCheck {
  resource: 'users' | 'groups' | 'serviceaccounts' | 'uids';
  name: string;
  /** For `serviceaccounts`. */
  namespace?: string;
}

/**
 * Whether `requester` may impersonate `what`. `requester` is undefined when the server runs
 * without authentication (then anyone may do anything, impersonation included).
 */
export type ImpersonationAuthorizer = (requester: UserInfo | undefined, what: ImpersonationCheck) => Promise<boolean>;

/**
 * Until RBAC decides: a server without authentication allows it (as it allows everything),
 * and an authenticated requester needs `system:masters`.
 */
export const mastersMayImpersonate: ImpersonationAuthorizer = async (requester) =>
  requester === undefined || requester.groups.includes('system:masters');

/** Every value of a repeatable header (Node joins repeated lines with ", "). */
function headerValues(req: IncomingMessage, name: string): string[] {
  const raw = req.headers[name];
  const joined = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
  return joined.flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
}

function forbiddenImpersonation(requester: UserInfo | undefined, what: ImpersonationCheck): ApiError {
  const who = requester?.username ?? 'system:anonymous';
  const scope = what.namespace ? `in the namespace "${what.namespace}"` : 'at the cluster scope';
  return new ApiError(
    403,
    'Forbidden',
    `${what.resource} "${what.name}" is forbidden: User "${who}" cannot impersonate resource "${what.resource}" in API group "" ${scope}`,
    { name: what.name, group: '', kind: what.resource },
  );
}

/**
 * Applies the request's impersonation headers, if any: checks each with `authorize` and
 * records the impersonated identity. Throws 400 for groups without a user, 403 when refused.
 */
export async function applyImpersonation(req: IncomingMessage, authorize: ImpersonationAuthorizer): Promise<void> {
  const users = headerValues(req, 'impersonate-user');
  const groups = headerValues(req, 'impersonate-group');
  const uids = headerValues(req, 'impersonate-uid');
  if (users.length === 0) {
    if (groups.length > 0 || uids.length > 0) throw badRequest('requested impersonation of groups or a uid without impersonating a user');
    return;
  }
  if (users.length > 1) throw badRequest('only one Impersonate-User may be given');
  const username = users[0]!;
  const requester = requestUser(req);
  const checks: ImpersonationCheck[] = [];
  const sa = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(username);
  checks.push(sa ? { resource: 'serviceaccounts', namespace: sa[1]!, name: sa[2]! } : { resource: 'users', name: username });
  for (const g of groups) checks.push({ resource: 'groups', name: g });
  for (const u of uids) checks.push({ resource: 'uids', name: u });
  for (const c of checks) {
    if (!(await authorize(requester, c))) throw forbiddenImpersonation(requester, c);
  }
  const all = new Set(groups);
  if (username === 'system:anonymous') all.add('system:unauthenticated');
  else all.add('system:authenticated');
  const user: UserInfo = {
    username,
    groups: [...all],
    ...(uids[0] ? { uid: uids[0] } : {}),
    ...(requester ? { extra: { impersonator: [requester.username] } } : {}),
  };
  setRequestUser(req, user);
}
