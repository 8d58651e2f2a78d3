/**
 * InstanceReconciler: Instances on the managed-resource lifecycle (`runtime/managed.ts`),
 * for every machine provider alike. This file says what "the external resource" of an
 * Instance is — a machine on the ComputeNode it is bound to, reached through the node's
 * provider (`MachineProvider`) — and how its observation reads in status; the lifecycle owns
 * the order, the finalizer, deadlines and the error policy.
 *
 * Before a machine can be touched the Instance waits (not a failure) for the scheduler to
 * bind a node, for the node to exist and to be Ready. Once observed, `Synced` says whether
 * the provider was reached, `Ready` whether the machine runs, `NodeReady` whether its node
 * is up. The check repeats quickly while the machine is in transition and at the poll
 * interval when steady; that poll is what repairs drift (a machine destroyed or stopped
 * behind stratus's back is recreated or restarted).
 *
 * Idempotent create: the external resource is named by `metadata.uid`, so a crash between
 * the provider's create and our status write finds the same resource on the next observe.
 * Networks a provider cannot plug machines into itself (containers) are joined through its
 * `networkAttachment` capability after every observe.
 */
import type { ComputeNode, Instance, Network, SSHKey } from '../crds/types.js';
import type { ResourceClient } from '../runtime/client.js';
import type { Informer } from '../runtime/informer.js';
import type { ReconcileContext } from '../runtime/controller.js';
import { ManagedReconciler, type CallContext, type Connected, type ExternalClient, type ManagedKind, type StatusReport } from '../runtime/managed.js';
import { getCondition, kubeTime, type ConditionInput } from '../runtime/conditions.js';
import type { EventRecorder } from '../runtime/events.js';
import { ReconcileError } from '../runtime/errors.js';
import type { MachineChange, MachineObservation, MachineProvider, MachineSpec, MachineState, NodeConnection } from '../providers/machine.js';
import type { AnyProvider, MachineDiskSize } from '../providers/registry.js';
import type { ProviderMetrics } from '../providers/metrics.js';
import { machineSpecFor, type Lookups } from './machinespec.js';
import type { NodeConnections } from './connections.js';

export const INSTANCE_FINALIZER = 'compute.stratus.dev/instance';

export type InstanceEventReason =
  | 'Created'
  | 'Recreated'
  | 'Starting'
  | 'Stopping'
  | 'Updated'
  | 'Deleted'
  | 'ShutDown'
  | 'ForcedOff'
  | 'ProviderError'
  | 'NodeNotReady'
  | 'Orphaned'
  | 'DiskResizing'
  | 'DiskResized'
  | 'DiskResizeFailed';

export interface InstanceReconcilerDeps {
  instances: ResourceClient<Instance>;
  instanceCache: Informer<Instance>;
  nodeCache: Informer<ComputeNode>;
  sshKeyCache: Informer<SSHKey>;
  networkCache: Informer<Network>;
  connections: NodeConnections;
  recorder: EventRecorder<InstanceEventReason>;
  /** Counts and times provider calls (absent: not measured). */
  providerMetrics?: ProviderMetrics;
  /** Steady-state drift check. Default 30 s. */
  pollIntervalMs?: number;
  /** Check interval while a machine is in transition. Default 1 s. */
  transitionPollMs?: number;
  /** Deadline of one provider call. Default 60 s. */
  callTimeoutMs?: number;
}

type Status = NonNullable<Instance['status']>;
type Event = InstanceEventReason;

const TRANSITIONAL: ReadonlySet<MachineState> = new Set(['pending', 'creating', 'starting', 'stopping', 'terminating']);

/** Reasons after which the node's connection is dropped, so the next use reconnects. */
const CONNECTION_FAILURES = new Set(['NodeUnreachable', 'TLSError']);

/** How often a running guest that does not answer SSH yet is checked again. */
const GUEST_POLL_MS = 10_000;

