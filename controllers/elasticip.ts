/**
 * ElasticIPReconciler: an address from an AddressPool, routed to the Instance named by
 * `spec.instanceRef` — on the managed-resource lifecycle (`runtime/managed.ts`).
 *
 * Its external resource is two things: the pool's ledger entry (`addresspool.ts`, keyed by
 * the ElasticIP's uid) and the binding on the nodes that can carry ElasticIPs (the
 * providers' `elasticIPs` capability: NAT in an nftables table on libvirt and Docker nodes,
 * a static address as an access config on GCE). Bindings live in *places* — nodes with the
 * same `location` share them — and the controller keeps exactly one: at the place of the
 * bound Instance's node, nowhere when unbound. A move unbinds the old place before binding
 * the new one; within one place `bind` replaces the target atomically. So however a
 * reconcile is cut short (SIGKILL mid-move), the next observe finds what is programmed and
 * converges to one binding.
 *
 * On a node whose carrier has `reserve` (GCE) the address comes from the cloud (a static
 * address named after the ElasticIP's uid), not from a pool: `spec.poolRef` and
 * `spec.address` do not apply there, and `status.pool` stays empty.
 *
 * Pools: `spec.poolRef`, else the pool the address already came from, else every pool
 * whose `nodeSelector` matches the bound Instance's node (by name; the first with a free
 * address). Without `spec.address` the lowest free address is taken; with it, that one
 * (held by another ElasticIP → `Synced=False AddressInUse`). An exhausted pool is a
 * retryable `PoolExhausted`: the ElasticIP waits and is retried when a pool changes.
 *
 * Deleting the Instance leaves the address allocated and unbound. Deleting the ElasticIP
 * (finalizer) unbinds it everywhere and returns the address to its pool.
 *
 * Status: `address`, `pool`, `boundTo`, `node`, `privateAddress`; `Ready` when the address
 * is allocated and routed as asked. The bound Instance's `status.elasticIPs` lists it.
 * Events: `Allocated`, `Bound`, `Moved`, `Released`, `BindFailed`.
 */
import type { AddressPool, ComputeNode, ElasticIP, Instance } from '../crds/types.js';
import { objectKey, type ResourceClient } from '../runtime/client.js';
import type { Informer } from '../runtime/informer.js';
import { ManagedReconciler, type CallContext, type Connected, type ExternalClient, type ExternalObservation, type ManagedKind, type StatusReport } from '../runtime/managed.js';
import type { EventRecorder } from '../runtime/events.js';
import { ReconcileError } from '../runtime/errors.js';
import { updateStatus } from '../runtime/status.js';
import type { ElasticIPBinding, ElasticIPCarrier } from '../providers/registry.js';
import { AddressAllocator } from './addresspool.js';
import type { NodeConnections } from './connections.js';

export const ELASTICIP_FINALIZER = 'compute.stratus.dev/elasticip';

export type ElasticIPEventReason = 'Allocated' | 'Bound' | 'Moved' | 'Released' | 'BindFailed';
type Event = ElasticIPEventReason;

export interface ElasticIPReconcilerDeps {
  elasticIPs: ResourceClient<ElasticIP>;
  elasticIPCache: Informer<ElasticIP>;
  pools: ResourceClient<AddressPool>;
  poolCache: Informer<AddressPool>;
  instances: ResourceClient<Instance>;
  instanceCache: Informer<Instance>;
  nodeCache: Informer<ComputeNode>;
  connections: NodeConnections;
  recorder: EventRecorder<ElasticIPEventReason>;
  /** Drift check (a flushed NAT rule comes back). Default 30 s. */
  pollIntervalMs?: number;
  /** Deadline of one external call. Default 60 s. */
  callTimeoutMs?: number;
}

type Status = NonNullable<ElasticIP['status']>;

/** A location that carries bindings, reached through one of its nodes. */
interface Place {
  location: string;
  node: ComputeNode;
  carrier: ElasticIPCarrier;
}

/** Where the address should go. */
interface Desire {
  /** Pools to hold the address in, in order of preference. */
  pools: string[];
  instance?: Instance;
  /** The place of the Instance's node (undefined: unbound). */
  place?: Place;
  /** Why the address is not routed even though an Instance is named. */
  waiting?: { reason: string; message: string };
  /** The ElasticIP is being deleted: nothing is wanted anywhere. */
  deleting?: boolean;
}

