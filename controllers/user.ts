/**
 * UserReconciler: a User's status — `groups` (the Groups whose `spec.members` list it; the
 * membership itself is only ever written on Groups) and `Ready` (`False`/`Disabled` for a
 * disabled user, whose requests are refused). `lastLoginTime` is written by the login
 * endpoint, never here.
 */
import type { Group, User } from '../crds/types.js';
import type { ResourceClient } from '../runtime/client.js';
import type { Informer } from '../runtime/informer.js';
import type { Reconciler } from '../runtime/controller.js';
import type { ConditionInput } from '../runtime/conditions.js';
import { reportStatus } from '../runtime/status.js';
import { groupsOf } from '../apiserver/auth/membership.js';

export interface UserReconcilerDeps {
  users: ResourceClient<User>;
  userCache: Informer<User>;
  groupCache: Informer<Group>;
}

export class UserReconciler implements Reconciler {
  constructor(private readonly d: UserReconcilerDeps) {}

  async reconcile(key: string): Promise<void> {
    const user = this.d.userCache.get(key);
    if (!user || user.metadata?.deletionTimestamp) return;
    const name = user.metadata?.name ?? '';
    const groups = await groupsOf(name, async () => this.d.groupCache.list());
    const ready: ConditionInput =
      user.spec.disabled === true
        ? { type: 'Ready', status: 'False', reason: 'Disabled', message: 'spec.disabled is true: requests as this user are refused' }
        : { type: 'Ready', status: 'True', reason: 'Active', message: '' };
    await reportStatus(this.d.users, user, [ready, { type: 'Synced', status: 'True', reason: 'ReconcileSuccess', message: '' }], (st: NonNullable<User['status']>) => {
      if (groups.length > 0) st.groups = groups;
      else delete st.groups;
    });
  }
}
