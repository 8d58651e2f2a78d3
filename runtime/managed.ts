/**
 * The managed-resource lifecycle (crossplane-runtime's managed reconciler): one generic
 * reconcile for every kind backed by something outside the API — Instances (machines),
 * Networks (VLANs on switches), ComputeNodes (the systems themselves). A kind plugs in a
 * `ManagedKind` (how to reach its external system) whose `connect` yields an
 * `ExternalClient` (observe / create / update / delete); this file owns the order of things
 * and the policy:
 *
 *   fetch (cache) → deleting?  → finalizer? → connect → delete → observe (gone?) → finalizer off
 *                 → finalizer on → connect (or wait) → observe → create | update | nothing
 *                 → settle → status (Synced=True + the client's report) → next check
 *
 * Every branch ends the same way: set conditions, write status (only when it changed, see
 * `reportStatus`), choose the next check. Every external call runs under a deadline
 * (`callTimeoutMs`) and the reconcile's `AbortSignal`; a call that does not answer in time
 * fails with `ReconcileError(DEADLINE_EXCEEDED)` (retryable) even if the client ignores the
 * signal.
 *
 * Error policy: a failed step sets `Synced=False` with the `ReconcileError`'s reason and
 * message (`ReconcileError` for anything else), `Ready=False` unless the resource is already
 * ready (a running machine whose provider hiccups stays Ready), records one Warning event
 * per distinct failure, and then *throws*, so the controller counts it in
 * `controller_runtime_reconcile_errors_total` and retries: retryable → per-key backoff (or
 * the error's `retryAfterMs`), not retryable → after the poll interval (only a spec change
 * or drift can fix it), or the kind's `failureRequeueMs` when it sets one.
 *
 * Contract for clients: every method is idempotent and keyed by the object (its uid), does
 * not block on long operations (start the work, let `observe` report progress), and honours
 * the signal it is given.
 */
import type { KubeObject, ResourceClient } from './client.js';
import type { Informer } from './informer.js';
import type { Reconciler, ReconcileContext, ReconcileResult } from './controller.js';
import type { EventRecorder } from './events.js';
import type { Logger } from './log.js';
import { getCondition, type ConditionInput, type ConditionLike } from './conditions.js';
import { reportStatus } from './status.js';
import { ensureFinalizer, hasFinalizer, isDeleting, removeFinalizer } from './finalizers.js';
import { DEADLINE_EXCEEDED, ReconcileError, errorText } from './errors.js';

/** What `observe` must say; clients add their own fields. */
export interface ExternalObservation {
  /** False when no external resource exists for the object. */
  exists: boolean;
  /** False when the external resource differs from the spec in a way `update` can repair. */
  upToDate: boolean;
}

export interface ManagedStatus {
  observedGeneration?: number;
  conditions?: ConditionLike[];
}

export type ManagedObject = KubeObject & { status?: ManagedStatus };

type StatusOf<T extends ManagedObject> = NonNullable<T['status']>;

/** Conditions and status fields one branch writes. */
export interface StatusReport<T extends ManagedObject> {
  conditions: ConditionInput[];
  mutate?: (status: StatusOf<T>) => void;
}

/** What each external call gets. */
export interface CallContext<R extends string> {
  /** Fires at the call's deadline or when the controller stops. */
  signal: AbortSignal;
  log: Logger;
  recorder: EventRecorder<R>;
}

export interface ExternalClient<T extends ManagedObject, O extends ExternalObservation, R extends string> {
  observe(obj: T, call: CallContext<R>): Promise<O>;
  /** Creates the external resource (a no-op if it exists). Record the Event here. */
  create(obj: T, observed: O, call: CallContext<R>): Promise<void>;
  /** Moves the existing resource towards the spec. */
  update(obj: T, observed: O, call: CallContext<R>): Promise<void>;
  /** Removes it and everything made for it; absent is success. */
  delete(obj: T, call: CallContext<R>): Promise<void>;
  /** After observe (and create/update): work that needs the resource as it is now (attachments). */
  settle?(obj: T, observed: O, call: CallContext<R>): Promise<void>;
  /** What to write after a successful pass, beside `Synced=True`; `requeueAfterMs` overrides the lifecycle's choice. */
  report(obj: T, observed: O): StatusReport<T> & { requeueAfterMs?: number };
  /** After `delete` is confirmed by `observe` (ports made for the resource, the Event). */
  deleted?(obj: T, call: CallContext<R>): Promise<void>;
}

/**
 * What `connect` found: a client to act through; a reason to wait that is not a failure
 * (no node bound yet) with the status to show meanwhile; or, while deleting, nothing
 * external left to delete.
 */
