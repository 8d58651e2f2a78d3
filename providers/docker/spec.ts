/**
 * Pure translation between the provider-neutral `MachineSpec` and Docker containers: names,
 * labels, the create request, the drift fingerprint and the state mapping. No I/O here, so
 * every rule is a table test (test/unit/docker/spec.test.ts).
 */
import { createHash } from 'node:crypto';
import type { ContainerCreateOptions, ContainerInspectInfo, MountSettings } from 'dockerode';
import { ReconcileError } from '../../runtime/errors.js';
import type { MachinePort, MachineSpec, MachineState } from '../machine.js';

/** Labels stratus puts on every container (and named volume) it creates. */
export const LABEL_UID = 'stratus.dev/uid';
export const LABEL_NAMESPACE = 'stratus.dev/namespace';
export const LABEL_NAME = 'stratus.dev/name';
/** Fingerprint of the settings that can only change by recreating the container. */
export const LABEL_SPEC_HASH = 'stratus.dev/spec-hash';
/** `port/PROTO@hostIP` list, so host ports of stopped containers are known from a list call. */
export const LABEL_HOST_PORTS = 'stratus.dev/host-ports';
/**
 * The placement group (`namespace/group`) the controller may put in `MachineSpec.labels`;
 * `engineUsage().groups` counts containers per value for `placement.unique`.
 */
export const LABEL_GROUP = 'stratus.dev/group';

/** Where host ports bind when neither the port nor the node says otherwise: loopback only. */
export const DEFAULT_HOST_IP = '127.0.0.1';

export type RestartPolicyName = 'no' | 'always' | 'unless-stopped' | 'on-failure';

export interface DockerVolume {
  /** A named volume, private to this Instance: Docker name `stratus-<uid>-<name>`, removed on delete. */
  name?: string;
  /** A bind mount of this absolute path on the engine's host (exclusive with `name`). */
  hostPath?: string;
  containerPath: string;
  readOnly: boolean;
}

/** `Instance.spec.docker`, validated (the CRD validates too; this guards direct callers). */
export interface DockerSettings {
  restartPolicy: RestartPolicyName;
  volumes: DockerVolume[];
  labels: Record<string, string>;
  /** Not in the CRD: a per-Instance default host address for published ports. */
  hostIP?: string;
}

/** A port as the provider accepts it: `MachinePort` plus the CRD's optional per-port `hostIP`. */
export type DockerPort = MachinePort & { hostIP?: string };

const RESTART_POLICIES: readonly RestartPolicyName[] = ['no', 'always', 'unless-stopped', 'on-failure'];

function invalid(message: string): ReconcileError {
  return new ReconcileError('InvalidSpec', message, false);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads `providerSpec` (the Instance's `spec.docker`); unknown keys are ignored. */
export function dockerSettings(providerSpec: Record<string, unknown>): DockerSettings {
  const restart = providerSpec.restartPolicy ?? 'no';
  if (typeof restart !== 'string' || !RESTART_POLICIES.includes(restart as RestartPolicyName)) {
    throw invalid(`docker.restartPolicy must be one of ${RESTART_POLICIES.join(', ')}, not ${JSON.stringify(restart)}`);
  }
  const rawVolumes = providerSpec.volumes ?? [];
  if (!Array.isArray(rawVolumes)) throw invalid('docker.volumes must be a list');
  const volumes: DockerVolume[] = rawVolumes.map((v: unknown, i) => {
    if (!isRecord(v)) throw invalid(`docker.volumes[${i}] must be an object`);
    const { name, hostPath, containerPath, readOnly } = v;
    if (typeof containerPath !== 'string' || !containerPath.startsWith('/')) {
      throw invalid(`docker.volumes[${i}].containerPath must be an absolute path`);
    }
    if (name !== undefined && (typeof name !== 'string' || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name))) {
      throw invalid(`docker.volumes[${i}].name must be a DNS-1123 label`);
    }
    if (hostPath !== undefined && (typeof hostPath !== 'string' || !hostPath.startsWith('/'))) {
      throw invalid(`docker.volumes[${i}].hostPath must be an absolute path`);
    }
    if (name !== undefined && hostPath !== undefined) {
      throw invalid(`docker.volumes[${i}]: name and hostPath are exclusive`);
    }
    const out: DockerVolume = { containerPath, readOnly: readOnly === true };
    if (typeof name === 'string') out.name = name;
    if (typeof hostPath === 'string') out.hostPath = hostPath;
    return out;
  });
  const rawLabels = providerSpec.labels ?? {};
  if (!isRecord(rawLabels)) throw invalid('docker.labels must be a map of strings');
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(rawLabels)) {
    if (typeof v !== 'string') throw invalid(`docker.labels.${k} must be a string`);
    labels[k] = v;
  }
  const settings: DockerSettings = { restartPolicy: restart as RestartPolicyName, volumes, labels };
  if (typeof providerSpec.hostIP === 'string') settings.hostIP = providerSpec.hostIP;
  return settings;
}

