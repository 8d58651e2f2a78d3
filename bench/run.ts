/**
 * `make bench`: every benchmark in sequence, each bounded, each figure printed beside the
 * limit it is compared with (measured in the same run), JSON in `bench/results/`.
 *
 *   1. storage (bench/storage.ts): both backends against their raw clients — also the
 *      raw store writes/s the apply storm is compared with;
 *   2. apply storm on SQLite, then Cloud Brain `POST /instances` through the legacy proxy
 *      on the same server while its controllers still run;
 *   3. apply storm on etcd;
 *   4. the embedded DNS server answering for a zone of BENCH_DNS_INSTANCES (5,000) Instances
 *      (bench/dns.ts), p50/p99 over UDP beside the 1 ms p99 limit;
 *   4b. the S3 object store (bench/objectstore.ts): PUT/GET of 1 MiB and 100 MiB objects
 *      beside raw disk write+fsync/read of the same sizes, goal ≥ 70 %;
 *   5. API (GET/LIST/PATCH vs a bare http server), memory and watch fan-out on a server
 *      holding BENCH_API_OBJECTS Instances;
 *   6. guest boot (bench/guest-boot.ts): a real Debian guest, create → SSH answers through
 *      stratus vs raw `virsh define`+`start` of the same image (BENCH_GUEST=0 skips it).
 * The API servers of 2 and 4 run under a CPU profiler (bench/cpu-profiler.ts, what
 * `--cpu-prof` writes), cut into one profile per phase, and so do the controllers during
 * the SQLite storm; each phase's hottest functions are printed and the profiles are kept
 * in bench/results/profiles/ (not committed).
 *
 * What the terminal shows: one progress line per phase (done/total, rate, ETA), then the
 * results table (figure, value, same-run limit, ratio, goal, pass/FAIL). Everything else —
 * the controllers' and servers' logs, each benchmark's full figures, each profile's hottest
 * functions — goes to bench/results/bench.log; the charts go to bench/results/goals.svg and
 * bench/results/latency.svg (bench/charts.ts), which README embeds.
 *
 * Sizes fit the 10-minute budget on a 2-core machine: storms of 1,000 Instances on each
 * backend (10,000 would take ~12 min alone at the rate the libvirt test driver allows here;
 * each storm stops waiting after 150 s and reports how many ran), 10,000 Instances for the
 * API. Override with BENCH_STORM_SQLITE, BENCH_STORM_ETCD, BENCH_LEGACY, BENCH_API_OBJECTS
 * (and BENCH_API_STATUS=1 for Instances with a status).
 */
import './logfile.js'; // first: sends every log line to bench/results/bench.log
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { runStorageBench } from './storage.js';
import { runStorm, STORM_CLIENTS, type StormResult } from './storm.js';
import { runApiBench, type ApiBenchResult } from './api.js';
import { runLegacyBench, type LegacyResult } from './legacy.js';
import { dnsReport, runDnsBench } from './dns.js';
import { publish, publishedReports, resultsTable, meetsGoal, type BenchReport, type Figure } from './report.js';
import { benchLog, benchLogFile, benchWarn, heading, progress } from './progress.js';
import { writeCharts } from './charts.js';
import { describeProfile, hotFunctions, newestProfile } from './profile.js';
import { startEtcd } from '../test/harness/etcd.js';
import { runGuestBootBench } from './guest-boot.js';
import { runColdStart } from './coldstart.js';
import { runObjectStoreBench } from './objectstore.js';

const here = dirname(fileURLToPath(import.meta.url));

const num = (name: string, fallback: number): number => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
};

const STORM_SQLITE = num('BENCH_STORM_SQLITE', 1000);
const STORM_ETCD = num('BENCH_STORM_ETCD', 1000);
const LEGACY = num('BENCH_LEGACY', 100);
const API_OBJECTS = num('BENCH_API_OBJECTS', 10_000);
const STORM_DEADLINE_MS = 150_000;
/** Statuses double the writes of populating the API server; on by BENCH_API_STATUS=1. */
const WITH_STATUS = process.env.BENCH_API_STATUS === '1';
/** Issue #19: GET ≥ 0.8×, LIST ≥ 0.5×, PATCH ≥ 0.5× a bare Node server returning the same bytes. */
const API_GOALS = { get: 0.8, list: 0.5, patch: 0.5 } as const;

const machine = (): Record<string, string | number> => ({
  cores: cpus().length,
  loadavg1m: Number(loadavg()[0]!.toFixed(1)),
  node: process.version,
});