export type Connected<T extends ManagedObject, O extends ExternalObservation, R extends string> =
  | { client: ExternalClient<T, O, R> }
  | { wait: StatusReport<T>; requeueAfterMs?: number }
  | { absent: true };

export interface ManagedKind<T extends ManagedObject, O extends ExternalObservation, R extends string> {
  /** Lowercase kind for log lines and deadline messages (`instance`). */
  readonly kind: string;
  /** Protects the external resource; without one, deletion only ends the object's connection. */
  readonly finalizer?: string;
  /** The Warning event reason of a failed step (`ProviderError`). */
  readonly failureEvent: R;
  connect(obj: T, ctx: ReconcileContext, opts: { deleting: boolean }): Promise<Connected<T, O, R>>;
  /** Status written once when deletion starts (e.g. `state: terminating`). */
  deleting?(obj: T): StatusReport<T> | undefined;
  /** Status fields to write beside `Synced=False` (conditions are the lifecycle's). */
  failureStatus?(obj: T, err: ReconcileError | undefined): ((status: StatusOf<T>) => void) | undefined;
  /** Conditions set on failure instead of `Synced`/`Ready` (a node's `Ready` tracks reachability). */
  failureConditions?(obj: T, reason: string, message: string): ConditionInput[];
  /** Called with every failure before it is reported (drop a connection that proved dead). */
  onFailure?(obj: T, err: unknown): Promise<void>;
  /** Whether a failure event is recorded (default: when Synced's reason or message changes). */
  failureEventWanted?(obj: T, reason: string, message: string): boolean;
  /** Next check after any failure, overriding the per-error policy (a node's heartbeat). */
  failureRequeueMs?(obj: T): number;
  /** Called for a key whose object is gone (or deleting without a finalizer). */
  forgotten?(key: string): Promise<void>;
}

export interface ManagedReconcilerOptions<T extends ManagedObject, R extends string> {
  resource: ResourceClient<T>;
  cache: Informer<T>;
  recorder: EventRecorder<R>;
  /** Steady-state drift check. Default 30 s. */
  pollIntervalMs?: number;
  /** Check interval while the resource is in transition (or being deleted). Default 1 s. */
  transitionPollMs?: number;
  /** Deadline of one external call. Default 60 s. */
  callTimeoutMs?: number;
}

export class ManagedReconciler<T extends ManagedObject, O extends ExternalObservation, R extends string> implements Reconciler {
  readonly pollMs: number;
  readonly transitionMs: number;
  readonly callTimeoutMs: number;

  constructor(
    private readonly k: ManagedKind<T, O, R>,
    private readonly o: ManagedReconcilerOptions<T, R>,
  ) {
    this.pollMs = o.pollIntervalMs ?? 30_000;
    this.transitionMs = o.transitionPollMs ?? 1000;
    this.callTimeoutMs = o.callTimeoutMs ?? 60_000;
  }

  async reconcile(key: string, ctx: ReconcileContext): Promise<ReconcileResult | void> {
    const cached = this.o.cache.get(key);
    if (!cached) {
      await this.k.forgotten?.(key);
      return;
    }
    if (isDeleting(cached)) {
      if (!this.k.finalizer || !hasFinalizer(cached, this.k.finalizer)) {
        await this.k.forgotten?.(key);
        return;
      }
      return this.guarded(cached, ctx, () => this.remove(cached, ctx));
    }
    const obj = this.k.finalizer ? await ensureFinalizer(this.o.resource, cached, this.k.finalizer) : cached;
    return this.guarded(obj, ctx, () => this.apply(obj, ctx));
  }

  private async apply(obj: T, ctx: ReconcileContext): Promise<ReconcileResult> {
    const c = await this.k.connect(obj, ctx, { deleting: false });
    if ('wait' in c) {
      await this.write(obj, c.wait);
      return c.requeueAfterMs !== undefined ? { requeueAfterMs: c.requeueAfterMs } : {};
    }
    if ('absent' in c) return {};
    const client = c.client;
    let observed = await this.call(ctx, 'observe', (call) => client.observe(obj, call));
    if (!observed.exists) {
      await this.call(ctx, 'create', (call) => client.create(obj, observed, call));
      ctx.log.info({ kind: this.k.kind }, 'external resource created');
      observed = await this.call(ctx, 'observe', (call) => client.observe(obj, call));
    } else if (!observed.upToDate) {
      await this.call(ctx, 'update', (call) => client.update(obj, observed, call));
      observed = await this.call(ctx, 'observe', (call) => client.observe(obj, call));
    }
    if (client.settle) {
      const settled = observed;
      await this.call(ctx, 'settle', (call) => client.settle!(obj, settled, call));
    }
    const report = client.report(obj, observed);
    await this.write(obj, {
      conditions: [{ type: 'Synced', status: 'True', reason: 'ReconcileSuccess', message: '' }, ...report.conditions],
      ...(report.mutate ? { mutate: report.mutate } : {}),
    });
    return { requeueAfterMs: report.requeueAfterMs ?? (!observed.exists || !observed.upToDate ? this.transitionMs : this.pollMs) };
  }

