/**
 * The Docker provider: a `NodeConnection` to one engine (a ComputeNode with `provider:
 * docker`), reached by unix socket or `tcp://` with TLS client certificates.
 *
 * ```ts
 * const node = connectDocker({ address: 'tcp://10.0.0.5:2376', tls: { ca, cert, key } });
 * const { capacity, version, machineCount } = await node.describe(); // NodeUnreachable / TLSError
 * const machines = node.machines();
 * await machines.create(spec);            // create + start, idempotent by spec.uid
 * const obs = await machines.observe(spec);
 * if (!obs.upToDate) await machines.update(spec, obs);
 * const usage = await node.engineUsage(); // host ports, counts, groups for the scheduler
 * const r = await node.exec(spec.uid, ['sh', '-c', 'echo hi']);
 * await node.close();
 * ```
 */
import type { RegistryCredential } from './registry-auth.js';
import type { Readable } from 'node:stream';
import { ReconcileError } from '../../runtime/errors.js';
import type { NodeConnection, NodeDescription } from '../machine.js';
import { DockerMachines } from './containers.js';
import { Engine, type DockerTLS } from './engine.js';
import { execInContainer, uploadArchive, type ExecOptions, type ExecResult } from './exec.js';
import { DEFAULT_HOST_IP, LABEL_UID } from './spec.js';
import { summariseUsage, type EngineUsage } from './usage.js';

export { DockerMachines } from './containers.js';
export { Engine, parseAddress, transportError, type DockerTLS, type EngineOptions } from './engine.js';
export { execInContainer, uploadArchive, type ExecOptions, type ExecResult } from './exec.js';
export {
  DEFAULT_HOST_IP,
  LABEL_GROUP,
  LABEL_HOST_PORTS,
  LABEL_NAME,
  LABEL_NAMESPACE,
  LABEL_SPEC_HASH,
  LABEL_UID,
  containerName,
  dockerSettings,
  type DockerSettings,
  type DockerVolume,
  type DockerPort,
  type HostPortUse,
} from './spec.js';
export { summariseUsage, type EngineHostPort, type EngineUsage } from './usage.js';

/** The fields of `GET /info` stratus reads. */
/** The part of `GET /containers/{id}/stats` the autoscaler reads. */
interface ContainerStats {
  cpu_stats?: { cpu_usage?: { total_usage?: number } };
}

interface EngineInfo {
  NCPU: number;
  MemTotal: number;
  ServerVersion: string;
}

export interface DockerConnectOptions {
  /** `unix:///path` or `tcp://host:port`. */
  address: string;
  /** PEM contents from the node's TLS Secret (`ca.pem`, `cert.pem`, `key.pem`). */
  tls?: DockerTLS;
  /** Deadline of quick calls (describe, observe, list). Default 5000 ms. */
  timeoutMs?: number;
  /** Deadline of slow calls (create, start, remove, pull, exec). Default 60000 ms. */
  operationTimeoutMs?: number;
  /** Host address published ports bind on by default. Default `127.0.0.1` (loopback only). */
  defaultHostIP?: string;
  /** Grace of a power-off stop before SIGKILL. Default 5 s. */
  stopGraceSeconds?: number;
  /** Grace of the stop before removal. Default 2 s. */
  deleteGraceSeconds?: number;
  /** Pull missing images. Default true (without a reachable registry this fails at once). */
  pullMissingImages?: boolean;
  /** How long create/update wait for a pull before answering `ImagePulling` (retryable). Default 3000 ms. */
  pullWaitMs?: number;
  /** Deadline of one background pull. Default 15 minutes. */
  pullTimeoutMs?: number;
  /** Registry credentials for pulls (from a dockerconfigjson Secret: `parseDockerConfig`). */
  registryAuth?: RegistryCredential[];
}

/** A Docker engine's `NodeConnection`, plus what only Docker nodes offer. */
export interface DockerNodeConnection extends NodeConnection {
  readonly address: string;
  machines(): DockerMachines;
  /** What the engine carries, for placement (host ports, counts, groups). */
  engineUsage(): Promise<EngineUsage>;
  /** CPU seconds the running container of Instance `uid` has used; undefined when none runs. */
  cpuSeconds(uid: string, signal: AbortSignal): Promise<number | undefined>;
  /** Runs `argv` in the container of Instance `uid`. */
  exec(uid: string, argv: string[], options?: ExecOptions): Promise<ExecResult>;
  /** Extracts a tar archive into `path` (an existing directory) in the container of Instance `uid`. */
  uploadArchive(uid: string, path: string, tar: Buffer | Readable): Promise<void>;
}

export function connectDocker(options: DockerConnectOptions): DockerNodeConnection {
  const engine = new Engine(options);
  const machines = new DockerMachines(engine, {
    defaultHostIP: options.defaultHostIP ?? DEFAULT_HOST_IP,
    stopGraceSeconds: options.stopGraceSeconds ?? 5,
    deleteGraceSeconds: options.deleteGraceSeconds ?? 2,
    pullMissingImages: options.pullMissingImages ?? true,
    pullWaitMs: options.pullWaitMs ?? 3000,
    pullTimeoutMs: options.pullTimeoutMs ?? 15 * 60_000,
    registryAuth: options.registryAuth ?? [],
  });
  const containerOf = async (uid: string): Promise<string> => {
    const [c] = await machines.find(uid);
    if (!c) throw new ReconcileError('ContainerNotFound', `no container on ${engine.address} carries ${LABEL_UID}=${uid}`, false);
    return c.Id;
  };
  return {
    address: engine.address,
    async describe(): Promise<NodeDescription> {
      const docker = engine.docker;
      const info = await engine.must('describe the engine', () => engine.getJSON<EngineInfo>('/info', engine.quick()));
      const owned = await engine.must('list containers', () =>
        docker.listContainers({ all: true, filters: { label: [LABEL_UID] }, abortSignal: engine.quick() }),
      );
      return {
        capacity: { cpus: info.NCPU, memoryMiB: Math.floor(info.MemTotal / (1024 * 1024)) },
        version: `Docker ${info.ServerVersion}`,
        machineCount: owned.length,
      };
    },
    machines: () => machines,
    async engineUsage(): Promise<EngineUsage> {
      const docker = engine.docker;
      const list = await engine.must('list containers', () => docker.listContainers({ all: true, abortSignal: engine.quick() }));
      return summariseUsage(list);
    },
    async cpuSeconds(uid, signal) {
      const running = (await machines.find(uid)).find((c) => c.State === 'running');
      if (!running) return undefined;
      // one-shot: the engine answers with the current counters instead of sampling for a second
      const stats = await engine.must('read container stats', () =>
        engine.getJSON<ContainerStats>(`/containers/${running.Id}/stats?stream=false&one-shot=true`, AbortSignal.any([signal, engine.quick()])),
      );
      const ns = stats.cpu_stats?.cpu_usage?.total_usage;
      return typeof ns === 'number' ? ns / 1e9 : undefined;
    },
    async exec(uid, argv, execOptions) {
      return execInContainer(engine, await containerOf(uid), argv, execOptions);
    },
    async uploadArchive(uid, path, tar) {
      await uploadArchive(engine, await containerOf(uid), path, tar);
    },
    async close() {
      machines.close();
      engine.close();
    },
  };
}