/** `stratus-<name>-<first 8 of uid>`: readable in `docker ps`, unique through the uid. */
export function containerName(spec: Pick<MachineSpec, 'name' | 'uid'>): string {
  const name = spec.name.replace(/[^a-zA-Z0-9_.-]/g, '-').slice(0, 63);
  return `stratus-${name}-${spec.uid.replace(/-/g, '').slice(0, 8)}`;
}

export function volumeName(uid: string, name: string): string {
  return `stratus-${uid}-${name}`;
}

/** Docker's port key, e.g. `80/tcp`. */
export function portKey(p: Pick<MachinePort, 'containerPort' | 'protocol'>): string {
  return `${p.containerPort}/${(p.protocol ?? 'TCP').toLowerCase()}`;
}

export interface ResolvedPort {
  containerPort: number;
  protocol: 'TCP' | 'UDP';
  hostPort?: number;
  hostIP?: string;
}

/** Ports with their effective host address: port's `hostIP` > `docker.hostIP` > node default. */
export function resolvePorts(ports: DockerPort[], settings: DockerSettings, nodeHostIP: string): ResolvedPort[] {
  return ports.map((p) => {
    const protocol = p.protocol === 'UDP' ? 'UDP' : 'TCP';
    const out: ResolvedPort = { containerPort: p.containerPort, protocol };
    if (p.hostPort !== undefined) {
      out.hostPort = p.hostPort;
      out.hostIP = p.hostIP ?? settings.hostIP ?? nodeHostIP;
    }
    return out;
  });
}

/** `8080/TCP@127.0.0.1,53/UDP@0.0.0.0` — the value of `stratus.dev/host-ports`. */
export function hostPortsLabel(ports: ResolvedPort[]): string {
  return ports
    .filter((p) => p.hostPort !== undefined)
    .map((p) => `${p.hostPort}/${p.protocol}@${p.hostIP}`)
    .join(',');
}

export interface HostPortUse {
  port: number;
  protocol: 'TCP' | 'UDP';
  hostIP: string;
}

export function parseHostPortsLabel(value: string | undefined): HostPortUse[] {
  if (!value) return [];
  const out: HostPortUse[] = [];
  for (const item of value.split(',')) {
    const m = /^(\d+)\/(TCP|UDP)@(.*)$/.exec(item.trim());
    if (m) out.push({ port: Number(m[1]), protocol: m[2] as 'TCP' | 'UDP', hostIP: m[3] ?? '' });
  }
  return out;
}

/** Labels on the container: the Instance's and `docker.labels`, then stratus's own (which win). */
export function containerLabels(spec: MachineSpec, settings: DockerSettings, ports: ResolvedPort[]): Record<string, string> {
  return {
    ...spec.labels,
    ...settings.labels,
    [LABEL_UID]: spec.uid,
    [LABEL_NAMESPACE]: spec.namespace,
    [LABEL_NAME]: spec.name,
    [LABEL_HOST_PORTS]: hostPortsLabel(ports),
    [LABEL_SPEC_HASH]: specHash(spec, settings, ports),
  };
}

