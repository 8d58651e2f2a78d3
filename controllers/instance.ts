/**
 * InstanceReconciler: one generic lifecycle for every kind of machine (crossplane's managed
 * reconciler). The provider behind the Instance's ComputeNode does the work through the
 * idempotent `MachineProvider` contract; this file decides *what* to do and reports it.
 *
 * Each reconcile: fetch → handle deletion (finalizer) → ensure finalizer → wait for a node →
 * observe → create | update | nothing → write status → choose the next check.
 * Every branch sets `Synced` (did we reach the provider?) and `Ready` (is it running?),
 * writes status only when it changed, and picks a requeue: short while the machine is in
 * transition, the poll interval when steady (that poll is what repairs drift: a machine
 * destroyed or stopped behind stratus's back is recreated or restarted).
 *
 * Idempotent create: the external resource is named by `metadata.uid`, so a crash between
 * the provider's create and our status write finds the same resource on the next observe.
 */
import type { ComputeNode, Instance, Network, SSHKey } from '../crds/types.js';
import type { ResourceClient } from '../runtime/client.js';
import type { Informer } from '../runtime/informer.js';
import type { Reconciler, ReconcileContext, ReconcileResult } from '../runtime/controller.js';
import { reconcileWithFinalizer, type CleanupResult } from '../runtime/finalizers.js';
import { reportStatus } from '../runtime/status.js';
import { getCondition, kubeTime, type ConditionInput } from '../runtime/conditions.js';
import type { EventRecorder } from '../runtime/events.js';
import { ProviderError, type MachineObservation, type MachineSpec, type MachineState } from '../providers/machine.js';
import { attachNamespace } from '../providers/ovs/netns.js';
import { machineSpecFor } from './machinespec.js';
import type { NodeConnections } from './connections.js';
import { ovsDatabaseOf, type OvsSwitches } from './switches.js';

export const INSTANCE_FINALIZER = 'compute.stratus.dev/instance';

export type InstanceEventReason =
  | 'Created'
  | 'Recreated'
  | 'Starting'
  | 'Stopping'
  | 'Updated'
  | 'Deleted'
  | 'ProviderError'
  | 'NodeNotReady'
  | 'Orphaned';

export interface InstanceReconcilerDeps {
  instances: ResourceClient<Instance>;
  instanceCache: Informer<Instance>;
  nodeCache: Informer<ComputeNode>;
  sshKeyCache: Informer<SSHKey>;
  networkCache: Informer<Network>;
  connections: NodeConnections;
  /** Open vSwitch sessions, for attaching containers to Networks. */
  switches: OvsSwitches;
  recorder: EventRecorder<InstanceEventReason>;
  /** Steady-state drift check. Default 30 s. */
  pollIntervalMs?: number;
  /** Check interval while a machine is in transition. Default 1 s. */
  transitionPollMs?: number;
}

type Status = NonNullable<Instance['status']>;

const TRANSITIONAL: ReadonlySet<MachineState> = new Set(['pending', 'creating', 'starting', 'stopping', 'terminating']);

export class InstanceReconciler implements Reconciler {
  private readonly pollMs: number;
  private readonly transitionMs: number;

  constructor(private readonly d: InstanceReconcilerDeps) {
    this.pollMs = d.pollIntervalMs ?? 30_000;
    this.transitionMs = d.transitionPollMs ?? 1000;
  }

  async reconcile(key: string, ctx: ReconcileContext): Promise<ReconcileResult | void> {
    const cached = this.d.instanceCache.get(key);
    if (!cached) return;
    return reconcileWithFinalizer(this.d.instances, cached, INSTANCE_FINALIZER, {
      apply: (inst) => this.apply(inst, ctx),
      cleanup: (inst) => this.cleanup(inst, ctx),
    });
  }

