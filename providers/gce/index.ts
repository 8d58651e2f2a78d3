/**
 * The Google Compute Engine provider: a `NodeConnection` to one zone of one project (a
 * ComputeNode with `provider: gce`), through the official `@google-cloud/compute` client.
 *
 * ```ts
 * const node = connectGce({ project: 'my-project', zone: 'europe-west1-b', credentialsJson, imageProject: 'debian-cloud' });
 * const { capacity, version, machineCount } = await node.describe(); // CPUS quota, "GCE europe-west1-b"
 * const machines = node.machines();
 * await machines.create(spec);               // starts instances.insert, returns at once
 * const obs = await machines.observe(spec);  // creating → starting → running, natIP as ipAddress
 * if (!obs.upToDate) await machines.update(spec, obs); // start / stop / labels
 * await machines.delete(spec);               // then observe until !exists
 * await node.close();
 * ```
 *
 * `endpoint: 'http://127.0.0.1:8089'` says only where the API lives (a private endpoint, the
 * tests' fake): credentials are the same as for Google's (a service-account key, whose
 * `token_uri` is honoured, or Application Default Credentials).
 */
import { ReconcileError } from '../../runtime/errors.js';
import type { NodeConnection, NodeDescription } from '../machine.js';
import { ComputeApi, type MachineType } from './api.js';
import { GceDisks } from './disks.js';
import { GceMachines } from './machines.js';
import { OperationTracker } from './operations.js';
import { LABEL_UID, instanceName, lastSegment } from './spec.js';

export { ComputeApi, MONITORING_URL, type ComputeApiOptions, type CpuUsagePoint } from './api.js';
export { GceApiError, describeFailure, parseEndpoint, retryAfterMs } from './http.js';
export { GceMachines, type GceMachineOptions } from './machines.js';
export { GceDisks } from './disks.js';
export { ACCESS_CONFIG_NAME, addressName, gceElasticIPs, regionOfZone, type GceElasticIPCarrier } from './addresses.js';
export { OperationTracker, operationFailure, type TrackedOperation } from './operations.js';
export {
  LABEL_NAME,
  LABEL_NAMESPACE,
  LABEL_UID,
  MACHINE_TYPES,
  insertBody,
  instanceName,
  labelKey,
  labelValue,
  labelsFor,
  machineState,
  machineTypeFor,
  parseImage,
  powerSettled,
  reconciledLabels,
  sshKeysMetadata,
  type ImageRef,
  type InsertContext,
  type MachineTypeChoice,
  type PendingKind,
} from './spec.js';

export interface GceConnectOptions {
  project: string;
  zone: string;
  /** `http(s)://host:port` instead of Google's endpoint; credentials as for Google's. */
  endpoint?: string;
  /** A service-account key (JSON), e.g. the `key.json` of the node's Secret. Absent: Application Default Credentials. */
  credentialsJson?: string;
  /** Project holding short-named images (`debian-12` → projects/<imageProject>/global/images/...). Default: `project`. */
  imageProject?: string;
  /** VPC network of each VM's first interface. Default `default`. */
  network?: string;
  /** Deadline of one API request. Default 10000 ms. */
  requestTimeoutMs?: number;
  /** Pause between `zoneOperations.wait` calls on one operation. Default 1000 ms. */
  operationPollMs?: number;
  /** Deadline of one `zoneOperations.wait` (the server holds it up to 2 minutes). Default 130000 ms. */
  waitTimeoutMs?: number;
}

export interface GceNodeConnection extends NodeConnection {
  readonly project: string;
  readonly zone: string;
  /** The Compute API of this node (the ElasticIP carrier's static addresses and access configs). */
  readonly api: ComputeApi;
  /** Data disk sizes and `disks.resize` (the `diskResize` capability). */
  readonly disks: GceDisks;
  machines(): GceMachines;
  /**
   * CPU seconds VM `uid` used, summed from Cloud Monitoring's `instance/cpu/usage_time` points
   * (DELTA, one per 60 s sampling period, published up to ~4 min late): the first call sums the
   * last `CPU_LOOKBACK_MS`, later ones add the points that ended since, so the count only rises
   * and the rate between two calls is the VM's (coarse: it moves one period at a time).
   * Undefined when Monitoring has no point for it yet (not running, or too new).
   */
  cpuSeconds(uid: string, signal?: AbortSignal): Promise<number | undefined>;
}

