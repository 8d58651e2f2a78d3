/**
 * Users and Groups: the one membership rule.
 *
 * The model (see crds/users.iam.stratus.dev.yaml and crds/groups.iam.stratus.dev.yaml):
 * Users and Groups are cluster-scoped, as Kubernetes user and group names are global. A
 * User's object name is its user name everywhere — RBAC subjects (`kind: User`), audit
 * records, `AccessToken.spec.user`, Brume's `x-username`. A Group's object name is its group
 * name in RBAC subjects (`kind: Group`). Membership is written in exactly one place, the
 * Group's `spec.members`; `User.status.groups` only mirrors it for display.
 *
 * `groupsOf` is the function every authenticator (bearer tokens, Brume signatures, LDAP
 * login, the legacy proxy) calls to turn a user name into its Group names. Where the Groups
 * come from is a `GroupSource`: the registry inside the API server
 * (`registryGroupSource`), a Kubernetes client elsewhere (`legacy/membership.ts`).
 */
import type { Registry, Target } from '../registry.js';
import { storageVersion, type KubeObject, type ResourceCatalog } from '../resources.js';
import type { UserInfo } from './user.js';

export const IAM_GROUP = 'iam.stratus.dev';

/** What `groupsOf` reads of a Group object. */
export interface GroupLike {
  metadata?: { name?: string; deletionTimestamp?: string };
  spec?: { members?: readonly string[] };
}

/** Every Group object (a cluster without the Group kind has none). */
export type GroupSource = () => Promise<readonly GroupLike[]>;

/** Group every authenticated identity carries, as in kube. */
export const AUTHENTICATED_GROUP = 'system:authenticated';

/**
 * The names of the Groups whose `spec.members` list `username`, sorted. Only Group
 * objects count: `system:authenticated` and the like are the authenticator's to add (see
 * `authenticatedUser`). A Group being deleted still counts until it is gone, as an RBAC
 * binding does.
 */
export async function groupsOf(username: string, source: GroupSource): Promise<string[]> {
  const out = new Set<string>();
  for (const g of await source()) {
    const name = g.metadata?.name;
    if (name && (g.spec?.members ?? []).includes(username)) out.add(name);
  }
  return [...out].sort();
}

/** The `UserInfo` of an authenticated user: its Groups plus `system:authenticated`. */
export async function authenticatedUser(username: string, source: GroupSource, extraGroups: readonly string[] = []): Promise<UserInfo> {
  const groups = new Set([...(await groupsOf(username, source)), ...extraGroups, AUTHENTICATED_GROUP]);
  return { username, groups: [...groups] };
}

/**
 * The identity of a verified AccessToken: its `spec.user` (with that user's Groups), or —
 * for a token without a user — the namespace's default identity, the ServiceAccount
 * `default` of the token's namespace, as kube names it.
 */
export async function tokenUser(token: { namespace: string; user?: string }, source: GroupSource): Promise<UserInfo> {
  if (token.user) return authenticatedUser(token.user, source);
  return {
    username: `system:serviceaccount:${token.namespace}:default`,
    groups: ['system:serviceaccounts', `system:serviceaccounts:${token.namespace}`, AUTHENTICATED_GROUP],
  };
}

/** Groups as the API server's own registry holds them (no HTTP round trip). */
export function registryGroupSource(registry: Registry, catalog: ResourceCatalog): GroupSource {
  return async () => {
    const resource = catalog.all().find((r) => r.group === IAM_GROUP && r.plural === 'groups');
    if (!resource) return [];
    const target: Target = { resource, version: storageVersion(resource) };
    const { items } = await registry.list(target);
    return items as (KubeObject & GroupLike)[];
  };
}
