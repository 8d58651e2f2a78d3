/**
 * What the workload's clients were told, per object: a Jepsen-style history reduced to what
 * the invariants need. A request's outcome is `ok` (2xx: acknowledged), `failed` (a 4xx the
 * server answered: it did not happen) or `unknown` (no answer, a timeout, a 429 or a 5xx:
 * it may or may not have happened — a killed or stopped server leaves these).
 *
 * Each object is written by one client, in order, and never re-created under the same name,
 * so the final state it may have is: absent after an acknowledged delete; present after an
 * acknowledged create (or write) with no delete that may have happened; and its value one that
 * was acknowledged last or was sent in a request whose outcome is unknown (a request stalled
 * by SIGSTOP may land after a later one).
 */
export type Outcome = 'ok' | 'failed' | 'unknown';

export interface ObjectHistory {
  name: string;
  create: Outcome | 'none';
  /** The value the last acknowledged write set (the create's, then each write's). */
  acked?: string;
  /** Values sent by writes whose outcome is unknown (the create's too). */
  maybe: string[];
  delete: Outcome | 'none';
}

/** Answers classified, counted by status code (or error code) for the report. */
export class Ledger {
  readonly objects = new Map<string, ObjectHistory>();
  readonly statuses = new Map<string, number>();
  /** Requests answered 500: never acceptable, whatever the fault. */
  readonly internalErrors: string[] = [];

  history(name: string): ObjectHistory {
    let h = this.objects.get(name);
    if (!h) {
      h = { name, create: 'none', maybe: [], delete: 'none' };
      this.objects.set(name, h);
    }
    return h;
  }

  /** Classifies an answer (an HTTP status, or the error a request threw) and counts it. */
  classify(what: string, answer: number | Error, body = ''): Outcome {
    const key = typeof answer === 'number' ? String(answer) : ((answer as NodeJS.ErrnoException).code ?? answer.name);
    this.statuses.set(key, (this.statuses.get(key) ?? 0) + 1);
    if (typeof answer !== 'number') return 'unknown';
    if (answer === 500) this.internalErrors.push(`${what}: 500 ${body.slice(0, 300)}`);
    if (answer >= 200 && answer < 300) return 'ok';
    if (answer === 408 || answer === 429 || answer >= 500) return 'unknown';
    return 'failed';
  }

  /** The outcome of a write that set `value` (a create or an update). */
  wrote(name: string, kind: 'create' | 'update', outcome: Outcome, value: string): void {
    const h = this.history(name);
    if (kind === 'create') h.create = outcome;
    if (outcome === 'ok') h.acked = value;
    else if (outcome === 'unknown') h.maybe.push(value);
  }

  deleted(name: string, outcome: Outcome): void {
    this.history(name).delete = outcome;
  }

  /**
   * Compares the final state (name → value, for every object the workload could have made)
   * with the history; returns one line per violation.
   */
  check(kind: string, present: Map<string, string>): string[] {
    const violations: string[] = [];
    for (const h of this.objects.values()) {
      const value = present.get(h.name);
      const everAcked = h.acked !== undefined;
      if (h.delete === 'ok') {
        if (value !== undefined) violations.push(`${kind} ${h.name}: its delete was acknowledged but it is still there`);
        continue;
      }
      if (value === undefined) {
        if (everAcked && h.delete !== 'unknown') violations.push(`${kind} ${h.name}: an acknowledged write is lost (the object is gone)`);
        continue;
      }
      if (!everAcked && h.create === 'failed') violations.push(`${kind} ${h.name}: its create failed but the object exists`);
      const allowed = new Set([...(h.acked !== undefined ? [h.acked] : []), ...h.maybe]);
      if (!allowed.has(value)) violations.push(`${kind} ${h.name}: holds ${JSON.stringify(value)}, expected the acknowledged ${JSON.stringify(h.acked)}${h.maybe.length ? ` or an unanswered ${JSON.stringify(h.maybe)}` : ''}`);
    }
    for (const name of present.keys()) if (!this.objects.has(name)) violations.push(`${kind} ${name}: exists but no client ever asked for it`);
    return violations;
  }

  counts(): { acknowledgedWrites: number; unanswered: number; statuses: Record<string, number> } {
    let acknowledgedWrites = 0;
    let unanswered = 0;
    for (const h of this.objects.values()) {
      if (h.acked !== undefined) acknowledgedWrites++;
      unanswered += h.maybe.length + (h.delete === 'unknown' ? 1 : 0);
    }
    return { acknowledgedWrites, unanswered, statuses: Object.fromEntries([...this.statuses].sort()) };
  }
}