/**
 * Fingerprint of everything Docker cannot change on an existing container: image, command,
 * env, ports, volumes, hostname and labels. A difference means `update` recreates the
 * container. cpus, memory and the restart policy are compared live and updated in place.
 */
export function specHash(spec: MachineSpec, settings: DockerSettings, ports: ResolvedPort[]): string {
  const canonical = {
    image: spec.image ?? '',
    command: spec.command ?? null,
    env: Object.entries(spec.env).sort(([a], [b]) => a.localeCompare(b)),
    ports: ports.map((p) => [p.containerPort, p.protocol, p.hostPort ?? null, p.hostIP ?? null]),
    volumes: settings.volumes.map((v) => [v.name ?? null, v.hostPath ?? null, v.containerPath, v.readOnly]),
    hostname: spec.hostname,
    labels: Object.entries({ ...spec.labels, ...settings.labels }).sort(([a], [b]) => a.localeCompare(b)),
  };
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex').slice(0, 16);
}

export function restartPolicy(settings: DockerSettings): { Name: string; MaximumRetryCount?: number } {
  return settings.restartPolicy === 'no' ? { Name: 'no' } : { Name: settings.restartPolicy };
}

/** Docker's CPU quota for `cpus` whole CPUs. */
export function nanoCpus(cpus: number): number {
  return Math.round(cpus * 1e9);
}

export function memoryBytes(memoryMiB: number): number {
  return memoryMiB * 1024 * 1024;
}

/** The `POST /containers/create` body for `spec`. */
export function createOptions(spec: MachineSpec, nodeHostIP: string, stopTimeoutSeconds: number): ContainerCreateOptions {
  if (!spec.image) throw invalid('image is required for a container');
  if (spec.command !== undefined && spec.command.length === 0) throw invalid('command, when set, must name a program');
  const settings = dockerSettings(spec.providerSpec);
  const ports = resolvePorts(spec.ports, settings, nodeHostIP);
  const exposed: Record<string, object> = {};
  const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  for (const p of ports) {
    const key = portKey(p);
    exposed[key] = {};
    if (p.hostPort !== undefined) {
      (bindings[key] ??= []).push({ HostIp: p.hostIP ?? nodeHostIP, HostPort: String(p.hostPort) });
    }
  }
  const mounts: MountSettings[] = settings.volumes.map((v) => {
    if (v.hostPath !== undefined) return { Type: 'bind', Source: v.hostPath, Target: v.containerPath, ReadOnly: v.readOnly };
    if (v.name !== undefined) {
      return {
        Type: 'volume',
        Source: volumeName(spec.uid, v.name),
        Target: v.containerPath,
        ReadOnly: v.readOnly,
        VolumeOptions: { NoCopy: false, Labels: { [LABEL_UID]: spec.uid, [LABEL_NAME]: v.name }, DriverConfig: { Name: 'local', Options: {} } },
      };
    }
    return { Type: 'volume', Source: '', Target: v.containerPath, ReadOnly: v.readOnly };
  });
  const options: ContainerCreateOptions = {
    name: containerName(spec),
    Image: spec.image,
    Hostname: spec.hostname,
    Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
    Labels: containerLabels(spec, settings, ports),
    ExposedPorts: exposed,
    StopTimeout: stopTimeoutSeconds,
    HostConfig: {
      PortBindings: bindings,
      NanoCpus: nanoCpus(spec.cpus),
      Memory: memoryBytes(spec.memoryMiB),
      RestartPolicy: restartPolicy(settings),
      Mounts: mounts,
    },
  };
  if (spec.command) {
    // The CRD's command replaces both the image's entrypoint and its command.
    options.Entrypoint = [spec.command[0] as string];
    options.Cmd = spec.command.slice(1);
  }
  return options;
}

