/**
 * clementine's wire shapes and how they map onto stratus objects — the document's, field for
 * field (seeds/002):
 *
 *   engine    {id, addr, cpus, memory, labels}                    ↔ a ComputeNode (docker)
 *   container {id, name, image: {...}, engine, state, ports}      ↔ an Instance (docker)
 *   image config {name, bind_ports: [{proto, port, container_port}], type, labels, ...}
 *
 * An engine's `addr` is `https://host:port` (TLS with clementine's one CA and client cert, the
 * Secret `clementine-tls`) or `tcp://host:port` (plain). `cpus`/`memory` (MB) become the node's
 * `capacityOverride`; each label becomes the node label `clementine.stratus.dev/<label>`, which
 * an image config's `labels` select (every label must be on the engine). The document's
 * values are echoed as given: `addr` and the label order are kept in annotations.
 */
import type { ComputeNode, Instance } from '../crds/types.js';
import { containerName } from '../providers/docker/index.js';
import { badRequest, field, type JsonObject } from './http.js';

/** Node label prefix of clementine engine labels. */
export const ENGINE_LABEL_PREFIX = 'clementine.stratus.dev/';
/** The engine's `addr` and label order, as the client gave them (JSON). */
export const ENGINE_ANNOTATION = 'legacy.stratus.dev/clementine-engine';
/** The image config an Instance was scheduled from, normalised (JSON). */
export const CONFIG_ANNOTATION = 'legacy.stratus.dev/clementine-config';

const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$/;
const HOST = /^[A-Za-z0-9]([-A-Za-z0-9.]{0,251}[A-Za-z0-9])?$/;

export interface EngineView {
  id: string;
  addr: string;
  cpus: number;
  memory: number;
  labels: string[];
}

export interface BindPort {
  proto: 'tcp' | 'udp';
  host_ip?: string;
  port: number;
  container_port: number;
}

/** An image config as clementine reads it (`name` is the image). */
export interface ImageConfig {
  name: string;
  type: 'multi' | 'unique';
  bind_ports: BindPort[];
  labels?: string[];
  entrypoint?: string[];
  environment?: Record<string, string>;
  hostname?: string;
  volumes?: string[];
  restart_policy: { name?: 'no' | 'always' | 'unless-stopped' | 'on-failure' };
}

export interface ContainerView {
  id: string;
  name: string;
  image: {
    name: string;
    entrypoint: string[];
    environment: Record<string, string>;
    hostname: string;
    type: 'multi' | 'unique';
    labels: string[];
    bind_ports: Required<BindPort>[];
    volumes: string[];
    restart_policy: ImageConfig['restart_policy'];
    network_mode: string;
  };
  engine: EngineView | null;
  state: string;
  ports: Required<BindPort>[];
}

/** What `POST /apiv1/container` answers: the config as sent, where it runs, its ports. */
export interface PlacedContainer {
  id: string;
  image: JsonObject;
  engine: EngineView | null;
  ports: Required<BindPort>[];
}

// ---- engines ----------------------------------------------------------------------------

export interface EngineRequest {
  id: string;
  /** As the client wrote it. */
  addr: string;
  /** The node's docker.address (`tcp://host:port`). */
  address: string;
  tls: boolean;
  cpus?: number;
  memory?: number;
  labels: string[];
}

/**
 * Reads `{id, addr, cpus, memory, labels}`. `addr` is `https://host:port` (TLS) or
 * `tcp://host:port`; stratus's earlier form `{name, address | host + port}` is still read
 * (TLS then follows whether `clementine-tls` exists, as before).
 */
