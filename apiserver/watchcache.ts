/**
 * The watch cache: one store watch over every object (`/registry/`), fanned out to one cache
 * per resource prefix, each holding the current objects of its resource and a ring of recent
 * changes — kube-apiserver's cacher, in one process.
 *
 * Guarantees:
 * - A subscriber sees every change after the revision it asked for exactly once, in revision
 *   order, or is ended with `TooOldError` (the client relists). Changes after `oldest` are
 *   served from memory; older ones from a private store watch (which fails with
 *   `TooOldError` once the store compacted that history).
 * - Progress is global: the single store watch delivers every change under `/registry/` in
 *   revision order, so once it has delivered revision R, every ready cache holds every object
 *   of its resource as of R (`latestRevision` ≥ R). `waitFor(R)` is how a consistent read
 *   (kube's `resourceVersion=""`: at least the store's current revision) is served from
 *   memory. A write not under `/registry/` would not advance it; readers then time out and
 *   fall back to the store.
 * - Cached objects are shared and must never be mutated: readers copy what they change.
 * - After the store watch breaks, every subscriber is ended with `TooOldError`, every cache
 *   is emptied, and caches reload (list, then watch) before they serve again.
 */
import type { Store, WatchEvent, WatchEventType, WatchHandle } from './storage/store.js';
import { TooOldError } from './storage/store.js';
import type { KubeObject } from './resources.js';
import { log } from '../runtime/log.js';

export interface CachedEvent {
  type: WatchEventType;
  key: string;
  revision: number;
  /** The object after the change (for DELETED, the last state with the deletion's revision). */
  object: KubeObject;
  /** The object before the change (undefined for ADDED). */
  prevObject?: KubeObject;
  /** Wire forms of this event, by encoding key (see watch.ts); each is built once for all watchers. */
  encoded?: Map<string, string>;
}

/** One current object of a cache. Shared and immutable: `encoded` memoizes its wire forms. */
export interface CachedObject {
  readonly key: string;
  readonly revision: number;
  readonly object: KubeObject;
  /** JSON of the object by apiVersion it was presented in. */
  encoded?: Map<string, string>;
}

export interface Subscriber {
  onEvent(event: CachedEvent): void;
  /** The subscription is over: `TooOldError` means relist, anything else means the watch broke. */
  onEnd(error?: Error): void;
}

export interface Subscription {
  close(): void;
}

/** Parses a stored value and stamps `metadata.resourceVersion`. */
export function decodeObject(value: string, revision: number): KubeObject {
  const obj = JSON.parse(value) as KubeObject;
  const meta = (obj.metadata ??= {});
  meta.resourceVersion = String(revision);
  return obj;
}

export function toCachedEvent(e: WatchEvent): CachedEvent {
  const ev: CachedEvent = {
    type: e.type,
    key: e.key,
    revision: e.revision,
    object: decodeObject(e.value, e.revision),
  };
  // Parsed on first use: only watchers with selectors look at the previous state.
  const prev = e.prevValue;
  if (prev !== undefined) {
    let parsed: KubeObject | undefined;
    Object.defineProperty(ev, 'prevObject', {
      enumerable: true,
      get: () => (parsed ??= decodeObject(prev, e.revision)),
    });
  }
  return ev;
}

/** `/registry/<group>/<plural>/` of a key (the resource prefix caches are keyed by). */
export function resourcePrefixOf(key: string): string | undefined {
  let at = 0;
  for (let i = 0; i < 4; i++) {
    at = key.indexOf('/', at) + 1;
    if (at === 0) return undefined;
  }
  return key.slice(0, at);
}