export interface ElasticIPObservation extends ExternalObservation {
  address?: string;
  pool?: string;
  /** Places where something is programmed for this ElasticIP, and whether it is as asked. */
  programmed: { place: Place; upToDate: boolean; target?: string }[];
}

export class ElasticIPReconciler extends ManagedReconciler<ElasticIP, ElasticIPObservation, Event> {
  constructor(d: ElasticIPReconcilerDeps) {
    super(new ElasticIPKind(d), {
      resource: d.elasticIPs,
      cache: d.elasticIPCache,
      recorder: d.recorder,
      pollIntervalMs: d.pollIntervalMs ?? 30_000,
      ...(d.callTimeoutMs !== undefined ? { callTimeoutMs: d.callTimeoutMs } : {}),
    });
  }
}

class ElasticIPKind implements ManagedKind<ElasticIP, ElasticIPObservation, Event> {
  readonly kind = 'elasticip';
  readonly finalizer = ELASTICIP_FINALIZER;
  readonly failureEvent = 'BindFailed' as const;
  /** One per controller, so its workers take turns on a pool's ledger. */
  private readonly allocator: AddressAllocator;

  constructor(private readonly d: ElasticIPReconcilerDeps) {
    this.allocator = new AddressAllocator(d.pools);
  }

  async connect(eip: ElasticIP, _ctx: unknown, opts: { deleting: boolean }): Promise<Connected<ElasticIP, ElasticIPObservation, Event>> {
    const places = this.places();
    const desire = opts.deleting ? { pools: this.knownPools(eip), deleting: true } : this.desire(eip, places);
    return { client: new BoundAddress(this.d, this.allocator, places, desire, this.d.pollIntervalMs ?? 30_000) };
  }

  failureStatus(): undefined {
    return undefined;
  }

  /** One node per location among the nodes whose provider can carry ElasticIPs. */
  private places(): Place[] {
    const out = new Map<string, Place>();
    for (const node of [...this.d.nodeCache.list()].sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''))) {
      const carrier = this.d.connections.providers.find(node.spec.provider)?.capabilities.elasticIPs;
      if (!carrier) continue;
      const at = carrier.locate(node.spec);
      if ('location' in at && !out.has(at.location)) out.set(at.location, { location: at.location, node, carrier });
    }
    return [...out.values()];
  }

  private knownPools(eip: ElasticIP): string[] {
    return [...new Set([eip.status?.pool, eip.spec?.poolRef?.name].filter((p): p is string => !!p))];
  }

  private desire(eip: ElasticIP, places: Place[]): Desire {
    const ns = eip.metadata?.namespace ?? '';
    const wanted = eip.spec?.instanceRef?.name;
    const instance = wanted ? this.d.instanceCache.get(`${ns}/${wanted}`) : undefined;
    const live = instance && !instance.metadata?.deletionTimestamp ? instance : undefined;
    const nodeName = live?.status?.nodeName ?? live?.spec.nodeName;
    const node = nodeName ? this.d.nodeCache.get(nodeName) : undefined;

    // A cloud node (GCE) gives the address itself: no pool is involved.
    const cloud = Boolean(node && this.d.connections.providers.find(node.spec.provider)?.capabilities.elasticIPs?.reserve);
    const pools = cloud ? this.knownPools(eip) : this.poolsFor(eip, node, places);
    if (!wanted) return { pools };
    if (!live) return { pools, waiting: { reason: 'InstanceNotFound', message: `Instance "${wanted}" does not exist; the address stays allocated, unbound` } };
    if (!node) return { pools, instance: live, waiting: { reason: 'InstanceNotScheduled', message: `Instance "${wanted}" has no node yet` } };
    const provider = this.d.connections.providers.get(node.spec.provider);
    const carrier = provider.capabilities.elasticIPs;
    if (!carrier) throw new ReconcileError('ElasticIPsNotSupported', `ComputeNode "${nodeName}" (${provider.name}) cannot carry elastic IPs`, false);
    const at = carrier.locate(node.spec);
    if ('unavailable' in at) throw new ReconcileError('NoElasticIPSettings', `ComputeNode "${nodeName}": ${at.unavailable}`, false);
    const place = places.find((p) => p.location === at.location) ?? { location: at.location, node, carrier };
    const pool = pools[0] ? this.d.poolCache.get(pools[0]) : undefined;
    if (pool && !cloud && !selects(pool, node)) throw new ReconcileError('NodeNotInPool', `AddressPool "${pools[0]}" is not carried by ComputeNode "${nodeName}" (its nodeSelector does not match)`, false);
    return { pools, instance: live, place };
  }

  /** Candidate pools: the named one, the one already used, else those selecting `node`. */
  private poolsFor(eip: ElasticIP, node: ComputeNode | undefined, places: Place[]): string[] {
    if (eip.spec?.poolRef?.name) return [eip.spec?.poolRef.name];
    if (eip.status?.pool && this.d.poolCache.get(eip.status.pool)) return [eip.status.pool];
    const pools = this.d.poolCache
      .list()
      .filter((p) => !p.metadata?.deletionTimestamp && (!node || selects(p, node)))
      .map((p) => p.metadata?.name ?? '')
      .sort();
    // An unbound ElasticIP may hold a cloud address (found by `held`).
    if (pools.length === 0 && !node && places.some((p) => p.carrier.reserve)) return [];
    if (pools.length === 0) {
      throw new ReconcileError('NoAddressPool', node ? `no AddressPool selects ComputeNode "${node.metadata?.name ?? ''}"` : 'no AddressPool exists');
    }
    return pools;
  }
}

