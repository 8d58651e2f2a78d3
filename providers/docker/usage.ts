/**
 * What an engine already carries, for the scheduler: published host ports (of every
 * container, stratus's or not), container counts and per-group counts. One list call.
 *
 * Host ports of stratus containers come from their `stratus.dev/host-ports` label, so a
 * stopped container still reserves its ports (starting it again must not conflict); other
 * containers count only while their ports are bound (running). A port held by a process
 * outside Docker is invisible here; `create` reports it as `PortConflict`.
 */
import type { ContainerInfo } from 'dockerode';
import { LABEL_GROUP, LABEL_HOST_PORTS, LABEL_NAME, LABEL_NAMESPACE, LABEL_SPEC_HASH, LABEL_UID, parseHostPortsLabel, type HostPortUse } from './spec.js';

export interface EngineHostPort extends HostPortUse {
  /** The owning Instance's uid, when a stratus container holds the port. */
  uid?: string;
}

export interface EngineUsage {
  /** Every published host port, sorted by port then protocol. */
  hostPorts: EngineHostPort[];
  /** Containers stratus manages (any state). */
  containers: number;
  /** Of those, how many are running. */
  running: number;
  /** Containers on the engine that stratus does not manage. */
  foreignContainers: number;
  /** `stratus.dev/group` value → number of stratus containers in that placement group. */
  groups: Record<string, number>;
  /** For each other label key on stratus containers: value → count (engine-level inventory). */
  labels: Record<string, Record<string, number>>;
}

const BOOKKEEPING = new Set([LABEL_UID, LABEL_NAME, LABEL_NAMESPACE, LABEL_SPEC_HASH, LABEL_HOST_PORTS]);

/** Summarises a `GET /containers/json?all=1` listing. */
export function summariseUsage(list: ContainerInfo[]): EngineUsage {
  const usage: EngineUsage = { hostPorts: [], containers: 0, running: 0, foreignContainers: 0, groups: {}, labels: {} };
  const seen = new Set<string>();
  const addPort = (p: EngineHostPort): void => {
    const key = `${p.port}/${p.protocol}@${p.hostIP}`;
    if (seen.has(key)) return;
    seen.add(key);
    usage.hostPorts.push(p);
  };
  for (const c of list) {
    const labels = c.Labels ?? {};
    const uid = labels[LABEL_UID];
    if (uid) {
      usage.containers++;
      if (c.State === 'running') usage.running++;
      for (const p of parseHostPortsLabel(labels[LABEL_HOST_PORTS])) addPort({ ...p, uid });
      const group = labels[LABEL_GROUP];
      if (group) usage.groups[group] = (usage.groups[group] ?? 0) + 1;
      for (const [k, v] of Object.entries(labels)) {
        if (BOOKKEEPING.has(k)) continue;
        const counts = (usage.labels[k] ??= {});
        counts[v] = (counts[v] ?? 0) + 1;
      }
    } else {
      usage.foreignContainers++;
      for (const p of c.Ports ?? []) {
        if (!p.PublicPort) continue;
        addPort({ port: p.PublicPort, protocol: p.Type === 'udp' ? 'UDP' : 'TCP', hostIP: p.IP ?? '' });
      }
    }
  }
  const byCode = (x: string, y: string): number => (x < y ? -1 : x > y ? 1 : 0);
  usage.hostPorts.sort((a, b) => a.port - b.port || byCode(a.protocol, b.protocol) || byCode(a.hostIP, b.hostIP));
  return usage;
}