function limitOf(report: BenchReport | undefined, figure: string): number {
  const f = report?.figures.find((x) => x.name === figure);
  if (!f?.limit) throw new Error(`storage benchmark has no figure "${figure}"`);
  return f.limit.value;
}

function stormReport(backend: string, r: StormResult, rawWrites: number, rawOf: string, note: string): BenchReport {
  const writesPerInstance = r.storeWrites / r.n;
  const figures: Figure[] = [
    { name: `Instances running (of ${r.n})`, value: r.running, unit: 'Instances', limit: { name: 'created', value: r.n, unit: 'Instances' }, goal: { minRatio: 1 } },
    { name: 'time until all are running', value: r.seconds, unit: 's' },
    {
      name: 'Instances/s to running',
      value: r.instancesPerSec,
      unit: 'Instances/s',
      limit: { name: `raw ${rawOf} writes/s ÷ store writes per Instance`, value: rawWrites / writesPerInstance, unit: 'Instances/s' },
    },
    {
      name: 'Instances/s to running (provider view)',
      value: r.instancesPerSec,
      unit: 'Instances/s',
      limit: { name: `libvirt provider alone, ${r.instanceConcurrency} creates at once, same nodes`, value: r.providerPerSec, unit: 'Instances/s' },
      goal: { minRatio: 0.6 },
    },
    { name: 'seed ISO build (in-process, per Instance)', value: r.seedIsoMs, unit: 'ms' },
    { name: 'create→running latency p50', value: r.latencyP50Ms, unit: 'ms' },
    { name: 'create→running latency p99', value: r.latencyP99Ms, unit: 'ms', goal: { max: 5000 }, quantilesMs: r.latencyQuantilesMs, distribution: 'create→running' },
    { name: 'creates/s accepted (32 clients)', value: r.n / r.createSeconds, unit: 'writes/s', limit: { name: `raw ${rawOf} writes/s, 32 writers`, value: rawWrites, unit: 'writes/s' } },
    { name: 'store writes per Instance (all kinds)', value: writesPerInstance, unit: 'writes' },
    { name: 'achieved store writes/s', value: r.storeWritesPerSec, unit: 'writes/s', limit: { name: `raw ${rawOf} writes/s, 32 writers`, value: rawWrites, unit: 'writes/s' } },
    { name: 'API writes (2xx create/update/patch/delete)', value: r.apiWrites, unit: 'requests' },
    { name: 'peak RSS of the API server (VmHWM)', value: r.peakRssMiB, unit: 'MiB' },
  ];
  return {
    benchmark: `apply-storm-${backend}`,
    conditions: {
      backend,
      instances: r.n,
      clients: STORM_CLIENTS,
      nodes: 'sim-0..3 (libvirt test driver)',
      controllers: 'in the bench process against serve --no-controllers, serve defaults',
      note,
      ...machine(),
    },
    figures,
  };
}

