/**
 * Kubernetes Events (core/v1) on the objects controllers act on, aggregated like kube's
 * event correlator:
 *
 * - The same (involved object, type, reason, message) again → the existing Event's
 *   `count` goes up and `lastTimestamp` moves (a merge patch), no new object.
 *   If that Event has meanwhile expired (404), a new one is created.
 * - A token bucket per involved object (burst 25, one token per 5 minutes, as kube's
 *   spam filter) drops floods; dropped events are counted in `dropped`.
 * - Recording never throws and never blocks a reconcile: writes go out in order on a
 *   background chain; a failed write is logged. `flush()` waits for the chain. While the
 *   API is slow or down at most `maxPending` writes wait; more are dropped (`dropped`).
 *
 * Events of cluster-scoped objects go to the `default` namespace, as kube does.
 * Reasons are typed: `new EventRecorder<'Created' | 'CreateFailed'>(...)`.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { log as rootLog, type Logger } from './log.js';
import { CoreResources, isNotFound, type KubeClient, type KubeObject, type ResourceClient } from './client.js';

export type EventType = 'Normal' | 'Warning';

export interface CoreEvent extends KubeObject {
  involvedObject: { apiVersion?: string; kind?: string; name?: string; namespace?: string; uid?: string; resourceVersion?: string };
  reason: string;
  message: string;
  type: EventType;
  count: number;
  firstTimestamp: string;
  lastTimestamp: string;
  source: { component: string; host?: string };
  reportingComponent: string;
  reportingInstance: string;
}

export interface EventRecorderOptions {
  /** Bucket size per involved object. Default 25. */
  burst?: number;
  /** Milliseconds per refilled token. Default 300 000 (5 min). */
  refillMs?: number;
  /** Remembered aggregation keys (oldest forgotten first). Default 4096. */
  cacheSize?: number;
  /** Writes allowed to wait for the API at once. Default 1000. */
  maxPending?: number;
  now?: () => Date;
  log?: Logger;
}

const MAX_MESSAGE = 1024;

interface Seen {
  namespace: string;
  name: string;
  count: number;
}

export class EventRecorder<Reason extends string = string> {
  private readonly events: ResourceClient<CoreEvent>;
  private readonly seen = new Map<string, Seen>();
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private chain: Promise<void> = Promise.resolve();
  private readonly burst: number;
  private readonly refillMs: number;
  private readonly cacheSize: number;
  private readonly maxPending: number;
  private pending = 0;
  private readonly now: () => Date;
  private readonly log: Logger;
  private readonly host = hostname();
  /** Events dropped by the rate limit. */
  dropped = 0;

  constructor(
    client: KubeClient,
    readonly component: string,
    opts: EventRecorderOptions = {},
  ) {
    this.events = client.resource<CoreEvent>(CoreResources.events);
    this.burst = opts.burst ?? 25;
    this.refillMs = opts.refillMs ?? 300_000;
    this.cacheSize = opts.cacheSize ?? 4096;
    this.maxPending = opts.maxPending ?? 1000;
    this.now = opts.now ?? (() => new Date());
    this.log = (opts.log ?? rootLog).child({ component: 'events', source: component });
  }

  normal(obj: KubeObject, reason: Reason, message: string): void {
    this.event(obj, 'Normal', reason, message);
  }

  warning(obj: KubeObject, reason: Reason, message: string): void {
    this.event(obj, 'Warning', reason, message);
  }

  /** Records an event; returns at once (see `flush`). */
  event(obj: KubeObject, type: EventType, reason: Reason, message: string): void {
    if (this.pending >= this.maxPending) {
      this.dropped++;
      return;
    }
    const md = obj.metadata ?? {};
    const objId = `${obj.apiVersion}/${obj.kind}/${md.namespace ?? ''}/${md.name}/${md.uid ?? ''}`;
    if (!this.take(objId)) {
      this.dropped++;
      return;
    }
    const msg = message.length > MAX_MESSAGE ? message.slice(0, MAX_MESSAGE - 3) + '...' : message;
    const aggKey = `${objId}\u0000${type}\u0000${reason}\u0000${msg}`;
    const at = this.now();
    this.pending++;
    this.chain = this.chain.then(() =>
      this.write(obj, type, reason, msg, aggKey, at)
        .catch((err: unknown) => {
          this.log.warn({ err: err instanceof Error ? err.message : String(err), reason }, 'cannot write event');
        })
        .finally(() => {
          this.pending--;
        }),
    );
  }

  /** Resolves when every recorded event has been written (or failed). */
  flush(): Promise<void> {
    return this.chain;
  }

  private async write(obj: KubeObject, type: EventType, reason: string, message: string, aggKey: string, at: Date): Promise<void> {
    const ts = at.toISOString().replace(/\.\d{3}Z$/, 'Z');
    const prev = this.seen.get(aggKey);
    if (prev) {
      try {
        await this.events.mergePatch(prev.namespace, prev.name, { count: prev.count + 1, lastTimestamp: ts });
        prev.count++;
        this.seen.delete(aggKey);
        this.seen.set(aggKey, prev);
        return;
      } catch (err) {
        this.seen.delete(aggKey);
        if (!isNotFound(err)) throw err;
      }
    }
    const md = obj.metadata ?? {};
    const namespace = md.namespace || 'default';
    const name = `${md.name ?? 'unknown'}.${(BigInt(at.getTime()) * 1_000_000n).toString(16)}${randomBytes(2).toString('hex')}`;
    await this.events.create({
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name, namespace },
      involvedObject: { apiVersion: obj.apiVersion, kind: obj.kind, name: md.name, namespace: md.namespace, uid: md.uid, resourceVersion: md.resourceVersion },
      reason,
      message,
      type,
      count: 1,
      firstTimestamp: ts,
      lastTimestamp: ts,
      source: { component: this.component, host: this.host },
      reportingComponent: this.component,
      reportingInstance: this.host,
    });
    this.seen.set(aggKey, { namespace, name, count: 1 });
    if (this.seen.size > this.cacheSize) {
      const oldest = this.seen.keys().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
  }

  private take(objId: string): boolean {
    const now = this.now().getTime();
    let b = this.buckets.get(objId);
    if (!b) {
      b = { tokens: this.burst, at: now };
      this.buckets.set(objId, b);
      if (this.buckets.size > this.cacheSize) {
        const oldest = this.buckets.keys().next().value;
        if (oldest !== undefined) this.buckets.delete(oldest);
      }
    }
    const refill = Math.floor((now - b.at) / this.refillMs);
    if (refill > 0) {
      b.tokens = Math.min(this.burst, b.tokens + refill);
      b.at = b.tokens === this.burst ? now : b.at + refill * this.refillMs;
    }
    if (b.tokens <= 0) return false;
    b.tokens--;
    return true;
  }
}
