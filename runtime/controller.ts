/**
 * The reconcile loop: a primary informer, extra watches mapping other kinds to primary
 * keys, a `WorkQueue`, N workers and a `Reconciler`.
 *
 * Contract (as controller-runtime):
 * - `reconcile` resolves `{requeueAfterMs}` → the key is checked again after that delay and
 *   its backoff is forgotten (drift detection, waiting on an external operation);
 * - resolves `{requeue: true}` → retried with the key's rate-limited backoff, no error logged;
 * - resolves nothing → success, backoff forgotten; the key runs again on the next change;
 * - throws → counted in `controller_runtime_reconcile_errors_total`, and the `errorPolicy`
 *   decides (default: a `ReconcileError`'s `retryAfterMs` when it names one, otherwise
 *   rate-limited retry, 5 ms doubling to 5 min). A failure that the reconcile already
 *   reported in status (a provider outage) is still an error: throw it, do not return
 *   `{requeue: true}`.
 * - a throw that is not a `ReconcileError` and looks like a bug (not an `Error` at all, or a
 *   `TypeError`/`RangeError`/`ReferenceError`) is a panic: recovered, logged with its stack,
 *   counted in `controller_runtime_reconcile_panics_total` as well, and retried with backoff —
 *   one bad object never stops the worker.
 *
 * Guarantees: a key is never reconciled by two workers at once; a change that arrives while
 * its key is being reconciled runs it once more afterwards; on `start` every object in the
 * primary cache is enqueued (level-triggered: nothing seen while stopped is lost).
 * Every reconcile gets a fresh `reconcileID` carried in its log lines, and an `AbortSignal`
 * that fires when the controller stops (leadership lost, shutdown).
 */
import { randomUUID } from 'node:crypto';
import { log as rootLog, type Logger } from './log.js';
import { objectKey, type KubeObject } from './client.js';
import type { Informer } from './informer.js';
import { WorkQueue, ExponentialBackoff, type Clock, type RateLimiter } from './queue.js';
import type { ControllerMetrics, ReconcileOutcome, RuntimeMetrics } from './metrics.js';
import { ReconcileError, errorText } from './errors.js';

export interface ReconcileContext {
  log: Logger;
  reconcileID: string;
  /** Aborted when the controller stops; long external calls should honour it. */
  signal: AbortSignal;
}

export interface ReconcileResult {
  /** Check this key again after this many ms (backoff forgotten). */
  requeueAfterMs?: number;
  /** Retry with rate-limited backoff without treating it as an error. */
  requeue?: boolean;
}

export interface Reconciler {
  reconcile(key: string, ctx: ReconcileContext): Promise<ReconcileResult | void>;
}

/** What to do with a key whose reconcile threw (kube-rs `error_policy`). */
export type ErrorPolicy = (key: string, err: unknown, retries: number) => ErrorAction;
export type ErrorAction = { kind: 'rateLimited' } | { kind: 'requeueAfter'; ms: number } | { kind: 'drop' };

/** Retry with the per-key exponential backoff, whatever the error. */
export const rateLimitedRetry: ErrorPolicy = () => ({ kind: 'rateLimited' });

/**
 * The default: a `ReconcileError` that names a delay (`retryAfterMs`: a 429's Retry-After,
 * or the poll of a failure only a spec change can fix) is checked again after it; anything
 * else retries with the per-key exponential backoff.
 */
export const reconcileErrorPolicy: ErrorPolicy = (_key, err) =>
  err instanceof ReconcileError && err.retryAfterMs !== undefined && err.retryAfterMs > 0 ? { kind: 'requeueAfter', ms: err.retryAfterMs } : { kind: 'rateLimited' };

/** True for a throw that is a bug rather than a failure the code anticipated. */
export function isPanic(err: unknown): boolean {
  if (err instanceof ReconcileError) return false;
  return !(err instanceof Error) || err instanceof TypeError || err instanceof RangeError || err instanceof ReferenceError;
}

export interface ControllerOptions {
  /** Names the controller in logs and metrics (e.g. `instance`). */
  name: string;
  /** Workers; at most this many keys reconcile at once. Default 1. */
  concurrency?: number;
  /** Fresh limiter per run; default `new ExponentialBackoff()`. */
  rateLimiter?: () => RateLimiter;
  errorPolicy?: ErrorPolicy;
  metrics?: RuntimeMetrics;
  log?: Logger;
  clock?: Clock;
}

export type { ReconcileOutcome };

export class Controller<T extends KubeObject = KubeObject> {
  readonly name: string;
  private readonly concurrency: number;
  private readonly sources: Array<Informer<KubeObject>> = [];
  private readonly errorPolicy: ErrorPolicy;
  private readonly log: Logger;
  private readonly metrics: ControllerMetrics | undefined;
  private queue: WorkQueue | undefined;
  private abort: AbortController | undefined;
  private workers: Promise<void>[] = [];
  private running: Promise<void> | undefined;

  constructor(
    private readonly opts: ControllerOptions,
    readonly primary: Informer<T>,
    private readonly reconciler: Reconciler,
  ) {
    this.name = opts.name;
    this.concurrency = Math.max(1, opts.concurrency ?? 1);
    this.errorPolicy = opts.errorPolicy ?? reconcileErrorPolicy;
    this.log = (opts.log ?? rootLog).child({ controller: opts.name });
    this.metrics = opts.metrics?.controller(opts.name);
    this.sources.push(primary as unknown as Informer<KubeObject>);
    const enqueue = (obj: T): void => this.enqueue(objectKey(obj));
    primary.on('add', enqueue);
    primary.on('update', (_old, obj) => enqueue(obj));
    primary.on('delete', enqueue);
  }