export class InstanceReconciler extends ManagedReconciler<Instance, MachineObservation, Event> {
  constructor(d: InstanceReconcilerDeps) {
    const transitionMs = d.transitionPollMs ?? 1000;
    super(new InstanceKind(d, d.pollIntervalMs ?? 30_000, transitionMs), {
      resource: d.instances,
      cache: d.instanceCache,
      recorder: d.recorder,
      pollIntervalMs: d.pollIntervalMs ?? 30_000,
      transitionPollMs: transitionMs,
      ...(d.callTimeoutMs !== undefined ? { callTimeoutMs: d.callTimeoutMs } : {}),
    });
  }
}

class InstanceKind implements ManagedKind<Instance, MachineObservation, Event> {
  readonly kind = 'instance';
  readonly finalizer = INSTANCE_FINALIZER;
  readonly failureEvent = 'ProviderError' as const;

  constructor(
    private readonly d: InstanceReconcilerDeps,
    private readonly pollMs: number,
    private readonly transitionMs: number,
  ) {}

  async connect(inst: Instance, _ctx: ReconcileContext, opts: { deleting: boolean }): Promise<Connected<Instance, MachineObservation, Event>> {
    const nodeName = inst.spec.nodeName;
    if (opts.deleting) {
      if (!nodeName) return { absent: true };
      const node = this.d.nodeCache.get(nodeName);
      if (!node) {
        this.d.recorder.warning(inst, 'Orphaned', `ComputeNode "${nodeName}" no longer exists; its machine (if any) is left behind`);
        return { absent: true };
      }
      return { client: await this.client(node, machineSpecFor(inst, this.lookups(), { lenient: true })) };
    }
    if (!nodeName) {
      return {
        wait: {
          conditions: [{ type: 'Ready', status: 'False', reason: 'Unscheduled', message: 'waiting for the scheduler to bind a ComputeNode' }],
          mutate: (s) => void (s.state = 'pending'),
        },
      };
    }
    const node = this.d.nodeCache.get(nodeName);
    if (!node) {
      const message = `ComputeNode "${nodeName}" does not exist`;
      return {
        wait: {
          conditions: [
            { type: 'Synced', status: 'False', reason: 'NodeNotFound', message },
            { type: 'Ready', status: 'False', reason: 'NodeNotFound', message },
          ],
          mutate: (s) => void (s.state = inst.status?.state ?? 'pending'),
        },
        requeueAfterMs: this.pollMs,
      };
    }
    const nodeReady = getCondition(node.status?.conditions, 'Ready');
    if (nodeReady?.status !== 'True') {
      const why = nodeReady ? `${nodeReady.reason}: ${nodeReady.message}` : 'no heartbeat yet';
      if (inst.status?.state && getCondition(inst.status.conditions, 'NodeReady')?.status !== 'False') {
        this.d.recorder.warning(inst, 'NodeNotReady', `ComputeNode "${nodeName}" is not ready (${why})`);
      }
      return {
        wait: { conditions: [{ type: 'NodeReady', status: 'False', reason: 'NodeNotReady', message: `ComputeNode "${nodeName}" is not ready: ${why}` }] },
        requeueAfterMs: this.pollMs,
      };
    }
    return { client: await this.client(node, machineSpecFor(inst, this.lookups())) };
  }

  deleting(inst: Instance): StatusReport<Instance> | undefined {
    return inst.status?.state === 'terminating' ? undefined : { conditions: [], mutate: (s) => void (s.state = 'terminating') };
  }

  failureStatus(inst: Instance, err: ReconcileError | undefined): ((s: Status) => void) | undefined {
    // A machine that never existed and cannot be made without a spec change shows its last state (or pending).
    if (err && !err.retryable && !inst.status?.providerID) return (s) => void (s.state = inst.status?.state ?? 'pending');
    return undefined;
  }

  async onFailure(inst: Instance, err: unknown): Promise<void> {
    if (err instanceof ReconcileError && CONNECTION_FAILURES.has(err.reason) && inst.spec.nodeName) await this.d.connections.forget(inst.spec.nodeName);
  }