export function engineRequest(body: JsonObject, defaultId: (host: string, port: number) => string): EngineRequest & { tlsFromSecret: boolean } {
  const addrField = field.string(body, 'addr', { max: 1024 });
  const address = field.string(body, 'address', { max: 1024 });
  let host: string;
  let port: number;
  let tls = false;
  let tlsFromSecret = false;
  let addr: string;
  if (addrField !== undefined) {
    const m = /^(https|tcp):\/\/([^\s/:]+):([0-9]{1,5})\/?$/.exec(addrField);
    if (!m) throw badRequest('addr must be https://host:port or tcp://host:port');
    tls = m[1] === 'https';
    host = m[2]!;
    port = Number(m[3]);
    addr = addrField;
  } else if (address !== undefined) {
    const m = /^(?:tcp:\/\/)?([^\s/:]+):([0-9]{1,5})$/.exec(address);
    if (!m) throw badRequest('address must be tcp://host:port or host:port');
    host = m[1]!;
    port = Number(m[2]);
    tlsFromSecret = true;
    addr = `tcp://${host}:${port}`;
  } else if (body.host !== undefined) {
    host = field.string(body, 'host', { required: true, max: 253 })!;
    port = field.integer(body, 'port', { min: 1, max: 65535 }) ?? 2376;
    tlsFromSecret = true;
    addr = `tcp://${host}:${port}`;
  } else {
    throw badRequest('addr is required (https://host:port or tcp://host:port)');
  }
  if (!HOST.test(host)) throw badRequest('addr: host must be a host name or IPv4 address');
  if (port < 1 || port > 65535) throw badRequest('addr: port must be from 1 to 65535');
  const id = field.string(body, 'id', { max: 63 }) ?? field.string(body, 'name', { max: 63 }) ?? defaultId(host, port);
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(id)) throw badRequest('id must be a DNS-1123 label (a-z, 0-9, -; at most 63)');
  const cpus = field.integer(body, 'cpus', { min: 1, max: 65536 });
  const memory = field.integer(body, 'memory', { min: 4, max: 1073741824 });
  const labels = labelList(body.labels, 'labels');
  return { id, addr, address: `tcp://${host}:${port}`, tls, tlsFromSecret, ...(cpus !== undefined ? { cpus } : {}), ...(memory !== undefined ? { memory } : {}), labels };
}

/** A list of engine labels (each a label name: letters, digits, -_. ; at most 63). */
export function labelList(v: unknown, key: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw badRequest(`${key} must be a list of strings`);
  if (v.length > 32) throw badRequest(`${key} has more than 32 entries`);
  const out: string[] = [];
  v.forEach((l, i) => {
    if (typeof l !== 'string') throw badRequest(`${key}[${i}] must be a string`);
    if (l === '') return; // what clementine itself sends for "no labels"
    if (!LABEL_NAME.test(l)) throw badRequest(`${key}[${i}]: ${JSON.stringify(l)} must be letters, digits, -_. (at most 63)`);
    if (!out.includes(l)) out.push(l);
  });
  return out;
}

export function engineLabels(labels: string[]): Record<string, string> {
  return Object.fromEntries(labels.map((l) => [`${ENGINE_LABEL_PREFIX}${l}`, '']));
}

export function engineView(node: ComputeNode): EngineView {
  let recorded: { addr?: string; labels?: string[] } = {};
  try {
    recorded = JSON.parse(node.metadata?.annotations?.[ENGINE_ANNOTATION] ?? '{}') as typeof recorded;
  } catch {
    recorded = {};
  }
  const onNode = Object.keys(node.metadata?.labels ?? {})
    .filter((k) => k.startsWith(ENGINE_LABEL_PREFIX))
    .map((k) => k.slice(ENGINE_LABEL_PREFIX.length));
  // The client's order for labels still on the node, then any added with kubectl.
  const labels = [...(recorded.labels ?? []).filter((l) => onNode.includes(l)), ...onNode.filter((l) => !(recorded.labels ?? []).includes(l)).sort()];
  const address = node.spec.docker?.address ?? '';
  const derived = node.spec.docker?.tlsSecretRef ? address.replace(/^tcp:/, 'https:') : address;
  const addr = recorded.addr && recorded.addr.replace(/^https:/, 'tcp:').replace(/\/$/, '') === address ? recorded.addr : derived;
  return {
    id: node.metadata?.name ?? '',
    addr,
    cpus: node.spec.capacityOverride?.cpus ?? node.status?.capacity?.cpus ?? 0,
    memory: node.spec.capacityOverride?.memoryMiB ?? node.status?.capacity?.memoryMiB ?? 0,
    labels,
  };
}

// ---- image configs ----------------------------------------------------------------------

