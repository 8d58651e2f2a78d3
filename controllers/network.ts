/**
 * NetworkReconciler: a Network is a VLAN on an Open vSwitch bridge of every ComputeNode
 * that has a switch (`spec.ovs`), or of `spec.nodeName` alone.
 *
 * On each node it ensures the bridge (owned by the first Network that made it), retags every
 * port made for this Network when `spec.vlan` changes (container ports carry the Network's
 * uid), and on libvirt nodes defines a libvirt network on the bridge
 * (`<virtualport type='openvswitch'/>` with a `vlan-N` portgroup) that VM interfaces use.
 * It reports the ports it found in `status.ports`. The poll re-ensures everything, so an
 * ovsdb-server restarted empty is re-populated on the next pass.
 *
 * Deletion (finalizer): ports made for the Network are removed, the libvirt network
 * undefined, and the bridge removed if this Network created it and nothing else uses it.
 */
import type { ComputeNode, Instance, Network } from '../crds/types.js';
import type { ResourceClient } from '../runtime/client.js';
import type { Informer } from '../runtime/informer.js';
import type { Reconciler, ReconcileContext, ReconcileResult } from '../runtime/controller.js';
import { reconcileWithFinalizer, type CleanupResult } from '../runtime/finalizers.js';
import { reportStatus } from '../runtime/status.js';
import { getCondition, type ConditionInput } from '../runtime/conditions.js';
import type { EventRecorder } from '../runtime/events.js';
import { ProviderError } from '../providers/machine.js';
import { ensureOvsNetwork, libvirtNetworkName, removeOvsNetwork, type LibvirtNodeConnection } from '../providers/libvirt/index.js';
import type { NodeConnections } from './connections.js';
import { ovsDatabaseOf, type OvsSwitches } from './switches.js';

export const NETWORK_FINALIZER = 'compute.stratus.dev/network';

export type NetworkEventReason = 'Provisioned' | 'Retagged' | 'ProviderError' | 'Removed';

export interface NetworkReconcilerDeps {
  networks: ResourceClient<Network>;
  networkCache: Informer<Network>;
  nodeCache: Informer<ComputeNode>;
  instanceCache: Informer<Instance>;
  connections: NodeConnections;
  switches: OvsSwitches;
  recorder: EventRecorder<NetworkEventReason>;
  /** Re-ensure interval (drift, ovsdb restarts). Default 30 s. */
  pollIntervalMs?: number;
}

type Status = NonNullable<Network['status']>;
type Port = NonNullable<Status['ports']>[number];

export class NetworkReconciler implements Reconciler {
  constructor(private readonly d: NetworkReconcilerDeps) {}

  async reconcile(key: string, ctx: ReconcileContext): Promise<ReconcileResult | void> {
    const net = this.d.networkCache.get(key);
    if (!net) return;
    return reconcileWithFinalizer(this.d.networks, net, NETWORK_FINALIZER, {
      apply: (n) => this.apply(n, ctx),
      cleanup: (n) => this.cleanup(n),
    });
  }

  /** The nodes that carry this Network; a named node without a switch is an error. */
  private targets(net: Network): ComputeNode[] {
    if (net.spec.nodeName) {
      const node = this.d.nodeCache.get(net.spec.nodeName);
      if (!node) throw new ProviderError('NodeNotFound', `ComputeNode "${net.spec.nodeName}" does not exist`);
      if (!ovsDatabaseOf(node)) throw new ProviderError('NoSwitch', `ComputeNode "${net.spec.nodeName}" has no spec.ovs (no Open vSwitch to carry the Network)`, false);
      return [node];
    }
    return this.d.nodeCache.list().filter((n) => ovsDatabaseOf(n) !== undefined && !n.metadata?.deletionTimestamp);
  }

