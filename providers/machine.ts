/**
 * The provider-neutral contract between the Instance controller and the systems that run
 * machines (libvirt domains, Docker containers, GCE VMs). Modelled on crossplane-runtime's
 * ExternalClient: every method is idempotent, keyed by the owning object's uid, and knows
 * nothing of Kubernetes objects — the controller translates an Instance into a
 * `MachineSpec` (resolving SSH keys, networks and secrets) before calling in.
 */

/** `Instance.status.state` values, a summary for humans and legacy clients. */
export type MachineState =
  | 'pending'
  | 'creating'
  | 'starting'
  | 'running'
  | 'stopping'
  | 'stopped'
  | 'terminating'
  | 'failed';

export type PowerState = 'Running' | 'Stopped';

export interface MachineDisk {
  /** DNS-1123 label, unique within the machine. */
  name: string;
  sizeGiB: number;
}

export interface MachinePort {
  containerPort: number;
  hostPort?: number;
  protocol: 'TCP' | 'UDP';
  /** Host address a published port binds on (provider default when unset). */
  hostIP?: string;
}

export interface MachineNetwork {
  /** The Network object's name. */
  name: string;
  /** The Network object's uid: ports made for it carry it, so a VLAN change finds them. */
  uid?: string;
  /** Where the network lives on the node. */
  bridge: string;
  vlan: number;
  /** A static address in CIDR form (e.g. `10.20.0.5/24`), when the Network assigns one. */
  address?: string;
  gateway?: string;
  mac?: string;
  /**
   * The bridge runs on Open vSwitch's userspace (netdev) datapath, which forwards frames as
   * they are and cannot complete checksums a sender left to offload: VM interfaces on it
   * must compute full checksums themselves.
   */
  userspaceDatapath?: boolean;
}

export interface MachineSpec {
  /** The owning object's `metadata.uid`: names the external resource, makes create idempotent. */
  uid: string;
  /** `namespace/name` of the owning object, for labels and human-facing names. */
  namespace: string;
  name: string;
  /** Hostname inside the guest (DNS-1123 label). */
  hostname: string;
  image?: string;
  cpus: number;
  memoryMiB: number;
  disks: MachineDisk[];
  networks: MachineNetwork[];
  /** Public keys in OpenSSH format, already resolved from SSHKey objects. */
  sshAuthorizedKeys: string[];
  userData?: string;
  env: Record<string, string>;
  command?: string[];
  ports: MachinePort[];
  labels: Record<string, string>;
  powerState: PowerState;
  /** Provider-specific settings (`Instance.spec.libvirt` / `.docker` / `.gce`), validated by the CRD. */
  providerSpec: Record<string, unknown>;
}

export interface MachineAddress {
  type: 'InternalIP' | 'ExternalIP' | 'Hostname';
  address: string;
}

export interface MachineObservation {
  /** False when no external resource carries this uid. */
  exists: boolean;
  state: MachineState;
  /** The provider's own id for the resource (domain UUID, container id, GCE instance id). */
  providerID?: string;
  /** The primary address legacy clients see as `ip_address`. */
  ipAddress?: string;
  addresses: MachineAddress[];
  /** False when the external resource differs from the spec in a way `update` can repair. */
  upToDate: boolean;
  /** Human-readable detail (e.g. why the machine failed). */
  message?: string;
  /** Provider-reported process id, where a local process backs the machine (qemu, container init). */
  pid?: number;
  /**
   * Whether the guest OS answers (a VM's sshd sends its banner on `ipAddress`); undefined when
   * the provider does not check (containers, GCE). Only meaningful while `state` is running.
   */
  guestReady?: boolean;
  /** Why the guest is (not) ready, for the GuestReady condition. */
  guestMessage?: string;
  /** Something the provider saw happen since it was last asked (a guest that shut itself down); reported once. */
  change?: MachineChange;
}

/**
 * Something an `update` or `delete` call did that users should hear about (an Event), e.g. a
 * clean or a forced shutdown. `reason` is a CamelCase Event reason.
 */
export interface MachineChange {
  reason: string;
  message: string;
  warning?: boolean;
}

/**
 * What a provider can do to machines on one ComputeNode. Every call must be idempotent and
 * must not block on long operations: start the work and return; the controller polls
 * `observe` until the state settles. `signal` fires at the call's deadline or when the
 * controller stops: stop waiting and reject (the lifecycle stops waiting at that moment in
 * any case, so a call that ignores it only wastes work).
 */
export interface MachineProvider {
  observe(spec: MachineSpec, signal?: AbortSignal): Promise<MachineObservation>;
  /** Creates the external resource for `spec.uid` (a no-op if one already exists). */
  create(spec: MachineSpec, signal?: AbortSignal): Promise<void>;
  /** Moves an existing resource towards the spec (power state, repairable drift). */
  update(spec: MachineSpec, observed: MachineObservation, signal?: AbortSignal): Promise<MachineChange | void>;
  /**
   * Removes the resource and everything created for it (disks, seed images); absent is
   * success. May take several calls (a guest asked to shut down first): the caller observes
   * after each call and calls again while the resource exists.
   */
  delete(spec: MachineSpec, signal?: AbortSignal): Promise<MachineChange | void>;
  /** uids of every machine on the node that this provider created (for orphan detection). */
  listOwned(signal?: AbortSignal): Promise<string[]>;
}

export interface NodeCapacity {
  cpus: number;
  memoryMiB: number;
}

export interface NodeDescription {
  capacity: NodeCapacity;
  /** e.g. `libvirt 9.0.0 / QEMU 7.2.0`, `Docker 20.10.24`, `GCE us-central1-a`. */
  version: string;
  /** Machines on the node this provider manages (whatever their state). */
  machineCount: number;
  /**
   * Names of every machine on the node, stratus's or not (libvirt: every defined domain), when
   * the provider can list them: what exists on the hypervisor as of this description.
   */
  machineNames?: string[];
}

/** A connection to one ComputeNode's backing system. */
export interface NodeConnection {
  /** Reaches the node and reports what it has; throws with a clear message when unreachable. */
  describe(): Promise<NodeDescription>;
  machines(): MachineProvider;
  close(): Promise<void>;
}
