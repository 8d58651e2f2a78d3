/**
 * The ground floor every layer shares, in one place so there is one way to do each thing:
 * the logger, an unref'd cancellable `sleep`, structural `deepEqual` of JSON values,
 * `retryOnConflict` (optimistic concurrency: read fresh and try again on 409), and
 * DNS-1123 label validation (object names, hostnames, disk names).
 */
import { isConflict } from './client.js';

export { log, type Logger } from './log.js';

/**
 * Resolves after `ms`; rejects with the signal's reason if it aborts first. The timer is
 * unref'd: a pending sleep never keeps the process alive on its own.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    timer.unref();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Structural equality of JSON values; object key order does not matter, undefined members are absent. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const ak = Object.keys(ao).filter((k) => ao[k] !== undefined);
  const bk = Object.keys(bo).filter((k) => bo[k] !== undefined);
  return ak.length === bk.length && ak.every((k) => deepEqual(ao[k], bo[k]));
}

export interface RetryOnConflictOptions {
  /** Attempts before the last 409 is thrown. Default 8. */
  maxAttempts?: number;
  /** Pause before attempt `n + 1` (ms). Default none. */
  pauseMs?: (attempt: number) => number;
}

/**
 * Runs `attempt(1)`, `attempt(2)`, ... while it throws 409 Conflict, up to `maxAttempts`;
 * any other error, or the last 409, is thrown. `attempt` must read fresh state itself (the
 * attempt number tells it whether it may use what it already has).
 */
export async function retryOnConflict<T>(attempt: (n: number) => Promise<T>, opts: RetryOnConflictOptions = {}): Promise<T> {
  const max = opts.maxAttempts ?? 8;
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      if (!isConflict(err) || n >= max) throw err;
      const pause = opts.pauseMs?.(n) ?? 0;
      if (pause > 0) await sleep(pause);
    }
  }
}

/** The longest DNS-1123 label. */
export const DNS_LABEL_MAX = 63;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** True for a DNS-1123 label: at most 63 of a-z, 0-9 and '-', starting and ending alphanumeric. */
export function isDnsLabel(s: string): boolean {
  return s.length <= DNS_LABEL_MAX && DNS_LABEL.test(s);
}