  private async apply(net: Network, ctx: ReconcileContext): Promise<ReconcileResult> {
    const uid = net.metadata?.uid ?? '';
    const bridge = net.spec.bridge ?? 'br-stratus';
    const vlan = net.spec.vlan;
    const ownerByUid = new Map(this.d.instanceCache.list().map((i) => [i.metadata?.uid ?? '', i.metadata?.name ?? '']));
    const ports: Port[] = [];
    const nodes: string[] = [];
    let libvirtNetwork: string | undefined;
    try {
      for (const node of this.targets(net)) {
        const nodeName = node.metadata?.name ?? '';
        const sw = this.d.switches.get(ovsDatabaseOf(node)!);
        try {
          await sw.ensureBridge({ name: bridge, datapathType: net.spec.datapathType ?? 'system', ownerUid: uid });
          const moved = await sw.retagNetwork(uid, vlan);
          if (moved > 0) this.d.recorder.normal(net, 'Retagged', `moved ${moved} port(s) on "${nodeName}" to VLAN ${vlan}`);
          if (node.spec.provider === 'libvirt') {
            const conn = (await this.d.connections.get(node)) as LibvirtNodeConnection;
            libvirtNetwork = libvirtNetworkName(net.metadata?.name ?? '');
            await ensureOvsNetwork(conn, { name: libvirtNetwork, bridge, vlans: [vlan] });
          }
          for (const p of await sw.listNetworkPorts(uid)) {
            const instance = p.ownerUid ? ownerByUid.get(p.ownerUid) : undefined;
            ports.push({ name: p.name, node: nodeName, ...(instance ? { instance } : {}), ...(p.tag !== undefined ? { tag: p.tag } : {}) });
          }
          nodes.push(nodeName);
        } catch (err) {
          if (!(err instanceof ProviderError) || err.reason === 'OvsdbUnreachable') await this.d.switches.forget(ovsDatabaseOf(node)!);
          throw err instanceof ProviderError ? new ProviderError(err.reason, `on ComputeNode "${nodeName}": ${err.message}`, err.retryable) : err;
        }
      }
    } catch (err) {
      return this.failed(net, err, ctx);
    }
    const first = getCondition(net.status?.conditions, 'Ready')?.status !== 'True';
    if (first) this.d.recorder.normal(net, 'Provisioned', `VLAN ${vlan} on bridge ${bridge} of ${nodes.length} node(s)`);
    await this.write(net, { ports, nodes, ...(libvirtNetwork ? { libvirtNetwork } : {}) }, [
      { type: 'Synced', status: 'True', reason: 'ReconcileSuccess', message: '' },
      {
        type: 'Ready',
        status: nodes.length > 0 ? 'True' : 'False',
        reason: nodes.length > 0 ? 'Provisioned' : 'NoNodes',
        message: nodes.length > 0 ? `VLAN ${vlan} on ${bridge}` : 'no ComputeNode has an Open vSwitch (spec.ovs)',
      },
    ]);
    return { requeueAfterMs: this.d.pollIntervalMs ?? 30_000 };
  }

  private async cleanup(net: Network): Promise<CleanupResult> {
    const uid = net.metadata?.uid ?? '';
    let nodes: ComputeNode[];
    try {
      nodes = this.targets(net);
    } catch {
      return { done: true };
    }
    for (const node of nodes) {
      const sw = this.d.switches.get(ovsDatabaseOf(node)!);
      for (const p of await sw.listNetworkPorts(uid)) await sw.removePort(p.name);
      if (node.spec.provider === 'libvirt') {
        const conn = (await this.d.connections.get(node)) as LibvirtNodeConnection;
        await removeOvsNetwork(conn, libvirtNetworkName(net.metadata?.name ?? ''));
      }
      // 'in-use' (other Networks' ports) and 'not-owned' (someone else's bridge) both mean: leave it.
      await sw.removeBridge(net.spec.bridge ?? 'br-stratus', { ownerUid: uid });
    }
    this.d.recorder.normal(net, 'Removed', `removed from ${nodes.length} node(s)`);
    return { done: true };
  }

  private async failed(net: Network, err: unknown, ctx: ReconcileContext): Promise<ReconcileResult> {
    const pe = err instanceof ProviderError ? err : undefined;
    const reason = pe?.reason ?? 'ReconcileError';
    const message = err instanceof Error ? err.message : String(err);
    ctx.log.warn({ reason, err: message }, 'network not provisioned');
    const prev = getCondition(net.status?.conditions, 'Synced');
    if (prev?.message !== message) this.d.recorder.warning(net, 'ProviderError', `${reason}: ${message}`);
    await this.write(net, {}, [
      { type: 'Synced', status: 'False', reason, message },
      ...(getCondition(net.status?.conditions, 'Ready')?.status === 'True' ? [] : [{ type: 'Ready', status: 'False' as const, reason, message }]),
    ]);
    if (!pe) throw err;
    return pe.retryable ? { requeue: true } : { requeueAfterMs: this.d.pollIntervalMs ?? 30_000 };
  }

  private async write(net: Network, fields: Partial<Status>, conditions: ConditionInput[]): Promise<void> {
    await reportStatus(this.d.networks, net, conditions, (st: Status) => Object.assign(st, fields));
  }
}
