/**
 * Which Groups a User belongs to — the one place that reads the iam.stratus.dev User/Group
 * model for authentication, so a change of that model changes only this file. A user is in
 * every Group whose `spec.members` lists it, and (while Users still carry it) in every Group
 * named by its own `spec.groups`. With namespaced Users and Groups the lookup stays in the
 * namespace the credential belongs to; with cluster-scoped ones it is global.
 */
import type { Group, User } from '../../crds/types.js';
import type { LiveIndex } from './live-index.js';

export class Memberships {
  constructor(
    private readonly users: LiveIndex<User> | undefined,
    private readonly groups: LiveIndex<Group> | undefined,
  ) {}

  /** Group names of `username` (sorted, without the `system:` groups). */
  groupsOf(username: string, namespace: string): string[] {
    const out = new Set<string>();
    if (this.groups) {
      const ns = this.groups.resource.namespaced ? namespace : undefined;
      for (const g of this.groups.list(ns)) if (g.spec?.members?.includes(username)) out.add(g.metadata?.name ?? '');
    }
    if (this.users) {
      const u = this.users.get(this.users.resource.namespaced ? namespace : undefined, username) as (User & { spec: { groups?: string[] } }) | undefined;
      for (const g of u?.spec?.groups ?? []) out.add(g);
    }
    out.delete('');
    return [...out].sort();
  }

  /** False when the User exists and is disabled: its credentials stop working at once. */
  enabled(username: string, namespace: string): boolean {
    const u = this.users?.get(this.users.resource.namespaced ? namespace : undefined, username);
    return u?.spec?.disabled !== true;
  }
}
