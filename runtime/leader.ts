/**
 * Leader election on a `coordination.k8s.io/v1` Lease, with client-go's algorithm:
 *
 * - A candidate reads the Lease every `retryPeriodMs` (±10 % jitter). It takes the Lease
 *   when it is free (no holder) or expired, writing itself as holder with an optimistic
 *   PUT (the resourceVersion makes two candidates' writes exclusive: one gets 409).
 * - "Expired" is judged on the candidate's own clock: `leaseDurationSeconds` after the
 *   moment it last *saw the Lease record change* — never by comparing the holder's
 *   timestamps with local time, so clock skew between hosts cannot cause two leaders.
 *   Candidates *watch* the Lease (an informer with `metadata.name=` field selector), so
 *   they see each renewal as it happens and wake up right at expiry: a dead leader is
 *   replaced about one `leaseDuration` after its last renewal (≤ 15 s after it died, with
 *   the defaults, plus request latency). If the watch is unavailable, polling every
 *   `retryPeriod` still works, up to one retry period later.
 * - The leader renews every `retryPeriodMs`. If no renewal succeeds for `renewDeadlineMs`
 *   (< leaseDuration, so it gives up *before* anyone else may take over), or the Lease
 *   shows another holder, it stops leading: `onStoppedLeading` runs (and must stop the
 *   workers) before the elector campaigns again.
 * - `stop()` ends leadership (awaiting `onStoppedLeading`) and then releases the Lease
 *   (empty holder, 1 s duration) so a standby takes over at once.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { log as rootLog, type Logger } from './log.js';
import { CoreResources, isConflict, isNotFound, type KubeClient, type KubeObject, type ResourceClient } from './client.js';
import { Informer } from './informer.js';

export interface LeaseSpec {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number | null;
  acquireTime?: string | null;
  renewTime?: string | null;
  leaseTransitions?: number | null;
}

export type Lease = KubeObject & { spec?: LeaseSpec };

export interface LeaderElectionConfig {
  /** Namespace and name of the Lease. */
  namespace: string;
  name: string;
  /** Unique per replica; default `hostname_uuid`. */
  identity?: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  /** Release the Lease on `stop()` (default true). */
  releaseOnStop?: boolean;
}

export interface LeaderCallbacks {
  onStartedLeading(): void | Promise<void>;
  /** Must stop everything that only the leader may do; awaited before campaigning again. */
  onStoppedLeading(): void | Promise<void>;
  onNewLeader?(identity: string): void;
}

export const LEADER_DEFAULTS = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 } as const;

/** `metav1.MicroTime` format (microseconds, UTC). */
export function microTime(d: Date = new Date()): string {
  return d.toISOString().replace(/Z$/, '000Z');
}

type Attempt = 'leading' | 'held' | 'failed';

/**
 * Local, monotonic time for lease expiry and the renew deadline, as client-go measures them:
 * a wall-clock jump (NTP step, a VM resumed) must neither expire a live leader's lease in a
 * follower's eyes (two leaders) nor keep a dead leader's lease alive for the jump's length.
 * The Lease's renewTime stays wall-clock: other nodes only compare it for changes.
 */
const monotonicMs = (): number => performance.now();

export class LeaderElector {
  readonly identity: string;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly leases: ResourceClient<Lease>;
  private readonly log: Logger;
  private observedRecord = '';
  private observedAt = 0;
  private observedLease: Lease | undefined;
  private leading = false;
  private lastLeader = '';
  private abort: AbortController | undefined;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private readonly watcher: Informer<Lease>;

  constructor(
    client: KubeClient,
    private readonly config: LeaderElectionConfig,
    private readonly callbacks: LeaderCallbacks,
    log: Logger = rootLog,
  ) {
    this.identity = config.identity ?? `${hostname()}_${randomUUID()}`;
    this.leaseDurationMs = config.leaseDurationMs ?? LEADER_DEFAULTS.leaseDurationMs;
    this.renewDeadlineMs = config.renewDeadlineMs ?? LEADER_DEFAULTS.renewDeadlineMs;
    this.retryPeriodMs = config.retryPeriodMs ?? LEADER_DEFAULTS.retryPeriodMs;
    if (!(this.leaseDurationMs > this.renewDeadlineMs && this.renewDeadlineMs > this.retryPeriodMs * 1.2)) {
      throw new Error('leader election needs leaseDuration > renewDeadline > 1.2 × retryPeriod');
    }
    // A request must not outlive the time left to renew.
    this.leases = client.withRequestTimeout(Math.max(500, Math.min(this.retryPeriodMs, this.renewDeadlineMs / 2))).resource<Lease>(CoreResources.leases);
    this.log = log.child({ component: 'leader-election', lease: `${config.namespace}/${config.name}`, identity: this.identity });
    this.watcher = new Informer<Lease>(client.resource<Lease>(CoreResources.leases), {
      namespace: config.namespace,
      fieldSelector: `metadata.name=${config.name}`,
      log: this.log,
    });
    const seen = (lease: Lease): void => {
      if (lease.metadata?.name !== config.name) return;
      this.observe(lease);
      // A released lease can be taken at once.
      if (!this.leading && !lease.spec?.holderIdentity) this.wake?.();
    };
    this.watcher.on('add', seen);
    this.watcher.on('update', (_old, lease) => seen(lease));
  }

