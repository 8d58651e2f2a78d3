/**
 * The HA backend: the same `Store` semantics mapped onto etcd 3.4 through `etcd3`.
 *
 * - Keys live under `prefix` (default `/stratus`); revisions are etcd's own (global to the
 *   etcd cluster, so they advance with writes outside the prefix too — still strictly
 *   increasing, which is all the contract promises).
 * - create is a txn guarded by `createRevision == 0`; update/delete by `modRevision ==`.
 * - Watches carry `prevKv`. etcd3 re-attaches a watcher after a dropped stream but resumes
 *   from the last *header* revision it saw, which can run ahead of the events delivered
 *   (catch-up batches carry the current revision); so each watch keeps its own high-water
 *   mark, rewinds the resume point to it on every disconnect, and drops anything at or
 *   below it: no loss, no repeats.
 * - A compacted revision surfaces as etcd's "required revision has been compacted" (reads)
 *   or a canceled watcher (watches); both become `TooOldError`.
 */
import { Etcd3, CompareResult, CompareTarget, isRecoverableError, type IKeyValue, type IOptions, type IResponseHeader, type IWatchResponse, type Watcher } from 'etcd3';
import { log } from '../../runtime/log.js';
import {
  ConflictError,
  KeyExistsError,
  NotFoundError,
  StoreError,
  TooOldError,
  UnavailableError,
  type KeyValue,
  type ListOptions,
  type ListResult,
  type Store,
  type WatchCallbacks,
  type WatchEvent,
  type WatchHandle,
} from './store.js';

const logger = log.child({ component: 'storage', backend: 'etcd' });

export interface EtcdStoreOptions {
  /** Client URLs, e.g. `http://127.0.0.1:2379`. */
  endpoints: string[];
  /** Every key is stored under this prefix (default `/stratus`); store keys start with `/`. */
  prefix?: string;
  /** How long to wait for a connection (default 5 s). */
  dialTimeoutMs?: number;
  /**
   * Bound of each store call, the client's retries across endpoints included (default 5 s).
   * Without quorum etcd neither applies nor refuses a write (a stopped member does not even
   * answer), and etcd3 retries each call up to 3 times, each with its own deadline: a create
   * waited 30 s and more. On expiry the call fails with `UnavailableError` (the API answers
   * 503 with Retry-After); the write may or may not have been applied, as with any timeout.
   */
  requestTimeoutMs?: number;
}

type WatchBackoff = NonNullable<NonNullable<IOptions['faultHandling']>['watchBackoff']>;

/** Reconnect a dropped watch stream quickly (100 ms doubling to 2 s): etcd restarts are short. */
class WatchReconnectBackoff {
  constructor(readonly duration = 100) {}
  next(): WatchReconnectBackoff {
    return new WatchReconnectBackoff(Math.min(this.duration * 2, 2000));
  }
}

type HostPolicy = ReturnType<NonNullable<NonNullable<IOptions['faultHandling']>['host']>>;
type PolicyContext = Parameters<Parameters<HostPolicy['execute']>[0]>[0];

/** Thrown instead of calling a host that failed moments ago; etcd3 then tries the next host. */
class HostResting extends Error {}

/**
 * Per-endpoint fault handling replacing etcd3's default (a circuit that stays open 5 s
 * after 3 failures): after a connection-level failure a host rests for `restMs` — calls go
 * to the other hosts meanwhile — unless every host is resting, in which case it is tried
 * anyway. The default lets a rolling member restart open every host's circuit at once (a
 * new leader election makes the survivors fail too), and the client then refuses all calls
 * for seconds although a quorum is up; with a single endpoint it refuses calls for 5 s
 * after every restart.
 */
class RestingHost implements HostPolicy {
  declare readonly _altReturn: never;
  private restingUntil = 0;
  readonly onSuccess: HostPolicy['onSuccess'] = () => ({ dispose: () => undefined });
  readonly onFailure: HostPolicy['onFailure'] = () => ({ dispose: () => undefined });

  constructor(
    private readonly host: string,
    private readonly all: RestingHost[],
    private readonly restMs = 1000,
  ) {
    all.push(this);
  }

  resting(now: number): boolean {
    return now < this.restingUntil;
  }

  async execute<T>(fn: (context: PolicyContext) => PromiseLike<T> | T, signal?: AbortSignal): Promise<T> {
    const now = Date.now();
    if (this.resting(now) && this.all.some((h) => !h.resting(now))) {
      throw new HostResting(`etcd endpoint ${this.host} failed recently`);
    }
    try {
      return await fn({ signal: signal ?? new AbortController().signal });
    } catch (err) {
      if (err instanceof Error && isRecoverableError(err)) this.restingUntil = Date.now() + this.restMs;
      throw err;
    }
  }
}

