/**
 * Address allocation from AddressPools: the IPv4 arithmetic (which addresses a pool hands
 * out, which is lowest and free) and the `AddressAllocator`, whose ledger is the pool's
 * `status.allocations`.
 *
 * Race-freedom: every change of the ledger is a status write carrying the resourceVersion
 * it was computed from (`replaceStatus` after a fresh `get`). Two allocators that read the
 * same ledger both pick the same lowest address, one write wins, the other gets 409, reads
 * again and picks the next. This holds across workers, processes and API servers sharing an
 * etcd, since the API server's compare-and-swap is the only arbiter.
 *
 * Idempotence: an ElasticIP's entry is keyed by its uid, so asking again (after a crash
 * between the ledger write and the ElasticIP's status write) returns the address it already
 * holds. `release` of an absent entry is success.
 */
import type { AddressPool, ElasticIP } from '../crds/types.js';
import { isConflict, type ResourceClient } from '../runtime/client.js';
import type { Informer } from '../runtime/informer.js';
import type { ReconcileContext, Reconciler, ReconcileResult } from '../runtime/controller.js';
import type { EventRecorder } from '../runtime/events.js';
import { reportStatus } from '../runtime/status.js';
import { sleep } from '../runtime/basics.js';
import { ReconcileError } from '../runtime/errors.js';

export type Allocation = NonNullable<NonNullable<AddressPool['status']>['allocations']>[number];

/** `a.b.c.d` → 32-bit number, or undefined when it is not a dotted IPv4 address. */
export function ipv4ToNumber(ip: string): number | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    n = n * 256 + Number(p);
  }
  return n;
}

export function numberToIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** The first and last address a CIDR hands out (network and broadcast excluded below /31). */
export function cidrRange(cidr: string): { first: number; last: number } {
  const [ip, bits] = cidr.split('/');
  const base = ipv4ToNumber(ip ?? '');
  const prefix = Number(bits);
  if (base === undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > 32) throw new ReconcileError('InvalidSpec', `"${cidr}" is not an IPv4 CIDR`, false);
  const size = 2 ** (32 - prefix);
  const network = base - (base % size);
  if (prefix >= 31) return { first: network, last: network + size - 1 };
  return { first: network + 1, last: network + size - 2 };
}

/** How many addresses the pool hands out. */
export function poolSize(cidrs: readonly string[]): number {
  return cidrs.reduce((sum, c) => {
    const r = cidrRange(c);
    return sum + (r.last - r.first + 1);
  }, 0);
}

export function poolContains(cidrs: readonly string[], address: string): boolean {
  const n = ipv4ToNumber(address);
  return n !== undefined && cidrs.some((c) => {
    const r = cidrRange(c);
    return n >= r.first && n <= r.last;
  });
}

/** The lowest address of the pool not in `taken`, or undefined when every one is. */
export function lowestFree(cidrs: readonly string[], taken: ReadonlySet<string>): string | undefined {
  const ranges = cidrs.map(cidrRange).sort((a, b) => a.first - b.first);
  for (const r of ranges) {
    for (let n = r.first; n <= r.last; n++) {
      const ip = numberToIPv4(n);
      if (!taken.has(ip)) return ip;
    }
  }
  return undefined;
}

/** Who wants an address. */
export interface Holder {
  uid: string;
  /** namespace/name, for humans reading the ledger. */
  key: string;
}

export class AddressAllocator {
  /** Per pool, the tail of this process's queue of ledger changes. */
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(private readonly pools: ResourceClient<AddressPool>) {}

  /**
   * Runs `fn` after this process's earlier changes of `pool`'s ledger: callers in one
   * process take turns instead of colliding (50 at once cost ~100 requests, not ~1,400);
   * the compare-and-swap still arbitrates between processes.
   */
  private serial<X>(pool: string, fn: () => Promise<X>): Promise<X> {
    const prev = this.queues.get(pool) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.queues.set(pool, tail);
    void tail.then(() => {
      if (this.queues.get(pool) === tail) this.queues.delete(pool);
    });
    return run;
  }