function selects(pool: AddressPool, node: ComputeNode): boolean {
  const labels = node.metadata?.labels ?? {};
  return Object.entries(pool.spec?.nodeSelector ?? {}).every(([k, v]) => labels[k] === v);
}

/** The ElasticIP's address and binding, as the lifecycle's `ExternalClient`. */
class BoundAddress implements ExternalClient<ElasticIP, ElasticIPObservation, Event> {
  constructor(
    private readonly d: ElasticIPReconcilerDeps,
    private readonly allocator: AddressAllocator,
    private readonly places: Place[],
    private readonly desire: Desire,
    private readonly pollMs: number,
  ) {}

  async observe(eip: ElasticIP, call: CallContext<Event>): Promise<ElasticIPObservation> {
    const uid = eip.metadata?.uid ?? '';
    const held = await this.held(uid, call.signal);
    const out: ElasticIPObservation = { exists: held !== undefined, upToDate: true, programmed: [], ...(held ?? {}) };
    const binding = held ? this.binding(eip, held.address) : undefined;
    const places = [...this.places];
    if (this.desire.place && !places.some((p) => p.location === this.desire.place?.location)) places.push(this.desire.place);
    for (const place of places) {
      const mine = place.location === this.desire.place?.location;
      // Waiting for the Instance's address: leave its place as it is.
      if (mine && !binding) continue;
      const o = await place.carrier.observe(await this.d.connections.get(place.node), place.node.spec, uid, mine ? binding : undefined, call.signal);
      if (o.present || mine) out.programmed.push({ place, upToDate: o.upToDate, ...(o.target ? { target: o.target } : {}) });
      if (!o.upToDate) out.upToDate = false;
    }
    // While deleting, "exists" means: anything is left, in a pool or on a node.
    if (this.desire.deleting && out.programmed.length > 0) out.exists = true;
    // A cloud address (no pool) is whatever the cloud reserved: spec.address does not apply.
    if (held?.pool && eip.spec?.address && eip.spec?.address !== held.address) out.upToDate = false;
    return out;
  }

  async create(eip: ElasticIP, observed: ElasticIPObservation, call: CallContext<Event>): Promise<void> {
    const address = await this.allocate(eip, call);
    await this.route(eip, { ...observed, address }, call);
  }

  async update(eip: ElasticIP, observed: ElasticIPObservation, call: CallContext<Event>): Promise<void> {
    let address = observed.address ?? '';
    if (eip.spec?.address && eip.spec?.address !== address) address = await this.allocate(eip, call);
    await this.route(eip, { ...observed, address }, call);
  }

  async delete(eip: ElasticIP, call: CallContext<Event>): Promise<void> {
    const uid = eip.metadata?.uid ?? '';
    for (const place of this.places) {
      await place.carrier.unbind(await this.d.connections.get(place.node), place.node.spec, uid, call.signal);
      await place.carrier.release?.(await this.d.connections.get(place.node), place.node.spec, uid, call.signal);
    }
    for (const pool of this.desire.pools) await this.allocator.release(pool, uid, call.signal);
  }