  /**
   * Enqueues the keys `map` returns for every change of `informer`'s objects. On an update
   * `map` is called with the old object first, then the new one (an Instance moving from
   * node A to B enqueues both), so a stateful `map` sees every version in order.
   */
  watches<U extends KubeObject>(informer: Informer<U>, map: (obj: U) => string[]): this {
    this.sources.push(informer as unknown as Informer<KubeObject>);
    const enqueue = (obj: U): void => {
      let keys: string[];
      try {
        keys = map(obj);
      } catch (err) {
        this.log.error({ err: errorText(err), key: objectKey(obj) }, 'watch map function failed');
        return;
      }
      for (const k of keys) this.enqueue(k);
    };
    informer.on('add', enqueue);
    informer.on('update', (old, obj) => {
      enqueue(old);
      enqueue(obj);
    });
    informer.on('delete', enqueue);
    return this;
  }

  /** Adds a key now (no-op while stopped: `start` enqueues every cached object). */
  enqueue(key: string): void {
    this.queue?.add(key);
  }

  enqueueAfter(key: string, ms: number): void {
    this.queue?.addAfter(key, ms);
  }

  get isRunning(): boolean {
    return this.running !== undefined;
  }

  /** Keys waiting in the queue right now (0 while stopped). */
  get queueLength(): number {
    return this.queue?.length ?? 0;
  }

  /**
   * Waits for every source informer to sync (they must have been started), enqueues every
   * primary key and runs the workers. Resolves once the workers are up; `stop()` ends them.
   * Returns `false` if `signal` aborted before the caches synced.
   */
  async start(signal?: AbortSignal): Promise<boolean> {
    if (this.running) return true;
    for (const s of this.sources) {
      if (!(await s.waitForSync(signal))) return false;
    }
    if (this.running) return true;
    const abort = new AbortController();
    this.abort = abort;
    const queue = new WorkQueue({
      name: this.name,
      clock: this.opts.clock,
      rateLimiter: this.opts.rateLimiter?.() ?? new ExponentialBackoff(),
      metrics: this.opts.metrics?.queue(this.name),
    });
    this.queue = queue;
    for (const key of this.primary.keys()) queue.add(key);
    this.metrics?.workers(this.concurrency);
    this.workers = Array.from({ length: this.concurrency }, () => this.worker(queue, abort.signal));
    this.running = Promise.all(this.workers).then(() => undefined);
    this.log.info({ workers: this.concurrency, keys: queue.length }, 'controller started');
    return true;
  }

  /** Stops taking keys, aborts the reconciles in flight and waits for them to return. */
  async stop(): Promise<void> {
    const running = this.running;
    if (!running) return;
    this.abort?.abort();
    await this.queue?.shutDown();
    await running;
    this.queue = undefined;
    this.running = undefined;
    this.log.info('controller stopped');
  }

  private async worker(queue: WorkQueue, signal: AbortSignal): Promise<void> {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      try {
        await this.reconcileKey(queue, key, signal);
      } finally {
        queue.done(key);
      }
    }
  }

  private async reconcileKey(queue: WorkQueue, key: string, signal: AbortSignal): Promise<void> {
    const reconcileID = randomUUID();
    const log = this.log.child({ key, reconcileID });
    const started = process.hrtime.bigint();
    let outcome: ReconcileOutcome;
    this.metrics?.active(1);
    try {
      const res = await this.reconciler.reconcile(key, { log, reconcileID, signal });
      if (res?.requeueAfterMs !== undefined && res.requeueAfterMs > 0) {
        queue.forget(key);
        queue.addAfter(key, res.requeueAfterMs);
        outcome = 'requeue_after';
      } else if (res?.requeue) {
        queue.addRateLimited(key);
        outcome = 'requeue';
      } else {
        queue.forget(key);
        outcome = 'success';
      }
    } catch (err) {
      outcome = 'error';
      this.metrics?.error();
      const panic = isPanic(err);
      if (panic) this.metrics?.panic();
      if (signal.aborted) {
        log.debug({ err: errorText(err) }, 'reconcile aborted by shutdown');
      } else {
        let action: ErrorAction;
        try {
          action = this.errorPolicy(key, err, queue.numRequeues(key));
        } catch (policyErr) {
          log.error({ err: errorText(policyErr) }, 'error policy failed; retrying with backoff');
          action = { kind: 'rateLimited' };
        }
        const fields = { err: errorText(err), retries: queue.numRequeues(key), action: action.kind };
        if (panic) log.error({ ...fields, stack: err instanceof Error ? err.stack : undefined }, 'reconcile panicked (recovered)');
        else if (err instanceof ReconcileError) log.warn({ ...fields, reason: err.reason, retryable: err.retryable }, 'reconcile failed');
        else log.error(fields, 'reconcile failed');
        if (action.kind === 'rateLimited') queue.addRateLimited(key);
        else if (action.kind === 'requeueAfter') queue.addAfter(key, action.ms);
        else queue.forget(key);
      }
    }
    this.metrics?.active(-1);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    this.metrics?.reconciled(outcome, seconds);
    log.debug({ outcome, seconds }, 'reconciled');
  }
}
