/**
 * A small OVSDB client (RFC 7047 JSON-RPC) over a unix socket or TCP: enough for stratus to
 * read and change an Open vSwitch database and to watch it.
 *
 * What it guarantees:
 * - Framing: the server sends concatenated JSON values with no separator; `JsonStreamParser`
 *   finds value boundaries by tracking strings, escapes and bracket depth, so replies split
 *   across chunks or packed several to a chunk are delivered whole and in order.
 * - `transact` throws `OvsdbError` when any operation (or the commit) failed — the server
 *   reports that as a normal result with an `{"error"}` element, never as an RPC error. A
 *   failed transaction changed nothing (OVSDB transactions are atomic).
 * - The server's `echo` requests are answered, so TCP connections survive its inactivity
 *   probe; an optional client-side probe detects dead peers.
 * - Connections are opened lazily. A request while disconnected dials at once and fails fast
 *   (`OvsdbConnectionError`) if the server is unreachable — callers own retries. While a
 *   monitor is active, a lost connection is re-dialled with exponential backoff and every
 *   monitor is re-established; its callback then receives a fresh `initial` snapshot with
 *   `resync: true`, which replaces whatever the consumer knew.
 *
 * Caveats: requests in flight when a connection drops are rejected (the server may or may
 * not have committed a transaction whose reply was lost — make operations idempotent).
 * Monitors use `monitor_cond` only (ovsdb-server ≥ 2.6); updates are delivered raw
 * (`table-updates2`), not folded into a local replica. No SSL endpoints.
 */
import { createConnection, type Socket } from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import { log, type Logger } from '../../runtime/log.js';

// ---------------------------------------------------------------------------------------
// RFC 7047 value and operation shapes

export type OvsdbUuid = ['uuid', string];
export type OvsdbNamedUuid = ['named-uuid', string];
export type OvsdbAtom = string | number | boolean | OvsdbUuid | OvsdbNamedUuid;
export type OvsdbSet = ['set', OvsdbAtom[]];
export type OvsdbMap = ['map', [OvsdbAtom, OvsdbAtom][]];
export type OvsdbValue = OvsdbAtom | OvsdbSet | OvsdbMap;
export type OvsdbRow = Record<string, OvsdbValue>;
export type OvsdbCondition = [column: string, fn: string, value: OvsdbValue];
export type OvsdbMutation = [column: string, mutator: string, value: OvsdbValue];

export type OvsdbOperation =
  | { op: 'insert'; table: string; row: OvsdbRow; 'uuid-name'?: string }
  | { op: 'select'; table: string; where: OvsdbCondition[]; columns?: string[] }
  | { op: 'update'; table: string; where: OvsdbCondition[]; row: OvsdbRow }
  | { op: 'mutate'; table: string; where: OvsdbCondition[]; mutations: OvsdbMutation[] }
  | { op: 'delete'; table: string; where: OvsdbCondition[] }
  | {
      op: 'wait';
      table: string;
      where: OvsdbCondition[];
      columns: string[];
      until: '==' | '!=';
      rows: OvsdbRow[];
      timeout?: number;
    }
  | { op: 'comment'; comment: string }
  | { op: 'assert'; lock: string };

/** One element of a transaction's result array. */
export interface OvsdbOpResult {
  uuid?: OvsdbUuid;
  rows?: OvsdbRow[];
  count?: number;
  error?: string;
  details?: string;
}

/** `table-updates2` (monitor_cond): table → row uuid → what happened to the row. */
export type TableUpdates2 = Record<string, Record<string, RowUpdate2>>;
export interface RowUpdate2 {
  initial?: OvsdbRow;
  insert?: OvsdbRow;
  /** Only the changed columns; sets and maps carry the elements that toggled (RFC 7047 bis). */
  modify?: OvsdbRow;
  delete?: OvsdbRow | null;
}

export interface MonitorTableRequest {
  columns?: string[];
  where?: OvsdbCondition[];
}

export interface MonitorEvent {
  /** `initial`: the full current contents (first, and again after every reconnect). */
  kind: 'initial' | 'update';
  /** True for an `initial` snapshot sent after a reconnect: replace, don't merge. */
  resync: boolean;
  updates: TableUpdates2;
}

export interface OvsdbMonitor {
  readonly id: string;
  /** Stops updates (`monitor_cancel`); safe to call twice or on a closed client. */
  cancel(): Promise<void>;
}

// ---------------------------------------------------------------------------------------
// value helpers

