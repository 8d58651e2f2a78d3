/**
 * Storage benchmark: both backends on this machine — puts/s with 1 and 32 concurrent
 * writers, gets/s, and watch delivery latency (write issued → event received) p50/p99,
 * each the median of a few runs. Every figure sits beside the limit it is compared with,
 * measured in the same run:
 * - SQLite: raw better-sqlite3 with the same durability (WAL, synchronous=FULL) — one insert
 *   per transaction for 1 writer, 32 inserts per transaction for 32 writers (what group
 *   commit can at best achieve), point selects for gets, one commit's latency for watches.
 * - etcd: the raw etcd3 client (`etcdctl put`/`get` equivalents) at the same concurrency,
 *   and a raw etcd3 watcher's latency.
 *
 * Runs in ~60 s. `runStorageBench()` publishes each report (bench/report.ts) and returns them.
 */
import Database from 'better-sqlite3';
import { Etcd3 } from 'etcd3';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import { EtcdStore } from '../apiserver/storage/etcd.js';
import { SqliteStore } from '../apiserver/storage/sqlite.js';
import type { Store } from '../apiserver/storage/store.js';
import { startEtcd } from '../test/harness/etcd.js';
import { removeDir, tempDir } from '../test/harness/process.js';
import { median, percentile, publish, resultsTable, type BenchReport, type Figure } from './report.js';
import { progress } from './progress.js';

const RUNS = 3;
const WINDOW_MS = 1500;
const GET_WINDOW_MS = 1000;
const WATCH_WRITES = 200;
const VALUE = JSON.stringify({ kind: 'Instance', spec: { image: 'debian-12', cpus: 2, memoryMiB: 2048 }, pad: 'x'.repeat(160) });

/** Runs `workers` loops of `op` for `windowMs`; returns completed operations per second. */
async function throughput(workers: number, windowMs: number, op: (worker: number, i: number) => Promise<unknown>): Promise<number> {
  let done = 0;
  const start = performance.now();
  const deadline = start + windowMs;
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (let i = 0; performance.now() < deadline; i++) {
        await op(w, i);
        done++;
      }
    }),
  );
  return (done * 1000) / (performance.now() - start);
}

/** Median over RUNS of a per-run measurement; `run` gets the run number. */
async function medianOf(run: (r: number) => Promise<number>): Promise<number> {
  const values: number[] = [];
  for (let r = 0; r < RUNS; r++) values.push(await run(r));
  return median(values);
}

interface Measured {
  puts1: number;
  puts32: number;
  gets: number;
  watchP50: number;
  watchP99: number;
}

/** What a backend (or its raw limit) offers the measurements. */
interface Target {
  put(key: string): Promise<unknown> | unknown;
  get(key: string): Promise<unknown> | unknown;
  /** Starts watching `prefix`, calling `onKey` with each changed key; resolves once attached. */
  watch(prefix: string, onKey: (key: string) => void): Promise<() => Promise<void>>;
}

/** `puts32` replaces the 32-writer measurement (raw SQLite measures batched commits instead). */
async function measure(t: Target, tag: string, puts32Of?: (r: number) => Promise<number>): Promise<Measured> {
  const puts1 = await medianOf((r) => throughput(1, WINDOW_MS, async (w, i) => t.put(`/bench/${tag}/p1-${r}/${w}/${i}`)));
  const puts32 = await medianOf(puts32Of ?? ((r) => throughput(32, WINDOW_MS, async (w, i) => t.put(`/bench/${tag}/p32-${r}/${w}/${i}`))));
  const gets = await medianOf((r) =>
    throughput(32, GET_WINDOW_MS, async (_w, i) => {
      if (!(await t.get(`/bench/${tag}/p1-${r}/0/${i % 100}`))) throw new Error(`bench ${tag}: a key written earlier is missing`);
    }),
  );
  const p50s: number[] = [];
  const p99s: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const latencies = await watchLatencies(t, `/bench/${tag}/watch-${r}/`);
    p50s.push(percentile(latencies, 50));
    p99s.push(percentile(latencies, 99));
  }
  return { puts1, puts32, gets, watchP50: median(p50s), watchP99: median(p99s) };
}

/** Writes WATCH_WRITES keys one after another; for each, ms from issuing the write to its event. */
async function watchLatencies(t: Target, prefix: string): Promise<number[]> {
  const issued = new Map<string, number>();
  const latencies: number[] = [];
  let wake: (() => void) | undefined;
  const stop = await t.watch(prefix, (key) => {
    const at = issued.get(key);
    if (at === undefined) return;
    latencies.push(performance.now() - at);
    issued.delete(key);
    wake?.();
  });
  try {
    for (let i = 0; i < WATCH_WRITES; i++) {
      const key = `${prefix}${i}`;
      const arrived = new Promise<void>((r) => (wake = r));
      issued.set(key, performance.now());
      await t.put(key);
      await arrived;
    }
  } finally {
    await stop();
  }
  return latencies;
}

function storeTarget(store: Store): Target {
  return {
    put: (key) => store.create(key, VALUE),
    get: (key) => store.get(key),
    async watch(prefix, onKey) {
      let failure: Error | undefined;
      const h = store.watch(prefix, await store.currentRevision(), {
        onEvent: (e) => onKey(e.key),
        onError: (e) => (failure = e),
      });
      await new Promise((r) => setTimeout(r, 100)); // attached (etcd) / replayed (SQLite)
      if (failure) throw failure;
      return () => h.close();
    },
  };
}

