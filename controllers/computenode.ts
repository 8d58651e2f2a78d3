/**
 * ComputeNodeReconciler: the heartbeat of every node, on the managed-resource lifecycle
 * (`runtime/managed.ts`). The node's external resource is the system itself: each pass
 * reaches it through its provider connection and reports what it has (`capacity`,
 * `allocatable`, `version`), what stratus placed on it (`allocated`, from the Instance
 * cache), `machines` (the names of every machine the node carries, where the provider lists
 * them: the legacy DataCentred API answers "does this domain exist" from it),
 * `lastHeartbeatTime`, and `Ready`/`Synced`. Nothing is created or deleted (no finalizer): a
 * deleted node only closes its connection.
 *
 * An unreachable node goes `Ready=False` with the provider's error (a failure, counted as a
 * reconcile error) and its connection is dropped so the next pass reconnects; its Instances
 * learn it through their own reconcile (the Instance controller watches nodes). Every pass,
 * failed or not, is repeated after `spec.heartbeatSeconds` (default 10 s), so "NotReady
 * within one heartbeat".
 */
import type { ComputeNode, Instance } from '../crds/types.js';
import type { ResourceClient } from '../runtime/client.js';
import type { Informer } from '../runtime/informer.js';
import { ManagedReconciler, type CallContext, type ExternalClient, type ExternalObservation, type ManagedKind, type StatusReport } from '../runtime/managed.js';
import { getCondition, kubeTime, type ConditionInput } from '../runtime/conditions.js';
import type { EventRecorder } from '../runtime/events.js';
import { ReconcileError, errorText } from '../runtime/errors.js';
import type { NodeDescription } from '../providers/machine.js';
import type { NodeConnections } from './connections.js';
import { Indexes } from './resources.js';

export type ComputeNodeEventReason = 'NodeReady' | 'NodeNotReady';
type Event = ComputeNodeEventReason;

export interface ComputeNodeReconcilerDeps {
  nodes: ResourceClient<ComputeNode>;
  nodeCache: Informer<ComputeNode>;
  instanceCache: Informer<Instance>;
  connections: NodeConnections;
  recorder: EventRecorder<ComputeNodeEventReason>;
  /** Default heartbeat when the node does not set `spec.heartbeatSeconds`. Default 10 s. */
  defaultHeartbeatMs?: number;
  /** Deadline of one `describe`. Default 30 s. */
  callTimeoutMs?: number;
}

type Status = NonNullable<ComputeNode['status']>;

/** The CRD's bound on `status.machines`. */
const MAX_MACHINE_NAMES = 4096;

interface NodeObservation extends ExternalObservation {
  description: NodeDescription;
}

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

export class ComputeNodeReconciler extends ManagedReconciler<ComputeNode, NodeObservation, Event> {
  constructor(d: ComputeNodeReconcilerDeps) {
    super(new NodeKind(d), { resource: d.nodes, cache: d.nodeCache, recorder: d.recorder, callTimeoutMs: d.callTimeoutMs ?? 30_000 });
  }
}

class NodeKind implements ManagedKind<ComputeNode, NodeObservation, Event> {
  readonly kind = 'computenode';
  readonly failureEvent = 'NodeNotReady' as const;

  constructor(private readonly d: ComputeNodeReconcilerDeps) {}

  async connect(node: ComputeNode): Promise<{ client: NodeHeartbeat }> {
    return { client: new NodeHeartbeat(this.d, this.heartbeatMs(node)) };
  }

  async forgotten(key: string): Promise<void> {
    await this.d.connections.forget(key);
  }

  async onFailure(node: ComputeNode): Promise<void> {
    await this.d.connections.forget(node.metadata?.name ?? '');
  }

  /** One Warning when a Ready node stops answering, not one per heartbeat. */
  failureEventWanted(node: ComputeNode): boolean {
    return getCondition(node.status?.conditions, 'Ready')?.status === 'True';
  }

  failureConditions(_node: ComputeNode, reason: string, message: string): ConditionInput[] {
    return [
      { type: 'Ready', status: 'False', reason, message },
      { type: 'Synced', status: 'False', reason, message },
    ];
  }

  failureStatus(node: ComputeNode): (s: Status) => void {
    const allocated = allocatedOn(this.d.instanceCache, node.metadata?.name ?? '');
    return (s) => {
      s.allocated = allocated;
    };
  }

  failureRequeueMs(node: ComputeNode): number {
    return this.heartbeatMs(node);
  }

  private heartbeatMs(node: ComputeNode): number {
    return (node.spec.heartbeatSeconds ?? 0) > 0 ? node.spec.heartbeatSeconds! * 1000 : (this.d.defaultHeartbeatMs ?? 10_000);
  }
}

/** The node's system, as the lifecycle's `ExternalClient`: observe is the heartbeat; it always exists. */
class NodeHeartbeat implements ExternalClient<ComputeNode, NodeObservation, Event> {
  constructor(
    private readonly d: ComputeNodeReconcilerDeps,
    private readonly heartbeatMs: number,
  ) {}

  async observe(node: ComputeNode): Promise<NodeObservation> {
    try {
      const description = await (await this.d.connections.get(node)).describe();
      return { exists: true, upToDate: true, description };
    } catch (err) {
      // Whatever stops a heartbeat makes the node unreachable, typed or not.
      throw err instanceof ReconcileError ? err : new ReconcileError('NodeUnreachable', errorText(err));
    }
  }

  async create(): Promise<void> {
    // observe always reports the node as existing: there is nothing to create.
  }

  async update(): Promise<void> {
    // observe always reports the node as up to date: stratus does not change the system.
  }

  async delete(): Promise<void> {
    // ComputeNodes have no finalizer: deletion never reaches here.
  }

  async settle(node: ComputeNode, o: NodeObservation, call: CallContext<Event>): Promise<void> {
    if (getCondition(node.status?.conditions, 'Ready')?.status !== 'True') call.recorder.normal(node, 'NodeReady', `reachable: ${o.description.version}`);
  }

  report(node: ComputeNode, o: NodeObservation): StatusReport<ComputeNode> & { requeueAfterMs?: number } {
    const desc = o.description;
    const allocated = allocatedOn(this.d.instanceCache, node.metadata?.name ?? '');
    return {
      conditions: [{ type: 'Ready', status: 'True', reason: 'NodeReady', message: desc.version }],
      mutate: (status: Status) => {
        status.capacity = { ...desc.capacity };
        const over = node.spec.capacityOverride;
        status.allocatable = { cpus: over?.cpus ?? desc.capacity.cpus, memoryMiB: over?.memoryMiB ?? desc.capacity.memoryMiB };
        status.version = desc.version;
        if (desc.machineNames) status.machines = desc.machineNames.slice(0, MAX_MACHINE_NAMES);
        status.lastHeartbeatTime = kubeTime();
        status.allocated = allocated;
      },
      requeueAfterMs: this.heartbeatMs,
    };
  }
}