/** Index of the first key in sorted `keys` that is > `key` (or ≥ when `inclusive`). */
function bound(keys: string[], key: string, inclusive: boolean): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const k = keys[mid] as string;
    if (k < key || (!inclusive && k === key)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

type CacheState = 'idle' | 'loading' | 'ready';

export class WatchCache {
  private buffer: CachedEvent[] = [];
  /** Every change of this resource after this revision is in `buffer`. */
  private oldest = 0;
  /** The revision the objects map is current at (list revision, then each applied change). */
  private applied = 0;
  private objects = new Map<string, CachedObject>();
  /** `objects`' keys in order; rebuilt on demand after a key came or went. */
  private sorted: string[] | undefined;
  private subscribers = new Set<Subscriber>();
  private state: CacheState = 'idle';
  private loading: Promise<void> | undefined;
  /** Changes that arrived while the initial list was read. */
  private queued: CachedEvent[] = [];
  private generation = 0;

  constructor(
    private readonly hub: WatchCaches,
    private readonly store: Store,
    readonly prefix: string,
    private readonly capacity = 2048,
  ) {}

  /** The newest revision this cache is known to be complete at. */
  get latestRevision(): number {
    return Math.max(this.applied, this.state === 'ready' ? this.hub.latestRevision : 0);
  }

  get ready(): boolean {
    return this.state === 'ready';
  }

  /** True when changes after `revision` can be served from memory. */
  covers(revision: number): boolean {
    return this.state === 'ready' && revision >= this.oldest;
  }

  /** Loads the resource (list at one revision) and joins the shared store watch; idempotent. */
  start(): Promise<void> {
    if (this.state === 'ready') return Promise.resolve();
    this.loading ??= this.load()
      .catch((err: unknown) => {
        if (this.state === 'loading') this.state = 'idle';
        throw err;
      })
      .finally(() => {
        this.loading = undefined;
      });
    return this.loading;
  }

  private async load(): Promise<void> {
    await this.hub.start();
    const generation = this.generation;
    this.state = 'loading';
    this.queued = [];
    const objects = new Map<string, CachedObject>();
    let revision: number | undefined;
    let startAfter: string | undefined;
    for (;;) {
      const page = await this.store.list(this.prefix, { limit: 1000, ...(startAfter !== undefined ? { startAfter } : {}), ...(revision !== undefined ? { revision } : {}) });
      revision = page.revision;
      for (const kv of page.items) {
        objects.set(kv.key, { key: kv.key, revision: kv.modRevision, object: decodeObject(kv.value, kv.modRevision) });
        startAfter = kv.key;
      }
      if (!page.more || page.items.length === 0) break;
    }
    if (generation !== this.generation) throw new TooOldError('watch cache restarted while loading', revision);
    this.objects = objects;
    this.sorted = undefined;
    this.applied = revision;
    this.oldest = revision;
    this.buffer = [];
    this.state = 'ready';
    const queued = this.queued;
    this.queued = [];
    for (const ev of queued) this.apply(ev);
    this.hub.wake();
  }

  /** A change from the shared store watch (in revision order). */
  apply(ev: CachedEvent): void {
    if (this.state === 'loading') {
      this.queued.push(ev);
      return;
    }
    if (this.state !== 'ready' || ev.revision <= this.applied) return;
    this.applied = ev.revision;
    if (ev.type === 'DELETED') {
      if (this.objects.delete(ev.key)) this.sorted = undefined;
    } else {
      if (!this.objects.has(ev.key)) this.sorted = undefined;
      this.objects.set(ev.key, { key: ev.key, revision: ev.revision, object: ev.object });
    }
    this.buffer.push(ev);
    if (this.buffer.length > this.capacity) {
      const dropped = this.buffer.splice(0, this.buffer.length - this.capacity);
      const last = dropped[dropped.length - 1];
      if (last) this.oldest = last.revision;
    }
    for (const s of this.subscribers) s.onEvent(ev);
  }

  /** Forgets everything after the store watch broke: subscribers end (they relist); the next start reloads. */
  reset(err: Error): void {
    this.generation++;
    const subs = [...this.subscribers];
    this.subscribers.clear();
    for (const s of subs) s.onEnd(err instanceof TooOldError ? err : new TooOldError('watch cache restarted', this.applied));
    const wasStarted = this.state !== 'idle';
    this.state = 'idle';
    this.objects = new Map();
    this.sorted = undefined;
    this.buffer = [];
    this.queued = [];
    if (wasStarted) {
      void this.start().catch((e: unknown) => log.warn({ component: 'watchcache', prefix: this.prefix, err: String(e) }, 'cannot reload; retrying on next use'));
    }
  }

  /**
   * Resolves true once this cache is ready and current at least at `revision`; false when
   * that did not happen within `timeoutMs` (the caller reads the store instead).
   */
  async waitFor(revision: number, timeoutMs: number): Promise<boolean> {
    await this.start();
    if (this.latestRevision >= revision) return true;
    await this.hub.waitFor(revision, timeoutMs);
    return this.state === 'ready' && this.latestRevision >= revision;
  }

  /** The current object under `key` (never mutate it). */
  entry(key: string): CachedObject | undefined {
    return this.objects.get(key);
  }

  /**
   * Objects whose keys start with `prefix` and sort after `startAfter`, in key order, for as
   * long as `take` returns true. Runs synchronously, so what it sees is one revision's state.
   */
  scan(prefix: string, startAfter: string | undefined, take: (o: CachedObject) => boolean): void {
    this.sorted ??= [...this.objects.keys()].sort();
    const keys = this.sorted;
    let i = startAfter !== undefined && startAfter >= prefix ? bound(keys, startAfter, false) : bound(keys, prefix, true);
    for (; i < keys.length; i++) {
      const k = keys[i] as string;
      if (!k.startsWith(prefix)) break;
      const o = this.objects.get(k);
      if (o && !take(o)) break;
    }
  }

  /**
   * Subscribes to every change after `afterRevision`. Served from memory when the buffer
   * covers it; otherwise from a private store watch.
   */
  async subscribe(afterRevision: number, sub: Subscriber): Promise<Subscription> {
    await this.start();
    if (afterRevision >= this.oldest) {
      for (const ev of this.buffer) if (ev.revision > afterRevision) sub.onEvent(ev);
      this.subscribers.add(sub);
      return { close: () => this.subscribers.delete(sub) };
    }
    let ended = false;
    const handle = this.store.watch(this.prefix, afterRevision, {
      onEvent: (e) => {
        if (!ended) sub.onEvent(toCachedEvent(e));
      },
      onError: (err) => {
        if (ended) return;
        ended = true;
        sub.onEnd(err);
      },
    });
    return {
      close: () => {
        ended = true;
        void handle.close();
      },
    };
  }

  /** Ends every subscriber cleanly (server shutdown). */
  close(): void {
    const subs = [...this.subscribers];
    this.subscribers.clear();
    for (const s of subs) s.onEnd();
  }
}

/** The shared store watch and one cache per resource prefix, created on first use. */
export class WatchCaches {
  private caches = new Map<string, WatchCache>();
  private handle: WatchHandle | undefined;
  private latest = 0;
  private started: Promise<void> | undefined;
  private closed = false;
  private waiters: { revision: number; resolve: () => void }[] = [];

  constructor(
    private readonly store: Store,
    private readonly root = '/registry/',
  ) {}

  /** The newest revision the shared store watch has delivered (or started at). */
  get latestRevision(): number {
    return this.latest;
  }

  for(prefix: string): WatchCache {
    let c = this.caches.get(prefix);
    if (!c) {
      c = new WatchCache(this, this.store, prefix);
      this.caches.set(prefix, c);
    }
    return c;
  }

  /** Starts the shared store watch (once). */
  start(): Promise<void> {
    this.started ??= (async () => {
      const rev = await this.store.currentRevision();
      this.latest = Math.max(this.latest, rev);
      this.watchFrom(rev);
    })();
    return this.started;
  }

  private watchFrom(rev: number): void {
    if (this.closed) return;
    this.handle = this.store.watch(this.root, rev, {
      onEvent: (e) => {
        if (e.revision <= this.latest) return;
        this.latest = e.revision;
        const prefix = resourcePrefixOf(e.key);
        const cache = prefix !== undefined ? this.caches.get(prefix) : undefined;
        if (cache) cache.apply(toCachedEvent(e));
        this.wake();
      },
      onError: (err) => {
        if (this.closed) return;
        log.warn({ component: 'watchcache', err: err.message }, 'store watch ended; restarting');
        // History we have not seen may be gone: every cache forgets and reloads.
        setTimeout(() => {
          if (this.closed) return;
          void this.store.currentRevision().then(
            (r) => {
              this.latest = r;
              this.watchFrom(r);
              for (const c of this.caches.values()) c.reset(err);
            },
            (e: unknown) => {
              log.error({ component: 'watchcache', err: String(e) }, 'cannot restart store watch');
              this.started = undefined;
              for (const c of this.caches.values()) c.reset(err);
            },
          );
        }, 100);
      },
    });
  }

  /** Resolves once the shared watch has delivered `revision`, or after `timeoutMs`. */
  waitFor(revision: number, timeoutMs: number): Promise<void> {
    if (this.latest >= revision) return Promise.resolve();
    return new Promise((resolve) => {
      const w = {
        revision,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        resolve();
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  /** Releases the readers waiting for a revision the watch has now delivered. */
  wake(): void {
    if (this.waiters.length === 0) return;
    const due = this.waiters.filter((w) => w.revision <= this.latest);
    if (due.length === 0) return;
    this.waiters = this.waiters.filter((w) => w.revision > this.latest);
    for (const w of due) w.resolve();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const c of this.caches.values()) c.close();
    for (const w of this.waiters) w.resolve();
    this.waiters = [];
    await this.handle?.close();
  }
}