  private async apply(inst: Instance, ctx: ReconcileContext): Promise<ReconcileResult> {
    const nodeName = inst.spec.nodeName;
    if (!nodeName) {
      await this.writeStatus(inst, { state: 'pending' }, [
        { type: 'Ready', status: 'False', reason: 'Unscheduled', message: 'waiting for the scheduler to bind a ComputeNode' },
      ]);
      return {};
    }
    const node = this.d.nodeCache.get(nodeName);
    if (!node) {
      await this.writeStatus(inst, { state: inst.status?.state ?? 'pending' }, [
        { type: 'Synced', status: 'False', reason: 'NodeNotFound', message: `ComputeNode "${nodeName}" does not exist` },
        { type: 'Ready', status: 'False', reason: 'NodeNotFound', message: `ComputeNode "${nodeName}" does not exist` },
      ]);
      return { requeueAfterMs: this.pollMs };
    }
    const nodeReady = getCondition(node.status?.conditions, 'Ready');
    if (nodeReady?.status !== 'True') {
      const why = nodeReady ? `${nodeReady.reason}: ${nodeReady.message}` : 'no heartbeat yet';
      if (inst.status?.state && getCondition(inst.status.conditions, 'NodeReady')?.status !== 'False') {
        this.d.recorder.warning(inst, 'NodeNotReady', `ComputeNode "${nodeName}" is not ready (${why})`);
      }
      await this.writeStatus(inst, {}, [
        { type: 'NodeReady', status: 'False', reason: 'NodeNotReady', message: `ComputeNode "${nodeName}" is not ready: ${why}` },
      ]);
      return { requeueAfterMs: this.pollMs };
    }

    let spec: MachineSpec;
    try {
      spec = this.machineSpec(inst);
      const provider = (await this.d.connections.get(node)).machines();
      let observed = await provider.observe(spec);
      if (!observed.exists) {
        const wasThere = Boolean(inst.status?.providerID);
        await provider.create(spec);
        if (wasThere) this.d.recorder.warning(inst, 'Recreated', `the machine disappeared from "${nodeName}"; recreated it`);
        else this.d.recorder.normal(inst, 'Created', `created on ComputeNode "${nodeName}"`);
        ctx.log.info({ node: nodeName, recreated: wasThere }, 'machine created');
        observed = await provider.observe(spec);
        if (!observed.exists) {
          await this.writeStatus(inst, { state: 'creating' }, this.syncedConditions('Creating', 'creating the machine'));
          return { requeueAfterMs: this.transitionMs };
        }
      } else if (!observed.upToDate) {
        await provider.update(spec, observed);
        const reason = spec.powerState === 'Stopped' && observed.state !== 'stopped' ? 'Stopping' : spec.powerState === 'Running' && observed.state !== 'running' ? 'Starting' : 'Updated';
        this.d.recorder.normal(inst, reason, `${reason.toLowerCase()} the machine on "${nodeName}" (was ${observed.state})`);
        observed = await provider.observe(spec);
      }
      await this.attachContainerNetworks(node, spec, observed);
      await this.writeObserved(inst, observed, nodeName);
      return { requeueAfterMs: TRANSITIONAL.has(observed.state) || !observed.upToDate ? this.transitionMs : this.pollMs };
    } catch (err) {
      return this.failed(inst, node, err);
    }
  }

  private async cleanup(inst: Instance, ctx: ReconcileContext): Promise<CleanupResult> {
    const nodeName = inst.spec.nodeName;
    if (inst.status?.state !== 'terminating') await this.writeStatus(inst, { state: 'terminating' }, []);
    if (!nodeName) return { done: true };
    const node = this.d.nodeCache.get(nodeName);
    if (!node) {
      this.d.recorder.warning(inst, 'Orphaned', `ComputeNode "${nodeName}" no longer exists; its machine (if any) is left behind`);
      return { done: true };
    }
    try {
      const spec = machineSpecFor(inst, this.lookups(), { lenient: true });
      const provider = (await this.d.connections.get(node)).machines();
      await provider.delete(spec);
      const observed = await provider.observe(spec);
      if (observed.exists) return { done: false, requeueAfterMs: this.transitionMs };
      const db = ovsDatabaseOf(node);
      if (db && node.spec.provider === 'docker' && spec.networks.length > 0) await this.d.switches.get(db).removePortsOwnedBy(spec.uid);
      this.d.recorder.normal(inst, 'Deleted', `deleted the machine from "${nodeName}"`);
      ctx.log.info({ node: nodeName }, 'machine deleted');
      return { done: true };
    } catch (err) {
      const res = await this.failed(inst, node, err);
      return { done: false, requeueAfterMs: res.requeueAfterMs ?? this.transitionMs * 5 };
    }
  }