  /**
   * The address `holder` holds in pool `poolName`, allocating the lowest free one (or
   * `wanted`) when it holds none. Fails with `PoolNotFound`, `PoolExhausted`,
   * `AddressInUse` or `AddressNotInPool` (all retryable: a release or a new pool can fix them).
   */
  allocate(poolName: string, holder: Holder, wanted?: string, signal?: AbortSignal): Promise<string> {
    return this.serial(poolName, () => this.allocateNow(poolName, holder, wanted, signal));
  }

  /** Drops `uid`'s entry from the pool's ledger (absent pool or entry: nothing to do); the address it held. */
  release(poolName: string, uid: string, signal?: AbortSignal): Promise<string | undefined> {
    return this.serial(poolName, () => this.releaseNow(poolName, uid, signal));
  }

  private async allocateNow(poolName: string, holder: Holder, wanted?: string, signal?: AbortSignal): Promise<string> {
    for (let attempt = 1; ; attempt++) {
      signal?.throwIfAborted();
      const pool = await this.pools.get(undefined, poolName);
      if (!pool) throw new ReconcileError('PoolNotFound', `AddressPool "${poolName}" does not exist`);
      const cidrs = pool.spec?.cidrs ?? [];
      const ledger = pool.status?.allocations ?? [];
      const mine = ledger.find((a) => a.uid === holder.uid);
      if (mine && (!wanted || mine.address === wanted)) return mine.address;
      const others = ledger.filter((a) => a.uid !== holder.uid);
      let address: string;
      if (wanted) {
        if (!poolContains(cidrs, wanted)) throw new ReconcileError('AddressNotInPool', `${wanted} is not an address AddressPool "${poolName}" hands out (${cidrs.join(', ')})`);
        const owner = others.find((a) => a.address === wanted);
        if (owner) throw new ReconcileError('AddressInUse', `${wanted} is held by ElasticIP ${owner.elasticIP ?? owner.uid}`);
        address = wanted;
      } else {
        const free = lowestFree(cidrs, new Set(others.map((a) => a.address)));
        if (!free) throw new ReconcileError('PoolExhausted', `AddressPool "${poolName}" has no free address (${others.length} of ${poolSize(cidrs)} allocated); waiting for one to be released`);
        address = free;
      }
      const next: AddressPool = structuredClone(pool);
      next.status = withLedger(pool, [...others, { address, uid: holder.uid, elasticIP: holder.key }]);
      try {
        await this.pools.replaceStatus(next);
        return address;
      } catch (err) {
        if (!isConflict(err)) throw err;
        // Someone else wrote the ledger: read it again (jittered, so the losers spread out).
        await sleep(conflictPause(attempt), signal);
      }
    }
  }

  private async releaseNow(poolName: string, uid: string, signal?: AbortSignal): Promise<string | undefined> {
    for (let attempt = 1; ; attempt++) {
      signal?.throwIfAborted();
      const pool = await this.pools.get(undefined, poolName);
      const ledger = pool?.status?.allocations ?? [];
      const mine = ledger.find((a) => a.uid === uid);
      if (!pool || !mine) return undefined;
      const next: AddressPool = structuredClone(pool);
      next.status = withLedger(pool, ledger.filter((a) => a.uid !== uid));
      try {
        await this.pools.replaceStatus(next);
        return mine.address;
      } catch (err) {
        if (!isConflict(err)) throw err;
        await sleep(conflictPause(attempt), signal);
      }
    }
  }
}

/** Full jitter, growing exponentially to 200 ms: many contenders spread out instead of colliding again. */
function conflictPause(attempt: number): number {
  return Math.random() * Math.min(200, 5 * 2 ** attempt);
}

/** The pool's status with `ledger` and the counts that follow from it. */
function withLedger(pool: AddressPool, ledger: Allocation[]): NonNullable<AddressPool['status']> {
  const size = poolSize(pool.spec?.cidrs ?? []);
  const sorted = [...ledger].sort((a, b) => (ipv4ToNumber(a.address) ?? 0) - (ipv4ToNumber(b.address) ?? 0));
  const inside = sorted.filter((a) => poolContains(pool.spec?.cidrs ?? [], a.address)).length;
  return { ...(pool.status ?? {}), allocations: sorted, allocated: sorted.length, free: Math.max(0, size - inside) };
}

export type AddressPoolEventReason = 'LeakReleased';