  private async remove(obj: T, ctx: ReconcileContext): Promise<ReconcileResult | void> {
    const deleting = this.k.deleting?.(obj);
    if (deleting) await this.write(obj, deleting);
    const c = await this.k.connect(obj, ctx, { deleting: true });
    if ('wait' in c) {
      await this.write(obj, c.wait);
      return { requeueAfterMs: c.requeueAfterMs ?? this.transitionMs };
    }
    if ('client' in c) {
      const client = c.client;
      await this.call(ctx, 'delete', (call) => client.delete(obj, call));
      const observed = await this.call(ctx, 'observe', (call) => client.observe(obj, call));
      if (observed.exists) return { requeueAfterMs: this.transitionMs };
      if (client.deleted) await this.call(ctx, 'clean up after', (call) => client.deleted!(obj, call));
      ctx.log.info({ kind: this.k.kind }, 'external resource deleted');
    }
    await removeFinalizer(this.o.resource, obj, this.k.finalizer!);
  }

  /** Runs one branch; a failure is reported in status and events, then thrown (see the header). */
  private async guarded(obj: T, ctx: ReconcileContext, run: () => Promise<ReconcileResult | void>): Promise<ReconcileResult | void> {
    try {
      return await run();
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      throw await this.failed(obj, err, ctx);
    }
  }

  private async failed(obj: T, err: unknown, ctx: ReconcileContext): Promise<unknown> {
    const re = err instanceof ReconcileError ? err : undefined;
    const reason = re?.reason ?? 'ReconcileError';
    const message = errorText(err);
    await this.k.onFailure?.(obj, err);
    const prev = getCondition(obj.status?.conditions, 'Synced');
    const wanted = this.k.failureEventWanted?.(obj, reason, message) ?? (prev?.reason !== reason || prev.message !== message);
    if (wanted) this.o.recorder.warning(obj, this.k.failureEvent, `${reason}: ${message}`);
    const conditions = this.k.failureConditions?.(obj, reason, message) ?? [
      { type: 'Synced', status: 'False' as const, reason, message },
      ...(getCondition(obj.status?.conditions, 'Ready')?.status === 'True' ? [] : [{ type: 'Ready', status: 'False' as const, reason, message }]),
    ];
    const mutate = this.k.failureStatus?.(obj, re);
    try {
      await this.write(obj, { conditions, ...(mutate ? { mutate } : {}) });
    } catch (writeErr) {
      ctx.log.warn({ err: errorText(writeErr) }, 'cannot report the failure in status');
    }
    const retryAfterMs = this.k.failureRequeueMs?.(obj) ?? re?.retryAfterMs ?? (re && !re.retryable ? this.pollMs : undefined);
    if (!re) return err;
    return retryAfterMs === re.retryAfterMs ? re : new ReconcileError(re.reason, re.message, re.retryable, retryAfterMs);
  }

  /**
   * One external call under the deadline and the reconcile's signal. Resolves or rejects with
   * the call, or rejects with `DeadlineExceeded` at the deadline whether or not the call
   * honours the signal (its late result is ignored).
   */
  private call<X>(ctx: ReconcileContext, op: string, fn: (call: CallContext<R>) => Promise<X>): Promise<X> {
    const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(this.callTimeoutMs)]);
    return new Promise<X>((resolve, reject) => {
      const onAbort = (): void => {
        if (ctx.signal.aborted) reject(new ReconcileError('Aborted', `cannot ${op} the ${this.k.kind}: the controller is stopping`));
        else reject(new ReconcileError(DEADLINE_EXCEEDED, `cannot ${op} the ${this.k.kind}: no answer within ${this.callTimeoutMs} ms`));
      };
      if (signal.aborted) {
        onAbort();
        return;
      }
      signal.addEventListener('abort', onAbort, { once: true });
      let p: Promise<X>;
      try {
        p = fn({ signal, log: ctx.log, recorder: this.o.recorder });
      } catch (err) {
        p = Promise.reject(err);
      }
      p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  private async write(obj: T, report: StatusReport<T>): Promise<void> {
    await reportStatus<StatusOf<T>, T & { status?: StatusOf<T> }>(this.o.resource as ResourceClient<T & { status?: StatusOf<T> }>, obj, report.conditions, report.mutate);
  }
}
