/**
 * The API server under read/write load, on one `stratus serve --no-controllers` (SQLite)
 * holding `objects` Instances (10,000 by default), with or without a status as the
 * controllers write it (`withStatus`, one more write each):
 *
 * - **memory**: the server's RSS before and after the Instances arrived, per 1,000; and the
 *   controllers' cache — an Instance informer in a process of its own, measured after a
 *   full GC before and after it synced. Beside it: the JSON bytes of 1,000 Instances
 *   (what a cache holding them can at least take).
 * - **API**: GET by name, LIST of every Instance, PATCH (merge patch on one label) from a
 *   separate load-generator process — closed-loop throughput and p50/p99 at a fixed offered
 *   load — beside a bare Node `http` server in its own process returning the same bytes.
 * - **authentication cost**: GET and PATCH throughput as a token user authorized by RBAC
 *   (`stratus-bench`, bound to cluster-admin: scrypt-verified token, cached; RBAC decision,
 *   cached) beside the same server's unauthenticated-equivalent: a `system:masters` client
 *   certificate, whose identity comes from the TLS handshake once per connection and which
 *   skips authorization — what is left is HTTPS itself, which no request can avoid.
 * - **watch fan-out**: `watchers` watch streams in a separate process while Instances are
 *   patched at `changesPerSec`; delivery latency p50/p99 from the sent time carried in the
 *   patch, and the server's CPU over the window (from /proc/PID/stat).
 */
import { performance } from 'node:perf_hooks';
import type { Instance } from '../crds/types.js';
import { KubeClient } from '../runtime/client.js';
import { Resources } from '../controllers/resources.js';
import { startStratusServe, type StratusServe } from '../test/harness/apiserver.js';
import { startChild, runChildJson } from './child.js';
import { benchAccessOf, STORM_CLIENTS } from './storm.js';
import { CpuMeter, memoryOf, type BenchAccess } from './proc.js';
import { kubeconfigCredentials } from '../test/harness/kubefetch.js';
import { heapAfterPhase, markPhase } from './cpu-profiler.js';
import { median } from './report.js';
import { progress } from './progress.js';
import type { LoadConfig, LoadOp, OpResult } from './loadgen.js';
import type { BareRoute } from './bare-server.js';
import { epochMs, SENT_ANNOTATION, type WatchersConfig } from './watchers.js';

const INSTANCES = '/apis/compute.stratus.dev/v1alpha1/namespaces/default/instances';

export interface ApiBenchOptions {
  objects: number;
  runs: number;
  windowMs: number;
  offered: { get: number; list: number; patch: number };
  watchers: number;
  changesPerSec: number;
  watchWindowMs: number;
  /** Also write a running status on each Instance (one more write each; realistic size). */
  withStatus: boolean;
  serverEnv?: Record<string, string>;
  /**
   * When the server runs under bench/cpu-profiler.ts: each phase's name is pushed here as
   * it ends and the server cuts a profile segment (segment i = phases[i]).
   */
  phases?: string[];
}

export interface OpFigures {
  closedPerSec: number;
  bareClosedPerSec: number;
  offeredPerSec: number;
  openPerSec: number;
  p50Ms: number;
  p99Ms: number;
  bareP50Ms: number;
  bareP99Ms: number;
  responseBytes: number;
  errors: number;
  /** Open-loop latencies at the offered rate (last run), 0th..100th percentile (ms). */
  quantilesMs: number[];
}

export interface ApiBenchResult {
  objects: number;
  populateSeconds: number;
  populateWritesPerSec: number;
  serverRssPer1000MiB: number;
  /** RSS of the API server holding every Instance (after populate). */
  serverRssMiB: number;
  /** Heap after a full GC (only when the server runs under the profiler preload). */
  serverHeapPer1000MiB?: number;
  informerRssPer1000MiB: number;
  informerHeapPer1000MiB: number;
  jsonPer1000MiB: number;
  ops: Record<'get' | 'list' | 'patch', OpFigures>;
  /** Closed-loop req/s: bearer token + RBAC vs a system:masters client certificate (no per-request auth work). */
  auth: Record<'get' | 'patch', { tokenPerSec: number; certPerSec: number }>;
  watch: { watchers: number; offeredPerSec: number; achievedChangesPerSec: number; delivered: number; expected: number; p50Ms: number; p99Ms: number; serverCores: number; quantilesMs: number[] };
  serverPid: number;
}

