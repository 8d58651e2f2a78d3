/**
 * What benchmarks read about the processes they start and the servers they load: memory and
 * CPU from `/proc/PID/*` (Linux), and counters from a Prometheus `/metrics` page.
 */
import { readFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';

/** Resident memory now and its peak (VmRSS, VmHWM), in MiB. */
export function memoryOf(pid: number): { rssMiB: number; peakMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string): number => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    if (!m) throw new Error(`/proc/${pid}/status has no ${field}`);
    return Number(m[1]);
  };
  return { rssMiB: kib('VmRSS') / 1024, peakMiB: kib('VmHWM') / 1024 };
}

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** CPU seconds (user + system) the process has used so far. */
export function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // fields after the parenthesised command name; utime and stime are fields 14 and 15
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / TICKS_PER_SECOND;
}

/** CPU use of `pid` over a window, as a share of one core (1 = one core busy). */
export class CpuMeter {
  private readonly cpu0: number;
  private readonly t0 = performance.now();
  constructor(private readonly pid: number) {
    this.cpu0 = cpuSecondsOf(pid);
  }
  cores(): number {
    return (cpuSecondsOf(this.pid) - this.cpu0) / ((performance.now() - this.t0) / 1000);
  }
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format (no timestamps, no escapes beyond `\"`). */
export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** How the bench reaches `stratus serve`: an AccessToken and the CA its serving certificate chains to. */
export interface BenchAccess {
  token: string;
  ca: string;
}

/** GET `url` (https with `access`), resolving to the body of a 2xx answer. */
export function getText(url: string, access?: BenchAccess): Promise<string> {
  return new Promise((resolve, reject) => {
    const opts = { headers: access ? { authorization: `Bearer ${access.token}` } : {}, ...(access ? { ca: access.ca } : {}) };
    const req = (url.startsWith('https:') ? httpsGet : httpGet)(url, opts, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => ((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300 ? resolve(text) : reject(new Error(`${url}: HTTP ${res.statusCode ?? 0}`))));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/** Sum of the samples of `name` whose labels pass `where`, read from `url` (`/metrics`). */
export async function metricSum(url: string, name: string, where: (labels: Record<string, string>) => boolean = () => true, access?: BenchAccess): Promise<number> {
  return parseMetrics(await getText(url, access))
    .filter((s) => s.name === name && where(s.labels))
    .reduce((a, s) => a + s.value, 0);
}

/** Successful store writes (creates, updates, deletes) the API server has made so far. */
export function storeWrites(serverUrl: string, access?: BenchAccess): Promise<number> {
  return metricSum(`${serverUrl}/metrics`, 'stratus_storage_requests_total', (l) => ['create', 'update', 'delete'].includes(l.operation ?? '') && l.result === 'ok', access);
}

/** Mutating API requests (create, update, patch, delete) answered 2xx so far. */
export function apiWrites(serverUrl: string, access?: BenchAccess): Promise<number> {
  return metricSum(`${serverUrl}/metrics`, 'apiserver_request_total', (l) => ['create', 'update', 'patch', 'delete'].includes(l.verb ?? '') && (l.code ?? '').startsWith('2'), access);
}