export const ovsUuid = (uuid: string): OvsdbUuid => ['uuid', uuid];
export const ovsNamedUuid = (name: string): OvsdbNamedUuid => ['named-uuid', name];
export const ovsSet = (atoms: OvsdbAtom[]): OvsdbSet => ['set', atoms];
export const ovsMap = (entries: Record<string, string>): OvsdbMap => ['map', Object.entries(entries)];

function isTagged(v: unknown, tag: string): v is [string, unknown] {
  return Array.isArray(v) && v.length === 2 && v[0] === tag;
}

/** The atoms of a set column (a single atom is a one-element set on the wire). */
export function setAtoms(value: OvsdbValue | undefined): OvsdbAtom[] {
  if (value === undefined) return [];
  if (isTagged(value, 'set')) return (value as OvsdbSet)[1];
  return [value as OvsdbAtom];
}

/** A string→string map column as a record. */
export function mapRecord(value: OvsdbValue | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isTagged(value, 'map')) return out;
  for (const [k, v] of (value as OvsdbMap)[1]) out[String(k)] = String(v);
  return out;
}

/** The uuid string of a `["uuid", ...]` atom. */
export function uuidOf(value: OvsdbValue | undefined): string {
  if (isTagged(value, 'uuid')) return (value as OvsdbUuid)[1];
  throw new OvsdbProtocolError(`expected a uuid, got ${JSON.stringify(value)}`);
}

/** An optional integer column (`{min: 0, max: 1}`): the integer, or undefined when empty. */
export function optionalInteger(value: OvsdbValue | undefined): number | undefined {
  const atoms = setAtoms(value);
  return typeof atoms[0] === 'number' ? atoms[0] : undefined;
}

// ---------------------------------------------------------------------------------------
// errors

/** A transaction the server rejected (one operation or the commit failed): nothing changed. */
export class OvsdbError extends Error {
  constructor(
    /** The server's error tag, e.g. `constraint violation`, `referential integrity violation`. */
    readonly error: string,
    readonly details: string | undefined,
    /** Index of the failed operation; `ops.length` when the commit itself failed. */
    readonly opIndex: number,
    /** e.g. `insert Port`, or `commit`. */
    readonly opName: string,
  ) {
    super(`ovsdb transaction failed at ${opName} (op ${opIndex}): ${error}${details ? `: ${details}` : ''}`);
    this.name = 'OvsdbError';
  }
}

/** The server could not be reached, the connection dropped, or a request timed out. */
export class OvsdbConnectionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OvsdbConnectionError';
  }
}

/** The server (or the wire) sent something that is not valid JSON-RPC, or an RPC error. */
export class OvsdbProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OvsdbProtocolError';
  }
}

// ---------------------------------------------------------------------------------------
// framing

const MAX_MESSAGE_CHARS = 64 * 1024 * 1024;

/**
 * Splits a stream of concatenated JSON objects/arrays into values. Keeps scan state between
 * chunks, so each byte is examined once; multi-byte UTF-8 split across chunks is handled by
 * a `StringDecoder`. Throws `OvsdbProtocolError` on bytes outside a value that are not
 * whitespace, or a value larger than 64 MiB; the parser is then unusable (drop the connection).
 */
export class JsonStreamParser {
  private buf = '';
  private pos = 0;
  private start = -1;
  private depth = 0;
  private inString = false;
  private escaped = false;
  private readonly decoder = new StringDecoder('utf8');

  push(chunk: Buffer | string): unknown[] {
    this.buf += typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    const values: unknown[] = [];
    const buf = this.buf;
    for (; this.pos < buf.length; this.pos++) {
      const c = buf.charCodeAt(this.pos);
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === 0x5c /* \ */) this.escaped = true;
        else if (c === 0x22 /* " */) this.inString = false;
        continue;
      }
      if (this.depth === 0) {
        if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue;
        if (c !== 0x7b /* { */ && c !== 0x5b /* [ */) {
          throw new OvsdbProtocolError(`unexpected ${JSON.stringify(buf[this.pos])} between JSON-RPC messages`);
        }
        this.start = this.pos;
        this.depth = 1;
        continue;
      }
      if (c === 0x22) this.inString = true;
      else if (c === 0x7b || c === 0x5b) this.depth++;
      else if (c === 0x7d || c === 0x5d) {
        this.depth--;
        if (this.depth === 0) {
          const text = buf.slice(this.start, this.pos + 1);
          try {
            values.push(JSON.parse(text));
          } catch (err) {
            throw new OvsdbProtocolError(`invalid JSON from server: ${(err as Error).message}`);
          }
          this.start = -1;
        }
      }
    }
    // Keep only the unfinished value (if any) for the next chunk.
    if (this.depth === 0) {
      this.buf = '';
      this.pos = 0;
    } else {
      this.buf = buf.slice(this.start);
      this.pos -= this.start;
      this.start = 0;
      if (this.buf.length > MAX_MESSAGE_CHARS) throw new OvsdbProtocolError('JSON-RPC message larger than 64 MiB');
    }
    return values;
  }

  /** Bytes of an unfinished value are waiting for more input. */
  get pending(): boolean {
    return this.depth > 0;
  }
}