const COMPACTED = 'required revision has been compacted';
const DEFAULT_REQUEST_TIMEOUT_MS = 5000;

/** gRPC options of one attempt of a unary etcd call: its share of the call's deadline. */
type CallOptions = { deadline: Date };
const FUTURE = 'required revision is a future revision';

export class EtcdStore implements Store {
  private readonly client: Etcd3;
  private readonly prefix: Buffer;
  private readonly watches = new Set<EtcdWatch>();
  private readonly requestTimeoutMs: number;
  private closed = false;

  constructor(options: EtcdStoreOptions) {
    if (options.endpoints.length === 0) throw new StoreError('EtcdStore needs at least one endpoint');
    const backoff: WatchBackoff = new WatchReconnectBackoff();
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const hosts: RestingHost[] = [];
    this.client = new Etcd3({
      hosts: options.endpoints,
      dialTimeout: Math.min(options.dialTimeoutMs ?? 5000, this.requestTimeoutMs),
      faultHandling: { watchBackoff: backoff, host: (host) => new RestingHost(host, hosts) },
    });
    this.prefix = Buffer.from(options.prefix ?? '/stratus');
  }

  // ---- reads -------------------------------------------------------------------------

  async get(key: string): Promise<KeyValue | undefined> {
    const res = await this.call((o) => this.client.kv.range({ key: this.full(key) }, o));
    const kv = res.kvs[0];
    return kv ? this.toKeyValue(kv) : undefined;
  }

  async list(prefix: string, options: ListOptions = {}): Promise<ListResult> {
    const from = this.fullPrefix(prefix);
    const end = rangeEnd(from);
    let start = from;
    if (options.startAfter !== undefined) {
      const after = Buffer.concat([this.full(options.startAfter), Buffer.from([0])]);
      if (Buffer.compare(after, start) > 0) start = after;
    }
    const res = await this.call((o) =>
      this.client.kv.range({
        key: start,
        range_end: end,
        limit: options.limit && options.limit > 0 ? options.limit : 0,
        revision: options.revision && options.revision > 0 ? options.revision : 0,
      }, o),
    );
    const items = res.kvs.map((kv) => this.toKeyValue(kv));
    const revision = options.revision && options.revision > 0 ? options.revision : headerRevision(res.header);
    return { items, revision, more: res.more, remaining: Math.max(0, Number(res.count) - items.length) };
  }

  async count(prefix: string): Promise<number> {
    const key = this.fullPrefix(prefix);
    const res = await this.call((o) => this.client.kv.range({ key, range_end: rangeEnd(key), count_only: true }, o));
    return Number(res.count);
  }

  async currentRevision(): Promise<number> {
    const res = await this.call((o) => this.client.kv.range({ key: this.prefix, count_only: true }, o));
    return headerRevision(res.header);
  }