  async deleted(eip: ElasticIP, call: CallContext<Event>): Promise<void> {
    await this.listOn(eip, undefined, eip.status?.address);
    if (eip.status?.address) {
      call.recorder.normal(eip, 'Released', eip.status.pool ? `${eip.status.address} returned to AddressPool "${eip.status.pool}"` : `${eip.status.address} released to the cloud`);
    }
  }

  async settle(eip: ElasticIP, observed: ElasticIPObservation): Promise<void> {
    const bound = this.boundHere(observed);
    await this.listOn(eip, bound ? this.desire.instance : undefined, observed.address ?? eip.status?.address);
  }

  report(eip: ElasticIP, o: ElasticIPObservation): StatusReport<ElasticIP> & { requeueAfterMs?: number } {
    const bound = this.boundHere(o);
    const wanted = eip.spec?.instanceRef?.name;
    let ready: { status: 'True' | 'False'; reason: string; message: string };
    if (!o.address) ready = { status: 'False', reason: 'NotAllocated', message: 'no address allocated yet' };
    else if (this.desire.waiting) ready = { status: 'False', ...this.desire.waiting };
    else if (wanted && !bound) ready = { status: 'False', reason: 'InstanceNotReady', message: `Instance "${wanted}" has no private address yet` };
    else if (bound) ready = { status: 'True', reason: 'Bound', message: `${o.address} routes to Instance "${wanted ?? ''}" on ComputeNode "${bound.place.node.metadata?.name ?? ''}"` };
    else ready = { status: 'True', reason: 'Unbound', message: `${o.address} is allocated and routes nowhere` };
    return {
      conditions: [{ type: 'Ready', ...ready }],
      mutate: (s: Status) => {
        setOrDelete(s, 'address', o.address);
        setOrDelete(s, 'pool', o.pool);
        setOrDelete(s, 'boundTo', bound ? wanted : undefined);
        setOrDelete(s, 'node', bound?.place.node.metadata?.name);
        setOrDelete(s, 'privateAddress', bound ? this.desire.instance?.status?.ipAddress : undefined);
      },
      // Waiting for the Instance's address: look again soon; else the drift check.
      requeueAfterMs: wanted && !bound && !this.desire.waiting ? 2000 : this.pollMs,
    };
  }

  /** The place where the address routes to the desired Instance, if it does. */
  private boundHere(o: ElasticIPObservation): ElasticIPObservation['programmed'][number] | undefined {
    if (!o.address || !this.desire.instance || !this.desire.place) return undefined;
    const p = o.programmed.find((x) => x.place.location === this.desire.place?.location);
    return p?.upToDate && o.programmed.length === 1 ? p : undefined;
  }

  /** Allocates from the first candidate pool with room; the first failure when none has. */
  private async allocate(eip: ElasticIP, call: CallContext<Event>): Promise<string> {
    const cloud = this.desire.place;
    if (cloud?.carrier.reserve) {
      const address = await cloud.carrier.reserve(await this.d.connections.get(cloud.node), cloud.node.spec, eip.metadata?.uid ?? '', call.signal);
      if (address !== eip.status?.address) call.recorder.normal(eip, 'Allocated', `${address} reserved through ComputeNode "${cloud.node.metadata?.name ?? ''}"`);
      return address;
    }
    const holder = { uid: eip.metadata?.uid ?? '', key: objectKey(eip) };
    let first: unknown;
    for (const pool of this.desire.pools) {
      try {
        const address = await this.allocator.allocate(pool, holder, eip.spec?.address, call.signal);
        if (address !== eip.status?.address) call.recorder.normal(eip, 'Allocated', `${address} from AddressPool "${pool}"`);
        // Another pool may hold an older address of ours (spec.poolRef changed): give it back.
        for (const other of this.desire.pools) if (other !== pool) await this.allocator.release(other, holder.uid, call.signal);
        return address;
      } catch (err) {
        if (!(err instanceof ReconcileError) || !['PoolExhausted', 'AddressNotInPool'].includes(err.reason)) throw err;
        first ??= err;
      }
    }
    throw first ?? new ReconcileError('NoAddressPool', 'no AddressPool to allocate from');
  }

