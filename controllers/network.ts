/**
 * NetworkReconciler: a Network is a VLAN on an Open vSwitch bridge of every ComputeNode
 * that has a switch (`spec.ovs`), or of `spec.nodeName` alone — on the managed-resource
 * lifecycle (`runtime/managed.ts`).
 *
 * Its external resource, observed on every node: the bridge (owned by the first Network
 * that made it), the ports made for this Network (container ports carry the Network's uid)
 * and their VLAN tags, and the node-side network of providers with the `networks`
 * capability (libvirt: a libvirt network on the bridge with a `vlan-N` portgroup that VM
 * interfaces use). A missing bridge is created, a wrong tag or node-side network repaired
 * (`Retagged` when ports moved). `status.ports` lists the ports found. The poll re-observes,
 * so an ovsdb-server restarted empty is re-populated on the next pass.
 *
 * Deletion (finalizer): ports made for the Network are removed, the node-side networks
 * removed, and the bridge removed if this Network created it and nothing else uses it.
 */
import type { ComputeNode, Instance, Network } from '../crds/types.js';
import type { ResourceClient } from '../runtime/client.js';
import type { Informer } from '../runtime/informer.js';
import { ManagedReconciler, type CallContext, type Connected, type ExternalClient, type ExternalObservation, type ManagedKind, type StatusReport } from '../runtime/managed.js';
import { getCondition } from '../runtime/conditions.js';
import type { EventRecorder } from '../runtime/events.js';
import { ReconcileError } from '../runtime/errors.js';
import type { OvsSwitch } from '../providers/ovs/switch.js';
import type { NodeNetworkSpec, SwitchSettings } from '../providers/registry.js';
import type { NodeConnections } from './connections.js';

export const NETWORK_FINALIZER = 'compute.stratus.dev/network';

export type NetworkEventReason = 'Provisioned' | 'Retagged' | 'ProviderError' | 'Removed';
type Event = NetworkEventReason;

export interface NetworkReconcilerDeps {
  networks: ResourceClient<Network>;
  networkCache: Informer<Network>;
  nodeCache: Informer<ComputeNode>;
  instanceCache: Informer<Instance>;
  connections: NodeConnections;
  recorder: EventRecorder<NetworkEventReason>;
  /** Re-check interval (drift, ovsdb restarts). Default 30 s. */
  pollIntervalMs?: number;
  /** Deadline of one pass over a switch. Default 60 s. */
  callTimeoutMs?: number;
}

type Status = NonNullable<Network['status']>;
type Port = NonNullable<Status['ports']>[number];

export interface NetworkObservation extends ExternalObservation {
  ports: Port[];
  nodes: string[];
  /** The node-side network's name where a provider makes one (libvirt). */
  nodeNetwork?: string;
}

/** A node carrying the Network: its switch and settings. */
interface Target {
  node: ComputeNode;
  name: string;
  settings: SwitchSettings;
}

export class NetworkReconciler extends ManagedReconciler<Network, NetworkObservation, Event> {
  constructor(d: NetworkReconcilerDeps) {
    super(new NetworkKind(d), {
      resource: d.networks,
      cache: d.networkCache,
      recorder: d.recorder,
      pollIntervalMs: d.pollIntervalMs ?? 30_000,
      ...(d.callTimeoutMs !== undefined ? { callTimeoutMs: d.callTimeoutMs } : {}),
    });
  }
}

class NetworkKind implements ManagedKind<Network, NetworkObservation, Event> {
  readonly kind = 'network';
  readonly finalizer = NETWORK_FINALIZER;
  readonly failureEvent = 'ProviderError' as const;

  constructor(private readonly d: NetworkReconcilerDeps) {}

  async connect(net: Network, _ctx: unknown, opts: { deleting: boolean }): Promise<Connected<Network, NetworkObservation, Event>> {
    let targets: Target[];
    try {
      targets = this.targets(net);
    } catch (err) {
      // A Network whose node or switch is gone has nothing left to remove.
      if (opts.deleting) return { absent: true };
      throw err;
    }
    return { client: new SwitchedNetwork(this.d, targets, opts.deleting, this.d.pollIntervalMs ?? 30_000) };
  }

  /** The nodes that carry this Network; a named node without a switch is an error. */
  private targets(net: Network): Target[] {
    const providers = this.d.connections.providers;
    if (net.spec.nodeName) {
      const node = this.d.nodeCache.get(net.spec.nodeName);
      if (!node) throw new ReconcileError('NodeNotFound', `ComputeNode "${net.spec.nodeName}" does not exist`);
      const settings = providers.switchSettingsOf(node.spec);
      if (!settings) throw new ReconcileError('NoSwitch', `ComputeNode "${net.spec.nodeName}" has no spec.ovs (no Open vSwitch to carry the Network)`, false);
      return [{ node, name: net.spec.nodeName, settings }];
    }
    const out: Target[] = [];
    for (const node of this.d.nodeCache.list()) {
      const settings = providers.switchSettingsOf(node.spec);
      if (settings && !node.metadata?.deletionTimestamp) out.push({ node, name: node.metadata?.name ?? '', settings });
    }
    return out;
  }
}

/** The Network on the switches of its nodes, as the lifecycle's `ExternalClient`. */
class SwitchedNetwork implements ExternalClient<Network, NetworkObservation, Event> {
  constructor(
    private readonly d: NetworkReconcilerDeps,
    private readonly targets: Target[],
    private readonly deleting: boolean,
    private readonly pollMs: number,
  ) {}