  /**
   * Containers join Networks through a veth pair per Network (`eth1`, `eth2`, ...): the host
   * end is an access port of the Network's VLAN, the other end is inside the container's
   * namespace with the Instance's address. Re-run on every observe, so a restarted
   * container (a new namespace) or a retagged Network is repaired. VMs need none of this:
   * libvirt plugs their interfaces into the Network's portgroup.
   */
  private async attachContainerNetworks(node: ComputeNode, spec: MachineSpec, observed: MachineObservation): Promise<void> {
    const db = ovsDatabaseOf(node);
    if (!db || node.spec.provider !== 'docker' || spec.networks.length === 0) return;
    if (observed.state !== 'running' || !observed.pid) return;
    const sw = this.d.switches.get(db);
    for (const [i, n] of spec.networks.entries()) {
      await attachNamespace(sw, {
        bridge: n.bridge,
        vlan: n.vlan,
        ownerUid: spec.uid,
        ...(n.uid ? { networkUid: n.uid } : {}),
        target: { pid: observed.pid },
        ifName: `eth${i + 1}`,
        ...(n.address ? { address: n.address } : {}),
        ...(n.mac ? { mac: n.mac } : {}),
        ...(node.spec.ovs?.netns ? { switchNetns: node.spec.ovs.netns } : {}),
      });
    }
  }

  private machineSpec(inst: Instance): MachineSpec {
    return machineSpecFor(inst, this.lookups());
  }

  private lookups() {
    return {
      sshKey: (ns: string, name: string) => this.d.sshKeyCache.get(`${ns}/${name}`),
      network: (ns: string, name: string) => this.d.networkCache.get(`${ns}/${name}`),
    };
  }

  private syncedConditions(reason: string, message: string): ConditionInput[] {
    return [
      { type: 'Synced', status: 'True', reason: 'ReconcileSuccess', message: '' },
      { type: 'Ready', status: 'False', reason, message },
      { type: 'NodeReady', status: 'True', reason: 'NodeReady', message: '' },
    ];
  }

  private async writeObserved(inst: Instance, o: MachineObservation, nodeName: string): Promise<void> {
    const running = o.state === 'running';
    const readyReason = running ? 'Running' : o.state.charAt(0).toUpperCase() + o.state.slice(1);
    const fields: Partial<Status> = {
      state: o.state,
      nodeName,
      addresses: o.addresses,
      ...(o.ipAddress ? { ipAddress: o.ipAddress } : {}),
      ...(o.providerID ? { providerID: o.providerID } : {}),
      ...(o.message ? { message: o.message } : {}),
    };
    await this.writeStatus(inst, fields, [
      { type: 'Synced', status: 'True', reason: 'ReconcileSuccess', message: '' },
      { type: 'Ready', status: running ? 'True' : 'False', reason: readyReason, message: o.message ?? '' },
      { type: 'NodeReady', status: 'True', reason: 'NodeReady', message: '' },
    ], { clearIP: !o.ipAddress, clearMessage: !o.message, running });
  }

  /** Reports a failed step; returns how to retry. Non-provider errors are rethrown for backoff. */
  private async failed(inst: Instance, node: ComputeNode, err: unknown): Promise<ReconcileResult> {
    const pe = err instanceof ProviderError ? err : undefined;
    const reason = pe?.reason ?? 'ReconcileError';
    const message = err instanceof Error ? err.message : String(err);
    if (pe && (pe.reason === 'NodeUnreachable' || pe.reason === 'TLSError')) await this.d.connections.forget(node.metadata?.name ?? '');
    const prevSynced = getCondition(inst.status?.conditions, 'Synced');
    if (prevSynced?.reason !== reason || prevSynced.message !== message) this.d.recorder.warning(inst, 'ProviderError', `${reason}: ${message}`);
    await this.writeStatus(inst, pe && !pe.retryable && !inst.status?.providerID ? { state: inst.status?.state ?? 'pending' } : {}, [
      { type: 'Synced', status: 'False', reason, message },
      ...(inst.status?.state === 'running' ? [] : [{ type: 'Ready', status: 'False' as const, reason, message }]),
    ]);
    if (!pe) throw err;
    if (!pe.retryable) return { requeueAfterMs: this.pollMs };
    if (pe.retryAfterMs !== undefined) return { requeueAfterMs: pe.retryAfterMs };
    return { requeue: true };
  }

  /** Writes `fields` and `conditions` into status (see `reportStatus`). */
  private async writeStatus(
    inst: Instance,
    fields: Partial<Status>,
    conditions: ConditionInput[],
    opts: { clearIP?: boolean; clearMessage?: boolean; running?: boolean } = {},
  ): Promise<void> {
    await reportStatus(this.d.instances, inst, conditions, (status: Status) => {
      Object.assign(status, fields);
      if (opts.clearIP) delete status.ipAddress;
      if (opts.clearMessage) delete status.message;
      if (opts.running && !status.startTime) status.startTime = kubeTime();
      if (opts.running === false) delete status.startTime;
    });
  }
}