  /** Unbinds every place but the desired one, then binds there; records what changed. */
  private async route(eip: ElasticIP, o: ElasticIPObservation & { address: string }, call: CallContext<Event>): Promise<void> {
    const uid = eip.metadata?.uid ?? '';
    const target = this.desire.place;
    const binding = this.binding(eip, o.address);
    const before = eip.status?.boundTo;
    for (const p of o.programmed) {
      // The target place is re-bound below (or, waiting for the Instance's address, left alone).
      if (p.place.location === target?.location) continue;
      await p.place.carrier.unbind(await this.d.connections.get(p.place.node), p.place.node.spec, uid, call.signal);
    }
    if (target && binding) {
      const there = o.programmed.find((p) => p.place.location === target.location);
      if (!there?.upToDate) await target.carrier.bind(await this.d.connections.get(target.node), target.node.spec, binding, call.signal);
    }
    const now = target && binding ? eip.spec?.instanceRef?.name : undefined;
    const node = target?.node.metadata?.name ?? '';
    if (now && before && before !== now) call.recorder.normal(eip, 'Moved', `${o.address} moved from Instance "${before}" to "${now}" on ComputeNode "${node}"`);
    else if (now && before !== now) call.recorder.normal(eip, 'Bound', `${o.address} routes to Instance "${now}" on ComputeNode "${node}"`);
    else if (!now && before && !this.desire.instance) call.recorder.normal(eip, 'Released', `${o.address} no longer routes to Instance "${before}"`);
  }

  private binding(eip: ElasticIP, address: string): ElasticIPBinding | undefined {
    const inst = this.desire.instance;
    if (!inst || !this.desire.place) return undefined;
    const privateAddress = inst.status?.ipAddress;
    // NAT needs the private address; a cloud access config needs only the machine.
    if (!privateAddress && this.desire.place.location.startsWith('nftables:')) return undefined;
    return {
      uid: eip.metadata?.uid ?? '',
      address,
      machine: { uid: inst.metadata?.uid ?? '', name: inst.metadata?.name ?? '', ...(privateAddress ? { privateAddress } : {}) },
    };
  }

  /** The address `uid` holds, read fresh from the candidate pools, else from the cloud nodes. */
  private async held(uid: string, signal: AbortSignal): Promise<{ address: string; pool?: string } | undefined> {
    for (const name of this.desire.pools) {
      const pool = await this.d.pools.get(undefined, name);
      const entry = pool?.status?.allocations?.find((a) => a.uid === uid);
      if (entry) return { address: entry.address, pool: name };
    }
    const clouds = [...(this.desire.place ? [this.desire.place] : []), ...this.places].filter((p) => p.carrier.reserved);
    for (const place of clouds) {
      const address = await place.carrier.reserved?.(await this.d.connections.get(place.node), place.node.spec, uid, signal);
      if (address) return { address };
    }
    return undefined;
  }

  /** `instance` lists `address` in `status.elasticIPs`; no other Instance of the namespace does. */
  private async listOn(eip: ElasticIP, instance: Instance | undefined, address: string | undefined): Promise<void> {
    if (!address) return;
    const ns = eip.metadata?.namespace ?? '';
    const holders = this.d.instanceCache.list().filter((i) => i.metadata?.namespace === ns && (i.status?.elasticIPs ?? []).includes(address));
    for (const i of holders) {
      if (i.metadata?.uid === instance?.metadata?.uid) continue;
      await updateStatus(this.d.instances, ns, i.metadata?.name ?? '', (fresh) => {
        const list = (fresh.status?.elasticIPs ?? []).filter((a) => a !== address);
        if (!fresh.status) return false;
        if (list.length > 0) fresh.status.elasticIPs = list;
        else delete fresh.status.elasticIPs;
      });
    }
    if (instance && !(instance.status?.elasticIPs ?? []).includes(address)) {
      await updateStatus(this.d.instances, ns, instance.metadata?.name ?? '', (fresh) => {
        if (fresh.metadata?.uid !== instance.metadata?.uid) return false;
        fresh.status = { ...(fresh.status ?? {}), elasticIPs: [...new Set([...(fresh.status?.elasticIPs ?? []), address])].sort() };
      });
    }
  }
}

function setOrDelete<K extends 'address' | 'pool' | 'boundTo' | 'node' | 'privateAddress'>(s: Status, key: K, value: string | undefined): void {
  if (value) s[key] = value;
  else delete s[key];
}