  async observe(net: Network, call: CallContext<Event>): Promise<NetworkObservation> {
    const uid = net.metadata?.uid ?? '';
    const ownerByUid = new Map(this.d.instanceCache.list().map((i) => [i.metadata?.uid ?? '', i.metadata?.name ?? '']));
    // While deleting, "exists" means: a port made for the Network is left somewhere.
    const out: NetworkObservation = { exists: !this.deleting, upToDate: true, ports: [], nodes: [] };
    for (const t of this.targets) {
      await this.onNode(t, async (sw) => {
        const ports = await sw.listNetworkPorts(uid);
        if (this.deleting) {
          // The bridge may stay (shared, or not ours): gone means no port made for it is left.
          if (ports.length > 0) out.exists = true;
          return;
        }
        const bridge = await sw.observeBridge(bridgeOf(net));
        if (!bridge) out.exists = false;
        // `ensureBridge` keeps a stratus bridge at the datapath asked for and leaves an administrator's as it is.
        else if (bridge.ownerUid !== undefined && bridge.datapathType !== (net.spec.datapathType ?? 'system')) out.upToDate = false;
        for (const p of ports) {
          if (p.tag !== net.spec.vlan) out.upToDate = false;
          const instance = p.ownerUid ? ownerByUid.get(p.ownerUid) : undefined;
          out.ports.push({ name: p.name, node: t.name, ...(instance ? { instance } : {}), ...(p.tag !== undefined ? { tag: p.tag } : {}) });
        }
        const networks = this.nodeNetworks(t);
        if (networks) {
          const conn = await this.d.connections.get(t.node);
          const seen = await networks.observe(conn, nodeNetworkSpec(net), call.signal);
          out.nodeNetwork = seen.name;
          if (!seen.upToDate) out.upToDate = false;
        }
        out.nodes.push(t.name);
      });
    }
    return out;
  }

  create(net: Network, _observed: NetworkObservation, call: CallContext<Event>): Promise<void> {
    return this.ensure(net, call);
  }

  update(net: Network, _observed: NetworkObservation, call: CallContext<Event>): Promise<void> {
    return this.ensure(net, call);
  }

  async delete(net: Network, call: CallContext<Event>): Promise<void> {
    const uid = net.metadata?.uid ?? '';
    for (const t of this.targets) {
      await this.onNode(t, async (sw) => {
        for (const p of await sw.listNetworkPorts(uid)) await sw.removePort(p.name);
        const networks = this.nodeNetworks(t);
        if (networks) await networks.remove(await this.d.connections.get(t.node), net.metadata?.name ?? '', call.signal);
        // 'in-use' (other Networks' ports) and 'not-owned' (someone else's bridge) both mean: leave it.
        await sw.removeBridge(bridgeOf(net), { ownerUid: uid });
      });
    }
  }

  async deleted(net: Network, call: CallContext<Event>): Promise<void> {
    call.recorder.normal(net, 'Removed', `removed from ${this.targets.length} node(s)`);
  }

  async settle(net: Network, observed: NetworkObservation, call: CallContext<Event>): Promise<void> {
    if (getCondition(net.status?.conditions, 'Ready')?.status !== 'True') {
      call.recorder.normal(net, 'Provisioned', `VLAN ${net.spec.vlan} on bridge ${bridgeOf(net)} of ${observed.nodes.length} node(s)`);
    }
  }

  report(net: Network, o: NetworkObservation): StatusReport<Network> & { requeueAfterMs?: number } {
    const some = o.nodes.length > 0;
    return {
      conditions: [
        {
          type: 'Ready',
          status: some ? 'True' : 'False',
          reason: some ? 'Provisioned' : 'NoNodes',
          message: some ? `VLAN ${net.spec.vlan} on ${bridgeOf(net)}` : 'no ComputeNode has an Open vSwitch (spec.ovs)',
        },
      ],
      mutate: (s: Status) => {
        s.ports = o.ports;
        s.nodes = o.nodes;
        if (o.nodeNetwork) s.libvirtNetwork = o.nodeNetwork;
      },
      // Ensured and re-observed: the next look is the drift check.
      requeueAfterMs: this.pollMs,
    };
  }

  private async ensure(net: Network, call: CallContext<Event>): Promise<void> {
    const uid = net.metadata?.uid ?? '';
    for (const t of this.targets) {
      await this.onNode(t, async (sw) => {
        await sw.ensureBridge({ name: bridgeOf(net), datapathType: net.spec.datapathType ?? 'system', ownerUid: uid });
        const moved = await sw.retagNetwork(uid, net.spec.vlan);
        if (moved > 0) call.recorder.normal(net, 'Retagged', `moved ${moved} port(s) on "${t.name}" to VLAN ${net.spec.vlan}`);
        const networks = this.nodeNetworks(t);
        if (networks) await networks.ensure(await this.d.connections.get(t.node), nodeNetworkSpec(net), call.signal);
      });
    }
  }

  private nodeNetworks(t: Target) {
    return this.d.connections.providerOf(t.node).capabilities.networks;
  }

  /** Runs `fn` on the node's switch; a failure names the node, and a dead session is dropped. */
  private async onNode(t: Target, fn: (sw: OvsSwitch) => Promise<void>): Promise<void> {
    const switches = this.d.connections.providers.switches;
    if (!switches) throw new ReconcileError('NoSwitch', 'this controller has no switch provider', false);
    try {
      await fn(switches.connect(t.settings));
    } catch (err) {
      if (!(err instanceof ReconcileError) || err.reason === 'OvsdbUnreachable') await switches.forget(t.settings);
      throw err instanceof ReconcileError ? new ReconcileError(err.reason, `on ComputeNode "${t.name}": ${err.message}`, err.retryable) : err;
    }
  }
}

function bridgeOf(net: Network): string {
  return net.spec.bridge ?? 'br-stratus';
}

function nodeNetworkSpec(net: Network): NodeNetworkSpec {
  return { name: net.metadata?.name ?? '', bridge: bridgeOf(net), vlans: [net.spec.vlan] };
}
