/**
 * ClusterRole aggregation, as kube's clusterrole-aggregation controller: a ClusterRole with
 * an `aggregationRule` has its `rules` replaced by the union (first occurrence kept, in name
 * order) of the rules of every other ClusterRole its `clusterRoleSelectors` match. Runs
 * after any ClusterRole change, one pass at a time; chains (view → edit → admin) converge as
 * each write triggers the next pass. A write that loses a race is retried by the next pass.
 */
import { log } from '../../runtime/log.js';
import { ApiError } from '../errors.js';
import type { Registry } from '../registry.js';
import { storageVersion } from '../resources.js';
import { labelSelectorFromObject, matchesLabels, type LabelSelectorObject } from '../selectors.js';
import type { LiveIndex } from './live-index.js';
import type { RoleObject } from './rbac-authorizer.js';
import type { PolicyRule } from './rbac-rules.js';

export class ClusterRoleAggregator {
  private running = false;
  private again = false;
  private stopped = false;

  constructor(
    private readonly registry: Registry,
    private readonly clusterRoles: LiveIndex<RoleObject>,
  ) {
    clusterRoles.onChange(() => this.kick());
  }

  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    setImmediate(() => {
      void this.pass()
        .catch((err: unknown) => log.warn({ component: 'apiserver', err: String(err) }, 'ClusterRole aggregation failed; retrying on the next change'))
        .finally(() => {
          this.running = false;
          if (this.again) {
            this.again = false;
            this.kick();
          }
        });
    });
  }

  stop(): void {
    this.stopped = true;
  }

  /** The rules `role` aggregates from the current ClusterRoles. */
  static aggregate(role: RoleObject, all: RoleObject[]): PolicyRule[] {
    const selectors = (role.aggregationRule?.clusterRoleSelectors ?? []).map((s) => labelSelectorFromObject(s as LabelSelectorObject));
    const seen = new Set<string>();
    const rules: PolicyRule[] = [];
    const sources = all
      .filter((o) => o.metadata?.name !== role.metadata?.name && selectors.some((s) => matchesLabels(s, o.metadata?.labels)))
      .sort((a, b) => ((a.metadata?.name ?? '') < (b.metadata?.name ?? '') ? -1 : 1));
    for (const src of sources) {
      for (const r of src.rules ?? []) {
        const key = JSON.stringify(r);
        if (seen.has(key)) continue;
        seen.add(key);
        rules.push(r);
      }
    }
    return rules;
  }

  private async pass(): Promise<void> {
    const all = this.clusterRoles.list();
    const target = { resource: this.clusterRoles.resource, version: storageVersion(this.clusterRoles.resource) };
    for (const role of all) {
      if (!role.aggregationRule || this.stopped) continue;
      let rules: PolicyRule[];
      try {
        rules = ClusterRoleAggregator.aggregate(role, all);
      } catch {
        continue; // an invalid selector aggregates nothing (validation refuses new ones)
      }
      if (JSON.stringify(rules) === JSON.stringify(role.rules ?? [])) continue;
      try {
        await this.registry.update(target, role.metadata?.name ?? '', { ...role, rules }, { fieldManager: 'clusterrole-aggregation-controller' });
      } catch (err) {
        if (!(err instanceof ApiError && (err.code === 409 || err.code === 404))) throw err;
      }
    }
  }
}
