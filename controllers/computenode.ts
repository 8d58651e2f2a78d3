/**
 * ComputeNodeReconciler: the heartbeat of every node. Each reconcile reaches the node's
 * system through its provider connection and reports what it has (`capacity`,
 * `allocatable`, `version`), what stratus placed on it (`allocated`, from the Instance
 * cache), `machines` (the names of every machine the node carries, where the provider lists
 * them: the legacy DataCentred API answers "does this domain exist" from it),
 * `lastHeartbeatTime`, and `Ready`/`Synced`. An unreachable node goes
 * `Ready=False` with the provider's error; its Instances learn it through their own
 * reconcile (the Instance controller watches nodes).
 *
 * Requeues after `spec.heartbeatSeconds` (default 10 s), so "NotReady within one heartbeat".
 */
import type { ComputeNode, Instance } from '../crds/types.js';
import type { ResourceClient } from '../runtime/client.js';
import type { Informer } from '../runtime/informer.js';
import type { Reconciler, ReconcileContext, ReconcileResult } from '../runtime/controller.js';
import { reportStatus } from '../runtime/status.js';
import { getCondition, kubeTime, type ConditionInput } from '../runtime/conditions.js';
import type { EventRecorder } from '../runtime/events.js';
import { ProviderError, type NodeDescription } from '../providers/machine.js';
import type { NodeConnections } from './connections.js';
import { Indexes } from './resources.js';

export type ComputeNodeEventReason = 'NodeReady' | 'NodeNotReady';

export interface ComputeNodeReconcilerDeps {
  nodes: ResourceClient<ComputeNode>;
  nodeCache: Informer<ComputeNode>;
  instanceCache: Informer<Instance>;
  connections: NodeConnections;
  recorder: EventRecorder<ComputeNodeEventReason>;
  /** Default heartbeat when the node does not set `spec.heartbeatSeconds`. Default 10 s. */
  defaultHeartbeatMs?: number;
}

type Status = NonNullable<ComputeNode['status']>;

/** The CRD's bound on `status.machines`. */
const MAX_MACHINE_NAMES = 4096;

/** What is bound to a node, summed from the Instance cache. */
export function allocatedOn(instanceCache: Informer<Instance>, nodeName: string): { cpus: number; memoryMiB: number; instances: number } {
  let cpus = 0;
  let memoryMiB = 0;
  let instances = 0;
  for (const inst of instanceCache.byIndex(Indexes.instancesByNode, nodeName)) {
    cpus += inst.spec.cpus ?? 1;
    memoryMiB += inst.spec.memoryMiB ?? 512;
    instances++;
  }
  return { cpus, memoryMiB, instances };
}

export class ComputeNodeReconciler implements Reconciler {
  constructor(private readonly d: ComputeNodeReconcilerDeps) {}

  async reconcile(key: string, ctx: ReconcileContext): Promise<ReconcileResult | void> {
    const node = this.d.nodeCache.get(key);
    if (!node || node.metadata?.deletionTimestamp) {
      await this.d.connections.forget(key);
      return;
    }
    const heartbeatMs = (node.spec.heartbeatSeconds ?? 0) > 0 ? node.spec.heartbeatSeconds! * 1000 : (this.d.defaultHeartbeatMs ?? 10_000);
    let desc: NodeDescription | undefined;
    let failure: { reason: string; message: string } | undefined;
    try {
      desc = await (await this.d.connections.get(node)).describe();
    } catch (err) {
      failure = {
        reason: err instanceof ProviderError ? err.reason : 'NodeUnreachable',
        message: err instanceof Error ? err.message : String(err),
      };
      await this.d.connections.forget(key);
    }
    const wasReady = getCondition(node.status?.conditions, 'Ready')?.status === 'True';
    if (failure && wasReady) this.d.recorder.warning(node, 'NodeNotReady', `${failure.reason}: ${failure.message}`);
    if (!failure && !wasReady) this.d.recorder.normal(node, 'NodeReady', `reachable: ${desc?.version ?? ''}`);
    if (failure) ctx.log.warn({ reason: failure.reason, err: failure.message }, 'node unreachable');

    const allocated = allocatedOn(this.d.instanceCache, key);
    const conditions: ConditionInput[] = failure
      ? [
          { type: 'Ready', status: 'False', reason: failure.reason, message: failure.message },
          { type: 'Synced', status: 'False', reason: failure.reason, message: failure.message },
        ]
      : [
          { type: 'Ready', status: 'True', reason: 'NodeReady', message: desc!.version },
          { type: 'Synced', status: 'True', reason: 'ReconcileSuccess', message: '' },
        ];
    await reportStatus(this.d.nodes, node, conditions, (status: Status) => {
      if (desc) {
        status.capacity = { ...desc.capacity };
        const o = node.spec.capacityOverride;
        status.allocatable = { cpus: o?.cpus ?? desc.capacity.cpus, memoryMiB: o?.memoryMiB ?? desc.capacity.memoryMiB };
        status.version = desc.version;
        if (desc.machineNames) status.machines = desc.machineNames.slice(0, MAX_MACHINE_NAMES);
        status.lastHeartbeatTime = kubeTime();
      }
      status.allocated = allocated;
    });
    return { requeueAfterMs: heartbeatMs };
  }
}