  private async client(node: ComputeNode, spec: MachineSpec): Promise<MachineClient> {
    const provider = this.d.connections.providerOf(node);
    if (!provider.capabilities.machines) {
      throw new ReconcileError('MachinesNotSupported', `provider "${provider.name}" of ComputeNode "${node.metadata?.name}" does not run machines`, false);
    }
    const conn = await this.d.connections.get(node);
    return new MachineClient(this.d, node, provider, conn, conn.machines(), spec, this.pollMs, this.transitionMs);
  }

  private lookups(): Lookups {
    return {
      sshKey: (ns, name) => this.d.sshKeyCache.get(`${ns}/${name}`),
      network: (ns, name) => this.d.networkCache.get(`${ns}/${name}`),
    };
  }
}

const GiB = 1024 ** 3;

/**
 * Where a machine's data disks stand against `spec.disks`: the sizes the node reports and the
 * `DisksSized` condition (absent for an Instance without disks).
 */
interface DiskReport {
  sizes?: MachineDiskSize[];
  condition?: ConditionInput;
  /** A disk is growing or not on the node yet: check again soon. */
  pending?: boolean;
}

/** One machine on one node, as the lifecycle's `ExternalClient`. */
class MachineClient implements ExternalClient<Instance, MachineObservation, Event> {
  private readonly nodeName: string;
  private disks: DiskReport = {};

  constructor(
    private readonly d: InstanceReconcilerDeps,
    private readonly node: ComputeNode,
    private readonly provider: AnyProvider,
    private readonly conn: NodeConnection,
    private readonly machines: MachineProvider,
    private readonly spec: MachineSpec,
    private readonly pollMs: number,
    private readonly transitionMs: number,
  ) {
    this.nodeName = node.metadata?.name ?? '';
  }

  async observe(inst: Instance, call: CallContext<Event>): Promise<MachineObservation> {
    const o = await this.track('observe', () => this.machines.observe(this.spec, call.signal));
    // What the provider saw happen (a guest that shut itself down) becomes an Event, once.
    if (o.change) record(inst, o.change, call);
    const resize = this.provider.capabilities.diskResize;
    if (o.exists && resize && this.spec.disks.length > 0) this.disks = { sizes: await this.track('diskSizes', () => resize.sizes(this.conn, this.spec, call.signal)) };
    return o;
  }

  async create(inst: Instance, _observed: MachineObservation, call: CallContext<Event>): Promise<void> {
    const wasThere = Boolean(inst.status?.providerID);
    await this.track('create', () => this.machines.create(this.spec, call.signal));
    if (wasThere) call.recorder.warning(inst, 'Recreated', `the machine disappeared from "${this.nodeName}"; recreated it`);
    else call.recorder.normal(inst, 'Created', `created on ComputeNode "${this.nodeName}"`);
    call.log.info({ node: this.nodeName, recreated: wasThere }, 'machine created');
  }

  async update(inst: Instance, observed: MachineObservation, call: CallContext<Event>): Promise<void> {
    const change = await this.track('update', () => this.machines.update(this.spec, observed, call.signal));
    if (change) return record(inst, change, call);
    const want = this.spec.powerState;
    const reason = want === 'Stopped' && observed.state !== 'stopped' ? 'Stopping' : want === 'Running' && observed.state !== 'running' ? 'Starting' : 'Updated';
    // A graceful shutdown takes several passes: one Stopping event, not one per pass.
    if (reason === 'Stopping' && observed.state === 'stopping') return;
    call.recorder.normal(inst, reason, `${reason.toLowerCase()} the machine on "${this.nodeName}" (was ${observed.state})`);
  }

  async delete(inst: Instance, call: CallContext<Event>): Promise<void> {
    const change = await this.track('delete', () => this.machines.delete(this.spec, call.signal));
    if (change) record(inst, change, call);
  }

