/**
 * An informer: a local cache of one resource kept current by list + watch, with indexes
 * and add/update/delete notifications (kube-rs watcher + reflector in one piece).
 *
 * Guarantees:
 * - After `hasSynced()` the cache holds every object of the first complete list, and from
 *   then on every change the API server reports.
 * - Any watch failure (network error, server restart, HTTP error, stream cut) restarts the
 *   watch from the last seen resourceVersion after a jittered exponential backoff
 *   (`initialBackoffMs` doubling up to `maxBackoffMs`); the backoff resets once a list or
 *   watch delivers data again.
 * - 410 Gone (resourceVersion compacted) relists. A relist replaces the cache and emits
 *   `add` for new objects, `update` for changed ones and `delete` for ones that vanished
 *   while the watch was down — so handlers never miss a deletion.
 * - A watch that ends normally (server `timeoutSeconds`) is reopened at once.
 *
 * Caveats: objects returned by `get`/`list`/`byIndex` and passed to handlers are the cached
 * instances — never mutate them (`structuredClone` first). Handlers run synchronously in
 * event order; an exception in one is logged and does not stop the others.
 */
import { log as rootLog, type Logger } from './log.js';
import { isGone, objectKey, type KubeObject, type ListOptions, type ResourceClient } from './client.js';

export type InformerEvent = 'add' | 'update' | 'delete';
type AddHandler<T> = (obj: T) => void;
type UpdateHandler<T> = (oldObj: T, newObj: T) => void;
type DeleteHandler<T> = (obj: T) => void;

export interface InformerOptions extends ListOptions {
  /** Watch one namespace; all namespaces when unset. */
  namespace?: string;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Server-side bound of each watch request (default 300 s). */
  watchTimeoutSeconds?: number;
  log?: Logger;
}

interface Index<T> {
  fn: (obj: T) => string[];
  byValue: Map<string, Set<string>>;
  byKey: Map<string, string[]>;
}

export class Informer<T extends KubeObject = KubeObject> {
  private readonly cache = new Map<string, T>();
  private readonly indexes = new Map<string, Index<T>>();
  private readonly handlers = { add: new Set<AddHandler<T>>(), update: new Set<UpdateHandler<T>>(), delete: new Set<DeleteHandler<T>>() };
  private resourceVersion = '';
  private synced = false;
  private syncWaiters: Array<(ok: boolean) => void> = [];
  private abort: AbortController | undefined;
  private loop: Promise<void> | undefined;
  private wakeSleep: (() => void) | undefined;
  private readonly log: Logger;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  /** Counts relists (initial list included) — observable for tests and metrics. */
  relists = 0;
  /** Counts watch (re)starts after an error. */
  restarts = 0;
  /** Counts 410 Gone answers (the resourceVersion it would resume from was compacted). */
  expired = 0;

  constructor(
    readonly resource: ResourceClient<T>,
    private readonly opts: InformerOptions = {},
  ) {
    this.log = (opts.log ?? rootLog).child({ component: 'informer', resource: resource.ref.plural });
    this.initialBackoffMs = opts.initialBackoffMs ?? 200;
    this.maxBackoffMs = opts.maxBackoffMs ?? 15_000;
  }

  /** Starts list + watch in the background; idempotent. */
  start(): void {
    if (this.loop) return;
    this.abort = new AbortController();
    this.loop = this.run(this.abort.signal);
  }

  /** Stops the watch; resolves when the loop has ended. The cache stays readable. */
  async stop(): Promise<void> {
    if (!this.loop) return;
    this.abort?.abort();
    this.wakeSleep?.();
    await this.loop;
    this.loop = undefined;
    const ws = this.syncWaiters;
    this.syncWaiters = [];
    for (const w of ws) w(false);
  }

  get isRunning(): boolean {
    return this.loop !== undefined;
  }

  hasSynced(): boolean {
    return this.synced;
  }