export interface AddressPoolDeps {
  pools: ResourceClient<AddressPool>;
  poolCache: Informer<AddressPool>;
  /** Read live (not from a cache) by the leak repair. */
  elasticIPs: ResourceClient<ElasticIP>;
  recorder: EventRecorder<AddressPoolEventReason>;
  /** How often each pool's ledger is checked for leaks. Default 60 s. */
  repairIntervalMs?: number;
}

/**
 * AddressPoolReconciler: checks the CIDRs, recounts `allocated`/`free` from the ledger (a
 * shrunk pool keeps its entries until they are released), and reports `Ready`.
 *
 * It also repairs the ledger, as kube-apiserver's Service IP repair loop does: an entry
 * whose ElasticIP no longer exists (deleted with its finalizer stripped, or a store restored
 * from a backup) would hold its address forever, so once per `repairIntervalMs` the pool's
 * entries are compared with a live LIST of ElasticIPs and the orphans are released (Event
 * `LeakReleased`). The ledger is read before the LIST, and an ElasticIP exists before any
 * entry is written for it, so an entry of a live ElasticIP is never taken for a leak. Every
 * other change of the ledger is the `AddressAllocator`'s.
 */
export class AddressPoolReconciler implements Reconciler {
  private readonly allocator: AddressAllocator;
  /** When each pool's ledger was last checked for leaks. */
  private readonly repaired = new Map<string, number>();

  constructor(private readonly d: AddressPoolDeps) {
    this.allocator = new AddressAllocator(d.pools);
  }

  async reconcile(key: string, ctx: ReconcileContext): Promise<ReconcileResult | void> {
    const pool = this.d.poolCache.get(key);
    if (!pool) {
      this.repaired.delete(key);
      return;
    }
    const interval = this.d.repairIntervalMs ?? 60_000;
    const since = performance.now() - (this.repaired.get(key) ?? -Infinity);
    if (since >= interval) {
      this.repaired.set(key, performance.now());
      // The ledger changed under `pool`: its own watch event brings the fresh one to count.
      if ((await this.releaseLeaks(pool, ctx.signal)) > 0) return;
    }
    const cidrs = pool.spec?.cidrs ?? [];
    let size: number;
    try {
      size = poolSize(cidrs);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      await reportStatus(this.d.pools, pool, [
        { type: 'Synced', status: 'False', reason: 'InvalidSpec', message },
        { type: 'Ready', status: 'False', reason: 'InvalidSpec', message },
      ]);
      return;
    }
    const ledger = pool.status?.allocations ?? [];
    const outside = ledger.filter((a) => !poolContains(cidrs, a.address)).length;
    const free = Math.max(0, size - (ledger.length - outside));
    await reportStatus(
      this.d.pools,
      pool,
      [
        { type: 'Synced', status: 'True', reason: 'ReconcileSuccess', message: '' },
        {
          type: 'Ready',
          status: 'True',
          reason: free > 0 ? 'Available' : 'Exhausted',
          message: `${ledger.length} of ${size} addresses allocated${outside > 0 ? ` (${outside} outside the current CIDRs, kept until released)` : ''}`,
        },
      ],
      (s: NonNullable<AddressPool['status']>) => {
        s.allocated = ledger.length;
        s.free = free;
      },
    );
    // At least 1 ms: a due repair computed as 0 would be no requeue at all, and the pool would never be checked again.
    return { requeueAfterMs: Math.max(1, interval - (performance.now() - (this.repaired.get(key) ?? 0))) };
  }

  /** Releases the entries of `pool`'s ledger whose ElasticIP no longer exists; how many. */
  private async releaseLeaks(pool: AddressPool, signal: AbortSignal): Promise<number> {
    const ledger = pool.status?.allocations ?? [];
    if (ledger.length === 0) return 0;
    let released = 0;
    const live = new Set((await this.d.elasticIPs.listWithVersion(undefined, {}, signal)).items.map((e) => e.metadata?.uid));
    for (const entry of ledger) {
      if (live.has(entry.uid)) continue;
      const freed = await this.allocator.release(pool.metadata?.name ?? '', entry.uid, signal);
      if (!freed) continue;
      released++;
      this.d.recorder.warning(pool, 'LeakReleased', `released ${freed}: ElasticIP ${entry.elasticIP ?? entry.uid} (uid ${entry.uid}) no longer exists`);
    }
    return released;
  }
}
