/**
 * The API load generator, run as its own process (`node dist/bench/loadgen.js CONFIG.json`)
 * so its CPU is not the server's. One keep-alive `http.Agent`; for each operation of the
 * config it runs, `runs` times each:
 * - closed loop: `concurrency` loops back to back for `windowMs` → the most it can get;
 * - open loop: requests started at a fixed `offeredPerSec` for `windowMs` (at most
 *   `maxInFlight` outstanding; the ones that could not start count as `skipped`) → latency
 *   p50/p99 at that load.
 * Prints one JSON line: `{ops: {name: {closedPerSec[], openPerSec[], p50Ms[], p99Ms[], skipped[], errors}}}`.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { percentile, quantiles } from './report.js';

export interface LoadOp {
  name: string;
  method: 'GET' | 'PATCH';
  /** Paths cycled through, one per request. */
  paths: string[];
  body?: string;
  contentType?: string;
  offeredPerSec: number;
}

export interface LoadConfig {
  url: string;
  /** Sent as `Authorization: Bearer` (stratus serve: an AccessToken, authorized by RBAC). */
  token?: string;
  /** For https URLs: the CA to trust, and optionally a client certificate (PEM). */
  ca?: string;
  cert?: string;
  key?: string;
  concurrency: number;
  maxInFlight: number;
  windowMs: number;
  runs: number;
  ops: LoadOp[];
}

export interface OpResult {
  closedPerSec: number[];
  openPerSec: number[];
  p50Ms: number[];
  p99Ms: number[];
  skipped: number[];
  errors: number;
  /** Bytes of the last response (the same bytes a bare server must return). */
  responseBytes: number;
  /** Open-loop latencies of the last run, 0th..100th percentile (ms). */
  quantilesMs: number[];
}

let agent: http.Agent | undefined;

function agentFor(cfg: LoadConfig): http.Agent {
  agent ??= cfg.url.startsWith('https:')
    ? new https.Agent({ keepAlive: true, maxSockets: 256, ...(cfg.ca ? { ca: cfg.ca } : {}), ...(cfg.cert ? { cert: cfg.cert } : {}), ...(cfg.key ? { key: cfg.key } : {}) })
    : new http.Agent({ keepAlive: true, maxSockets: 256 });
  return agent;
}

function send(cfg: LoadConfig, op: LoadOp, i: number): Promise<{ status: number; bytes: number }> {
  const url = new URL(cfg.url + op.paths[i % op.paths.length]);
  const headers: http.OutgoingHttpHeaders = { accept: 'application/json' };
  if (cfg.token) headers.authorization = `Bearer ${cfg.token}`;
  if (op.body !== undefined) {
    headers['content-type'] = op.contentType ?? 'application/json';
    headers['content-length'] = Buffer.byteLength(op.body);
  }
  return new Promise((resolve, reject) => {
    const req = (url.protocol === 'https:' ? https : http).request(url, { method: op.method, headers, agent: agentFor(cfg) }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(op.body);
  });
}

async function closedLoop(cfg: LoadConfig, op: LoadOp, result: OpResult): Promise<number> {
  let done = 0;
  let i = 0;
  const start = performance.now();
  const deadline = start + cfg.windowMs;
  await Promise.all(
    Array.from({ length: cfg.concurrency }, async () => {
      while (performance.now() < deadline) {
        const r = await send(cfg, op, i++).catch(() => ({ status: 0, bytes: 0 }));
        if (r.status < 200 || r.status >= 300) result.errors++;
        else result.responseBytes = r.bytes;
        done++;
      }
    }),
  );
  return (done * 1000) / (performance.now() - start);
}

async function openLoop(cfg: LoadConfig, op: LoadOp, result: OpResult): Promise<{ perSec: number; p50: number; p99: number; skipped: number; quantiles: number[] }> {
  const latencies: number[] = [];
  const pending = new Set<Promise<void>>();
  let skipped = 0;
  const interval = 1000 / op.offeredPerSec;
  const start = performance.now();
  const total = Math.floor((cfg.windowMs / 1000) * op.offeredPerSec);
  for (let i = 0; i < total; i++) {
    const due = start + i * interval;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    if (pending.size >= cfg.maxInFlight) {
      skipped++;
      continue;
    }
    const t0 = performance.now();
    const p: Promise<void> = send(cfg, op, i)
      .then((r) => {
        if (r.status < 200 || r.status >= 300) result.errors++;
        else latencies.push(performance.now() - t0);
      })
      .catch(() => {
        result.errors++;
      })
      .finally(() => pending.delete(p));
    pending.add(p);
  }
  await Promise.all(pending);
  // the offered window, or longer when answers came late
  const seconds = Math.max(cfg.windowMs, performance.now() - start) / 1000;
  return { perSec: latencies.length / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99), skipped, quantiles: quantiles(latencies) };
}

export async function generateLoad(cfg: LoadConfig): Promise<Record<string, OpResult>> {
  const out: Record<string, OpResult> = {};
  for (const op of cfg.ops) {
    const r: OpResult = { closedPerSec: [], openPerSec: [], p50Ms: [], p99Ms: [], skipped: [], errors: 0, responseBytes: 0, quantilesMs: [] };
    // warm-up: connections open, JIT warm
    await closedLoop({ ...cfg, windowMs: Math.min(300, cfg.windowMs) }, op, r);
    r.errors = 0;
    for (let run = 0; run < cfg.runs; run++) {
      r.closedPerSec.push(await closedLoop(cfg, op, r));
      const o = await openLoop(cfg, op, r);
      r.openPerSec.push(o.perSec);
      r.p50Ms.push(o.p50);
      r.p99Ms.push(o.p99);
      r.skipped.push(o.skipped);
      r.quantilesMs = o.quantiles;
    }
    out[op.name] = r;
  }
  return out;
}

if (process.argv[1]?.endsWith('loadgen.js')) {
  const cfg = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as LoadConfig;
  generateLoad(cfg).then(
    (ops) => {
      process.stdout.write(JSON.stringify({ ops }) + '\n');
      agent?.destroy();
      process.exit(0);
    },
    (err: unknown) => {
      process.stderr.write(`loadgen: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(1);
    },
  );
}
