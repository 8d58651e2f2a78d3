/**
 * Zonal operations stratus started and is waiting for, one per machine (uid). Compute
 * mutations (insert, start, stop, delete, setLabels) return an operation at once; the
 * provider must not block the controller on it. `track` remembers the operation and polls it
 * in the background with `zoneOperations.wait` until `status === 'DONE'`; a failed operation
 * is returned by the API (not thrown), so its `error.errors[]` is read and kept as a
 * `ReconcileError` until `takeFailure` hands it to the caller once.
 *
 * Caveats: the record lives in memory — after a restart the provider learns the outcome from
 * the instance itself (an insert that failed left no instance; create runs again). A wait
 * that fails (throttled, unreachable) is retried after the connection's backoff.
 */
import { ReconcileError } from '../../runtime/errors.js';
import type { ComputeApi } from './api.js';
import type { Operation, PendingKind } from './spec.js';
import { sleep } from '../../runtime/basics.js';

export interface TrackedOperation {
  uid: string;
  kind: PendingKind;
  name: string;
  status: string;
  done: boolean;
  failure?: ReconcileError;
}

/** An operation's `error.errors[]` as the `ReconcileError` the controller reports. */
export function operationFailure(op: Operation, kind: PendingKind): ReconcileError | undefined {
  const errors = op.error?.errors ?? [];
  if (errors.length === 0) return undefined;
  const text = `GCE ${kind} operation ${op.name ?? ''} failed: ${errors.map((e) => `${e.code ?? 'ERROR'}: ${e.message ?? ''}`.trim()).join('; ')}`;
  const codes = new Set(errors.map((e) => e.code ?? ''));
  if (codes.has('QUOTA_EXCEEDED')) return new ReconcileError('QuotaExceeded', text, true, 30_000);
  if ([...codes].some((c) => c.startsWith('ZONE_RESOURCE_POOL_EXHAUSTED'))) return new ReconcileError('ZoneExhausted', text, true, 60_000);
  if (codes.has('RESOURCE_NOT_FOUND') && /\/images\//.test(text)) return new ReconcileError('ImageNotFound', text, false);
  if (codes.has('PERMISSIONS_ERROR') || codes.has('FORBIDDEN')) return new ReconcileError('PermissionDenied', text, false);
  return new ReconcileError('OperationFailed', text, true, 10_000);
}

export class OperationTracker {
  private readonly byUid = new Map<string, TrackedOperation>();
  private readonly loops = new Set<Promise<void>>();

  constructor(
    private readonly api: ComputeApi,
    private readonly pollMs: number,
  ) {}

  /** Remembers `op` for `uid` (replacing an earlier one) and polls it until DONE. */
  track(uid: string, kind: PendingKind, op: Operation): TrackedOperation {
    const t: TrackedOperation = { uid, kind, name: op.name ?? '', status: String(op.status ?? 'PENDING'), done: false };
    this.byUid.set(uid, t);
    this.settle(t, op);
    if (!t.done) {
      // The poll outlives the call that started the operation: detached from its deadline.
      const loop = this.api.detached(() => this.poll(t)).finally(() => this.loops.delete(loop));
      this.loops.add(loop);
    }
    return t;
  }

  /** The operation in flight for `uid`, if any. */
  pending(uid: string): TrackedOperation | undefined {
    const t = this.byUid.get(uid);
    return t && !t.done ? t : undefined;
  }

  /** The failure of `uid`'s last operation, once (later calls see none). */
  takeFailure(uid: string): ReconcileError | undefined {
    const t = this.byUid.get(uid);
    if (!t?.done || !t.failure) return undefined;
    this.byUid.delete(uid);
    return t.failure;
  }

  forget(uid: string): void {
    this.byUid.delete(uid);
  }

  /** Resolves when every background poll has stopped (after the API was closed). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.loops]);
  }

  private settle(t: TrackedOperation, op: Operation): void {
    t.status = op.status ? String(op.status) : t.status;
    if (t.status !== 'DONE') return;
    t.done = true;
    const failure = operationFailure(op, t.kind);
    if (failure) t.failure = failure;
    else if (this.byUid.get(t.uid) === t) this.byUid.delete(t.uid);
  }

  private async poll(t: TrackedOperation): Promise<void> {
    while (!t.done && !this.api.closed && this.byUid.get(t.uid) === t) {
      const wait = this.api.backoffRemainingMs();
      if (wait > 0) {
        await sleep(wait);
        continue;
      }
      try {
        this.settle(t, await this.api.waitOperation(t.name));
      } catch (err) {
        if (this.api.closed) return;
        if (!(err instanceof ReconcileError) || !err.retryable) {
          // The operation is gone (404) or unreadable: stop tracking; observe reads the instance.
          if (this.byUid.get(t.uid) === t) this.byUid.delete(t.uid);
          t.done = true;
          return;
        }
      }
      if (!t.done) await sleep(this.pollMs);
    }
  }
}