/** better-sqlite3 on its own, with the store's durability: WAL, synchronous=FULL. */
function rawSqliteTarget(db: Database.Database): Target {
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
  const insert = db.prepare<[string, string]>('INSERT INTO kv (key, value) VALUES (?, ?)');
  const select = db.prepare<[string], { value: string }>('SELECT value FROM kv WHERE key = ?');
  // Raw SQLite has no watch: its "delivery" is the commit itself, the floor for the store's.
  const watchers = new Map<string, (key: string) => void>();
  return {
    put(key) {
      insert.run(key, VALUE);
      for (const [prefix, onKey] of watchers) if (key.startsWith(prefix)) onKey(key);
    },
    get: (key) => select.get(key),
    watch(prefix, onKey) {
      watchers.set(prefix, onKey);
      return Promise.resolve(async () => {
        watchers.delete(prefix);
      });
    },
  };
}

/** Rows per second of raw inserts, `perTxn` rows per transaction (32 = group commit's best case). */
function rawSqliteBatchedPuts(db: Database.Database, perTxn: number, tag: string): number {
  const insert = db.prepare<[string, string]>('INSERT INTO kv (key, value) VALUES (?, ?)');
  const batch = db.transaction((base: number) => {
    for (let j = 0; j < perTxn; j++) insert.run(`/raw/${tag}/${base + j}`, VALUE);
  });
  let rows = 0;
  const start = performance.now();
  while (performance.now() - start < WINDOW_MS) {
    batch(rows);
    rows += perTxn;
  }
  return (rows * 1000) / (performance.now() - start);
}

function rawEtcdTarget(client: Etcd3): Target {
  return {
    put: (key) => client.put(key).value(VALUE).exec(),
    get: (key) => client.get(key).string(),
    async watch(prefix, onKey) {
      const w = await client.watch().prefix(prefix).create();
      w.on('put', (kv) => onKey(kv.key.toString()));
      return async () => {
        await w.cancel();
      };
    },
  };
}

function figures(m: Measured, limit: Measured, limitOf: string): Figure[] {
  const f = (name: string, value: number, unit: string, limitValue: number, what: string): Figure => ({
    name,
    value,
    unit,
    limit: { name: `${limitOf} ${what}`, value: limitValue, unit },
  });
  return [
    f('puts/s, 1 writer', m.puts1, 'ops/s', limit.puts1, 'puts/s, 1 writer'),
    f('puts/s, 32 concurrent writers', m.puts32, 'ops/s', limit.puts32, 'puts/s, 32 writers'),
    f('gets/s, 32 concurrent readers', m.gets, 'ops/s', limit.gets, 'gets/s'),
    f('watch delivery latency p50', m.watchP50, 'ms', limit.watchP50, 'p50'),
    f('watch delivery latency p99', m.watchP99, 'ms', limit.watchP99, 'p99'),
  ];
}

async function benchSqlite(): Promise<BenchReport> {
  const dir = await tempDir('bench-sqlite');
  try {
    const rawDb = new Database(join(dir, 'raw.db'));
    let limit: Measured;
    try {
      // 32 writers to the store are group-committed; the raw equivalent is 32 rows per commit.
      limit = await measure(rawSqliteTarget(rawDb), 'raw', async (r) => rawSqliteBatchedPuts(rawDb, 32, `b${r}`));
    } finally {
      rawDb.close();
    }
    const store = SqliteStore.open(join(dir, 'stratus.db'), { compactEveryMs: 0 });
    let m: Measured;
    try {
      m = await measure(storeTarget(store), 'store');
    } finally {
      await store.close();
    }
    return {
      benchmark: 'storage-sqlite',
      conditions: { backend: 'sqlite', durability: 'WAL synchronous=FULL', runs: RUNS, windowMs: WINDOW_MS, valueBytes: VALUE.length },
      figures: figures(m, limit, 'raw better-sqlite3'),
    };
  } finally {
    await removeDir(dir);
  }
}

async function benchEtcd(): Promise<BenchReport> {
  const etcd = await startEtcd();
  try {
    const client = new Etcd3({ hosts: [etcd.endpoint] });
    let limit: Measured;
    try {
      limit = await measure(rawEtcdTarget(client), 'raw');
    } finally {
      client.close();
    }
    const store = new EtcdStore({ endpoints: [etcd.endpoint] });
    let m: Measured;
    try {
      m = await measure(storeTarget(store), 'store');
    } finally {
      await store.close();
    }
    return {
      benchmark: 'storage-etcd',
      conditions: { backend: 'etcd 3.4 (1 member, local disk)', runs: RUNS, windowMs: WINDOW_MS, valueBytes: VALUE.length },
      figures: figures(m, limit, 'raw etcd3 client'),
    };
  } finally {
    await etcd.stop();
  }
}

export async function runStorageBench(): Promise<BenchReport[]> {
  const reports: BenchReport[] = [];
  for (const [label, run] of [['SQLite', benchSqlite], ['etcd', benchEtcd]] as const) {
    const shown = progress(`storage: ${label} vs raw client`, undefined, '', 60);
    const report = await run();
    shown.end();
    publish(report);
    reports.push(report);
  }
  return reports;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runStorageBench().then(
    (reports) => {
      process.stdout.write(resultsTable(reports) + '\n');
      process.exit(0);
    },
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