  /**
   * Grows data disks that are smaller than `spec.disks` asks (the API server refuses a smaller
   * size, so a disk bigger than asked is only reported). A failed resize is the `DisksSized`
   * condition and a warning Event, not a failed reconcile: the machine itself is fine.
   */
  private async resizeDisks(inst: Instance, observed: MachineObservation, call: CallContext<Event>): Promise<void> {
    if (!observed.exists || this.spec.disks.length === 0) return;
    const resize = this.provider.capabilities.diskResize;
    if (!resize) {
      const asked = this.spec.disks.map((d) => `${d.name} ${d.sizeGiB} GiB`).join(', ');
      this.disks = { condition: { type: 'DisksSized', status: 'False', reason: 'ResizeUnsupported', message: `provider "${this.provider.name}" has no disks to size: spec.disks (${asked}) is not applied` } };
      return;
    }
    const sizes = [...(this.disks.sizes ?? [])];
    const problems: string[] = [];
    for (const want of this.spec.disks) {
      const i = sizes.findIndex((s) => s.name === want.name);
      const have = sizes[i];
      const bytes = want.sizeGiB * GiB;
      if (!have) {
        problems.push(`disk ${want.name} is not on the node yet`);
        continue;
      }
      if (have.bytes > bytes) {
        this.disks = { sizes, condition: { type: 'DisksSized', status: 'False', reason: 'ShrinkRefused', message: `disk ${want.name} is ${gib(have.bytes)} GiB; it is never shrunk to ${want.sizeGiB} GiB (data would be lost)` } };
        return;
      }
      if (have.bytes === bytes) continue;
      try {
        const how = await this.track('growDisk', () => resize.grow(this.conn, this.spec, want.name, bytes, call.signal));
        const online = how.online ? ' while the machine runs (the guest sees the new size; grow its filesystem to use it)' : '';
        if (how.state === 'done') {
          call.recorder.normal(inst, 'DiskResized', `grew disk ${want.name} from ${gib(have.bytes)} to ${want.sizeGiB} GiB${online}`);
          sizes[i] = { name: want.name, bytes };
        } else {
          if (how.state === 'started') call.recorder.normal(inst, 'DiskResizing', `growing disk ${want.name} from ${gib(have.bytes)} to ${want.sizeGiB} GiB${online}`);
          problems.push(`disk ${want.name} is growing from ${gib(have.bytes)} to ${want.sizeGiB} GiB`);
        }
        call.log.info({ node: this.nodeName, disk: want.name, bytes, online: how.online, state: how.state }, 'disk grow');
      } catch (err) {
        if (!(err instanceof ReconcileError)) throw err;
        call.recorder.warning(inst, 'DiskResizeFailed', `cannot grow disk ${want.name} to ${want.sizeGiB} GiB: ${err.message}`);
        // Retryable (a node that did not answer): the lifecycle's backoff tries again.
        if (err.retryable) throw err;
        this.disks = { sizes, condition: { type: 'DisksSized', status: 'False', reason: err.reason, message: err.message } };
        return;
      }
    }
    this.disks = problems.length
      ? { sizes, condition: { type: 'DisksSized', status: 'False', reason: 'Resizing', message: problems.join('; ') }, pending: true }
      : { sizes, condition: { type: 'DisksSized', status: 'True', reason: 'AsRequested', message: '' } };
  }

  /** Grows disks, and joins the machine to its Networks when the provider cannot do it itself (containers). */
  async settle(inst: Instance, observed: MachineObservation, call: CallContext<Event>): Promise<void> {
    await this.resizeDisks(inst, observed, call);
    const attachment = this.provider.capabilities.networkAttachment;
    const settings = this.d.connections.providers.switchSettingsOf(this.node.spec);
    const switches = this.d.connections.providers.switches;
    if (!attachment || !settings || !switches || this.spec.networks.length === 0) return;
    await attachment.attach(switches.connect(settings), settings, this.spec, observed, call.signal);
  }