function apiReports(a: ApiBenchResult, storageSqlite: BenchReport | undefined): BenchReport[] {
  const opFigures = (label: string, key: 'get' | 'list' | 'patch'): Figure[] => {
    const o = a.ops[key];
    return [
      { name: `${label}: throughput, 32 clients`, value: o.closedPerSec, unit: 'req/s', limit: { name: 'bare node http, same bytes', value: o.bareClosedPerSec, unit: 'req/s' }, goal: { minRatio: API_GOALS[key] } },
      { name: `${label}: served at ${o.offeredPerSec}/s offered`, value: o.openPerSec, unit: 'req/s', limit: { name: 'offered', value: o.offeredPerSec, unit: 'req/s' } },
      { name: `${label}: p50 at ${o.offeredPerSec}/s`, value: o.p50Ms, unit: 'ms', limit: { name: 'bare node http p50', value: o.bareP50Ms, unit: 'ms' } },
      { name: `${label}: p99 at ${o.offeredPerSec}/s`, value: o.p99Ms, unit: 'ms', limit: { name: 'bare node http p99', value: o.bareP99Ms, unit: 'ms' }, quantilesMs: o.quantilesMs, distribution: `${label} at ${o.offeredPerSec}/s` },
    ];
  };
  const w = a.watch;
  return [
    {
      benchmark: 'api',
      conditions: {
        backend: 'sqlite',
        objects: a.objects,
        'LIST bytes': a.ops.list.responseBytes,
        loadgen: 'separate process, keep-alive http.Agent',
        errors: a.ops.get.errors + a.ops.list.errors + a.ops.patch.errors,
        ...machine(),
      },
      figures: [
        { name: 'GET as a token user (RBAC), 32 clients', value: a.auth.get.tokenPerSec, unit: 'req/s', limit: { name: 'GET, system:masters certificate (no per-request auth; goal ≥ 90 %)', value: a.auth.get.certPerSec, unit: 'req/s' } },
        { name: 'PATCH as a token user (RBAC), 32 clients', value: a.auth.patch.tokenPerSec, unit: 'req/s', limit: { name: 'PATCH, system:masters certificate (no per-request auth; goal ≥ 90 %)', value: a.auth.patch.certPerSec, unit: 'req/s' } },
        { name: 'populate: creates/s (32 clients)', value: a.objects / a.populateSeconds, unit: 'req/s' },
        ...opFigures('GET by name', 'get'),
        ...opFigures(`LIST of ${a.objects}`, 'list'),
        ...opFigures('PATCH (merge)', 'patch'),
      ],
    },
    {
      benchmark: 'watch-fanout',
      conditions: { backend: 'sqlite', watchers: w.watchers, offeredChangesPerSec: w.offeredPerSec, objects: a.objects, receivers: 'separate process', ...machine() },
      figures: [
        // the achieved rate counts until the last patch is answered: a few ms past the window
        { name: 'changes/s written', value: w.achievedChangesPerSec, unit: 'changes/s', limit: { name: 'offered', value: w.offeredPerSec, unit: 'changes/s' }, goal: { minRatio: 0.95 } },
        { name: 'events delivered', value: w.delivered, unit: 'events', limit: { name: 'changes × watchers', value: w.expected, unit: 'events' }, goal: { minRatio: 1 } },
        { name: 'delivery latency p50', value: w.p50Ms, unit: 'ms', limit: { name: 'raw SQLite commit→notify p50', value: limitOf(storageSqlite, 'watch delivery latency p50'), unit: 'ms' } },
        { name: 'delivery latency p99', value: w.p99Ms, unit: 'ms', limit: { name: 'raw SQLite commit→notify p99', value: limitOf(storageSqlite, 'watch delivery latency p99'), unit: 'ms' }, goal: { max: 50 }, quantilesMs: w.quantilesMs, distribution: `event delivery, ${w.watchers} watchers` },
        { name: 'API server CPU during fan-out', value: w.serverCores, unit: 'cores', limit: { name: 'cores of the machine', value: cpus().length, unit: 'cores' } },
      ],
    },
    {
      benchmark: 'memory',
      conditions: { backend: 'sqlite', objects: a.objects, instances: WITH_STATUS ? 'with a running status as the controller writes it' : 'spec only (no status: BENCH_API_STATUS=1 adds it)', ...machine() },
      figures: [
        { name: `API server RSS holding ${a.objects} Instances`, value: a.serverRssMiB, unit: 'MiB', ...(a.objects >= 10_000 ? { goal: { max: 250 } } : {}) },
        ...(a.serverHeapPer1000MiB !== undefined
          ? [{ name: 'API server heap per 1,000 Instances (after GC)', value: a.serverHeapPer1000MiB, unit: 'MiB', limit: { name: 'JSON of 1,000 Instances', value: a.jsonPer1000MiB, unit: 'MiB' } }]
          : []),
        { name: 'API server RSS per 1,000 Instances', value: a.serverRssPer1000MiB, unit: 'MiB', limit: { name: 'JSON of 1,000 Instances', value: a.jsonPer1000MiB, unit: 'MiB' } },
        { name: 'informer (controllers\' cache) heap per 1,000', value: a.informerHeapPer1000MiB, unit: 'MiB', limit: { name: 'JSON of 1,000 Instances', value: a.jsonPer1000MiB, unit: 'MiB' } },
        { name: 'informer (controllers\' cache) RSS per 1,000', value: a.informerRssPer1000MiB, unit: 'MiB', limit: { name: 'JSON of 1,000 Instances', value: a.jsonPer1000MiB, unit: 'MiB' } },
      ],
    },
  ];
}

