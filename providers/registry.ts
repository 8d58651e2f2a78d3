/**
 * The provider contract: what a provider folder exports (one `ProviderDescriptor`) and the
 * `ProviderRegistry` every consumer looks providers up in — the controllers, the scheduler,
 * the connection pool, the legacy proxy and the CLI never name a provider themselves.
 *
 * A descriptor says:
 * - `name`: the value of `ComputeNode.spec.provider` / `Instance.spec.provider`;
 * - `nodeSettings`: the node's `spec.<name>` section as typed settings (read once per
 *   connection, a `ReconcileError('InvalidSpec')` when absent or wrong);
 * - `connect`: a `NodeConnection` from those settings (Secrets read through `secrets`);
 * - `capabilities`: what else the provider offers (see `ProviderCapabilities`).
 *
 * Adding a provider: a folder `providers/<name>/` whose `provider.ts` exports the descriptor,
 * and one line in `providers/index.ts` (see providers/README.md).
 */
import type { ComputeNodeSpec } from '../crds/types.js';
import { ReconcileError } from '../runtime/errors.js';
import type { GuestChannel } from './guest/channel.js';
import type { MachineObservation, MachineSpec, NodeConnection } from './machine.js';
import type { OvsSwitch } from './ovs/switch.js';

/** Reads a Secret's data as UTF-8 strings; throws a clear error when it does not exist. */
export type SecretReader = (namespace: string, name: string) => Promise<Record<string, string>>;

/** Where a node's Open vSwitch is (`ComputeNode.spec.ovs`), as the switch provider reads it. */
export interface SwitchSettings {
  database: string;
  /** Namespace ovs-vswitchd runs in, when not ours (tests). */
  netns?: string;
}

/** The Network a node-side capability is asked to realise. */
export interface NodeNetworkSpec {
  /** The Network object's name (names the node-side object). */
  name: string;
  bridge: string;
  vlans: number[];
}

/**
 * Node-side plumbing a Network needs beside the switch's bridge (libvirt: a libvirt network
 * on the bridge whose portgroups VM interfaces use). Idempotent; `remove` of an absent one
 * is success.
 */
export interface NodeNetworks<C extends NodeConnection = NodeConnection> {
  /** Its node-side name (reported in `Network.status`) and whether it exists as `net` asks. */
  observe(conn: C, net: NodeNetworkSpec, signal: AbortSignal): Promise<{ name: string; upToDate: boolean }>;
  /** Ensures it; returns the node-side name. */
  ensure(conn: C, net: NodeNetworkSpec, signal: AbortSignal): Promise<string>;
  remove(conn: C, networkName: string, signal: AbortSignal): Promise<void>;
}

/**
 * Joining a running machine to the VLANs of its Networks on the node's switch, for
 * machines the switch does not plug in itself (containers: a veth pair per Network).
 * Re-run after every observe, so a restarted machine or a retagged Network is repaired.
 */
export interface NetworkAttachment {
  attach(sw: OvsSwitch, switchSettings: SwitchSettings, spec: MachineSpec, observed: MachineObservation, signal: AbortSignal): Promise<void>;
  /** Removes every port made for machine `uid` (after the machine is gone). */
  detach(sw: OvsSwitch, uid: string, signal: AbortSignal): Promise<void>;
}

/** A guest to run release commands in, without SSH (containers: Docker exec). */
export interface GuestChannelFactory<C extends NodeConnection = NodeConnection> {
  open(conn: C, guest: { name: string; uid: string }): GuestChannel;
}

/**
 * How much CPU a machine has used, for the InstanceGroup autoscaler: cumulative CPU seconds
 * since the machine started (libvirt's domain `cpu.time`, Docker's container
 * `cpu_usage.total_usage`, a GCE VM's `cpu/usage_time`). The caller takes the rate between
 * two samples; a restarted machine's counter going back is its business.
 */
export interface MachineCpuUsage<C extends NodeConnection = NodeConnection> {
  /** CPU seconds used by machine `uid`, or undefined when it is not running (or unknown). */
  cpuSeconds(conn: C, uid: string, signal: AbortSignal): Promise<number | undefined>;
}

/** One data disk of a machine as the node has it. */
export interface MachineDiskSize {
  /** The disk's name in `MachineSpec.disks`. */
  name: string;
  /** Its capacity as the node reports it (the size the guest sees once it rescans). */
  bytes: number;
}

