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
 * For tests and private endpoints, `endpoint: 'http://127.0.0.1:8089'` sends every request
 * there without credentials.
 */
import { ReconcileError } from '../../runtime/errors.js';
import type { NodeConnection, NodeDescription } from '../machine.js';
import { ComputeApi } from './api.js';
import { GceMachines } from './machines.js';
import { OperationTracker } from './operations.js';
import { LABEL_UID, lastSegment } from './spec.js';

export { ComputeApi, type ComputeApiOptions } from './api.js';
export { GceApiError, describeFailure, parseEndpoint, retryAfterMs } from './http.js';
export { GceMachines, type GceMachineOptions } from './machines.js';
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
  /** `http(s)://host:port` instead of Google's endpoint; no credentials are sent then (unless `credentialsJson` is given). */
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

/** GCE has no memory quota; capacity assumes 8 GiB per vCPU (the high-memory ratio), so memory never limits placement before vCPUs do. */
export const MEMORY_MIB_PER_CPU = 8192;

export interface GceNodeConnection extends NodeConnection {
  readonly project: string;
  readonly zone: string;
  machines(): GceMachines;
}

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
  return {
    project: options.project,
    zone: options.zone,
    /**
     * Capacity is the region's CPUS quota (what GCE lets the project run there), memory at
     * `MEMORY_MIB_PER_CPU` per vCPU; machineCount counts the zone's VMs labelled `stratus-uid`.
     * A zone that is not `UP` is reported as unreachable.
     */
    async describe(): Promise<NodeDescription> {
      const zone = await api.getZone();
      if (zone.status && zone.status !== 'UP') {
        throw new ReconcileError('NodeUnreachable', `GCE zone ${options.zone} is ${zone.status}`);
      }
      const region = await api.getRegion(lastSegment(zone.region));
      const cpus = Math.floor(region.quotas?.find((q) => q.metric === 'CPUS')?.limit ?? 0);
      const owned = await api.listInstances(`labels.${LABEL_UID}:*`);
      return {
        capacity: { cpus, memoryMiB: cpus * MEMORY_MIB_PER_CPU },
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
