/**
 * Who made a request, in the shape of `authentication.k8s.io/v1` `UserInfo`. The
 * authenticators fill it in at the front of the request pipeline; authorization, admission
 * (quotas), audit and managedFields read it. A request with no credentials, where anonymous
 * access is allowed at all, is `system:anonymous` in group `system:unauthenticated`.
 */
import type { IncomingMessage } from 'node:http';

export interface UserInfo {
  /** The user's name as it appears in RBAC subjects (`kind: User`) and audit records. */
  username: string;
  uid?: string;
  /** Group names as they appear in RBAC subjects (`kind: Group`), incl. `system:authenticated`. */
  groups: string[];
  extra?: Record<string, string[]>;
}

export const anonymousUser: UserInfo = Object.freeze({
  username: 'system:anonymous',
  groups: ['system:unauthenticated'],
}) as UserInfo;

const requestUsers = new WeakMap<IncomingMessage, UserInfo>();

/** Records the authenticated identity of a request (called once, by the authentication step). */
export function setRequestUser(req: IncomingMessage, user: UserInfo): void {
  requestUsers.set(req, user);
}

/** The identity the authentication step recorded for this request, if any. */
export function requestUser(req: IncomingMessage): UserInfo | undefined {
  return requestUsers.get(req);
}