export interface DiskGrowth {
  online: boolean;
  state: 'done' | 'started' | 'underway';
}

/**
 * Growing a machine's data disks in place (libvirt `virDomainBlockResize` on a running domain,
 * `virStorageVolResize` on a stopped one; GCE `disks.resize`). Disks only grow: a disk is
 * never shrunk, since the filesystem on it would lose what lies past the new end —
 * `grow` to a smaller size is a `ReconcileError('DiskShrinkRefused')` and the API server
 * refuses a smaller `spec.disks[].sizeGiB` before it reaches a controller.
 */
export interface MachineDiskResize<C extends NodeConnection = NodeConnection> {
  /** The data disks of `spec` that exist on the node, with their sizes (a disk not made yet is absent). */
  sizes(conn: C, spec: MachineSpec, signal: AbortSignal): Promise<MachineDiskSize[]>;
  /**
   * Grows disk `name` of `spec` to `bytes` (idempotent: a disk already that big is left alone),
   * online when the machine runs. Must not block on a long operation: `state` says whether the
   * disk has its size now (`done`), this call started the resize (`started`) or an earlier
   * call's resize is still under way (`underway`); `sizes` shows the new size once it is done.
   * `online`: the machine runs, and its guest sees the new size without a restart.
   */
  grow(conn: C, spec: MachineSpec, name: string, bytes: number, signal: AbortSignal): Promise<DiskGrowth>;
}

/** An ElasticIP's address routed to one machine. */
export interface ElasticIPBinding {
  /** The ElasticIP's uid: names everything made for it. */
  uid: string;
  address: string;
  machine: {
    /** The machine's uid (its Instance's) and name. */
    uid: string;
    name: string;
    /** Its private address, where the node translates to one (libvirt, Docker). */
    privateAddress?: string;
  };
}

/** What a node carries for one ElasticIP. */
export interface ElasticIPObservation {
  /** Something is programmed for the uid here (rules, an address, an access config). */
  present: boolean;
  /** It is exactly the binding asked for (false when nothing was asked and something is there). */
  upToDate: boolean;
  /** What it routes to now, for messages (a private address, a machine). */
  target?: string;
}

/**
 * Carrying ElasticIPs on a node. Nodes that report the same `location` share their bindings
 * (two ComputeNodes on one host NAT in one table), so the controller unbinds an address only
 * in the other locations. Every method is idempotent; `unbind` of nothing is success.
 */
export interface ElasticIPCarrier<C extends NodeConnection = NodeConnection> {
  /** Where this node's bindings live, or why it cannot carry ElasticIPs (no settings). */
  locate(spec: ComputeNodeSpec): { location: string } | { unavailable: string };
  observe(conn: C, spec: ComputeNodeSpec, uid: string, want: ElasticIPBinding | undefined, signal: AbortSignal): Promise<ElasticIPObservation>;
  /** Makes `binding` the only thing programmed for its uid here (replacing a previous target). */
  bind(conn: C, spec: ComputeNodeSpec, binding: ElasticIPBinding, signal: AbortSignal): Promise<void>;
  unbind(conn: C, spec: ComputeNodeSpec, uid: string, signal: AbortSignal): Promise<void>;
  /**
   * A cloud's own address for `uid` (GCE: a static address), reserved when missing: the
   * ElasticIP's address then comes from here, not from an AddressPool.
   */
  reserve?(conn: C, spec: ComputeNodeSpec, uid: string, signal: AbortSignal): Promise<string>;
  /** The cloud address already reserved for `uid`, if any (never reserves). */
  reserved?(conn: C, spec: ComputeNodeSpec, uid: string, signal: AbortSignal): Promise<string | undefined>;
  /** Gives the address back to the system it came from, when it has one (a cloud's static address). */
  release?(conn: C, spec: ComputeNodeSpec, uid: string, signal: AbortSignal): Promise<void>;
}