/** How far back the first CPU reading of a VM looks (Monitoring's latency plus a period). */
export const CPU_LOOKBACK_MS = 10 * 60_000;
/** A VM whose CPU was not asked for this long is forgotten. */
const CPU_FORGET_MS = 60 * 60_000;

export function connectGce(options: GceConnectOptions): GceNodeConnection {
  const api = new ComputeApi({
    project: options.project,
    zone: options.zone,
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    ...(options.credentialsJson ? { credentialsJson: options.credentialsJson } : {}),
    requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
    waitTimeoutMs: options.waitTimeoutMs ?? 130_000,
  });
  const operations = new OperationTracker(api, options.operationPollMs ?? 1000);
  const machines = new GceMachines(api, operations, {
    imageProject: options.imageProject ?? options.project,
    network: options.network ?? 'default',
  });
  const cpu = new Map<string, { total: number; through: number; asked: number }>();
  // A zone's machine types do not change while a node is connected: read them once (a failed
  // read is forgotten, so the next heartbeat tries again), not on every heartbeat.
  let machineTypes: Promise<MachineType[]> | undefined;
  const zoneMachineTypes = (): Promise<MachineType[]> =>
    (machineTypes ??= api.listMachineTypes().catch((err: unknown) => {
      machineTypes = undefined;
      throw err;
    }));
  return {
    project: options.project,
    zone: options.zone,
    api,
    disks: new GceDisks(api, operations),
    async cpuSeconds(uid, signal) {
      const now = Date.now();
      for (const [k, v] of cpu) if (now - v.asked > CPU_FORGET_MS) cpu.delete(k);
      const seen = cpu.get(uid);
      const points = await api.forCaller(signal, () => api.cpuUsagePoints(instanceName(uid), seen ? seen.through : now - CPU_LOOKBACK_MS, now));
      const fresh = seen ? points.filter((p) => p.end > seen.through) : points;
      if (!seen && fresh.length === 0) return undefined;
      const next = {
        total: (seen?.total ?? 0) + fresh.reduce((sum, p) => sum + p.seconds, 0),
        through: Math.max(seen?.through ?? 0, ...fresh.map((p) => p.end)),
        asked: now,
      };
      cpu.set(uid, next);
      return next.total;
    },
    /**
     * Capacity is what GCE lets this node run in the region: the CPUS quota's limit minus
     * the vCPUs other workloads of the project use there (the quota's usage less that of this
     * node's own running VMs). GCE has no memory quota: memory is those vCPUs at the highest
     * memory-per-vCPU ratio among the zone's machine types (`machineTypes.list`), so the
     * scheduler's memory check holds a request to what some machine type can give.
     * machineCount counts the zone's VMs labelled `stratus-uid`. A zone that is not `UP` is
     * reported as unreachable.
     */
    async describe(): Promise<NodeDescription> {
      const zone = await api.getZone();
      if (zone.status && zone.status !== 'UP') {
        throw new ReconcileError('NodeUnreachable', `GCE zone ${options.zone} is ${zone.status}`);
      }
      const [region, owned, types] = await Promise.all([api.getRegion(lastSegment(zone.region)), api.listInstances(`labels.${LABEL_UID}:*`), zoneMachineTypes()]);
      const quota = region.quotas?.find((q) => q.metric === 'CPUS');
      const byName = new Map(types.map((t) => [t.name ?? '', t]));
      // Stopped (TERMINATED) VMs hold no vCPU quota.
      const ownUsage = owned
        .filter((i) => i.status !== 'TERMINATED')
        .reduce((sum, i) => sum + (byName.get(lastSegment(i.machineType ?? ''))?.guestCpus ?? 0), 0);
      const othersUsage = Math.max(0, (quota?.usage ?? 0) - ownUsage);
      const cpus = Math.max(0, Math.floor((quota?.limit ?? 0) - othersUsage));
      const ratio = types.reduce((best, t) => (t.guestCpus && t.memoryMb ? Math.max(best, t.memoryMb / t.guestCpus) : best), 0);
      return {
        capacity: { cpus, memoryMiB: Math.floor(cpus * ratio) },
        version: `GCE ${options.zone}`,
        machineCount: owned.length,
      };
    },
    machines: () => machines,
    async close() {
      api.close();
      await operations.drain();
    },
  };
}