function port(v: unknown, what: string): number {
  const n = typeof v === 'string' && /^[0-9]{1,5}$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 65535) throw badRequest(`${what} must be a port from 1 to 65535`);
  return n;
}

function proto(p: unknown, what: string): 'tcp' | 'udp' {
  if (p === undefined || p === null || p === '') return 'tcp';
  if (typeof p === 'string' && (p.toLowerCase() === 'tcp' || p.toLowerCase() === 'udp')) return p.toLowerCase() as 'tcp' | 'udp';
  throw badRequest(`${what}: proto must be tcp or udp`);
}

/**
 * `bind_ports` as the document writes it, `[{proto, port, container_port}]` (`port` on the
 * engine host; `host_ip` optional); stratus's earlier forms `{"80/tcp": 8080}` and
 * `["8080:80/udp"]` are still read.
 */
export function bindPorts(v: unknown): BindPort[] {
  if (v === undefined || v === null) return [];
  const out: BindPort[] = [];
  if (Array.isArray(v)) {
    if (v.length > 64) throw badRequest('bind_ports has more than 64 entries');
    v.forEach((e, i) => {
      const what = `bind_ports[${i}]`;
      if (e !== null && typeof e === 'object' && !Array.isArray(e)) {
        const o = e as JsonObject;
        for (const k of Object.keys(o)) if (!['proto', 'port', 'container_port', 'host_ip'].includes(k)) throw badRequest(`${what}: unknown field ${k}`);
        const hostIp = o.host_ip;
        if (hostIp !== undefined && hostIp !== '' && (typeof hostIp !== 'string' || !/^[0-9]{1,3}(\.[0-9]{1,3}){3}$/.test(hostIp))) throw badRequest(`${what}.host_ip must be an IPv4 address`);
        out.push({
          proto: proto(o.proto, what),
          port: port(o.port, `${what}.port`),
          container_port: port(o.container_port, `${what}.container_port`),
          ...(typeof hostIp === 'string' && hostIp !== '' ? { host_ip: hostIp } : {}),
        });
        return;
      }
      const m = typeof e === 'string' ? /^([0-9]{1,5}):([0-9]{1,5})(?:\/([a-zA-Z]+))?$/.exec(e) : null;
      if (!m) throw badRequest(`${what} must be {"proto", "port", "container_port"}`);
      out.push({ port: port(m[1], what), container_port: port(m[2], what), proto: proto(m[3], what) });
    });
  } else if (typeof v === 'object') {
    const entries = Object.entries(v as JsonObject);
    if (entries.length > 64) throw badRequest('bind_ports has more than 64 entries');
    for (const [k, host] of entries) {
      const m = /^([0-9]{1,5})(?:\/([a-zA-Z]+))?$/.exec(k);
      if (!m) throw badRequest(`bind_ports key ${JSON.stringify(k)} must be "containerPort[/tcp|udp]"`);
      out.push({ container_port: port(m[1], `bind_ports ${k}`), port: port(host, `bind_ports ${k}`), proto: proto(m[2], `bind_ports ${k}`) });
    }
  } else {
    throw badRequest('bind_ports must be a list of {"proto", "port", "container_port"}');
  }
  const seen = new Set<string>();
  for (const p of out) {
    const key = `${p.container_port}/${p.proto}`;
    if (seen.has(key)) throw badRequest(`bind_ports: container port ${key} is bound twice`);
    seen.add(key);
  }
  return out;
}

function stringList(v: unknown, key: string, max: number): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v.trim() === '' ? undefined : ['/bin/sh', '-c', v];
  if (!Array.isArray(v) || v.length > max || !v.every((s) => typeof s === 'string' && s.length <= 4096)) throw badRequest(`${key} must be a list of strings`);
  return v.length ? (v as string[]) : undefined;
}

const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;