// ---------------------------------------------------------------------------------------
// endpoints

export type OvsdbEndpoint = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

/** Parses `unix:/path` or `tcp:HOST:PORT` (`tcp:[::1]:6640` for IPv6). */
export function parseEndpoint(endpoint: string): OvsdbEndpoint {
  if (endpoint.startsWith('unix:') && endpoint.length > 5) return { kind: 'unix', path: endpoint.slice(5) };
  const m = /^tcp:(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(endpoint);
  if (m) {
    const port = Number(m[3]);
    if (port > 0 && port < 65536) return { kind: 'tcp', host: (m[1] ?? m[2]) as string, port };
  }
  throw new OvsdbConnectionError(`invalid OVSDB endpoint ${JSON.stringify(endpoint)}: want unix:/path or tcp:HOST:PORT`);
}

// ---------------------------------------------------------------------------------------
// client

export interface OvsdbClientOptions {
  /** Per request: connecting plus waiting for the reply. Default 10 s. */
  timeoutMs?: number;
  /** Backoff between automatic reconnects while monitors are active. Defaults 100 ms .. 5 s. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Send an `echo` after this much silence and drop the connection if it stays unanswered. 0 (default) = off. */
  probeIntervalMs?: number;
  logger?: Logger;
}

interface Pending {
  resolve(result: unknown): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
  method: string;
}

interface MonitorState {
  id: string;
  db: string;
  requests: Record<string, MonitorTableRequest>;
  onEvent: (event: MonitorEvent) => void;
  established: boolean;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function rpcErrorText(err: unknown): string {
  if (typeof err === 'string') return err;
  if (isRecord(err)) {
    const e = typeof err.error === 'string' ? err.error : JSON.stringify(err);
    return typeof err.details === 'string' ? `${e}: ${err.details}` : e;
  }
  return JSON.stringify(err);
}

export class OvsdbClient {
  private readonly target: OvsdbEndpoint;
  private readonly timeoutMs: number;
  private readonly minBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly probeIntervalMs: number;
  private readonly logger: Logger;

  private socket: Socket | undefined;
  private dialing: Promise<Socket> | undefined;
  private parser = new JsonStreamParser();
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly monitors = new Map<string, MonitorState>();
  private nextMonitor = 1;
  private backoffMs: number;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private lastReceive = 0;
  private probeOutstanding = false;
  private closed = false;

  constructor(
    /** `unix:/path` or `tcp:HOST:PORT`. */
    readonly endpoint: string,
    options: OvsdbClientOptions = {},
  ) {
    this.target = parseEndpoint(endpoint);
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.minBackoffMs = options.minBackoffMs ?? 100;
    this.maxBackoffMs = options.maxBackoffMs ?? 5_000;
    this.probeIntervalMs = options.probeIntervalMs ?? 0;
    this.backoffMs = this.minBackoffMs;
    this.logger = (options.logger ?? log).child({ component: 'ovsdb', endpoint });
  }

  /** Opens the connection now (otherwise the first request does); throws when unreachable. */
  async connect(): Promise<void> {
    await this.open();
  }

  get connected(): boolean {
    return this.socket !== undefined;
  }

  /** Sends one JSON-RPC request and resolves with its `result`; RPC errors throw `OvsdbProtocolError`. */
  async request(method: string, params: unknown[]): Promise<unknown> {
    const sock = await this.open();
    return this.send(sock, method, params);
  }

  listDbs(): Promise<unknown> {
    return this.request('list_dbs', []);
  }

  getSchema(db: string): Promise<unknown> {
    return this.request('get_schema', [db]);
  }

  /**
   * Runs `ops` atomically in `db`. Resolves with one result per operation; throws
   * `OvsdbError` naming the failed operation when the server rejected the transaction.
   */
  async transact(db: string, ops: OvsdbOperation[]): Promise<OvsdbOpResult[]> {
    const result = await this.request('transact', [db, ...ops]);
    return checkTransactResult(ops, result);
  }

  /**
   * Watches `requests` (table → columns/conditions) with `monitor_cond`. `onEvent` first
   * receives the current contents (`initial`), then every change (`update`); after a
   * reconnect it receives a new `initial` with `resync: true`. Resolves once the first
   * snapshot was delivered.
   */
  async monitor(
    db: string,
    requests: Record<string, MonitorTableRequest>,
    onEvent: (event: MonitorEvent) => void,
  ): Promise<OvsdbMonitor> {
    const state: MonitorState = { id: `stratus-${this.nextMonitor++}`, db, requests, onEvent, established: false };
    const sock = await this.open();
    this.monitors.set(state.id, state);
    try {
      await this.startMonitor(sock, state);
    } catch (err) {
      this.monitors.delete(state.id);
      throw err;
    }
    return {
      id: state.id,
      cancel: async () => {
        if (!this.monitors.delete(state.id)) return;
        if (this.socket && !this.closed) {
          await this.send(this.socket, 'monitor_cancel', [state.id]).catch(() => undefined);
        }
      },
    };
  }

  /** Closes the connection, rejects pending requests and stops reconnecting. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    this.monitors.clear();
    clearTimeout(this.reconnectTimer);
    const sock = this.socket;
    if (this.dialing) await this.dialing.catch(() => undefined);
    const current = this.socket ?? sock;
    if (current) {
      const gone = new Promise<void>((resolve) => current.once('close', () => resolve()));
      current.destroy();
      await gone;
    }
  }

  // -------------------------------------------------------------------------------------

  private open(): Promise<Socket> {
    if (this.closed) return Promise.reject(new OvsdbConnectionError(`ovsdb client for ${this.endpoint} is closed`));
    if (this.socket) return Promise.resolve(this.socket);
    if (!this.dialing) {
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = undefined;
      this.dialing = this.dial()
        .catch((err: Error) => {
          if (this.monitors.size > 0) this.scheduleReconnect();
          throw err;
        })
        .finally(() => {
          this.dialing = undefined;
        });
    }
    return this.dialing;
  }

  private dial(): Promise<Socket> {
    return new Promise<Socket>((resolve, reject) => {
      const t = this.target;
      const sock = t.kind === 'unix' ? createConnection({ path: t.path }) : createConnection({ host: t.host, port: t.port });
      const timer = setTimeout(() => sock.destroy(new Error(`no connection after ${this.timeoutMs} ms`)), this.timeoutMs);
      const fail = (err: Error): void => {
        clearTimeout(timer);
        reject(new OvsdbConnectionError(`cannot connect to ovsdb at ${this.endpoint}: ${err.message}`));
      };
      sock.once('error', fail);
      sock.once('connect', () => {
        clearTimeout(timer);
        sock.off('error', fail);
        if (this.closed) {
          sock.destroy();
          reject(new OvsdbConnectionError(`ovsdb client for ${this.endpoint} is closed`));
          return;
        }
        this.attach(sock);
        resolve(sock);
      });
    });
  }

  private attach(sock: Socket): void {
    this.socket = sock;
    this.parser = new JsonStreamParser();
    this.backoffMs = this.minBackoffMs;
    this.lastReceive = Date.now();
    this.probeOutstanding = false;
    sock.setNoDelay?.(true);
    sock.on('data', (chunk: Buffer) => this.onData(sock, chunk));
    sock.on('error', (err) => this.logger.debug({ err: err.message }, 'ovsdb connection error'));
    sock.on('close', () => this.onClose(sock));
    if (this.probeIntervalMs > 0) this.startProbe(sock);
    const resync = [...this.monitors.values()].filter((m) => m.established);
    if (resync.length > 0) this.logger.info({ monitors: resync.length }, 'reconnected to ovsdb; re-establishing monitors');
    for (const m of resync) {
      this.startMonitor(sock, m).catch((err: Error) => {
        this.logger.warn({ err: err.message, monitor: m.id }, 'cannot re-establish ovsdb monitor');
        sock.destroy();
      });
    }
  }

  private async startMonitor(sock: Socket, m: MonitorState): Promise<void> {
    const req: Record<string, MonitorTableRequest> = {};
    for (const [table, r] of Object.entries(m.requests)) {
      req[table] = { ...(r.columns ? { columns: r.columns } : {}), ...(r.where ? { where: r.where } : {}) };
    }
    // The snapshot is delivered synchronously as the reply is dispatched, so it always
    // precedes update2 notifications that arrived in the same chunk.
    await this.send(sock, 'monitor_cond', [m.db, m.id, req], (result) => {
      if (!this.monitors.has(m.id)) return;
      const resync = m.established;
      m.established = true;
      m.onEvent({ kind: 'initial', resync, updates: (isRecord(result) ? result : {}) as TableUpdates2 });
    });
  }

  private onClose(sock: Socket): void {
    if (this.socket !== sock) return;
    this.socket = undefined;
    clearInterval(this.probeTimer);
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new OvsdbConnectionError(`connection to ovsdb at ${this.endpoint} lost during ${p.method}`));
      this.pending.delete(id);
    }
    if (!this.closed && this.monitors.size > 0) {
      this.logger.warn('connection to ovsdb lost; reconnecting');
      this.scheduleReconnect();
    }
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer || this.socket) return;
    const delay = this.backoffMs * (0.8 + Math.random() * 0.4);
    this.backoffMs = Math.min(this.backoffMs * 2, this.maxBackoffMs);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.open().catch((err: Error) => this.logger.debug({ err: err.message }, 'ovsdb reconnect failed'));
    }, delay);
    this.reconnectTimer.unref();
  }

  private startProbe(sock: Socket): void {
    clearInterval(this.probeTimer);
    this.probeTimer = setInterval(() => {
      if (this.socket !== sock) return;
      if (Date.now() - this.lastReceive < this.probeIntervalMs) return;
      if (this.probeOutstanding) {
        this.logger.warn({ idleMs: Date.now() - this.lastReceive }, 'ovsdb inactivity probe unanswered; reconnecting');
        sock.destroy();
        return;
      }
      this.probeOutstanding = true;
      this.send(sock, 'echo', []).catch(() => undefined);
    }, Math.max(10, Math.floor(this.probeIntervalMs / 2)));
    this.probeTimer.unref();
  }

  /** `onResult` runs synchronously when the reply is dispatched, before later messages. */
  private send(sock: Socket, method: string, params: unknown[], onResult?: (result: unknown) => void): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new OvsdbConnectionError(`ovsdb at ${this.endpoint} did not answer ${method} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      const settle = (result: unknown): void => {
        try {
          onResult?.(result);
          resolve(result);
        } catch (err) {
          reject(err as Error);
        }
      };
      this.pending.set(id, { resolve: settle, reject, timer, method });
      sock.write(JSON.stringify({ method, params, id }));
    });
  }

  private onData(sock: Socket, chunk: Buffer): void {
    if (this.socket !== sock) return;
    this.lastReceive = Date.now();
    this.probeOutstanding = false;
    let messages: unknown[];
    try {
      messages = this.parser.push(chunk);
    } catch (err) {
      this.logger.error({ err: (err as Error).message }, 'unparseable data from ovsdb; dropping connection');
      sock.destroy();
      return;
    }
    for (const msg of messages) this.dispatch(sock, msg);
  }

  private dispatch(sock: Socket, msg: unknown): void {
    if (!isRecord(msg)) return;
    if (typeof msg.method === 'string') {
      const params = Array.isArray(msg.params) ? msg.params : [];
      if (msg.method === 'echo' && msg.id !== null && msg.id !== undefined) {
        sock.write(JSON.stringify({ id: msg.id, result: params, error: null }));
      } else if (msg.method === 'update2') {
        const m = this.monitors.get(String(params[0]));
        if (m && isRecord(params[1])) m.onEvent({ kind: 'update', resync: false, updates: params[1] as TableUpdates2 });
      } else if (msg.id !== null && msg.id !== undefined) {
        sock.write(JSON.stringify({ id: msg.id, result: null, error: { error: 'unknown method', details: msg.method } }));
      }
      return;
    }
    if (typeof msg.id !== 'number') return;
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    clearTimeout(p.timer);
    if (msg.error !== null && msg.error !== undefined) {
      p.reject(new OvsdbProtocolError(`ovsdb ${p.method} failed: ${rpcErrorText(msg.error)}`));
    } else {
      p.resolve(msg.result);
    }
  }
}

/**
 * Checks a `transact` result: throws `OvsdbError` for the first element carrying `error`
 * (an operation's, or the extra element after the operations that reports a failed commit).
 */
export function checkTransactResult(ops: OvsdbOperation[], result: unknown): OvsdbOpResult[] {
  if (!Array.isArray(result)) throw new OvsdbProtocolError(`transact returned ${JSON.stringify(result)}, not an array`);
  for (let i = 0; i < result.length; i++) {
    const r: unknown = result[i];
    if (isRecord(r) && r.error !== undefined && r.error !== null) {
      const op = ops[i];
      const opName = op ? `${op.op}${'table' in op ? ` ${op.table}` : ''}` : 'commit';
      throw new OvsdbError(String(r.error), typeof r.details === 'string' ? r.details : undefined, i, opName);
    }
  }
  if (result.length < ops.length) {
    throw new OvsdbProtocolError(`transact returned ${result.length} results for ${ops.length} operations`);
  }
  return result.slice(0, ops.length).map((r: unknown) => (isRecord(r) ? (r as OvsdbOpResult) : {}));
}
