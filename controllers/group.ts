/**
 * GroupReconciler: a Group's status — `memberCount` (how many of `spec.members` exist as
 * Users) and `Ready`: `False` when `spec.quotaRef` names a Quota that does not exist (the
 * members would then be bounded by nothing), otherwise `True`, naming members that are not
 * Users in the message.
 */
import type { Group, Quota, User } from '../crds/types.js';
import type { ResourceClient } from '../runtime/client.js';
import type { Informer } from '../runtime/informer.js';
import type { Reconciler } from '../runtime/controller.js';
import type { ConditionInput } from '../runtime/conditions.js';
import { reportStatus } from '../runtime/status.js';

export interface GroupReconcilerDeps {
  groups: ResourceClient<Group>;
  groupCache: Informer<Group>;
  userCache: Informer<User>;
  quotaCache: Informer<Quota>;
}

export class GroupReconciler implements Reconciler {
  constructor(private readonly d: GroupReconcilerDeps) {}

  /** Groups to look at again when `user` changes: those listing it. */
  groupsListing(user: User): string[] {
    const name = user.metadata?.name ?? '';
    return this.d.groupCache
      .list()
      .filter((g) => (g.spec?.members ?? []).includes(name))
      .map((g) => g.metadata?.name ?? '');
  }

  /** Groups to look at again when `quota` changes: those referencing it. */
  groupsReferencing(quota: Quota): string[] {
    return this.d.groupCache
      .list()
      .filter((g) => g.spec?.quotaRef?.namespace === quota.metadata?.namespace && g.spec?.quotaRef?.name === quota.metadata?.name)
      .map((g) => g.metadata?.name ?? '');
  }

  async reconcile(key: string): Promise<void> {
    const group = this.d.groupCache.get(key);
    if (!group || group.metadata?.deletionTimestamp) return;
    const members = [...new Set(group.spec?.members ?? [])];
    const unknown = members.filter((m) => !this.d.userCache.get(m));
    const ref = group.spec?.quotaRef;
    let ready: ConditionInput;
    if (ref && !this.d.quotaCache.get(`${ref.namespace}/${ref.name}`)) {
      ready = { type: 'Ready', status: 'False', reason: 'QuotaNotFound', message: `Quota "${ref.namespace}/${ref.name}" does not exist` };
    } else {
      ready = { type: 'Ready', status: 'True', reason: 'MembersResolved', message: unknown.length > 0 ? `not Users (yet): ${unknown.join(', ')}` : '' };
    }
    await reportStatus(this.d.groups, group, [ready, { type: 'Synced', status: 'True', reason: 'ReconcileSuccess', message: '' }], (st: NonNullable<Group['status']>) => {
      st.memberCount = members.length - unknown.length;
    });
  }
}