function instance(i: number): Instance {
  return {
    apiVersion: 'compute.stratus.dev/v1alpha1',
    kind: 'Instance',
    metadata: { name: `api-${i}`, namespace: 'default', labels: { bench: 'api' } },
    spec: { provider: 'libvirt', image: 'debian-12', cpus: 1, memoryMiB: 64, nodeName: 'sim-0' },
  };
}

/** A status like the Instance controller writes for a running libvirt machine. */
function runningStatus(uid: string, i: number): Instance['status'] {
  const now = new Date().toISOString();
  const cond = (type: string, reason: string, message: string): NonNullable<NonNullable<Instance['status']>['conditions']>[number] => ({
    type,
    status: 'True',
    reason,
    message,
    lastTransitionTime: now,
    observedGeneration: 1,
  });
  return {
    state: 'running',
    observedGeneration: 1,
    providerID: `libvirt://${uid}`,
    addresses: [{ type: 'InternalIP', address: `192.168.${122 + Math.floor(i / 250)}.${(i % 250) + 2}` }],
    conditions: [cond('Scheduled', 'Scheduled', 'bound to ComputeNode "sim-0"'), cond('Synced', 'Available', 'the machine is running'), cond('Ready', 'Running', 'the machine is running')],
  } as Instance['status'];
}

/** Creates `n` Instances (and writes a running status when asked), 32 clients at once; resolves to the seconds it took. */
async function populate(serve: StratusServe, n: number, withStatus: boolean): Promise<number> {
  const start = performance.now();
  let next = 0;
  const shown = progress('api: populate', n, 'Instances');
  await Promise.all(
    Array.from({ length: STORM_CLIENTS }, async () => {
      const c = KubeClient.fromFile(serve.kubeconfig);
      const res = c.resource<Instance>(Resources.instances);
      try {
        for (let i = next++; i < n; i = next++) {
          const created = await res.create(instance(i));
          if (withStatus) await res.mergePatchStatus('default', created.metadata!.name!, { status: runningStatus(created.metadata!.uid!, i) });
          shown.add();
        }
      } finally {
        c.close();
      }
    }),
  );
  shown.end();
  return (performance.now() - start) / 1000;
}