  /**
   * The oldest readable revision, found by probing historical reads (etcd does not report
   * it directly): a binary search over [1, current], O(log revisions) cheap requests.
   * 0 when nothing was ever compacted.
   */
  async compactedRevision(): Promise<number> {
    const readable = async (revision: number): Promise<boolean> => {
      try {
        await this.client.kv.range({ key: this.prefix, count_only: true, revision }, { deadline: new Date(Date.now() + this.requestTimeoutMs) });
        return true;
      } catch (err) {
        if (err instanceof Error && err.message.includes(COMPACTED)) return false;
        throw await this.mapError(err);
      }
    };
    if (await readable(1)) return 0;
    let lo = 1; // not readable
    let hi = await this.currentRevision(); // always readable
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (await readable(mid)) hi = mid;
      else lo = mid;
    }
    return hi;
  }

  // ---- writes ------------------------------------------------------------------------

  async create(key: string, value: string): Promise<KeyValue> {
    const k = this.full(key);
    const res = await this.call((o) =>
      this.client.kv.txn({
        compare: [{ key: k, target: CompareTarget.Create, result: CompareResult.Equal, create_revision: 0 }],
        success: [{ request_put: { key: k, value: Buffer.from(value) } }],
        failure: [],
      }, o),
    );
    if (!res.succeeded) throw new KeyExistsError(`key ${key} already exists`, key);
    const rev = headerRevision(res.header);
    return { key, value, createRevision: rev, modRevision: rev };
  }

  async update(key: string, value: string, expectedModRevision: number): Promise<KeyValue> {
    const k = this.full(key);
    const res = await this.call((o) =>
      this.client.kv.txn({
        compare: [
          { key: k, target: CompareTarget.Mod, result: CompareResult.Equal, mod_revision: expectedModRevision },
          // an absent key has modRevision 0: never let an update create it
          { key: k, target: CompareTarget.Create, result: CompareResult.Greater, create_revision: 0 },
        ],
        success: [{ request_put: { key: k, value: Buffer.from(value), prev_kv: true } }],
        failure: [{ request_range: { key: k } }],
      }, o),
    );
    if (!res.succeeded) throw this.casFailure(key, expectedModRevision, res.responses[0]?.response_range.kvs[0]);
    const prev = res.responses[0]?.response_put.prev_kv;
    const rev = headerRevision(res.header);
    return { key, value, createRevision: prev ? Number(prev.create_revision) : rev, modRevision: rev };
  }

  async delete(key: string, expectedModRevision?: number): Promise<KeyValue> {
    const k = this.full(key);
    const res = await this.call((o) =>
      this.client.kv.txn({
        compare:
          expectedModRevision === undefined
            ? []
            : [{ key: k, target: CompareTarget.Mod, result: CompareResult.Equal, mod_revision: expectedModRevision }],
        success: [{ request_delete_range: { key: k, prev_kv: true } }],
        failure: [{ request_range: { key: k } }],
      }, o),
    );
    if (!res.succeeded) throw this.casFailure(key, expectedModRevision ?? 0, res.responses[0]?.response_range.kvs[0]);
    const prev = res.responses[0]?.response_delete_range.prev_kvs[0];
    if (!prev) throw new NotFoundError(`key ${key} not found`, key);
    return { key, value: prev.value.toString(), createRevision: Number(prev.create_revision), modRevision: headerRevision(res.header) };
  }

  private casFailure(key: string, expected: number, current: IKeyValue | undefined): StoreError {
    if (!current) return new NotFoundError(`key ${key} not found`, key);
    const actual = Number(current.mod_revision);
    return new ConflictError(`key ${key} was modified at revision ${actual}, not ${expected}`, key, actual);
  }

  // ---- watch -------------------------------------------------------------------------

  watch(prefix: string, afterRevision: number, callbacks: WatchCallbacks): WatchHandle {
    const w = new EtcdWatch(this, prefix, afterRevision, callbacks);
    if (this.closed) {
      setImmediate(() => w.fail(new StoreError('the store is closed')));
      return w;
    }
    this.watches.add(w);
    void w.start();
    return w;
  }

  /** @internal used by EtcdWatch */
  watchBuilder(prefix: string, startRevision: number): Watcher {
    const key = this.fullPrefix(prefix);
    return this.client.watch().inRange({ start: key, end: rangeEnd(key) }).startRevision(String(startRevision)).withPreviousKV().watcher();
  }

  /** @internal used by EtcdWatch */
  forget(w: EtcdWatch): void {
    this.watches.delete(w);
  }

  /** @internal used by EtcdWatch: the store event for an etcd event. */
  toEvent(type: 'Put' | 'Delete', kv: IKeyValue, prev: IKeyValue | undefined): WatchEvent {
    const key = this.strip(kv.key);
    const revision = Number(kv.mod_revision);
    if (type === 'Delete') {
      const last = prev ? prev.value.toString() : '';
      return { type: 'DELETED', key, value: last, prevValue: last, revision, createRevision: prev ? Number(prev.create_revision) : 0 };
    }
    const createRevision = Number(kv.create_revision);
    const event: WatchEvent = { type: createRevision === revision ? 'ADDED' : 'MODIFIED', key, value: kv.value.toString(), revision, createRevision };
    if (prev && createRevision !== revision) event.prevValue = prev.value.toString();
    return event;
  }

  // ---- compaction --------------------------------------------------------------------

  async compact(revision: number): Promise<void> {
    try {
      await this.call((o) => this.client.kv.compact({ revision, physical: true }, o));
    } catch (err) {
      if (err instanceof TooOldError) return; // already compacted at or past `revision`
      throw err;
    }
  }

  // ---- lifecycle ---------------------------------------------------------------------

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.watches].map((w) => w.close()));
    this.client.close();
  }

  // ---- helpers -----------------------------------------------------------------------

  /**
   * The etcd key range a store prefix stands for. Store keys start with `/`, so the empty
   * prefix means `<prefix>/` — not `<prefix>` itself, whose range would also take in a
   * neighbour's keys (`/stratus` would cover `/stratus-staging/...`).
   */
  private fullPrefix(prefix: string): Buffer {
    return this.full(prefix === '' ? '/' : prefix);
  }

  private full(key: string): Buffer {
    return Buffer.concat([this.prefix, Buffer.from(key)]);
  }

  private strip(key: Buffer): string {
    return key.subarray(this.prefix.length).toString();
  }

  private toKeyValue(kv: IKeyValue): KeyValue {
    return {
      key: this.strip(kv.key),
      value: kv.value.toString(),
      createRevision: Number(kv.create_revision),
      modRevision: Number(kv.mod_revision),
    };
  }

  /**
   * Runs one etcd call within `requestTimeoutMs`, mapping its failures onto the store's
   * errors. Every attempt etcd3 makes (it retries across endpoints) gets the same absolute
   * deadline, and a timer settles the call at that deadline whatever the client is doing
   * (dialing a stopped member, resting hosts), so the caller always has an answer in time.
   */
  async call<T>(fn: (options: CallOptions) => Promise<T>): Promise<T> {
    if (this.closed) throw new StoreError('the store is closed');
    const deadline = new Date(Date.now() + this.requestTimeoutMs);
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new UnavailableError(`etcd did not answer within ${this.requestTimeoutMs / 1000} s (no quorum, or no member reachable); the request may or may not have been applied`)),
        this.requestTimeoutMs,
      );
    });
    try {
      return await Promise.race([fn({ deadline }), expired]);
    } catch (err) {
      throw await this.mapError(err);
    } finally {
      clearTimeout(timer);
    }
  }

  private async mapError(err: unknown): Promise<Error> {
    const message = err instanceof Error ? err.message : String(err);
    if (message.includes(COMPACTED)) {
      let compacted = 0;
      try {
        compacted = await this.compactedRevision();
      } catch {
        // leave it unknown
      }
      return new TooOldError(`etcd: ${COMPACTED}${compacted ? ` (compacted revision ${compacted})` : ''}`, compacted);
    }
    if (message.includes(FUTURE)) return new StoreError(`etcd: ${FUTURE}`);
    if (err instanceof StoreError) return err;
    return new UnavailableError(`etcd: ${message}`);
  }
}

