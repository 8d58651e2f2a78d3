/**
 * The embedded DNS server under a zone of BENCH_DNS_INSTANCES (5,000) Instances, 100 Projects
 * (wildcards) and a Project per 50 guests: BENCH_DNS_QUERIES UDP queries from a loopback client
 * (dns-packet encoded, one in flight at a time, so each figure is one round trip), a third
 * each for Instance names, names under a Project wildcard and absent names (NXDOMAIN).
 * Latency p50/p99 are printed beside the 1 ms p99 limit. The client shares the
 * server's process (and event loop), so the figures include the client's own cost: an upper bound.
 *
 *   node --import tsx bench/dns.ts
 */
import { createSocket } from 'node:dgram';
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import * as dnsPacket from 'dns-packet';
import type { Instance, Project } from '../crds/types.js';
import { zoneRecords } from '../controllers/dnsrecords.js';
import { EmbeddedDNSServer } from '../providers/dnsserver/server.js';
import { percentile, publish, type BenchReport } from './report.js';

const ZONE = 'bench.internal';

export interface DnsBenchResult {
  instances: number;
  rrsets: number;
  queries: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  wrong: number;
}

function syntheticObjects(n: number): { instances: Instance[]; projects: Project[] } {
  const instances: Instance[] = [];
  for (let i = 0; i < n; i++) {
    instances.push({
      apiVersion: 'compute.stratus.dev/v1alpha1',
      kind: 'Instance',
      metadata: { name: `vm-${i}`, namespace: `team-${i % 20}` },
      spec: { provider: 'docker', image: 'busybox', ...(i % 10 === 0 ? { hostnames: [`svc-${i}`] } : {}) },
      status: { ipAddress: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` },
    });
  }
  const projects: Project[] = [];
  for (let p = 0; p < 100; p++) {
    const ns = `team-${p % 20}`;
    const guests = instances.filter((inst) => inst.metadata?.namespace === ns).slice(0, 3).map((inst) => inst.metadata!.name!);
    projects.push({ apiVersion: 'apps.stratus.dev/v1alpha1', kind: 'Project', metadata: { name: `proj-${p}`, namespace: ns, creationTimestamp: '2026-01-01T00:00:00Z' }, spec: { source: { git: { url: 'https://git.invalid/x.git' } }, guests } as Project['spec'] });
  }
  return { instances, projects };
}

export async function runDnsBench(n = 5000, queries = 20_000): Promise<DnsBenchResult> {
  const { instances, projects } = syntheticObjects(n);
  const { rrsets } = zoneRecords({ zone: ZONE, ttl: 60 }, instances, [], projects);
  const server = new EmbeddedDNSServer();
  server.setZone(ZONE, rrsets, 60);
  const { port } = await server.listen('127.0.0.1', 0);
  const sock = createSocket('udp4');
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', () => resolve()));
  const pending = new Map<number, (msg: Buffer) => void>();
  sock.on('message', (msg) => pending.get(msg.readUInt16BE(0))?.(msg));
  const ask = (id: number, name: string): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no answer for ${name}`)), 2000);
      pending.set(id, (msg) => {
        clearTimeout(t);
        pending.delete(id);
        resolve(msg);
      });
      sock.send(dnsPacket.encode({ type: 'query', id, flags: 0, questions: [{ type: 'A', class: 'IN', name }] }), port, '127.0.0.1');
    });
  const latencies: number[] = [];
  let wrong = 0;
  try {
    // warm-up: JIT and socket buffers
    for (let i = 0; i < 500; i++) await ask(i & 0xffff, `vm-${i % n}.team-${i % 20}.${ZONE}`);
    for (let q = 0; q < queries; q++) {
      const i = (q * 7919) % n;
      const kind = q % 3;
      const name = kind === 0 ? `vm-${i}.team-${i % 20}.${ZONE}` : kind === 1 ? `www.proj-${q % 100}.${ZONE}` : `absent-${q}.team-${i % 20}.${ZONE}`;
      const t0 = performance.now();
      const msg = await ask(q & 0xffff, name);
      latencies.push(performance.now() - t0);
      const rcode = msg.readUInt16BE(2) & 0xf;
      const answers = msg.readUInt16BE(6);
      if (kind === 2 ? rcode !== 3 : rcode !== 0 || answers === 0) wrong++;
    }
  } finally {
    sock.close();
    await server.close();
  }
  return { instances: n, rrsets: rrsets.length, queries, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99), maxMs: Math.max(...latencies), wrong };
}

export function dnsReport(r: DnsBenchResult): BenchReport {
  const limit = { name: 'issue #21: p99 ≤', value: 1, unit: 'ms' };
  return {
    benchmark: 'dns-embedded',
    conditions: { instances: r.instances, rrsets: r.rrsets, queries: r.queries, transport: 'UDP loopback, 1 in flight', wrongAnswers: r.wrong, cores: cpus().length, loadavg1m: Number(loadavg()[0]!.toFixed(1)) },
    figures: [
      { name: 'query latency p50', value: r.p50Ms, unit: 'ms', limit },
      { name: 'query latency p99', value: r.p99Ms, unit: 'ms', limit, goal: { maxRatio: 1 } },
      { name: 'query latency max', value: r.maxMs, unit: 'ms' },
    ],
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const num = (name: string, fallback: number): number => {
    const v = Number(process.env[name]);
    return Number.isFinite(v) && v > 0 ? v : fallback;
  };
  runDnsBench(num('BENCH_DNS_INSTANCES', 5000), num('BENCH_DNS_QUERIES', 20_000)).then(
    (r) => publish(dnsReport(r)),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