  async deleted(inst: Instance, call: CallContext<Event>): Promise<void> {
    const attachment = this.provider.capabilities.networkAttachment;
    const settings = this.d.connections.providers.switchSettingsOf(this.node.spec);
    const switches = this.d.connections.providers.switches;
    if (attachment && settings && switches && this.spec.networks.length > 0) await attachment.detach(switches.connect(settings), this.spec.uid, call.signal);
    call.recorder.normal(inst, 'Deleted', `deleted the machine from "${this.nodeName}"`);
    call.log.info({ node: this.nodeName }, 'machine deleted');
  }

  report(_inst: Instance, o: MachineObservation): StatusReport<Instance> & { requeueAfterMs?: number } {
    const nodeReady: ConditionInput = { type: 'NodeReady', status: 'True', reason: 'NodeReady', message: '' };
    if (!o.exists) {
      return {
        conditions: [{ type: 'Ready', status: 'False', reason: 'Creating', message: 'creating the machine' }, nodeReady],
        mutate: (s) => void (s.state = 'creating'),
        requeueAfterMs: this.transitionMs,
      };
    }
    const running = o.state === 'running';
    const readyReason = running ? 'Running' : o.state.charAt(0).toUpperCase() + o.state.slice(1);
    const nodeName = this.nodeName;
    return {
      conditions: [
        { type: 'Ready', status: running ? 'True' : 'False', reason: readyReason, message: o.message ?? '' },
        nodeReady,
        // Only providers that check the guest (libvirt: its sshd answers) report GuestReady.
        ...(o.guestReady === undefined
          ? []
          : [{ type: 'GuestReady', status: o.guestReady ? ('True' as const) : ('False' as const), reason: o.guestReady ? 'GuestAnswers' : running ? 'GuestNotAnswering' : readyReason, message: o.guestMessage ?? '' }]),
        ...(this.disks.condition ? [this.disks.condition] : []),
      ],
      mutate: (s: Status) => {
        Object.assign(s, {
          state: o.state,
          nodeName,
          addresses: o.addresses,
          ...(o.ipAddress ? { ipAddress: o.ipAddress } : {}),
          ...(o.providerID ? { providerID: o.providerID } : {}),
          ...(o.message ? { message: o.message } : {}),
        });
        if (!o.ipAddress) delete s.ipAddress;
        if (!o.message) delete s.message;
        if (this.disks.sizes) s.disks = this.disks.sizes.map((d) => ({ name: d.name, sizeGiB: gib(d.bytes) }));
        if (running && !s.startTime) s.startTime = kubeTime();
        if (!running) delete s.startTime;
      },
      // A booting guest is checked every few seconds until it answers — not on the 1 s
      // transition interval, since a guest without sshd (a blank or installing DataCentred
      // host) never will, and polling it every second forever is a reconcile per second.
      requeueAfterMs:
        TRANSITIONAL.has(o.state) || !o.upToDate || this.disks.pending ? this.transitionMs : running && o.guestReady === false ? Math.min(this.pollMs, GUEST_POLL_MS) : this.pollMs,
    };
  }

  private track<X>(operation: string, fn: () => Promise<X>): Promise<X> {
    const m = this.d.providerMetrics;
    return m && this.provider.capabilities.metrics ? m.track(this.provider.name, operation, fn) : fn();
  }
}

/** Bytes as GiB for status and messages (whole GiB as asked; a fraction when the node rounds). */
function gib(bytes: number): number {
  return Math.round((bytes / GiB) * 1000) / 1000;
}

/** An Event for something the provider did or saw (a clean or a forced shutdown). */
function record(inst: Instance, change: MachineChange, call: CallContext<Event>): void {
  const reason: Event = change.reason === 'ShutDown' || change.reason === 'ForcedOff' ? change.reason : 'Updated';
  if (change.warning) call.recorder.warning(inst, reason, change.message);
  else call.recorder.normal(inst, reason, change.message);
}