/** Docker container status → `Instance.status.state`. */
export function machineState(info: Pick<ContainerInspectInfo, 'State'>, powerState: MachineSpec['powerState']): MachineState {
  const s = info.State;
  switch (s.Status) {
    case 'created':
      if (s.Error) return 'failed';
      // Created on purpose with powerState Stopped: it is simply not running.
      return powerState === 'Stopped' ? 'stopped' : 'creating';
    case 'running':
      return s.Restarting ? 'starting' : 'running';
    case 'restarting':
      return 'starting';
    case 'paused':
    case 'exited':
      return 'stopped';
    case 'removing':
      return 'terminating';
    case 'dead':
      return 'failed';
    default:
      return 'pending';
  }
}

/** A short human-readable line about a container that is not simply running. */
export function stateMessage(info: Pick<ContainerInspectInfo, 'State'>): string | undefined {
  const s = info.State;
  if (s.Error) return `container error: ${s.Error}`;
  if (s.OOMKilled) return `container was killed for exceeding its memory limit (exit code ${s.ExitCode})`;
  if (s.Status === 'exited') return `container exited with code ${s.ExitCode} at ${s.FinishedAt}`;
  if (s.Status === 'paused') return 'container is paused';
  if (s.Status === 'dead') return 'container is dead (Docker could not remove or stop it cleanly)';
  return undefined;
}

export type DriftKind = 'recreate' | 'resources' | 'power';

export interface Drift {
  /** What differs, for `MachineObservation.message`. */
  reasons: string[];
  /** The strongest repair needed: recreate > resources (in place) > power. */
  needs: Set<DriftKind>;
}

/** Compares a container with the spec; `nodeHostIP` is the node's default host address. */
export function drift(spec: MachineSpec, info: ContainerInspectInfo, nodeHostIP: string): Drift {
  const settings = dockerSettings(spec.providerSpec);
  const ports = resolvePorts(spec.ports, settings, nodeHostIP);
  const reasons: string[] = [];
  const needs = new Set<DriftKind>();
  const labels = info.Config.Labels ?? {};
  if (labels[LABEL_SPEC_HASH] !== specHash(spec, settings, ports)) {
    reasons.push('image, command, env, ports, volumes, hostname or labels changed (recreate)');
    needs.add('recreate');
  }
  const host = info.HostConfig;
  if ((host.NanoCpus ?? 0) !== nanoCpus(spec.cpus)) {
    reasons.push(`cpus ${(host.NanoCpus ?? 0) / 1e9} ≠ ${spec.cpus}`);
    needs.add('resources');
  }
  if ((host.Memory ?? 0) !== memoryBytes(spec.memoryMiB)) {
    reasons.push(`memory ${Math.round((host.Memory ?? 0) / 1048576)} MiB ≠ ${spec.memoryMiB} MiB`);
    needs.add('resources');
  }
  if ((host.RestartPolicy?.Name || 'no') !== settings.restartPolicy) {
    reasons.push(`restart policy ${host.RestartPolicy?.Name || 'no'} ≠ ${settings.restartPolicy}`);
    needs.add('resources');
  }
  const s = info.State;
  const up = s.Status === 'running' || s.Status === 'restarting';
  if (spec.powerState === 'Running' && (!up || s.Paused)) {
    reasons.push(`container is ${s.Status}, powerState is Running`);
    needs.add('power');
  }
  if (spec.powerState === 'Stopped' && (up || s.Paused)) {
    reasons.push(`container is ${s.Status}, powerState is Stopped`);
    needs.add('power');
  }
  return { reasons, needs };
}

/** The container's address on its first network with one (the default bridge here). */
export function containerIP(info: Pick<ContainerInspectInfo, 'NetworkSettings'>): string | undefined {
  // The default bridge's address is also at the top level, which the typings omit.
  const ns: ContainerInspectInfo['NetworkSettings'] & { IPAddress?: string } = info.NetworkSettings;
  if (ns.IPAddress) return ns.IPAddress;
  for (const n of Object.values(ns.Networks ?? {})) if (n.IPAddress) return n.IPAddress;
  return undefined;
}