function environment(v: unknown, key: string): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  let pairs: [string, unknown][];
  if (Array.isArray(v)) {
    pairs = v.map((e, i) => {
      const m = typeof e === 'string' ? /^([^=]+)=(.*)$/s.exec(e) : null;
      if (!m) throw badRequest(`${key}[${i}] must be "NAME=value"`);
      return [m[1]!, m[2]!];
    });
  } else if (typeof v === 'object') {
    pairs = Object.entries(v as JsonObject);
  } else {
    throw badRequest(`${key} must be an object of strings`);
  }
  if (pairs.length > 256) throw badRequest(`${key} has more than 256 entries`);
  for (const [k, val] of pairs) {
    if (typeof val !== 'string') throw badRequest(`${key}.${k} must be a string`);
    if (!ENV_NAME.test(k) || k.length > 256 || val.length > 32768) throw badRequest(`${key} ${JSON.stringify(k)} is not a valid variable`);
  }
  return Object.fromEntries(pairs) as Record<string, string>;
}

const RESTART = ['no', 'always', 'unless-stopped', 'on-failure'] as const;

/**
 * Reads an image config. Besides the document's fields (`name`, `bind_ports`, `type`,
 * `labels`) it reads what its container listing shows (`entrypoint`, `environment`,
 * `hostname`, `volumes`, `restart_policy`) and stratus's earlier `command`/`env`.
 */
export function imageConfig(body: JsonObject): ImageConfig {
  const name = field.string(body, 'name', { required: true, max: 1024 })!;
  if (/\s/.test(name)) throw badRequest('name must be an image reference (no spaces)');
  const type = field.string(body, 'type') ?? 'multi';
  if (type !== 'multi' && type !== 'unique') throw badRequest('type must be "multi" or "unique"');
  if (body.labels !== undefined && body.labels !== null && !Array.isArray(body.labels)) throw badRequest('labels must be a list of engine labels');
  const labels = labelList(body.labels, 'labels');
  const entrypoint = stringList(body.entrypoint ?? body.command, body.entrypoint !== undefined ? 'entrypoint' : 'command', 256);
  const env = environment(body.environment ?? body.env, body.environment !== undefined ? 'environment' : 'env');
  const hostname = field.string(body, 'hostname', { max: 63 });
  if (hostname !== undefined && hostname !== '' && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/i.test(hostname)) throw badRequest('hostname must be a DNS label');
  const volumes = body.volumes === undefined || body.volumes === null ? undefined : stringList(body.volumes, 'volumes', 32);
  for (const v of volumes ?? []) if (!v.startsWith('/') || v.includes(':')) throw badRequest(`volumes: ${JSON.stringify(v)} must be an absolute container path`);
  const rp = body.restart_policy;
  let restart: ImageConfig['restart_policy'] = {};
  if (rp !== undefined && rp !== null) {
    if (typeof rp !== 'object' || Array.isArray(rp)) throw badRequest('restart_policy must be an object');
    const n = field.string(rp as JsonObject, 'name');
    if (n !== undefined && n !== '' && !(RESTART as readonly string[]).includes(n)) throw badRequest(`restart_policy.name must be one of ${RESTART.join(', ')}`);
    restart = n ? { name: n as (typeof RESTART)[number] } : {};
  }
  return {
    name,
    type,
    bind_ports: bindPorts(body.bind_ports),
    ...(labels.length ? { labels } : {}),
    ...(entrypoint ? { entrypoint } : {}),
    ...(env ? { environment: env } : {}),
    ...(hostname ? { hostname } : {}),
    ...(volumes ? { volumes } : {}),
    restart_policy: restart,
  };
}

/**
 * The config as `POST /apiv1/container` echoes it: the fields the client sent (the
 * document's answer repeats `name`, `type`, `bind_ports` and adds `restart_policy`).
 */
export function echoedConfig(body: JsonObject, config: ImageConfig): JsonObject {
  const out: JsonObject = { name: config.name, type: config.type };
  if (body.bind_ports !== undefined) out.bind_ports = config.bind_ports;
  for (const k of ['labels', 'entrypoint', 'environment', 'hostname', 'volumes'] as const) if (config[k] !== undefined) out[k] = config[k];
  out.restart_policy = config.restart_policy;
  return out;
}