async function fetchText(serve: StratusServe, path: string, init: RequestInit = {}): Promise<{ text: string; contentType: string }> {
  const res = await serve.fetch(serve.url + path, { ...init, headers: { ...(init.headers as Record<string, string>), accept: 'application/json' } });
  const text = await res.text();
  if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${path}: HTTP ${res.status} ${text.slice(0, 200)}`);
  return { text, contentType: res.headers.get('content-type') ?? 'application/json' };
}

async function loadOps(serve: StratusServe, opts: ApiBenchOptions): Promise<{ ops: LoadOp[]; bare: BareRoute[] }> {
  const names = Array.from({ length: Math.min(opts.objects, 1000) }, (_, i) => `api-${Math.floor((i * opts.objects) / Math.min(opts.objects, 1000))}`);
  const getPaths = names.map((n) => `${INSTANCES}/${n}`);
  const listPath = `${INSTANCES}?labelSelector=bench%3Dapi`;
  const patchBody = JSON.stringify({ metadata: { labels: { touched: 'yes' } } });
  const get = await fetchText(serve, getPaths[0]!);
  const list = await fetchText(serve, listPath);
  const items = (JSON.parse(list.text) as { items: unknown[] }).items.length;
  if (items !== opts.objects) throw new Error(`LIST returned ${items} Instances, expected ${opts.objects}`);
  const patch = await fetchText(serve, getPaths[0]!, { method: 'PATCH', body: patchBody, headers: { 'content-type': 'application/merge-patch+json' } });
  const ops: LoadOp[] = [
    { name: 'get', method: 'GET', paths: getPaths, offeredPerSec: opts.offered.get },
    { name: 'list', method: 'GET', paths: [listPath], offeredPerSec: opts.offered.list },
    { name: 'patch', method: 'PATCH', paths: getPaths, body: patchBody, contentType: 'application/merge-patch+json', offeredPerSec: opts.offered.patch },
  ];
  const bare: BareRoute[] = [
    { method: 'GET', paths: getPaths, body: get.text, contentType: get.contentType },
    { method: 'GET', paths: [listPath], body: list.text, contentType: list.contentType },
    { method: 'PATCH', paths: getPaths, body: patch.text, contentType: patch.contentType },
  ];
  return { ops, bare };
}

/** One load-generator process per operation, so a profile phase covers one operation. */
type LoadAuth = Pick<LoadConfig, 'token' | 'ca' | 'cert' | 'key'>;

async function load(url: string, auth: LoadAuth, ops: LoadOp[], opts: ApiBenchOptions, label: string | undefined, after: (op: string) => void = () => undefined): Promise<Record<string, OpResult>> {
  const out: Record<string, OpResult> = {};
  for (const op of ops) {
    const cfg: LoadConfig = { url, ...auth, concurrency: STORM_CLIENTS, maxInFlight: 64, windowMs: opts.windowMs, runs: opts.runs, ops: [op] };
    const budget = opts.runs * (2 * opts.windowMs + 15_000) + 30_000;
    // each run: a closed loop and an open loop of windowMs, after a short warm-up
    const shown = label === undefined ? undefined : progress(`api: ${op.name.toUpperCase()} ${label}`, undefined, '', (opts.runs * 2 * opts.windowMs + 300) / 1000);
    Object.assign(out, (await runChildJson<{ ops: Record<string, OpResult> }>('loadgen', cfg, budget)).ops);
    const r = out[op.name]!;
    shown?.end(`${median(r.closedPerSec).toFixed(0)} req/s closed loop${r.errors ? `, ${r.errors} errors` : ''}`);
    after(op.name);
  }
  return out;
}

async function watchFanOut(serve: StratusServe, access: BenchAccess, opts: ApiBenchOptions): Promise<ApiBenchResult['watch']> {
  const client = KubeClient.fromFile(serve.kubeconfig);
  const instances = client.resource<Instance>(Resources.instances);
  try {
    const rv = (await fetchText(serve, `${INSTANCES}?limit=1`)).text;
    const resourceVersion = (JSON.parse(rv) as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
    const changes = Math.floor((opts.watchWindowMs / 1000) * opts.changesPerSec);
    const cfg: WatchersConfig = { url: serve.url, token: access.token, ca: access.ca, path: INSTANCES, resourceVersion, watchers: opts.watchers, expect: changes, timeoutMs: opts.watchWindowMs + 30_000 };
    const receivers = startChild('watchers', cfg, opts.watchWindowMs + 60_000);
    const shown = progress(`api: watch fan-out ×${opts.watchers}`, changes, 'changes');
    try {
      await receivers.line((l) => l === 'ready');
      const cpu = new CpuMeter(serve.pid);
      const interval = 1000 / opts.changesPerSec;
      const start = performance.now();
      const pending = new Set<Promise<unknown>>();
      let sent = 0;
      for (let i = 0; i < changes; i++) {
        const wait = start + i * interval - performance.now();
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
        if (pending.size >= 64) await Promise.race(pending);
        const p = instances
          .mergePatch('default', `api-${i % opts.objects}`, { metadata: { annotations: { [SENT_ANNOTATION]: epochMs().toFixed(3) } } })
          .then(() => shown.set(++sent))
          .finally(() => pending.delete(p));
        pending.add(p);
      }
      await Promise.all(pending);
      const achieved = (sent * 1000) / (performance.now() - start);
      const serverCores = cpu.cores();
      const r = JSON.parse(await receivers.line((l) => l.startsWith('{'))) as { delivered: number; expected: number; p50Ms: number; p99Ms: number; quantilesMs: number[] };
      shown.end(`${r.delivered} of ${r.expected} events delivered`);
      return { watchers: opts.watchers, offeredPerSec: opts.changesPerSec, achievedChangesPerSec: achieved, ...r, serverCores };
    } finally {
      await receivers.stop();
    }
  } finally {
    client.close();
  }
}

export async function runApiBench(opts: ApiBenchOptions): Promise<ApiBenchResult> {
  const serve = await startStratusServe(opts.serverEnv ? { env: opts.serverEnv } : {});
  const phase = (name: string): void => {
    if (!opts.phases) return;
    opts.phases.push(name);
    markPhase(serve.pid);
  };
  try {
    const access = await benchAccessOf(serve);
    await fetchText(serve, INSTANCES);
    const rss0 = memoryOf(serve.pid).rssMiB;
    phase('startup');
    const populateSeconds = await populate(serve, opts.objects, opts.withStatus);
    phase('populate (creates)');
    await new Promise((r) => setTimeout(r, 1000));
    const rss1 = memoryOf(serve.pid).rssMiB;
    const per1000 = opts.objects / 1000;
    // under the profiler preload, the heap after a full GC at the ends of startup and populate
    const profDir = opts.phases ? opts.serverEnv?.BENCH_CPU_PROF_DIR : undefined;
    const heapDelta = profDir ? ((await heapAfterPhase(profDir, 1)).heapUsed - (await heapAfterPhase(profDir, 0)).heapUsed) / 1024 / 1024 : undefined;

    const informerShown = progress('api: informer cache (memory)', undefined, '', 120);
    const informer = await runChildJson<{ objects: number; rssDeltaMiB: number; heapDeltaMiB: number }>('informer-child', serve.kubeconfig, 120_000, ['--expose-gc']);
    informerShown.end();
    if (informer.objects < opts.objects) throw new Error(`informer cached ${informer.objects} of ${opts.objects} Instances`);

    const { ops, bare } = await loadOps(serve, opts);
    const jsonBytes = Buffer.byteLength(bare[1]!.body);
    phase('informer list + first reads');
    const measured = await load(serve.url, { token: access.token, ca: access.ca }, ops, opts, 'load', (op) => phase(`${op.toUpperCase()} load`));
    // Token + RBAC against the system:masters certificate, alternating run by run so that
    // the machine's load and the server's warm-up fall on both alike.
    const admin = kubeconfigCredentials(serve.kubeconfig);
    const certAuth: LoadAuth = { ca: access.ca, ...(admin.cert ? { cert: admin.cert } : {}), ...(admin.key ? { key: admin.key } : {}) };
    const tokenAuth: LoadAuth = { token: access.token, ca: access.ca };
    const auth = { get: { token: [] as number[], cert: [] as number[] }, patch: { token: [] as number[], cert: [] as number[] } };
    for (const name of ['get', 'patch'] as const) {
      const op = ops.find((o) => o.name === name)!;
      const shown = progress(`api: ${name.toUpperCase()} token vs certificate`, 2 * opts.runs, 'runs');
      for (let run = 0; run < opts.runs; run++) {
        auth[name].token.push(...(await load(serve.url, tokenAuth, [op], { ...opts, runs: 1 }, undefined))[name]!.closedPerSec);
        shown.add();
        auth[name].cert.push(...(await load(serve.url, certAuth, [op], { ...opts, runs: 1 }, undefined))[name]!.closedPerSec);
        shown.add();
      }
      shown.end(`${median(auth[name].token).toFixed(0)} vs ${median(auth[name].cert).toFixed(0)} req/s`);
      phase(`${name.toUpperCase()} token vs certificate`);
    }
    const bareServer = startChild('bare-server', bare, 600_000);
    let limit: Record<string, OpResult>;
    try {
      const port = Number((await bareServer.line((l) => l.startsWith('listening '))).split(' ')[1]);
      limit = await load(`http://127.0.0.1:${port}`, {}, ops, opts, 'bare node http');
    } finally {
      await bareServer.stop();
    }
    const figuresOf = (name: 'get' | 'list' | 'patch'): OpFigures => {
      const m = measured[name]!;
      const l = limit[name]!;
      return {
        closedPerSec: median(m.closedPerSec),
        bareClosedPerSec: median(l.closedPerSec),
        offeredPerSec: ops.find((o) => o.name === name)!.offeredPerSec,
        openPerSec: median(m.openPerSec),
        p50Ms: median(m.p50Ms),
        p99Ms: median(m.p99Ms),
        bareP50Ms: median(l.p50Ms),
        bareP99Ms: median(l.p99Ms),
        responseBytes: m.responseBytes,
        errors: m.errors,
        quantilesMs: m.quantilesMs,
      };
    };
    phase('idle while the bare server is measured');
    const watch = await watchFanOut(serve, access, opts);
    phase('watch fan-out');
    return {
      objects: opts.objects,
      populateSeconds,
      populateWritesPerSec: ((opts.withStatus ? 2 : 1) * opts.objects) / populateSeconds,
      serverRssPer1000MiB: (rss1 - rss0) / per1000,
      serverRssMiB: rss1,
      ...(heapDelta !== undefined ? { serverHeapPer1000MiB: heapDelta / per1000 } : {}),
      informerRssPer1000MiB: informer.rssDeltaMiB / per1000,
      informerHeapPer1000MiB: informer.heapDeltaMiB / per1000,
      jsonPer1000MiB: jsonBytes / 1024 / 1024 / per1000,
      ops: { get: figuresOf('get'), list: figuresOf('list'), patch: figuresOf('patch') },
      auth: {
        get: { tokenPerSec: median(auth.get.token), certPerSec: median(auth.get.cert) },
        patch: { tokenPerSec: median(auth.patch.token), certPerSec: median(auth.patch.cert) },
      },
      watch,
      serverPid: serve.pid,
    };
  } finally {
    await serve.stop();
  }
}