function legacyReport(l: LegacyResult, storm: StormResult): BenchReport {
  return {
    benchmark: 'legacy-cloudbrain',
    conditions: { backend: 'sqlite', requests: l.requests, clients: STORM_CLIENTS, auth: 'token ID-SECRET (scrypt, verified once before the timed POSTs)', ...machine() },
    figures: [
      { name: 'first POST with a fresh token (scrypt)', value: l.firstPostMs, unit: 'ms' },
      { name: 'POST /instances created (201)', value: l.created, unit: 'Instances', limit: { name: 'sent', value: l.requests, unit: 'Instances' } },
      { name: 'POST /instances requests/s', value: l.postsPerSec, unit: 'req/s', limit: { name: 'Kubernetes API creates/s (storm)', value: storm.n / storm.createSeconds, unit: 'req/s' }, goal: { minRatio: 0.8 } },
      { name: 'POST /instances p50', value: l.postP50Ms, unit: 'ms' },
      { name: 'POST /instances p99', value: l.postP99Ms, unit: 'ms', quantilesMs: l.postQuantilesMs, distribution: 'POST /instances' },
      { name: 'POST → running p50', value: l.runningP50Ms, unit: 'ms', limit: { name: 'create→running p50 (storm)', value: storm.latencyP50Ms, unit: 'ms' } },
      { name: 'POST → running p99', value: l.runningP99Ms, unit: 'ms', limit: { name: 'create→running p99 (storm)', value: storm.latencyP99Ms, unit: 'ms' } },
      { name: 'Instances/s POST → running', value: l.runningPerSec, unit: 'Instances/s', limit: { name: 'storm Instances/s', value: storm.instancesPerSec, unit: 'Instances/s' } },
    ],
  };
}