  isLeader(): boolean {
    return this.leading;
  }

  /** The holder last seen in the Lease ('' when none). */
  get leader(): string {
    return this.lastLeader;
  }

  start(): void {
    if (this.loop) return;
    this.abort = new AbortController();
    this.watcher.start();
    this.loop = this.run(this.abort.signal);
  }

  async stop(): Promise<void> {
    if (!this.loop) return;
    this.abort?.abort();
    this.wake?.();
    await this.loop;
    this.loop = undefined;
    await this.watcher.stop();
  }

  private async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      // Campaign.
      for (;;) {
        if (signal.aborted) return;
        const r = await this.tryAcquireOrRenew();
        if (r === 'leading') break;
        await this.sleep(this.nextCampaignDelay(), signal);
      }
      this.leading = true;
      this.log.info('became leader');
      await this.safely('onStartedLeading', () => this.callbacks.onStartedLeading());
      // Renew.
      let lastRenew = monotonicMs();
      let lost = '';
      while (!signal.aborted) {
        await this.sleep(this.retryPeriodMs, signal);
        if (signal.aborted) break;
        const r = await this.tryAcquireOrRenew();
        if (r === 'leading') lastRenew = monotonicMs();
        else if (r === 'held') lost = `the lease is held by ${this.lastLeader}`;
        else if (monotonicMs() - lastRenew >= this.renewDeadlineMs) lost = `no renewal for ${this.renewDeadlineMs} ms`;
        if (lost) break;
      }
      this.leading = false;
      if (lost) this.log.warn({ reason: lost }, 'lost leadership');
      await this.safely('onStoppedLeading', () => this.callbacks.onStoppedLeading());
      if (signal.aborted && (this.config.releaseOnStop ?? true) && !lost) await this.release();
    }
  }

  /** Until the observed lease expires (+ a little), but at most one retry period. */
  private nextCampaignDelay(): number {
    const jittered = this.retryPeriodMs * (0.9 + Math.random() * 0.2);
    const holder = this.observedLease?.spec?.holderIdentity;
    if (!holder) return jittered;
    const expiresIn = this.observedAt + this.durationOf(this.observedLease) - monotonicMs() + 5;
    return Math.max(5, Math.min(jittered, expiresIn));
  }

  private durationOf(lease: Lease | undefined): number {
    const s = lease?.spec?.leaseDurationSeconds;
    return typeof s === 'number' && s > 0 ? s * 1000 : this.leaseDurationMs;
  }

  private observe(lease: Lease): void {
    const record = JSON.stringify(lease.spec ?? {});
    if (record !== this.observedRecord) {
      this.observedRecord = record;
      this.observedAt = monotonicMs();
    }
    this.observedLease = lease;
    const holder = lease.spec?.holderIdentity ?? '';
    if (holder !== this.lastLeader) {
      this.lastLeader = holder;
      if (holder) {
        this.log.info({ leader: holder }, 'new leader observed');
        try {
          this.callbacks.onNewLeader?.(holder);
        } catch (err) {
          this.log.error({ err: String(err) }, 'onNewLeader failed');
        }
      }
    }
  }

  private async tryAcquireOrRenew(): Promise<Attempt> {
    const { namespace, name } = this.config;
    const now = new Date();
    const spec = (prev?: LeaseSpec): LeaseSpec => {
      const takingOver = prev?.holderIdentity !== this.identity;
      return {
        holderIdentity: this.identity,
        leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
        acquireTime: takingOver || !prev?.acquireTime ? microTime(now) : prev.acquireTime,
        renewTime: microTime(now),
        leaseTransitions: (prev?.leaseTransitions ?? 0) + (takingOver && prev?.holderIdentity ? 1 : 0),
      };
    };
    try {
      const current = await this.leases.get(namespace, name);
      if (!current) {
        const created = await this.leases.create({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace }, spec: spec() });
        this.observe(created);
        return 'leading';
      }
      this.observe(current);
      const holder = current.spec?.holderIdentity ?? '';
      const expired = this.observedAt + this.durationOf(current) <= monotonicMs();
      if (holder && holder !== this.identity && !expired) return 'held';
      const updated = await this.leases.replace({ ...current, spec: spec(current.spec) });
      this.observe(updated);
      return 'leading';
    } catch (err) {
      if (isConflict(err)) return 'failed';
      this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'cannot acquire or renew the lease');
      return 'failed';
    }
  }

  private async release(): Promise<void> {
    try {
      const current = await this.leases.get(this.config.namespace, this.config.name);
      if (!current || current.spec?.holderIdentity !== this.identity) return;
      await this.leases.replace({ ...current, spec: { ...current.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime() } });
      this.log.info('released the lease');
    } catch (err) {
      if (!isNotFound(err)) this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'cannot release the lease');
    }
  }

  private async safely(what: string, fn: () => void | Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.log.error({ err: err instanceof Error ? err.message : String(err) }, `${what} failed`);
    }
  }

  private sleep(ms: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        this.wake = undefined;
        resolve();
      };
    });
  }
}