/** The Instance spec for one container of `config`. */
export function instanceSpec(config: ImageConfig, group: string): Instance['spec'] {
  return {
    provider: 'docker',
    image: config.name,
    ...(config.bind_ports.length
      ? { ports: config.bind_ports.map((p) => ({ containerPort: p.container_port, hostPort: p.port, protocol: p.proto === 'udp' ? ('UDP' as const) : ('TCP' as const), ...(p.host_ip ? { hostIP: p.host_ip } : {}) })) }
      : {}),
    ...(config.entrypoint ? { command: config.entrypoint } : {}),
    ...(config.environment ? { env: Object.entries(config.environment).map(([name, value]) => ({ name, value })) } : {}),
    ...(config.hostname ? { hostname: config.hostname.toLowerCase() } : {}),
    ...(config.labels?.length ? { nodeSelector: engineLabels(config.labels) } : {}),
    ...(config.volumes || config.restart_policy.name
      ? {
          docker: {
            ...(config.restart_policy.name ? { restartPolicy: config.restart_policy.name } : {}),
            ...(config.volumes ? { volumes: config.volumes.map((containerPath, i) => ({ name: `v${i}`, containerPath })) } : {}),
          },
        }
      : {}),
    placement: { group, ...(config.type === 'unique' ? { unique: true } : {}) },
  };
}

// ---- containers -------------------------------------------------------------------------

export function nodeOf(inst: Instance): string | undefined {
  return inst.spec.nodeName ?? inst.status?.nodeName;
}

/** The Docker id once the container exists (`status.providerID` is `docker://<node>/<id>`), else "". */
export function dockerId(inst: Instance): string {
  return inst.status?.providerID?.replace(/^docker:\/\/[^/]*\//, '') ?? '';
}

function configOf(inst: Instance): Partial<ImageConfig> {
  try {
    return JSON.parse(inst.metadata?.annotations?.[CONFIG_ANNOTATION] ?? '{}') as Partial<ImageConfig>;
  } catch {
    return {};
  }
}

export function containerPorts(inst: Instance, engine: ComputeNode | undefined): Required<BindPort>[] {
  const hostIp = engine?.spec.docker?.hostIP ?? '127.0.0.1';
  return (inst.spec.ports ?? [])
    .filter((p) => p.hostPort !== undefined)
    .map((p) => ({ proto: (p.protocol ?? 'TCP').toLowerCase() as 'tcp' | 'udp', host_ip: p.hostIP ?? hostIp, port: p.hostPort!, container_port: p.containerPort }));
}

export function containerView(inst: Instance, engines: Map<string, ComputeNode>): ContainerView {
  const node = nodeOf(inst);
  const engine = node ? engines.get(node) : undefined;
  const id = dockerId(inst);
  const config = configOf(inst);
  const ports = containerPorts(inst, engine);
  const labels = Object.keys(inst.spec.nodeSelector ?? {})
    .filter((k) => k.startsWith(ENGINE_LABEL_PREFIX))
    .map((k) => k.slice(ENGINE_LABEL_PREFIX.length));
  const restart = inst.spec.docker?.restartPolicy;
  return {
    id,
    name: `/${containerName({ name: inst.metadata?.name ?? '', uid: inst.metadata?.uid ?? '' })}`,
    image: {
      name: inst.spec.image ?? '',
      entrypoint: inst.spec.command ?? [],
      environment: Object.fromEntries((inst.spec.env ?? []).map((e) => [e.name, e.value ?? ''])),
      // Docker's default hostname is the short id.
      hostname: inst.spec.hostname ?? config.hostname ?? id.slice(0, 12),
      type: inst.spec.placement?.unique ? 'unique' : 'multi',
      // clementine answered [""] for a config without labels (its labels were a split string).
      labels: labels.length ? labels : [''],
      bind_ports: ports,
      volumes: (inst.spec.docker?.volumes ?? []).map((v) => v.containerPath),
      restart_policy: restart ? { name: restart } : {},
      network_mode: 'bridge',
    },
    engine: engine ? engineView(engine) : null,
    state: inst.metadata?.deletionTimestamp ? 'terminating' : (inst.status?.state ?? 'pending'),
    ports,
  };
}

/** The document's DELETE answer: Go's rendering of the container and the engine. */
export function destroyedMessage(c: ContainerView, engineId: string, addr: string): string {
  return `Container container ${c.name} Image ${c.image.name} Engine ${engineId} destroyed on engine engine ${engineId} addr ${addr}`;
}