  /** Resolves `true` once synced, `false` if `signal` aborts or the informer stops first. */
  waitForSync(signal?: AbortSignal): Promise<boolean> {
    if (this.synced) return Promise.resolve(true);
    if (signal?.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (ok: boolean): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve(ok);
      };
      const onAbort = (): void => {
        this.syncWaiters = this.syncWaiters.filter((w) => w !== done);
        resolve(false);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.syncWaiters.push(done);
    });
  }

  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  keys(): string[] {
    return [...this.cache.keys()];
  }

  get size(): number {
    return this.cache.size;
  }

  /** Adds an index; `fn` returns the index values of an object (e.g. `[spec.nodeName]`). */
  addIndex(name: string, fn: (obj: T) => string[]): void {
    if (this.indexes.has(name)) throw new Error(`informer ${this.resource.ref.plural}: index ${name} already exists`);
    const idx: Index<T> = { fn, byValue: new Map(), byKey: new Map() };
    this.indexes.set(name, idx);
    for (const [key, obj] of this.cache) this.indexObject(idx, key, obj);
  }

  byIndex(name: string, value: string): T[] {
    const idx = this.indexes.get(name);
    if (!idx) throw new Error(`informer ${this.resource.ref.plural}: no index ${name}`);
    const out: T[] = [];
    for (const key of idx.byValue.get(value) ?? []) {
      const obj = this.cache.get(key);
      if (obj) out.push(obj);
    }
    return out;
  }

  /** Registers a handler; returns a function that removes it. */
  on(event: 'add', handler: AddHandler<T>): () => void;
  on(event: 'update', handler: UpdateHandler<T>): () => void;
  on(event: 'delete', handler: DeleteHandler<T>): () => void;
  on(event: InformerEvent, handler: AddHandler<T> | UpdateHandler<T>): () => void {
    const set = this.handlers[event] as Set<typeof handler>;
    set.add(handler);
    return () => set.delete(handler);
  }

  private async run(signal: AbortSignal): Promise<void> {
    let backoff = this.initialBackoffMs;
    while (!signal.aborted) {
      try {
        if (!this.resourceVersion) {
          const res = await this.resource.listWithVersion(this.opts.namespace, this.opts, signal);
          if (signal.aborted) break;
          this.replace(res.items);
          this.resourceVersion = res.resourceVersion;
          this.relists++;
          backoff = this.initialBackoffMs;
          this.markSynced();
        }
        const watchStarted = performance.now();
        let events = 0;
        await this.resource.watch(
          this.opts.namespace,
          {
            resourceVersion: this.resourceVersion,
            labelSelector: this.opts.labelSelector,
            fieldSelector: this.opts.fieldSelector,
            allowWatchBookmarks: true,
            timeoutSeconds: this.opts.watchTimeoutSeconds,
            signal,
          },
          (type, obj) => {
            events++;
            backoff = this.initialBackoffMs;
            const rv = obj.metadata?.resourceVersion;
            if (type === 'BOOKMARK') {
              if (rv) this.resourceVersion = rv;
              return;
            }
            if (type === 'DELETED') this.remove(obj);
            else this.upsert(obj);
            if (rv) this.resourceVersion = rv;
          },
        );
        // A server that closes watches at once must not make this loop spin.
        if (events === 0 && performance.now() - watchStarted < 1000 && !signal.aborted) {
          await this.sleep(backoff, signal);
          backoff = Math.min(backoff * 2, this.maxBackoffMs);
        }
      } catch (err) {
        if (signal.aborted) break;
        this.restarts++;
        if (isGone(err)) {
          this.expired++;
          this.log.info({ rv: this.resourceVersion }, 'resourceVersion expired; relisting');
          this.resourceVersion = '';
        } else {
          this.log.warn({ err: errText(err), retryInMs: Math.round(backoff) }, 'list/watch failed; retrying');
        }
        await this.sleep(backoff * (0.8 + Math.random() * 0.4), signal);
        backoff = Math.min(backoff * 2, this.maxBackoffMs);
      }
    }
  }

  private markSynced(): void {
    if (this.synced) return;
    this.synced = true;
    const ws = this.syncWaiters;
    this.syncWaiters = [];
    for (const w of ws) w(true);
  }

  private sleep(ms: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wakeSleep = undefined;
        resolve();
      }, ms);
      this.wakeSleep = () => {
        clearTimeout(t);
        this.wakeSleep = undefined;
        resolve();
      };
    });
  }

  /** Replaces the cache with a full list, emitting the differences as events. */
  private replace(items: T[]): void {
    const seen = new Set<string>();
    for (const obj of items) {
      seen.add(objectKey(obj));
      this.upsert(obj);
    }
    for (const [key, obj] of [...this.cache]) if (!seen.has(key)) this.remove(obj);
  }

  private upsert(obj: T): void {
    const key = objectKey(obj);
    const old = this.cache.get(key);
    if (old && old.metadata?.resourceVersion === obj.metadata?.resourceVersion && old.metadata?.uid === obj.metadata?.uid) return;
    this.cache.set(key, obj);
    for (const idx of this.indexes.values()) {
      this.unindexKey(idx, key);
      this.indexObject(idx, key, obj);
    }
    if (old) this.emit('update', old, obj);
    else this.emit('add', obj);
  }

  private remove(obj: T): void {
    const key = objectKey(obj);
    const old = this.cache.get(key);
    if (!old) return;
    this.cache.delete(key);
    for (const idx of this.indexes.values()) this.unindexKey(idx, key);
    this.emit('delete', obj.metadata?.resourceVersion ? obj : old);
  }

  private indexObject(idx: Index<T>, key: string, obj: T): void {
    let values: string[];
    try {
      values = idx.fn(obj);
    } catch (err) {
      this.log.error({ err: errText(err), key }, 'index function failed');
      values = [];
    }
    idx.byKey.set(key, values);
    for (const v of values) {
      let set = idx.byValue.get(v);
      if (!set) idx.byValue.set(v, (set = new Set()));
      set.add(key);
    }
  }

  private unindexKey(idx: Index<T>, key: string): void {
    for (const v of idx.byKey.get(key) ?? []) {
      const set = idx.byValue.get(v);
      set?.delete(key);
      if (set?.size === 0) idx.byValue.delete(v);
    }
    idx.byKey.delete(key);
  }

  private emit(event: 'add' | 'delete', obj: T): void;
  private emit(event: 'update', oldObj: T, newObj: T): void;
  private emit(event: InformerEvent, a: T, b?: T): void {
    for (const h of this.handlers[event]) {
      try {
        if (event === 'update') (h as UpdateHandler<T>)(a, b as T);
        else (h as AddHandler<T>)(a);
      } catch (err) {
        this.log.error({ err: errText(err), event, key: objectKey(a) }, 'informer handler failed');
      }
    }
  }
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
