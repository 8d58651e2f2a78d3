/**
 * The embedded default backend: one SQLite file (better-sqlite3) holding an MVCC history.
 *
 * Layout: `history` has one row per revision (a write takes exactly the next revision, so
 * the revision is the row id and the sequence has no holes until compaction drops
 * superseded rows); `live` points every existing key at its latest history row; `meta`
 * holds the current and the compacted revision.
 *
 * Guarantees and how they are kept:
 * - Durability: WAL with `synchronous=FULL` — the WAL is fsynced before a commit returns,
 *   and a write is acknowledged only after its commit, so an acknowledged write survives a
 *   process crash and a power loss (NORMAL would survive only the former).
 * - Throughput despite fsync per commit: writes are queued and group-committed — all writes
 *   issued in the same event-loop turn share one transaction (each still takes its own
 *   revision, and a failed compare-and-swap does not affect the others).
 * - Exclusivity: before touching the data file, `open` takes an exclusive SQLite lock on a
 *   small companion database `<file>.lock` (rollback journal, `locking_mode=EXCLUSIVE`, so
 *   the lock is held until close) and records its PID in `<file>.pid`. A second opener —
 *   another process, or another connection in this one — gets SQLITE_BUSY at once and fails
 *   with a message naming the file and that PID. The lock is an fcntl lock the kernel drops
 *   when the holder dies, so a crashed server never leaves a stale lock behind. (The data
 *   file itself is not opened in EXCLUSIVE mode: in WAL mode that lock is not held
 *   continuously under write load, so it cannot serve as the guard.)
 * - Watches are push-based: after each commit the batch's events go to every in-process
 *   watcher synchronously, in revision order; a watcher starting from an older revision
 *   first replays history from the file in chunks and only then joins the live stream,
 *   with a per-watcher high-water mark so nothing is delivered twice.
 * - Compaction at R keeps, per key, the latest version at or before R (unless deleted), so
 *   `list` at any revision >= R and `watch` after any revision >= R (with previous values)
 *   still work; older ones fail with `TooOldError`.
 *
 * better-sqlite3 is synchronous: every transaction here is small (one write batch, one
 * compaction chunk) so the event loop is never held for long.
 */
import Database from 'better-sqlite3';
import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { log } from '../../runtime/log.js';
import { prefixEnd } from './keys.js';
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

const logger = log.child({ component: 'storage', backend: 'sqlite' });

export interface SqliteStoreOptions {
  /** How often to compact old history (default 60 s; 0 disables periodic compaction). */
  compactEveryMs?: number;
  /** How many recent revisions periodic compaction keeps readable (default 10,000). */
  retainRevisions?: number;
}

type WriteOp =
  | { kind: 'create'; key: string; value: string }
  | { kind: 'update'; key: string; value: string; expected: number }
  | { kind: 'delete'; key: string; expected: number | undefined };

interface PendingWrite {
  op: WriteOp;
  resolve(kv: KeyValue): void;
  reject(err: Error): void;
}

interface LiveRow {
  mod_revision: number;
  create_revision: number;
}

interface KvRow {
  key: string;
  value: string;
  create_revision: number;
  mod_revision: number;
}

interface HistoryRow {
  revision: number;
  key: string;
  value: string | null;
  create_revision: number;
  deleted: number;
  prev_revision: number | null;
  prev_value: string | null;
}

