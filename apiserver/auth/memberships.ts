/**
 * Which Groups a User belongs to, for the API server's authenticator, from its live indexes
 * (no storage read on the request path). The rule is membership.ts's `groupsOf`: a user is in
 * every Group whose `spec.members` lists it — the one place membership is written.
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
    out.delete('');
    return [...out].sort();
  }

  /** False when the User exists and is disabled: its credentials stop working at once. */
  enabled(username: string, namespace: string): boolean {
    const u = this.users?.get(this.users.resource.namespaced ? namespace : undefined, username);
    return u?.spec?.disabled !== true;
  }
}