export interface ProviderCapabilities<C extends NodeConnection = NodeConnection> {
  /** `connection.machines()` runs Instances of `spec.provider: <name>`. */
  machines: boolean;
  networks?: NodeNetworks<C>;
  networkAttachment?: NetworkAttachment;
  /** Public addresses carried to machines (ElasticIP): NAT on the host (libvirt, Docker), a static address as an access config (GCE). */
  elasticIPs?: ElasticIPCarrier<C>;
  guestChannel?: GuestChannelFactory<C>;
  /** Data disks of an existing machine grow in place (`spec.disks[].sizeGiB` raised). */
  diskResize?: MachineDiskResize<C>;
  /** Calls through `machines()` are counted in the provider metrics (`providers/metrics.ts`). */
  metrics: boolean;
  /** CPU use of running machines (the InstanceGroup autoscaler's input). */
  cpuUsage?: MachineCpuUsage<C>;
  /** A ComputeNode spec that works on any machine (`stratus serve --sim-node`). */
  simulatedNode?: (dataDir: string) => ComputeNodeSpec;
}

export type CapabilityName = keyof ProviderCapabilities;

export interface ProviderDescriptor<Settings = unknown, C extends NodeConnection = NodeConnection> {
  readonly name: string;
  /** One line for humans (`stratus` help, the legacy proxy's errors). */
  readonly description: string;
  /** The node's `spec.<name>` section, typed and checked; throws `ReconcileError('InvalidSpec')`. */
  nodeSettings(spec: ComputeNodeSpec): Settings;
  connect(settings: Settings, secrets: SecretReader): Promise<C>;
  /** Releases what outlives single connections (libvirt's shared sessions); called once at exit. */
  shutdown?(): Promise<void>;
  readonly capabilities: ProviderCapabilities<C>;
}

/**
 * A descriptor with its types erased, as the registry holds it. Every member taking the
 * settings or the connection is a method (bivariant), so any descriptor fits; the registry
 * only ever hands a capability the connection its own `connect` made.
 */
export type AnyProvider = ProviderDescriptor<unknown, NodeConnection>;

/** A switch provider (Open vSwitch): carries Networks as VLANs on a node's bridge. */
export interface SwitchProviderDescriptor {
  readonly name: string;
  /** The node's switch settings, or undefined when the node has no switch. */
  switchSettings(spec: ComputeNodeSpec): SwitchSettings | undefined;
  /** The shared session to the switch at `settings` (opened on first use). */
  connect(settings: SwitchSettings): OvsSwitch;
  /** Drops a failed session so the next `connect` reconnects. */
  forget(settings: SwitchSettings): Promise<void>;
  closeAll(): Promise<void>;
}

export class ProviderRegistry {
  private readonly byName = new Map<string, AnyProvider>();
  private switchProvider: SwitchProviderDescriptor | undefined;

  /** Adds a provider; a second one of the same name is a programming error. */
  register(p: AnyProvider): this {
    if (this.byName.has(p.name)) throw new Error(`provider "${p.name}" is registered twice`);
    this.byName.set(p.name, p);
    return this;
  }

  registerSwitch(s: SwitchProviderDescriptor): this {
    if (this.switchProvider) throw new Error(`a switch provider ("${this.switchProvider.name}") is already registered`);
    this.switchProvider = s;
    return this;
  }

  /** The provider named `name`, or a `ReconcileError('ProviderNotAvailable')` naming the ones there are. */
  get(name: string): AnyProvider {
    const p = this.byName.get(name);
    if (!p) {
      throw new ReconcileError('ProviderNotAvailable', `no provider "${name}" is available in this controller (available: ${this.names().join(', ') || 'none'})`, false);
    }
    return p;
  }

  find(name: string): AnyProvider | undefined {
    return this.byName.get(name);
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  /** Providers offering `capability` (e.g. `machines` for the legacy proxy's provider list). */
  withCapability(capability: CapabilityName): AnyProvider[] {
    return [...this.byName.values()].filter((p) => Boolean(p.capabilities[capability]));
  }

  /** Every provider's `shutdown` and the switch sessions (after the controllers stopped). */
  async shutdown(): Promise<void> {
    for (const p of this.byName.values()) await p.shutdown?.();
    await this.switchProvider?.closeAll();
  }

  /** The switch provider; undefined in a build without one. */
  get switches(): SwitchProviderDescriptor | undefined {
    return this.switchProvider;
  }

  /** The node's switch settings, or undefined when it has none (or no switch provider exists). */
  switchSettingsOf(spec: ComputeNodeSpec): SwitchSettings | undefined {
    return this.switchProvider?.switchSettings(spec);
  }
}

/** The `InvalidSpec` failure of a node without its provider's section. */
export function missingSection(provider: string): ReconcileError {
  return new ReconcileError('InvalidSpec', `spec.${provider} is required when spec.provider is ${provider}`, false);
}
