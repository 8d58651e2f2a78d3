/**
 * The RBAC authorizer: a request is allowed when a ClusterRoleBinding, or a RoleBinding in
 * the request's namespace, names the user (or one of its groups, or its ServiceAccount) and
 * its role has a rule that allows the request. Members of `system:masters` are always
 * allowed, as in kube-apiserver. Roles and bindings are read from in-memory indexes; answers
 * are cached per (user, groups, request) and the cache is dropped on any RBAC change, so a
 * revoked binding takes effect with the next request.
 */
import type { KubeObject } from '../resources.js';
import type { ObjectIndex } from './live-index.js';
import { ruleAllows, subjectMatches, type PolicyRule, type RoleRef, type Subject } from './rbac-rules.js';
import type { RequestAttributes } from './requestinfo.js';
import type { UserInfo } from './user.js';

export const MASTERS_GROUP = 'system:masters';

export type RoleObject = KubeObject & { rules?: PolicyRule[] | null; aggregationRule?: { clusterRoleSelectors?: unknown[] } };
export type BindingObject = KubeObject & { roleRef: RoleRef; subjects?: Subject[] | null };

export interface RbacIndexes {
  roles: ObjectIndex<RoleObject>;
  clusterRoles: ObjectIndex<RoleObject>;
  roleBindings: ObjectIndex<BindingObject>;
  clusterRoleBindings: ObjectIndex<BindingObject>;
}

const CACHE_LIMIT = 10_000;

export class RbacAuthorizer {
  private decisions = new Map<string, boolean>();

  constructor(private readonly idx: RbacIndexes) {
    const clear = (): void => this.decisions.clear();
    for (const i of [idx.roles, idx.clusterRoles, idx.roleBindings, idx.clusterRoleBindings]) i.onChange(clear);
  }

  authorize(user: UserInfo, a: RequestAttributes): boolean {
    if (user.groups.includes(MASTERS_GROUP)) return true;
    const key = [user.username, user.groups.join(','), a.verb, a.resourceRequest ? '' : a.path, a.apiGroup, a.resource, a.subresource, a.namespace, a.name].join('\0');
    const cached = this.decisions.get(key);
    if (cached !== undefined) return cached;
    let allowed = false;
    this.visit(user, a.namespace, (rules) => {
      allowed = rules.some((r) => ruleAllows(r, a));
      return allowed;
    });
    if (this.decisions.size >= CACHE_LIMIT) this.decisions.clear();
    this.decisions.set(key, allowed);
    return allowed;
  }

  /**
   * Every rule that applies to the user in `namespace` (cluster-wide bindings included; only
   * those when `namespace` is ''): what `kubectl auth can-i --list` shows and what the
   * escalation check compares a new role against. `system:masters` holds `*`.
   */
  rulesFor(user: UserInfo, namespace: string): PolicyRule[] {
    if (user.groups.includes(MASTERS_GROUP)) {
      return [
        { verbs: ['*'], apiGroups: ['*'], resources: ['*'] },
        { verbs: ['*'], nonResourceURLs: ['*'] },
      ];
    }
    const out: PolicyRule[] = [];
    this.visit(user, namespace, (rules) => {
      out.push(...rules);
      return false;
    });
    return out;
  }

  /** Calls `fn` with the rules of each role bound to the user, until it returns true. */
  private visit(user: UserInfo, namespace: string, fn: (rules: PolicyRule[]) => boolean): void {
    for (const b of this.idx.clusterRoleBindings.list()) {
      if (b.roleRef?.kind !== 'ClusterRole' || !(b.subjects ?? []).some((s) => subjectMatches(s, user, ''))) continue;
      if (fn(this.idx.clusterRoles.get(undefined, b.roleRef.name)?.rules ?? [])) return;
    }
    if (namespace === '') return;
    for (const b of this.idx.roleBindings.list(namespace)) {
      if (!(b.subjects ?? []).some((s) => subjectMatches(s, user, namespace))) continue;
      const role = b.roleRef?.kind === 'Role' ? this.idx.roles.get(namespace, b.roleRef.name) : b.roleRef?.kind === 'ClusterRole' ? this.idx.clusterRoles.get(undefined, b.roleRef.name) : undefined;
      if (fn(role?.rules ?? [])) return;
    }
  }
}
