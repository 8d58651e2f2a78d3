/**
 * The scheduler: binds each unbound Instance to a ComputeNode by writing `spec.nodeName`,
 * using the pure decision in `scheduling.ts`. Runs with one worker so decisions are
 * serial; bindings it has written but its cache has not yet seen are kept as "assumed"
 * (as kube-scheduler does), so a burst of Instances never over-fills a node.
 *
 * Writes a `Scheduled` condition either way; an unschedulable Instance carries the counted
 * reasons ("0/3 nodes: 2 insufficient memory, 1 not ready") and is retried whenever a node
 * or another Instance changes, and at least every `retryMs`.
 */
import type { ComputeNode, Instance } from '../crds/types.js';
import { isConflict, objectKey, splitKey, type ResourceClient } from '../runtime/client.js';
import type { Informer } from '../runtime/informer.js';
import type { Reconciler, ReconcileContext, ReconcileResult } from '../runtime/controller.js';
import { updateStatus } from '../runtime/status.js';
import { getCondition, setCondition } from '../runtime/conditions.js';
import type { EventRecorder } from '../runtime/events.js';
import { schedule, type BoundInstance, type InstanceDemand, type NodeCandidate } from './scheduling.js';
import { Indexes } from './resources.js';

export type SchedulerEventReason = 'Scheduled' | 'FailedScheduling';

export interface SchedulerDeps {
  instances: ResourceClient<Instance>;
  instanceCache: Informer<Instance>;
  nodeCache: Informer<ComputeNode>;
  recorder: EventRecorder<SchedulerEventReason>;
  /** Retry interval for unschedulable Instances. Default 30 s. */
  retryMs?: number;
}

interface Assumed {
  node: string;
  bound: BoundInstance;
}

export function demandOf(inst: Instance): InstanceDemand {
  const ns = inst.metadata?.namespace ?? 'default';
  const group = inst.spec.placement?.group;
  return {
    provider: inst.spec.provider,
    cpus: inst.spec.cpus ?? 1,
    memoryMiB: inst.spec.memoryMiB ?? 512,
    ...(inst.spec.nodeSelector ? { nodeSelector: inst.spec.nodeSelector } : {}),
    strategy: inst.spec.placement?.strategy ?? 'spread',
    ...(group ? { group: `${ns}/${group}` } : {}),
    unique: Boolean(inst.spec.placement?.unique),
    hostPorts: (inst.spec.ports ?? []).filter((p) => p.hostPort !== undefined).map((p) => ({ port: p.hostPort!, protocol: p.protocol ?? 'TCP' })),
  };
}

function boundOf(inst: Instance): BoundInstance {
  const d = demandOf(inst);
  return { cpus: d.cpus, memoryMiB: d.memoryMiB, hostPorts: d.hostPorts, ...(d.group ? { group: d.group } : {}) };
}

export class SchedulerReconciler implements Reconciler {
  private readonly assumed = new Map<string, Assumed>();

  constructor(private readonly d: SchedulerDeps) {}

  /** Keys of every Instance still waiting for a node (to retry when nodes change). */
  unboundKeys(): string[] {
    return this.d.instanceCache
      .list()
      .filter((i) => !i.spec.nodeName && !i.metadata?.deletionTimestamp)
      .map((i) => objectKey(i));
  }

  async reconcile(key: string, ctx: ReconcileContext): Promise<ReconcileResult | void> {
    const inst = this.d.instanceCache.get(key);
    if (!inst || inst.metadata?.deletionTimestamp) {
      this.assumed.delete(key);
      return;
    }
    if (inst.spec.nodeName) {
      this.assumed.delete(key);
      return;
    }
    if (this.assumed.has(key)) return; // bound by us; the cache will catch up
    const decision = schedule(demandOf(inst), this.candidates(key));
    const { namespace, name } = splitKey(key);
    if (decision.node === undefined) {
      const prev = getCondition(inst.status?.conditions, 'Scheduled');
      if (prev?.message !== decision.reason) this.d.recorder.warning(inst, 'FailedScheduling', decision.reason);
      await this.setScheduled(inst, 'False', 'Unschedulable', decision.reason);
      ctx.log.info({ reason: decision.reason }, 'unschedulable');
      return { requeueAfterMs: this.d.retryMs ?? 30_000 };
    }
    try {
      await this.d.instances.mergePatch(namespace, name, {
        metadata: { resourceVersion: inst.metadata?.resourceVersion },
        spec: { nodeName: decision.node },
      });
    } catch (err) {
      if (isConflict(err)) return { requeue: true };
      throw err;
    }
    this.assumed.set(key, { node: decision.node, bound: boundOf(inst) });
    this.d.recorder.normal(inst, 'Scheduled', `assigned ${key} to ${decision.node}`);
    ctx.log.info({ node: decision.node }, 'scheduled');
    await this.setScheduled(inst, 'True', 'Scheduled', `bound to ComputeNode "${decision.node}"`);
  }

  private candidates(exceptKey: string): NodeCandidate[] {
    const assumedByNode = new Map<string, BoundInstance[]>();
    for (const [k, a] of this.assumed) {
      const cached = this.d.instanceCache.get(k);
      if (!cached || cached.spec.nodeName) {
        // the cache has caught up (or the Instance is gone): it now counts through the index
        this.assumed.delete(k);
        continue;
      }
      const list = assumedByNode.get(a.node) ?? [];
      list.push(a.bound);
      assumedByNode.set(a.node, list);
    }
    return this.d.nodeCache.list().map((node) => {
      const name = node.metadata?.name ?? '';
      const bound = this.d.instanceCache
        .byIndex(Indexes.instancesByNode, name)
        .filter((i) => objectKey(i) !== exceptKey)
        .map(boundOf)
        .concat(assumedByNode.get(name) ?? []);
      const alloc = node.status?.allocatable;
      return {
        name,
        provider: node.spec.provider,
        labels: node.metadata?.labels ?? {},
        ready: getCondition(node.status?.conditions, 'Ready')?.status === 'True' && alloc !== undefined,
        unschedulable: Boolean(node.spec.unschedulable),
        allocatable: { cpus: alloc?.cpus ?? 0, memoryMiB: alloc?.memoryMiB ?? 0 },
        bound,
      };
    });
  }

  private async setScheduled(inst: Instance, status: 'True' | 'False', reason: string, message: string): Promise<void> {
    const { namespace, name } = splitKey(objectKey(inst));
    await updateStatus(this.d.instances, namespace, name, (fresh) => {
      if (fresh.metadata?.uid !== inst.metadata?.uid) return false;
      const st = { ...(fresh.status ?? {}) } as NonNullable<Instance['status']>;
      st.conditions = setCondition(st.conditions, { type: 'Scheduled', status, reason, message }, fresh.metadata?.generation ?? 0);
      if (!st.state) st.state = 'pending';
      fresh.status = st;
    });
  }
}