async function main(): Promise<void> {
  const started = performance.now();
  // kept for a closer look (bench/.gitignore); replaced by each run
  const profiles = join(process.cwd(), 'bench', 'results', 'profiles');
  rmSync(profiles, { recursive: true, force: true });
  const hot: Record<string, ReturnType<typeof hotFunctions>> = {};
  const notes: string[] = [];
  const profileEnv = (name: string): Record<string, string> => {
    const dir = join(profiles, name);
    mkdirSync(dir, { recursive: true });
    // Node 20 refuses --cpu-prof in NODE_OPTIONS; the preload profiles through the inspector
    return { NODE_OPTIONS: `--import=${pathToFileURL(join(here, 'cpu-profiler.js')).href}`, BENCH_CPU_PROF_DIR: dir };
  };
  const printProfile = (name: string, title: string, which: (file: string) => boolean = () => true): void => {
    const file = newestProfile(join(profiles, name), which);
    if (file) {
      benchLog(describeProfile(title, file, 8));
      hot[title] = hotFunctions(file, 15);
    } else benchLog(`-- profile: ${title}: none written`);
  };
  /** The server's profile segment of each named phase (segment i covers phases[i]). */
  const printPhases = (name: string, phases: string[], wanted: (phase: string) => boolean): void => {
    phases.forEach((phase, i) => {
      if (wanted(phase)) printProfile(name, `${name} API server, ${phase}`, (f) => f === `${String(i).padStart(3, '0')}.cpuprofile`);
    });
  };
  try {
    heading(`stratus benchmarks — ${new Date().toISOString()} — ${cpus().length} cores, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    process.stdout.write(`logs, full figures and profile summaries: ${benchLogFile()}\n`);
    heading('storage: SQLite and etcd against their raw clients');
    const storage = await runStorageBench();
    const storageSqlite = storage.find((r) => r.benchmark === 'storage-sqlite');
    const storageEtcd = storage.find((r) => r.benchmark === 'storage-etcd');
    const projected = (r: StormResult): string =>
      `N=10,000 does not fit the 10-minute budget: at the measured ${r.instancesPerSec.toFixed(1)} Instances/s it alone takes ~${Math.round(10_000 / r.instancesPerSec)} s`;

    const stormPhases: string[] = [];
    const apiPhases: string[] = [];
    let legacy: LegacyResult | undefined;
    let legacyError: string | undefined;
    heading(`apply storm on SQLite (${STORM_SQLITE} Instances, ${STORM_DEADLINE_MS / 1000} s at most), then Cloud Brain POST /instances`);
    const sqliteStorm = await runStorm({
      backend: 'sqlite',
      n: STORM_SQLITE,
      deadlineMs: STORM_DEADLINE_MS,
      serverEnv: profileEnv('storm-sqlite'),
      phases: stormPhases,
      controllersProfile: join(profiles, 'storm-sqlite', 'controllers.cpuprofile'),
      whileLoaded: async ({ serve }) => {
        try {
          legacy = await runLegacyBench(serve, LEGACY, 60_000);
        } catch (err) {
          legacyError = err instanceof Error ? err.message : String(err);
        }
      },
    });
    publish(stormReport('sqlite', sqliteStorm, limitOf(storageSqlite, 'puts/s, 32 concurrent writers'), 'SQLite (32 rows/commit)', projected(sqliteStorm)));
    printPhases('storm-sqlite', stormPhases, (p) => p !== 'startup');
    printProfile('storm-sqlite', 'controllers (bench process) during the SQLite storm', (f) => f.startsWith('controllers'));
    if (legacy) publish(legacyReport(legacy, sqliteStorm));
    else {
      notes.push(`legacy Cloud Brain benchmark not measured: ${legacyError}`);
      benchWarn(`legacy-cloudbrain: NOT MEASURED — ${legacyError}`);
    }

    heading(`apply storm on etcd (${STORM_ETCD} Instances)`);
    const etcd = await startEtcd();
    let etcdStorm: StormResult;
    try {
      etcdStorm = await runStorm({ backend: 'etcd', n: STORM_ETCD, etcdServers: [etcd.endpoint], deadlineMs: STORM_DEADLINE_MS });
    } finally {
      await etcd.stop();
    }
    publish(stormReport('etcd', etcdStorm, limitOf(storageEtcd, 'puts/s, 32 concurrent writers'), 'etcd3 client', projected(etcdStorm)));

    heading('stratus serve: cold start to ready');
    const cold = await runColdStart(3);
    publish({
      benchmark: 'serve-start',
      conditions: { backend: 'sqlite', controllers: 'on (stratus serve defaults)', runs: cold.runs, ...machine() },
      figures: [
        { name: 'fresh data dir → /readyz 200 (CA, certificates, store, RBAC)', value: cold.freshMs / 1000, unit: 's', goal: { max: 1.5 } },
        { name: 'restart on the same data dir → /readyz 200', value: cold.restartMs / 1000, unit: 's', goal: { max: 1.5 } },
      ],
    });

    heading('embedded DNS server');
    const dnsShown = progress('dns: zone + queries', undefined, '', 60);
    publish(dnsReport(await runDnsBench(num('BENCH_DNS_INSTANCES', 5000), num('BENCH_DNS_QUERIES', 20_000))));
    dnsShown.end();

    heading('object store: S3 PUT/GET vs raw disk write/read');
    const s3Shown = progress('s3: 1 MiB and 100 MiB objects', undefined, '', 120);
    publish(await runObjectStoreBench());
    s3Shown.end();

    heading(`API server: GET/LIST/PATCH vs bare node http, memory, watch fan-out (${API_OBJECTS} Instances)`);
    const api = await runApiBench({
      objects: API_OBJECTS,
      runs: 3,
      windowMs: 1500,
      offered: { get: 200, list: 2, patch: 100 },
      watchers: 100,
      changesPerSec: 1000,
      watchWindowMs: 3000,
      withStatus: WITH_STATUS,
      serverEnv: profileEnv('api'),
      phases: apiPhases,
    });
    for (const r of apiReports(api, storageSqlite)) publish(r);
    printPhases('api', apiPhases, (p) => p !== 'startup' && p !== 'informer list + first reads' && !p.startsWith('idle'));

    // Two TCG boots of the Debian image (the first `make bench` on a machine also builds it).
    if (process.env.BENCH_GUEST !== '0') {
      heading('guest boot: a real Debian guest through stratus vs raw virsh');
      const shown = progress('guest boot', undefined, '', 600);
      try {
        publish(await runGuestBootBench());
        shown.end();
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        shown.end('failed');
        notes.push(`guest-boot benchmark not measured: ${why}`);
        benchWarn(`guest-boot: NOT MEASURED — ${why}`);
      }
    }

    const seconds = (performance.now() - started) / 1000;
    const load = loadavg().map((l) => l.toFixed(2)).join(' ');
    const reports = publishedReports();
    const table = resultsTable(reports);
    const goals = reports.flatMap((r) => r.figures).map(meetsGoal).filter((g) => g !== undefined);
    const summary = `${goals.filter(Boolean).length} of ${goals.length} goals met; total ${seconds.toFixed(0)} s; load at the end ${load}${notes.length ? `; ${notes.join('; ')}` : ''}`;
    heading('results (ratio = value ÷ the limit measured in the same run)');
    process.stdout.write(`${table}\n${summary}\n`);
    benchLog(`${table}\n${summary}`);
    const charts = writeCharts(reports, `${new Date().toISOString().slice(0, 16)} UTC, ${cpus().length} cores, ${process.version}, load at the end ${load}`);
    process.stdout.write(`charts: ${charts.join(', ')}\n`);
    const dir = join(process.cwd(), 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'run.json'), JSON.stringify({ at: new Date().toISOString(), seconds, notes, ...machine(), profiles: hot }, null, 2) + '\n');
  } finally {
    process.stdout.write(`CPU profiles (open in Chrome DevTools): ${profiles}\n`);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
