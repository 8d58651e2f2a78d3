/**
 * Fault injection and process probes for the chaos scenarios. Every fault targets a process
 * the scenario started itself, by PID; the small filesystem is a tmpfs mounted in the
 * scenario's own temp dir.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { mkdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { execFileP, requireBinary } from '../harness/process.js';

/** A seeded pseudo-random source (mulberry32), so a failing schedule can be replayed with CHAOS_SEED. */
export function randomSource(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** SIGSTOP a process for `ms`, then SIGCONT (the process sees no signal it can handle). */
export async function freeze(pid: number, ms: number): Promise<void> {
  process.kill(pid, 'SIGSTOP');
  try {
    await sleep(ms);
  } finally {
    process.kill(pid, 'SIGCONT');
  }
}

export interface ProcessSample {
  rssMiB: number;
  fds: number;
}

/** RSS and open file descriptors of a process, from /proc. */
export function sampleProcess(pid: number): ProcessSample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return { rssMiB: kb / 1024, fds: readdirSync(`/proc/${pid}/fd`).length };
}

/** `nodejs_eventloop_lag_p99_seconds` (prom-client's default metrics) from a /metrics text, in ms. */
export function eventLoopLagP99Ms(metrics: string): number | undefined {
  const m = /^nodejs_eventloop_lag_p99_seconds(?:\{[^}]*\})? ([0-9.eE+-]+)/m.exec(metrics);
  return m ? Number(m[1]) * 1000 : undefined;
}

/** Mounts a tmpfs of `sizeMiB` at `dir` (created if missing); returns its unmount. Needs root. */
export async function mountSmallFilesystem(dir: string, sizeMiB: number): Promise<() => Promise<void>> {
  if (process.getuid?.() !== 0) throw new Error('the disk-full scenario mounts a tmpfs: run it as root');
  await mkdir(dir, { recursive: true });
  await execFileP(requireBinary('mount'), ['-t', 'tmpfs', '-o', `size=${sizeMiB}m,mode=0700`, 'tmpfs', dir]);
  return async () => {
    // lazy: a process killed a moment ago may still hold a file there
    await execFileP(requireBinary('umount'), ['-l', dir]).catch(() => undefined);
  };
}

/** The leader's client URL of an etcd cluster, from each member's `/v3/maintenance/status`. */
export async function etcdLeader(endpoints: string[]): Promise<string | undefined> {
  for (const e of endpoints) {
    try {
      const r = await fetch(`${e}/v3/maintenance/status`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(1000) });
      const s = (await r.json()) as { header?: { member_id?: string }; leader?: string };
      if (s.leader && s.header?.member_id === s.leader) return e;
    } catch {
      // a member that is down or has no leader: ask the next
    }
  }
  return undefined;
}

/** Percentile of a list of numbers (nearest rank). */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export interface CountingProxy {
  port: number;
  /** Connections accepted so far (each a request or a reconnect of a client). */
  readonly connections: number;
  close(): Promise<void>;
}

/**
 * A TCP relay on 127.0.0.1 in front of `targetPort` that counts the connections clients open:
 * while the target is down each attempt is accepted, counted and cut, so a client that
 * retries in a hot loop shows up as a high count.
 */
export async function countingProxy(targetPort: number): Promise<CountingProxy> {
  let connections = 0;
  const sockets = new Set<Socket>();
  const track = (s: Socket): void => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  };
  const server = createServer((client) => {
    connections++;
    track(client);
    const upstream = connect(targetPort, '127.0.0.1');
    track(upstream);
    client.pipe(upstream).pipe(client);
    const cut = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.once('error', cut).once('close', cut);
    upstream.once('error', cut).once('close', cut);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    get connections() {
      return connections;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