/** Writes per transaction; the rest wait for the next batch. */
const MAX_BATCH = 1000;
/** History rows a catching-up watcher reads per turn of the event loop. */
const REPLAY_CHUNK = 1000;
/** History rows a compaction step deletes per transaction. */
const COMPACT_CHUNK = 2000;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS history (
  revision        INTEGER PRIMARY KEY,
  key             TEXT    NOT NULL,
  value           TEXT,                 -- NULL for a deletion (tombstone)
  create_revision INTEGER NOT NULL,
  prev_revision   INTEGER,              -- the key's previous version; NULL when this row created it
  deleted         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS history_key_revision ON history (key, revision);
CREATE TABLE IF NOT EXISTS live (
  key             TEXT    PRIMARY KEY,
  mod_revision    INTEGER NOT NULL,
  create_revision INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
  name  TEXT    PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (name, value) VALUES ('revision', 0), ('compacted', 0);
`;

class SqliteWatch implements WatchHandle {
  /** Highest revision delivered (or skipped as outside the prefix). */
  last: number;
  /** False while replaying history from the file; true once on the live stream. */
  live = false;
  closed = false;

  constructor(
    readonly prefix: string,
    readonly end: string | undefined,
    afterRevision: number,
    readonly callbacks: WatchCallbacks,
    private readonly detach: (w: SqliteWatch) => void,
  ) {
    this.last = afterRevision;
  }

  matches(key: string): boolean {
    return key >= this.prefix && (this.end === undefined || key < this.end);
  }

  deliver(event: WatchEvent): void {
    if (this.closed || event.revision <= this.last) return;
    this.last = event.revision;
    try {
      this.callbacks.onEvent(event);
    } catch (err) {
      logger.error({ err, key: event.key }, 'watch onEvent callback threw');
    }
  }

  fail(error: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.detach(this);
    try {
      this.callbacks.onError(error);
    } catch (err) {
      logger.error({ err }, 'watch onError callback threw');
    }
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.detach(this);
    }
    return Promise.resolve();
  }
}

export class SqliteStore implements Store {
  private rev: number;
  private compacted: number;
  private pending: PendingWrite[] = [];
  private flushScheduled = false;
  private readonly watchers = new Set<SqliteWatch>();
  private compaction: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  private readonly stmts;

  /**
   * Opens (creating if needed) the store in `file`. Fails with a `StoreError` naming the
   * file and the holder's PID when another process or connection holds it.
   */
  static open(file: string, options: SqliteStoreOptions = {}): SqliteStore {
    const path = resolve(file);
    mkdirSync(dirname(path), { recursive: true });
    const lock = acquireLock(path);
    let db: Database.Database | undefined;
    try {
      db = new Database(path, { timeout: 5000 });
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.exec(`BEGIN IMMEDIATE; ${SCHEMA} COMMIT;`);
      return new SqliteStore(db, path, lock, options);
    } catch (err) {
      if (db?.inTransaction) db.exec('ROLLBACK');
      db?.close();
      lock.release();
      throw err;
    }
  }

  private constructor(
    private readonly db: Database.Database,
    readonly file: string,
    private readonly lock: FileLock,
    options: SqliteStoreOptions,
  ) {
    this.stmts = {
      meta: db.prepare<[string], { value: number }>('SELECT value FROM meta WHERE name = ?'),
      setMeta: db.prepare<[number, string]>('UPDATE meta SET value = ? WHERE name = ?'),
      live: db.prepare<[string], LiveRow>('SELECT mod_revision, create_revision FROM live WHERE key = ?'),
      valueAt: db.prepare<[number], { value: string | null }>('SELECT value FROM history WHERE revision = ?'),
      insertHistory: db.prepare<[number, string, string | null, number, number | null, number]>(
        'INSERT INTO history (revision, key, value, create_revision, prev_revision, deleted) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      insertLive: db.prepare<[string, number, number]>(
        'INSERT INTO live (key, mod_revision, create_revision) VALUES (?, ?, ?)',
      ),
      updateLive: db.prepare<[number, string]>('UPDATE live SET mod_revision = ? WHERE key = ?'),
      deleteLive: db.prepare<[string]>('DELETE FROM live WHERE key = ?'),
      get: db.prepare<[string], KvRow>(
        `SELECT l.key, h.value, l.create_revision, l.mod_revision
           FROM live l JOIN history h ON h.revision = l.mod_revision WHERE l.key = ?`,
      ),
      listLive: db.prepare<[string, string, string, number], KvRow>(
        `SELECT l.key, h.value, l.create_revision, l.mod_revision
           FROM live l JOIN history h ON h.revision = l.mod_revision
          WHERE l.key >= ? AND l.key > ? AND l.key < ? ORDER BY l.key LIMIT ?`,
      ),
      listLiveOpen: db.prepare<[string, string, number], KvRow>(
        `SELECT l.key, h.value, l.create_revision, l.mod_revision
           FROM live l JOIN history h ON h.revision = l.mod_revision
          WHERE l.key >= ? AND l.key > ? ORDER BY l.key LIMIT ?`,
      ),
      // The version of each key current at revision R: its newest row <= R, unless a tombstone.
      listAt: db.prepare<[string, string, string, number, number, number], KvRow>(
        `SELECT h.key, h.value, h.create_revision, h.revision AS mod_revision
           FROM history h
          WHERE h.key >= ? AND h.key > ? AND h.key < ? AND h.revision <= ? AND h.deleted = 0
            AND NOT EXISTS (SELECT 1 FROM history n WHERE n.key = h.key AND n.revision > h.revision AND n.revision <= ?)
          ORDER BY h.key LIMIT ?`,
      ),
      listAtOpen: db.prepare<[string, string, number, number, number], KvRow>(
        `SELECT h.key, h.value, h.create_revision, h.revision AS mod_revision
           FROM history h
          WHERE h.key >= ? AND h.key > ? AND h.revision <= ? AND h.deleted = 0
            AND NOT EXISTS (SELECT 1 FROM history n WHERE n.key = h.key AND n.revision > h.revision AND n.revision <= ?)
          ORDER BY h.key LIMIT ?`,
      ),
      countRange: db.prepare<[string, string, string], { n: number }>(
        'SELECT COUNT(*) AS n FROM live WHERE key >= ? AND key > ? AND key < ?',
      ),
      countOpen: db.prepare<[string, string], { n: number }>('SELECT COUNT(*) AS n FROM live WHERE key >= ? AND key > ?'),
      replay: db.prepare<[number, number, number], HistoryRow>(
        `SELECT h.revision, h.key, h.value, h.create_revision, h.deleted, h.prev_revision, p.value AS prev_value
           FROM history h LEFT JOIN history p ON p.revision = h.prev_revision
          WHERE h.revision > ? AND h.revision <= ? ORDER BY h.revision LIMIT ?`,
      ),
      chunkEnd: db.prepare<[number, number, number], { revision: number }>(
        'SELECT revision FROM history WHERE revision > ? AND revision <= ? ORDER BY revision LIMIT 1 OFFSET ?',
      ),
      compactChunk: db.prepare<[number, number, number]>(
        `DELETE FROM history WHERE revision > ? AND revision <= ?
            AND (deleted = 1 OR EXISTS (SELECT 1 FROM history n
                   WHERE n.key = history.key AND n.revision > history.revision AND n.revision <= ?))`,
      ),
    };
    this.rev = this.stmts.meta.get('revision')?.value ?? 0;
    this.compacted = this.stmts.meta.get('compacted')?.value ?? 0;
    this.commitBatch = db.transaction((batch: PendingWrite[]) => this.applyBatch(batch));

    const every = options.compactEveryMs ?? 60_000;
    const retain = options.retainRevisions ?? 10_000;
    if (every > 0) {
      this.timer = setInterval(() => {
        const target = this.rev - retain;
        if (target > this.compacted) {
          this.compact(target).catch((err: unknown) => logger.error({ err }, 'periodic compaction failed'));
        }
      }, every);
      this.timer.unref();
    }
    logger.info({ file: this.file, revision: this.rev, compacted: this.compacted }, 'opened SQLite store');
  }

  // ---- reads -------------------------------------------------------------------------

  get(key: string): Promise<KeyValue | undefined> {
    return this.run(() => {
      const row = this.stmts.get.get(key);
      return row ? toKeyValue(row) : undefined;
    });
  }

  list(prefix: string, options: ListOptions = {}): Promise<ListResult> {
    return this.run(() => {
      const revision = options.revision || this.rev;
      this.checkReadable(revision);
      const limit = options.limit && options.limit > 0 ? options.limit : -1;
      const fetch = limit > 0 ? limit + 1 : -1;
      const after = options.startAfter ?? '';
      const end = prefixEnd(prefix);
      let rows: KvRow[];
      if (revision === this.rev) {
        rows = end === undefined ? this.stmts.listLiveOpen.all(prefix, after, fetch) : this.stmts.listLive.all(prefix, after, end, fetch);
      } else {
        rows =
          end === undefined
            ? this.stmts.listAtOpen.all(prefix, after, revision, revision, fetch)
            : this.stmts.listAt.all(prefix, after, end, revision, revision, fetch);
      }
      const more = limit > 0 && rows.length > limit;
      if (more) rows.length = limit;
      const result: ListResult = { items: rows.map(toKeyValue), revision, more };
      if (revision === this.rev) {
        result.remaining = more ? this.countAfter(prefix, end, rows[rows.length - 1]!.key) : 0;
      }
      return result;
    });
  }

  count(prefix: string): Promise<number> {
    return this.run(() => this.countAfter(prefix, prefixEnd(prefix), ''));
  }

  currentRevision(): Promise<number> {
    return this.run(() => this.rev);
  }

  compactedRevision(): Promise<number> {
    return this.run(() => this.compacted);
  }

  // ---- writes ------------------------------------------------------------------------

  create(key: string, value: string): Promise<KeyValue> {
    return this.enqueue({ kind: 'create', key, value });
  }

  update(key: string, value: string, expectedModRevision: number): Promise<KeyValue> {
    return this.enqueue({ kind: 'update', key, value, expected: expectedModRevision });
  }

  delete(key: string, expectedModRevision?: number): Promise<KeyValue> {
    return this.enqueue({ kind: 'delete', key, expected: expectedModRevision });
  }

  private enqueue(op: WriteOp): Promise<KeyValue> {
    if (this.closed) return Promise.reject(new StoreError('the store is closed', op.key));
    return new Promise((resolve, reject) => {
      this.pending.push({ op, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private readonly commitBatch: (batch: PendingWrite[]) => Array<{ kv?: KeyValue; error?: Error; event?: WatchEvent }>;

  /** Commits the queued writes as one transaction, then answers them and notifies watchers. */
  private flush(): void {
    this.flushScheduled = false;
    if (this.pending.length === 0) return;
    const batch = this.pending.splice(0, MAX_BATCH);
    if (this.pending.length > 0) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    const before = this.rev;
    let outcomes: Array<{ kv?: KeyValue; error?: Error; event?: WatchEvent }>;
    try {
      outcomes = this.commitBatch(batch);
    } catch (err) {
      this.rev = before;
      const error = err instanceof Error ? err : new Error(String(err));
      logger.error({ err: error, writes: batch.length }, 'write batch failed; nothing was committed');
      for (const w of batch) w.reject(new UnavailableError(`write failed: ${error.message}`, w.op.key));
      return;
    }
    const events: WatchEvent[] = [];
    outcomes.forEach((o, i) => {
      const w = batch[i]!;
      if (o.kv) w.resolve(o.kv);
      else w.reject(o.error ?? new StoreError('write failed', w.op.key));
      if (o.event) events.push(o.event);
    });
    if (events.length > 0) this.notify(events);
  }

  /** Runs inside the batch transaction. A rejected write leaves no trace and takes no revision. */
  private applyBatch(batch: PendingWrite[]): Array<{ kv?: KeyValue; error?: Error; event?: WatchEvent }> {
    const out = batch.map(({ op }) => {
      try {
        return this.applyOne(op);
      } catch (err) {
        if (err instanceof StoreError) return { error: err };
        throw err;
      }
    });
    this.stmts.setMeta.run(this.rev, 'revision');
    return out;
  }

  private applyOne(op: WriteOp): { kv: KeyValue; event: WatchEvent } {
    const s = this.stmts;
    const cur = s.live.get(op.key);
    const rev = this.rev + 1;
    switch (op.kind) {
      case 'create': {
        if (cur) throw new KeyExistsError(`key ${op.key} already exists`, op.key);
        s.insertHistory.run(rev, op.key, op.value, rev, null, 0);
        s.insertLive.run(op.key, rev, rev);
        this.rev = rev;
        return {
          kv: { key: op.key, value: op.value, createRevision: rev, modRevision: rev },
          event: { type: 'ADDED', key: op.key, value: op.value, revision: rev, createRevision: rev },
        };
      }
      case 'update': {
        if (!cur) throw new NotFoundError(`key ${op.key} not found`, op.key);
        if (cur.mod_revision !== op.expected) {
          throw new ConflictError(
            `key ${op.key} was modified at revision ${cur.mod_revision}, not ${op.expected}`,
            op.key,
            cur.mod_revision,
          );
        }
        const prev = s.valueAt.get(cur.mod_revision)?.value ?? undefined;
        s.insertHistory.run(rev, op.key, op.value, cur.create_revision, cur.mod_revision, 0);
        s.updateLive.run(rev, op.key);
        this.rev = rev;
        const event: WatchEvent = { type: 'MODIFIED', key: op.key, value: op.value, revision: rev, createRevision: cur.create_revision };
        if (prev !== undefined) event.prevValue = prev;
        return { kv: { key: op.key, value: op.value, createRevision: cur.create_revision, modRevision: rev }, event };
      }
      case 'delete': {
        if (!cur) throw new NotFoundError(`key ${op.key} not found`, op.key);
        if (op.expected !== undefined && cur.mod_revision !== op.expected) {
          throw new ConflictError(
            `key ${op.key} was modified at revision ${cur.mod_revision}, not ${op.expected}`,
            op.key,
            cur.mod_revision,
          );
        }
        const prev = s.valueAt.get(cur.mod_revision)?.value ?? '';
        s.insertHistory.run(rev, op.key, null, cur.create_revision, cur.mod_revision, 1);
        s.deleteLive.run(op.key);
        this.rev = rev;
        return {
          kv: { key: op.key, value: prev, createRevision: cur.create_revision, modRevision: rev },
          event: { type: 'DELETED', key: op.key, value: prev, prevValue: prev, revision: rev, createRevision: cur.create_revision },
        };
      }
    }
  }

  // ---- watch -------------------------------------------------------------------------

  watch(prefix: string, afterRevision: number, callbacks: WatchCallbacks): WatchHandle {
    const w = new SqliteWatch(prefix, prefixEnd(prefix), afterRevision, callbacks, (x) => this.watchers.delete(x));
    if (this.closed) {
      setImmediate(() => w.fail(new StoreError('the store is closed')));
      return w;
    }
    this.watchers.add(w);
    setImmediate(() => this.replay(w));
    return w;
  }

  /**
   * Brings a new watcher up to the current revision from the history rows, one chunk per
   * event-loop turn; commits that happen meanwhile are read by the next chunk. Once caught
   * up (checked synchronously against `this.rev`) it joins the live stream.
   */
  private replay(w: SqliteWatch): void {
    if (w.closed) return;
    if (this.closed) return w.fail(new StoreError('the store is closed'));
    if (w.last < this.compacted) {
      return w.fail(
        new TooOldError(`revision ${w.last} is older than the compacted revision ${this.compacted}`, this.compacted),
      );
    }
    const upTo = this.rev;
    let rows: HistoryRow[];
    try {
      rows = this.stmts.replay.all(w.last, upTo, REPLAY_CHUNK);
    } catch (err) {
      return w.fail(err instanceof Error ? err : new Error(String(err)));
    }
    for (const row of rows) {
      if (w.closed) return;
      if (w.matches(row.key)) w.deliver(historyEvent(row));
      else w.last = Math.max(w.last, row.revision);
    }
    if (rows.length === REPLAY_CHUNK) {
      setImmediate(() => this.replay(w));
      return;
    }
    w.last = Math.max(w.last, upTo);
    w.live = true;
  }

  private notify(events: WatchEvent[]): void {
    for (const w of this.watchers) {
      if (!w.live) continue;
      for (const ev of events) {
        if (w.closed) break;
        if (w.matches(ev.key)) w.deliver(ev);
      }
    }
  }

  // ---- compaction --------------------------------------------------------------------

  /**
   * Makes revisions older than `revision` unreadable at once, then deletes the rows no
   * readable revision needs, a chunk per transaction. Compacting to an already compacted
   * revision is a no-op.
   */
  compact(revision: number): Promise<void> {
    if (this.closed) return Promise.reject(new StoreError('the store is closed'));
    if (revision > this.rev) {
      return Promise.reject(new StoreError(`cannot compact to revision ${revision}: the current revision is ${this.rev}`));
    }
    const next = this.compaction.then(() => this.compactTo(revision));
    this.compaction = next.catch(() => undefined);
    return next;
  }

  private async compactTo(revision: number): Promise<void> {
    if (revision <= this.compacted || this.closed) return;
    this.stmts.setMeta.run(revision, 'compacted');
    this.compacted = revision;
    for (const w of this.watchers) {
      if (!w.live && w.last < revision) {
        w.fail(new TooOldError(`revision ${w.last} is older than the compacted revision ${revision}`, revision));
      }
    }
    let lo = 0;
    let deleted = 0;
    while (!this.closed) {
      const hi = this.stmts.chunkEnd.get(lo, revision, COMPACT_CHUNK - 1)?.revision ?? revision;
      deleted += this.stmts.compactChunk.run(lo, hi, revision).changes;
      if (hi >= revision) break;
      lo = hi;
      await new Promise((r) => setImmediate(r));
    }
    logger.debug({ revision, deleted }, 'compacted');
  }

  // ---- lifecycle ---------------------------------------------------------------------

  /** Commits queued writes, ends every watch, releases the file and its lock. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.timer) clearInterval(this.timer);
    while (this.pending.length > 0) this.flush();
    this.closed = true;
    await this.compaction;
    for (const w of [...this.watchers]) await w.close();
    this.db.close();
    this.lock.release();
  }

  // ---- helpers -----------------------------------------------------------------------

  private run<T>(read: () => T): Promise<T> {
    if (this.closed) return Promise.reject(new StoreError('the store is closed'));
    try {
      return Promise.resolve(read());
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private checkReadable(revision: number): void {
    if (revision < this.compacted) {
      throw new TooOldError(`revision ${revision} is older than the compacted revision ${this.compacted}`, this.compacted);
    }
    if (revision > this.rev) {
      throw new StoreError(`revision ${revision} is in the future (current revision ${this.rev})`);
    }
  }

  private countAfter(prefix: string, end: string | undefined, after: string): number {
    const row = end === undefined ? this.stmts.countOpen.get(prefix, after) : this.stmts.countRange.get(prefix, after, end);
    return row?.n ?? 0;
  }
}

function toKeyValue(row: KvRow): KeyValue {
  return { key: row.key, value: row.value, createRevision: row.create_revision, modRevision: row.mod_revision };
}

function historyEvent(row: HistoryRow): WatchEvent {
  const prev = row.prev_value ?? undefined;
  if (row.deleted) {
    return { type: 'DELETED', key: row.key, value: prev ?? '', prevValue: prev ?? '', revision: row.revision, createRevision: row.create_revision };
  }
  const event: WatchEvent = {
    type: row.prev_revision === null ? 'ADDED' : 'MODIFIED',
    key: row.key,
    value: row.value ?? '',
    revision: row.revision,
    createRevision: row.create_revision,
  };
  if (prev !== undefined) event.prevValue = prev;
  return event;
}

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

interface FileLock {
  release(): void;
}

/**
 * Takes the exclusive lock guarding `path` (see the class comment), or throws a
 * `StoreError` naming the file and the PID of the process holding it.
 */
function acquireLock(path: string): FileLock {
  const lockPath = `${path}.lock`;
  const pidPath = `${path}.pid`;
  const lockDb = new Database(lockPath, { timeout: 0 });
  try {
    lockDb.pragma('locking_mode = EXCLUSIVE');
    lockDb.exec(
      'BEGIN EXCLUSIVE; CREATE TABLE IF NOT EXISTS holder (pid INTEGER NOT NULL); DELETE FROM holder; ' +
        `INSERT INTO holder (pid) VALUES (${process.pid}); COMMIT;`,
    );
  } catch (err) {
    if (lockDb.inTransaction) lockDb.exec('ROLLBACK');
    lockDb.close();
    if (isBusy(err)) {
      throw new StoreError(
        `cannot open ${path}: it is in use by another stratus process (${holderOf(pidPath)}); ` +
          'stop that process or use a different data directory',
      );
    }
    throw err;
  }
  writeFileSync(pidPath, `${process.pid}\n`);
  return {
    release() {
      try {
        if (readFileSync(pidPath, 'utf8').trim() === String(process.pid)) unlinkSync(pidPath);
      } catch {
        // already gone
      }
      lockDb.close();
    },
  };
}

function holderOf(pidPath: string): string {
  try {
    const pid = Number.parseInt(readFileSync(pidPath, 'utf8').trim(), 10);
    if (Number.isInteger(pid) && pid > 0) return `PID ${pid}, recorded in ${pidPath}`;
  } catch {
    // the holder has not written it yet
  }
  return `holder PID unknown: ${pidPath} is missing`;
}