/**
 * One store watch over one etcd watcher. Delivers only events above its high-water mark
 * `last`, and makes every re-attach after a dropped stream resume right after `last`.
 */
class EtcdWatch implements WatchHandle {
  private last: number;
  private closed = false;
  private watcher: Watcher | undefined;

  constructor(
    private readonly store: EtcdStore,
    private readonly prefix: string,
    afterRevision: number,
    private readonly callbacks: WatchCallbacks,
  ) {
    this.last = afterRevision;
  }

  async start(): Promise<void> {
    // Match the SQLite backend exactly: a watch after R needs R itself to be readable.
    if (this.last > 0) {
      try {
        await this.store.list(this.prefix, { revision: this.last, limit: 1 });
      } catch (err) {
        // A future revision is fine (events arrive when it is reached); an unreachable
        // etcd is left to the watcher, which keeps reconnecting.
        if (err instanceof TooOldError) return this.fail(err);
      }
    }
    if (this.closed) return;
    const watcher = this.store.watchBuilder(this.prefix, this.last + 1);
    this.watcher = watcher;
    watcher.on('data', (res: IWatchResponse) => this.onData(res));
    watcher.on('disconnected', (err: Error) => {
      // etcd3 would resume from the last header revision; resume after the last delivered event.
      watcher.request.start_revision = String(this.last + 1);
      logger.warn({ err: err.message, prefix: this.prefix, resumeAfter: this.last }, 'etcd watch disconnected; resuming');
    });
    watcher.on('error', (err: Error) => void this.onWatcherError(err));
  }

  private onData(res: IWatchResponse): void {
    for (const ev of res.events) {
      if (this.closed) return;
      const revision = Number(ev.kv.mod_revision);
      if (revision <= this.last) continue;
      this.last = revision;
      try {
        this.callbacks.onEvent(this.store.toEvent(ev.type, ev.kv, ev.prev_kv ?? undefined));
      } catch (err) {
        logger.error({ err }, 'watch onEvent callback threw');
      }
    }
  }

  private async onWatcherError(err: Error): Promise<void> {
    // etcd cancels a watcher only for a compacted start revision (or permissions).
    let compacted = 0;
    try {
      compacted = await this.store.compactedRevision();
    } catch {
      // unknown
    }
    if (compacted > this.last || /compact|canceled: $/i.test(err.message)) {
      this.fail(new TooOldError(`etcd: watch after revision ${this.last} is too old (compacted revision ${compacted})`, compacted));
    } else {
      this.fail(new StoreError(`etcd watch failed: ${err.message}`));
    }
  }

  fail(error: Error): void {
    if (this.closed) return;
    void this.close();
    try {
      this.callbacks.onError(error);
    } catch (err) {
      logger.error({ err }, 'watch onError callback threw');
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.store.forget(this);
    const watcher = this.watcher;
    if (!watcher) return;
    watcher.removeAllListeners('data');
    // Nothing is delivered after `closed`; do not hang on a cancel that needs a live stream.
    await Promise.race([watcher.cancel().catch(() => undefined), new Promise((r) => setTimeout(r, 2000).unref())]);
  }
}

function headerRevision(header: IResponseHeader): number {
  return Number(header.revision);
}

/** etcd's end of a prefix range: the prefix with its last byte below 0xff incremented. */
function rangeEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i] = end[i]! + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]); // every key
}
