/**
 * QuotaReconciler: keeps `Quota.status.used` exact by recomputing it from the objects
 * (apiserver/quota/usage.ts counts them), after every change of an Instance, ElasticIP,
 * Group or the Quota itself.
 *
 * A namespace quota (no Group references it) counts the Instances and ElasticIPs of its
 * namespace; a group quota counts the objects stamped with it at creation
 * (`iam.stratus.dev/charged-quotas`), wherever they are. On top of what the cache holds it
 * keeps counting admission's `status.pending` charges whose object the cache does not show
 * yet (uid + generation) — the write may still be in flight, and dropping the charge would
 * let concurrent creates past the limit — until `PENDING_TTL_MS` has passed, when the write
 * is taken to have failed and the charge is released. The status write carries the read
 * resourceVersion, so a charge admitted meanwhile makes it retry rather than be lost.
 */
import type { ElasticIP, Group, Instance, Quota } from '../crds/types.js';
import { objectKey, splitKey, type KubeObject, type ResourceClient } from '../runtime/client.js';
import type { Informer } from '../runtime/informer.js';
import type { Reconciler, ReconcileResult } from '../runtime/controller.js';
import { reportStatus } from '../runtime/status.js';
import {
  addUsage,
  chargedQuotas,
  normalized,
  PENDING_TTL_MS,
  usageOf,
  type PendingCharge,
  type QuotaStatus,
  type Usage,
} from '../apiserver/quota/usage.js';

export interface QuotaReconcilerDeps {
  quotas: ResourceClient<Quota>;
  quotaCache: Informer<Quota>;
  instanceCache: Informer<Instance>;
  elasticIPCache: Informer<ElasticIP>;
  groupCache: Informer<Group>;
  now?: () => number;
}

type Counted = (Instance | ElasticIP) & KubeObject;

export class QuotaReconciler implements Reconciler {
  constructor(private readonly d: QuotaReconcilerDeps) {}

  /** Quota keys an Instance or ElasticIP counts against (its namespace's, and its stamp's). */
  quotasOf(obj: KubeObject): string[] {
    const ns = obj.metadata?.namespace ?? '';
    const own = this.d.quotaCache.list().filter((q) => q.metadata?.namespace === ns).map((q) => objectKey(q));
    return [...new Set([...own, ...chargedQuotas(obj.metadata?.annotations)])];
  }

  /** `namespace/name` of every Quota some Group references. */
  private groupQuotas(): Set<string> {
    const out = new Set<string>();
    for (const g of this.d.groupCache.list()) {
      const ref = g.spec?.quotaRef;
      if (ref?.namespace && ref.name) out.add(`${ref.namespace}/${ref.name}`);
    }
    return out;
  }

  async reconcile(key: string): Promise<ReconcileResult | void> {
    const quota = this.d.quotaCache.get(key);
    if (!quota || quota.metadata?.deletionTimestamp) return;
    const { namespace } = splitKey(key);
    const isGroupQuota = this.groupQuotas().has(key);
    const objects: { kind: string; obj: Counted }[] = [];
    const consider = (kind: string, obj: Counted): void => {
      const counts = isGroupQuota ? chargedQuotas(obj.metadata?.annotations).includes(key) : obj.metadata?.namespace === namespace;
      if (counts) objects.push({ kind, obj });
    };
    for (const i of this.d.instanceCache.list()) consider('Instance', i);
    for (const e of this.d.elasticIPCache.list()) consider('ElasticIP', e);
    let counted: Usage = {};
    const seen = new Map<string, number>();
    for (const { kind, obj } of objects) {
      counted = addUsage(counted, usageOf(kind, obj));
      seen.set(obj.metadata?.uid ?? '', obj.metadata?.generation ?? 1);
    }
    const now = (this.d.now ?? Date.now)();
    let waiting = false;
    await reportStatus(this.d.quotas, quota, [{ type: 'Ready', status: 'True', reason: 'Counted', message: '' }], (st: QuotaStatus) => {
      // The fresh object's pending list: admission may have added to it since the cache saw it.
      const keep: PendingCharge[] = (st.pending ?? []).filter((p) => {
        const landed = (seen.get(p.uid) ?? 0) >= p.generation;
        const expired = now - Date.parse(p.time) > PENDING_TTL_MS;
        return !landed && !expired;
      });
      let used = counted;
      for (const p of keep) used = addUsage(used, p.charged ?? {});
      st.used = normalized(used);
      if (keep.length > 0) st.pending = keep;
      else delete st.pending;
      waiting = keep.length > 0;
    });
    // Unlanded charges are looked at again: each lands or expires.
    if (waiting) return { requeueAfterMs: 1000 };
  }
}
