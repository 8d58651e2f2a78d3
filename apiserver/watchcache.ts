/**
 * One store watch per resource prefix, fanned out to every HTTP watcher of that resource.
 *
 * Guarantees: a subscriber sees every change after the revision it asked for exactly once, in
 * revision order, or is ended with `TooOldError` (the client relists). Recent changes are kept
 * in a ring buffer, so a watch that resumes from a recent resourceVersion is served from
 * memory; older ones fall back to a private store watch (which fails with `TooOldError` once
 * the store compacted that history).
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
  if (e.prevValue !== undefined) ev.prevObject = decodeObject(e.prevValue, e.revision);
  return ev;
}

export class WatchCache {
  private buffer: CachedEvent[] = [];
  /** Every change after this revision is either in `buffer` or was evicted (then `oldest` moved). */
  private oldest = 0;
  private latest = 0;
  private handle: WatchHandle | undefined;
  private subscribers = new Set<Subscriber>();
  private closed = false;
  private started: Promise<void> | undefined;

  constructor(
    private readonly store: Store,
    readonly prefix: string,
    private readonly capacity = 2048,
  ) {}

  /** The newest revision this cache has seen (events or start). */
  get latestRevision(): number {
    return this.latest;
  }

  /** True when changes after `revision` can be served from memory. */
  covers(revision: number): boolean {
    return this.started !== undefined && revision >= this.oldest;
  }

  start(): Promise<void> {
    this.started ??= (async () => {
      const rev = await this.store.currentRevision();
      this.oldest = rev;
      this.latest = rev;
      this.watchFrom(rev);
    })();
    return this.started;
  }

  private watchFrom(rev: number): void {
    if (this.closed) return;
    this.handle = this.store.watch(this.prefix, rev, {
      onEvent: (e) => this.deliver(toCachedEvent(e)),
      onError: (err) => {
        if (this.closed) return;
        log.warn({ component: 'watchcache', prefix: this.prefix, err: err.message }, 'store watch ended; restarting');
        // History we have not seen may be gone: end every subscriber (they relist) and restart fresh.
        const subs = [...this.subscribers];
        this.subscribers.clear();
        for (const s of subs) s.onEnd(err instanceof TooOldError ? err : new TooOldError('watch cache restarted', this.latest));
        this.buffer = [];
        setTimeout(() => {
          if (this.closed) return;
          void this.store.currentRevision().then(
            (r) => {
              this.oldest = r;
              this.latest = r;
              this.watchFrom(r);
            },
            (e: unknown) => {
              log.error({ component: 'watchcache', prefix: this.prefix, err: String(e) }, 'cannot restart store watch');
              this.watchFrom(this.latest);
            },
          );
        }, 100);
      },
    });
  }

  private deliver(ev: CachedEvent): void {
    if (ev.revision <= this.latest) return;
    this.latest = ev.revision;
    this.buffer.push(ev);
    if (this.buffer.length > this.capacity) {
      const dropped = this.buffer.splice(0, this.buffer.length - this.capacity);
      const last = dropped[dropped.length - 1];
      if (last) this.oldest = last.revision;
    }
    for (const s of this.subscribers) s.onEvent(ev);
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

  /** Ends every subscriber cleanly (server shutdown) and stops the store watch. */
  async close(): Promise<void> {
    this.closed = true;
    const subs = [...this.subscribers];
    this.subscribers.clear();
    for (const s of subs) s.onEnd();
    await this.handle?.close();
  }
}

/** One cache per key prefix, created on first use. */
export class WatchCaches {
  private caches = new Map<string, WatchCache>();
  constructor(private readonly store: Store) {}

  for(prefix: string): WatchCache {
    let c = this.caches.get(prefix);
    if (!c) {
      c = new WatchCache(this.store, prefix);
      this.caches.set(prefix, c);
    }
    return c;
  }

  async close(): Promise<void> {
    await Promise.all([...this.caches.values()].map((c) => c.close()));
  }
}
