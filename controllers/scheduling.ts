/**
 * The scheduler's decision, as a pure function: which ComputeNode an Instance should run on,
 * or why none can take it. The Scheduler controller feeds it from its caches and writes the
 * result; keeping the decision pure makes every rule testable as a table.
 *
 * Filters (a node is feasible only if it passes all, and the first failure is its reason):
 * provider, Ready, schedulable, nodeSelector, free cpus, free memory, host ports, unique group.
 * Ranking among feasible nodes by `placement.strategy`:
 * - `spread` (default): the least utilised node after placement (mean of cpu and memory
 *   fractions), then the fewest instances, then name.
 * - `binpack`: the most utilised node after placement, then the most instances, then name.
 */

/** A provider's name as registered in the `ProviderRegistry` (`spec.provider` of nodes and Instances). */
export type Provider = string;

export interface HostPort {
  port: number;
  protocol: string;
}

export interface InstanceDemand {
  provider: Provider;
  cpus: number;
  memoryMiB: number;
  nodeSelector?: Record<string, string | undefined>;
  strategy: 'spread' | 'binpack';
  /** `namespace/group` when the Instance belongs to a placement group. */
  group?: string;
  /** At most one Instance of `group` per node. */
  unique: boolean;
  hostPorts: HostPort[];
}

/** An Instance already bound to a node, as far as placement cares. */
export interface BoundInstance {
  cpus: number;
  memoryMiB: number;
  group?: string;
  hostPorts: HostPort[];
}

export interface NodeCandidate {
  name: string;
  provider: Provider;
  labels: Record<string, string>;
  ready: boolean;
  unschedulable: boolean;
  allocatable: { cpus: number; memoryMiB: number };
  bound: BoundInstance[];
}

export type SchedulingDecision =
  | { node: string }
  | { node?: undefined; reason: string };

type Rejection =
  | 'wrong provider'
  | 'not ready'
  | 'unschedulable'
  | "didn't match node selector"
  | 'insufficient cpu'
  | 'insufficient memory'
  | 'host port conflict'
  | 'already running the unique group';

function rejection(d: InstanceDemand, n: NodeCandidate): Rejection | undefined {
  if (n.provider !== d.provider) return 'wrong provider';
  if (!n.ready) return 'not ready';
  if (n.unschedulable) return 'unschedulable';
  for (const [k, v] of Object.entries(d.nodeSelector ?? {})) {
    if (n.labels[k] !== v) return "didn't match node selector";
  }
  const used = usage(n);
  if (used.cpus + d.cpus > n.allocatable.cpus) return 'insufficient cpu';
  if (used.memoryMiB + d.memoryMiB > n.allocatable.memoryMiB) return 'insufficient memory';
  const taken = new Set(n.bound.flatMap((b) => b.hostPorts.map(portKey)));
  if (d.hostPorts.some((p) => taken.has(portKey(p)))) return 'host port conflict';
  if (d.unique && d.group !== undefined && n.bound.some((b) => b.group === d.group)) return 'already running the unique group';
  return undefined;
}

function portKey(p: HostPort): string {
  return `${p.port}/${p.protocol.toUpperCase()}`;
}

function usage(n: NodeCandidate): { cpus: number; memoryMiB: number } {
  let cpus = 0;
  let memoryMiB = 0;
  for (const b of n.bound) {
    cpus += b.cpus;
    memoryMiB += b.memoryMiB;
  }
  return { cpus, memoryMiB };
}

/** Mean of cpu and memory fractions after placing `d` on `n` (0 = empty, 1 = full). */
function utilisationAfter(d: InstanceDemand, n: NodeCandidate): number {
  const used = usage(n);
  const cpu = n.allocatable.cpus > 0 ? (used.cpus + d.cpus) / n.allocatable.cpus : 1;
  const mem = n.allocatable.memoryMiB > 0 ? (used.memoryMiB + d.memoryMiB) / n.allocatable.memoryMiB : 1;
  return (cpu + mem) / 2;
}

export function schedule(d: InstanceDemand, nodes: NodeCandidate[]): SchedulingDecision {
  const feasible: NodeCandidate[] = [];
  const counts = new Map<Rejection, number>();
  for (const n of nodes) {
    const r = rejection(d, n);
    if (r === undefined) feasible.push(n);
    else counts.set(r, (counts.get(r) ?? 0) + 1);
  }
  if (feasible.length === 0) {
    const parts = [...counts.entries()]
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .map(([r, c]) => `${c} ${r}`);
    const detail = parts.length > 0 ? `: ${parts.join(', ')}` : ': no ComputeNodes exist';
    return { reason: `0/${nodes.length} nodes${detail}` };
  }
  const sign = d.strategy === 'binpack' ? -1 : 1;
  feasible.sort(
    (a, b) =>
      sign * (utilisationAfter(d, a) - utilisationAfter(d, b)) ||
      sign * (a.bound.length - b.bound.length) ||
      a.name.localeCompare(b.name),
  );
  return { node: feasible[0]!.name };
}
