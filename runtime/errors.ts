/**
 * The one typed failure of a reconcile step, raised by providers (a libvirt domain that
 * cannot be defined, a Docker engine that is unreachable, a GCE quota) and by controllers
 * (a reference that does not resolve). It lives here, below both, so the lifecycle
 * (`runtime/managed.ts`) and the controller loop can decide on it without knowing who
 * raised it:
 *
 * - `reason` becomes the `Synced=False` (and `Ready=False`) condition reason;
 * - `retryable` says whether trying again may succeed without a spec change (outages,
 *   throttling); a non-retryable failure waits for a change or the next poll;
 * - `retryAfterMs` overrides the backoff (a 429's Retry-After).
 *
 * Anything else thrown from a reconcile is a bug or an unexpected failure: it is reported as
 * `ReconcileError` (the reason) and retried with backoff.
 */
export class ReconcileError extends Error {
  constructor(
    /** CamelCase condition reason, e.g. `ImageNotFound`, `QuotaExceeded`, `NodeUnreachable`. */
    readonly reason: string,
    message: string,
    /** True when retrying later may succeed without a spec change (throttling, outages). */
    readonly retryable = true,
    /** Suggested delay before retrying, in ms (e.g. from a 429's Retry-After). */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'ReconcileError';
  }
}

/** The reason of an external call that did not answer within its deadline. */
export const DEADLINE_EXCEEDED = 'DeadlineExceeded';

/** A short human text for anything thrown (an `Error`'s message, or the value itself). */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
