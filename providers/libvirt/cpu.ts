/**
 * A domain's cumulative CPU time, for the InstanceGroup autoscaler: `virsh domstats
 * --cpu-total` (`cpu.time`, nanoseconds), or `virsh cpu-stats --total` (`cpu_time`, seconds)
 * where domstats reports none (the test driver, whose domains use no CPU: its counter stays
 * put, so their utilisation is 0).
 */
import type { LibvirtNodeConnection } from './connection.js';
import { DOMAIN_ABSENT } from './domains.js';

export async function domainCpuSeconds(conn: LibvirtNodeConnection, uuid: string): Promise<number | undefined> {
  if ((await conn.domains().state(uuid)) !== 'running') return undefined;
  const stats = await conn.shell().runOrAbsent(['domstats', '--cpu-total', uuid], DOMAIN_ABSENT);
  const ns = stats && /\bcpu\.time=(\d+)/.exec(stats);
  if (ns) return Number(ns[1]) / 1e9;
  const total = await conn.shell().runOrAbsent(['cpu-stats', '--total', uuid], DOMAIN_ABSENT);
  const s = total && /\bcpu_time\s+([\d.]+)\s+seconds/.exec(total);
  return s ? Number(s[1]) : undefined;
}
