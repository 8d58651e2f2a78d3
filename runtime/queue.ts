/**
 * A keyed, level-triggered work queue with the semantics of client-go's workqueue:
 *
 * - **Dedupe.** Adding a key that is already waiting is a no-op; the key is processed once.
 * - **One worker per key.** A key handed out by `get()` is *processing* until `done(key)`.
 *   Adding it meanwhile marks it dirty; `done` puts it back once, after the current run —
 *   so two workers never hold the same key and no change is lost.
 * - **Per-key backoff.** `addRateLimited(key)` waits `rateLimiter.when(key)`; the default
 *   `ExponentialBackoff` starts at 5 ms and doubles per consecutive failure, capped at
 *   5 minutes (reached after 16 failures). client-go caps at 1000 s; for a control plane
 *   that drives external systems five minutes bounds how stale a failing object can get
 *   without hammering a broken provider. `forget(key)` resets the count.
 * - **Delays.** `addAfter(key, ms)` adds the key later; a key waiting for several delays
 *   fires at the earliest one.
 * - **Shutdown.** `shutDown()` stops accepting keys, drops waiting and delayed ones, wakes
 *   idle `get()` callers with `undefined`, and resolves when keys in flight are `done`.
 *
 * Time comes from an injectable `Clock` so tests advance it by hand.
 */

export interface Clock {
  now(): number;
  /** Calls `fn` after `ms`; returns a canceller. */
  setTimer(fn: () => void, ms: number): () => void;
}

export const systemClock: Clock = {
  // monotonic: delays and backoffs must not stretch or collapse when the wall clock jumps
  now: () => performance.now(),
  setTimer(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return () => clearTimeout(t);
  },
};

/** Decides how long a failing key waits before its next try. */
export interface RateLimiter {
  /** The delay for the next retry of `key`; counts one more failure. */
  when(key: string): number;
  /** Resets `key` after a success. */
  forget(key: string): void;
  /** Consecutive failures counted for `key`. */
  retries(key: string): number;
}

/** `baseMs · 2^failures`, capped at `maxMs`. Defaults: 5 ms, 5 minutes. */
export class ExponentialBackoff implements RateLimiter {
  static readonly DEFAULT_BASE_MS = 5;
  static readonly DEFAULT_MAX_MS = 5 * 60_000;
  private readonly failures = new Map<string, number>();

  constructor(
    readonly baseMs = ExponentialBackoff.DEFAULT_BASE_MS,
    readonly maxMs = ExponentialBackoff.DEFAULT_MAX_MS,
  ) {}

  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    // 2^n overflows to Infinity long after the cap is reached; min() keeps it finite.
    return Math.min(this.baseMs * 2 ** Math.min(n, 60), this.maxMs);
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }
}

/** Hooks for queue metrics (see `runtime/metrics.ts`); all optional. */
export interface QueueMetrics {
  depth(n: number): void;
  added(): void;
  /** Seconds a key waited between being queued and handed to a worker. */
  queued(seconds: number): void;
  /** Seconds a worker held a key. */
  worked(seconds: number): void;
  retried(): void;
}

export interface WorkQueueOptions {
  name?: string;
  clock?: Clock;
  rateLimiter?: RateLimiter;
  metrics?: QueueMetrics;
}

export class WorkQueue {
  readonly name: string;
  private readonly clock: Clock;
  private readonly limiter: RateLimiter;
  private readonly metrics: QueueMetrics | undefined;

  /** FIFO of waiting keys; `head` avoids O(n) shifts. */
  private items: string[] = [];
  private head = 0;
  /** Keys that need processing (waiting, or changed while processing). */
  private readonly dirty = new Set<string>();
  private readonly processing = new Map<string, number>();
  private readonly queuedAt = new Map<string, number>();
  /** Delayed adds: key → [fire time, canceller]. */
  private readonly delayed = new Map<string, { at: number; cancel: () => void }>();
  private waiters: Array<() => void> = [];
  private drainWaiters: Array<() => void> = [];
  private shuttingDown = false;

  constructor(opts: WorkQueueOptions = {}) {
    this.name = opts.name ?? 'queue';
    this.clock = opts.clock ?? systemClock;
    this.limiter = opts.rateLimiter ?? new ExponentialBackoff();
    this.metrics = opts.metrics;
  }

  /** Keys waiting to be handed out (not counting processing or delayed ones). */
  get length(): number {
    return this.items.length - this.head;
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /** Keys currently held by workers. */
  processingKeys(): string[] {
    return [...this.processing.keys()];
  }

  add(key: string): void {
    if (this.shuttingDown) return;
    if (this.dirty.has(key)) return;
    this.metrics?.added();
    this.dirty.add(key);
    if (this.processing.has(key)) return;
    this.push(key);
  }

  /** Adds `key` after `ms` (immediately when `ms <= 0`); the earliest pending delay wins. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const at = this.clock.now() + ms;
    const prev = this.delayed.get(key);
    if (prev) {
      if (prev.at <= at) return;
      prev.cancel();
    }
    const cancel = this.clock.setTimer(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    this.delayed.set(key, { at, cancel });
  }

  /** Adds `key` after its backoff delay and counts one more failure. */
  addRateLimited(key: string): void {
    if (this.shuttingDown) return;
    this.metrics?.retried();
    this.addAfter(key, this.limiter.when(key));
  }

  /** Resets the backoff of `key` (call after a success). */
  forget(key: string): void {
    this.limiter.forget(key);
  }

  numRequeues(key: string): number {
    return this.limiter.retries(key);
  }

  /**
   * The next key to process, waiting until one is available. `undefined` once the queue
   * is shutting down. The caller must call `done(key)` when finished.
   */
  async get(): Promise<string | undefined> {
    for (;;) {
      if (this.shuttingDown) return undefined;
      if (this.length > 0) return this.take();
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Marks `key` finished; re-queues it once if it was added while processing. */
  done(key: string): void {
    const started = this.processing.get(key);
    if (started === undefined) return;
    this.processing.delete(key);
    this.metrics?.worked((this.clock.now() - started) / 1000);
    if (this.dirty.has(key) && !this.shuttingDown) this.push(key);
    if (this.processing.size === 0) {
      const ws = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of ws) w();
    }
  }

  /** Stops the queue; resolves when every key in flight is `done`. */
  shutDown(): Promise<void> {
    if (!this.shuttingDown) {
      this.shuttingDown = true;
      for (const d of this.delayed.values()) d.cancel();
      this.delayed.clear();
      this.items = [];
      this.head = 0;
      for (const k of this.dirty) if (!this.processing.has(k)) this.dirty.delete(k);
      this.metrics?.depth(0);
      const ws = this.waiters;
      this.waiters = [];
      for (const w of ws) w();
    }
    if (this.processing.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private push(key: string): void {
    this.items.push(key);
    this.queuedAt.set(key, this.clock.now());
    this.metrics?.depth(this.length);
    const w = this.waiters.shift();
    if (w) w();
  }

  private take(): string {
    const key = this.items[this.head++] as string;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    this.dirty.delete(key);
    const now = this.clock.now();
    this.processing.set(key, now);
    const at = this.queuedAt.get(key);
    this.queuedAt.delete(key);
    if (at !== undefined) this.metrics?.queued((now - at) / 1000);
    this.metrics?.depth(this.length);
    return key;
  }
}
