/**
 * Graceful power-off of a domain, one non-blocking step at a time: ask the guest (ACPI power
 * button), and destroy only once the shutdown timeout has passed. Used for
 * `powerState: Stopped`, for restarts that apply a new shape, and for delete.
 *
 * Guarantees:
 * - `step` never waits for the guest: it sends the request (again every `RESEND_MS`, since a
 *   guest still booting ignores the button) and reports `waiting` until the domain is off.
 * - Exactly one outcome is reported per shutdown: `clean` when the guest powered itself off
 *   after a request, `forced` when the timeout passed and the domain was destroyed. The
 *   latest outcome per domain stays readable (`last`) until the domain runs again or is
 *   deleted, so status can say which happened.
 * - State is kept in memory: after a controller restart a pending request starts its timeout
 *   again (the guest gets the full budget, never less).
 */
import type { DomainBackend, DomainRunState } from './domains.js';

export interface ShutdownOutcome {
  kind: 'clean' | 'forced';
  /** Seconds from the first request to power-off. */
  seconds: number;
  /** When the domain went off (ms since epoch). */
  at: number;
  /** One sentence for status and Events. */
  message: string;
}

export type ShutdownStep = { done: false } | { done: true; outcome?: ShutdownOutcome };

/** How often an unanswered ACPI request is repeated. */
const RESEND_MS = 5000;

export class GracefulShutdown {
  private readonly pending = new Map<string, { since: number; sentAt: number }>();
  private readonly outcomes = new Map<string, ShutdownOutcome>();

  constructor(private readonly domains: () => DomainBackend, private readonly now: () => number = Date.now) {}

  /** True while a request for `uid` waits for the guest. */
  requested(uid: string): boolean {
    return this.pending.has(uid);
  }

  /** The latest outcome for `uid`, if its domain has not run since. */
  last(uid: string): ShutdownOutcome | undefined {
    return this.outcomes.get(uid);
  }

  /** The domain is running again (or gone): forget what the last shutdown was. */
  forget(uid: string): void {
    this.pending.delete(uid);
    this.outcomes.delete(uid);
  }

  /**
   * One step towards `shutoff` for a domain in `run` state, with `timeoutMs` for the guest
   * (0 = destroy at once). Returns `done` with the outcome on the step that finished it.
   */
  async step(uid: string, run: DomainRunState, timeoutMs: number): Promise<ShutdownStep> {
    const now = this.now();
    const p = this.pending.get(uid);
    if (run === 'shutoff') {
      if (!p) return { done: true };
      return { done: true, outcome: this.finish(uid, 'clean', p.since, now) };
    }
    if (run === 'paused' || run === 'pmsuspended' || run === 'crashed') {
      // No guest to ask: a paused or crashed domain cannot act on ACPI.
      await this.domains().destroy(uid);
      this.pending.delete(uid);
      return { done: true };
    }
    if (!p) {
      if (timeoutMs <= 0) {
        await this.domains().destroy(uid);
        return { done: true, outcome: this.finish(uid, 'forced', now, now, timeoutMs) };
      }
      await this.domains().shutdown(uid);
      this.pending.set(uid, { since: now, sentAt: now });
      return this.offAlready(uid, now);
    }
    if (now - p.since >= timeoutMs) {
      await this.domains().destroy(uid);
      return { done: true, outcome: this.finish(uid, 'forced', p.since, now, timeoutMs) };
    }
    if (now - p.sentAt >= RESEND_MS) {
      await this.domains().shutdown(uid);
      p.sentAt = now;
      return this.offAlready(uid, now);
    }
    return { done: false };
  }

  /** A guest (or libvirt's test driver) may be off the moment the request returns. */
  private async offAlready(uid: string, now: number): Promise<ShutdownStep> {
    const run = await this.domains().state(uid);
    if (run !== 'shutoff' && run !== undefined) return { done: false };
    const p = this.pending.get(uid);
    return { done: true, outcome: this.finish(uid, 'clean', p?.since ?? now, now) };
  }

  /**
   * Called when a domain is seen `shutoff`: if a request was pending the guest answered it,
   * and the clean outcome is recorded (without a further `step`).
   */
  observeOff(uid: string): ShutdownOutcome | undefined {
    const p = this.pending.get(uid);
    return p ? this.finish(uid, 'clean', p.since, this.now()) : undefined;
  }

  private finish(uid: string, kind: 'clean' | 'forced', since: number, now: number, timeoutMs = 0): ShutdownOutcome {
    this.pending.delete(uid);
    const seconds = Math.round((now - since) / 100) / 10;
    const message =
      kind === 'clean'
        ? `the guest shut down cleanly ${seconds} s after the ACPI power-off request`
        : timeoutMs > 0
          ? `the guest did not shut down within ${timeoutMs / 1000} s of the ACPI request; the domain was destroyed (forced off)`
          : 'shutdownTimeoutSeconds is 0: the domain was destroyed (forced off) without asking the guest';
    const outcome: ShutdownOutcome = { kind, seconds, at: now, message };
    this.outcomes.set(uid, outcome);
    return outcome;
  }
}
