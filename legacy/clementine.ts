/**
 * clementine: a cluster of Docker engines. Every answer is `{"ok": true, "data": ...}`;
 * errors are `{"ok": false, "data": null, "error": "<message>"}` with a 4xx/5xx status.
 *
 *   POST   /apiv1/engine {host, port?, name?, address?, ca?, cert?, key?}   201 → engine
 *   GET    /apiv1/engines                                                  200 → [engine]
 *   GET    /apiv1/engine/<id>/containers                                   200 → [container]
 *   DELETE /apiv1/engine/<id>/container/<cid>                              200 → container
 *   POST   /apiv1/container {image, name?, type?, count?, bind_ports?, labels?, command?, env?}
 *                                                                          201 → config
 *   GET    /apiv1/containers                                               200 → [container]
 *
 * An engine is a ComputeNode (`provider: docker`, cluster-scoped, `id` = its name). Its
 * `status` is read from the node's `Ready` condition, which the ComputeNode controller keeps
 * current: `up`, `down` (with the probe's error as `message`) or `unknown` (not probed yet)
 * — so listing never calls an engine and an engine that is down is listed as such. With
 * `ca`, `cert` and `key` (PEM) the proxy stores clementine's one CA and client certificate
 * in the Secret `clementine-tls` of the caller's namespace; every engine added later uses
 * it while it exists.
 *
 * A container is an Instance (`provider: docker`). `POST /apiv1/container` schedules an
 * image config: `count` Instances in the placement group `name`; `type: unique` sets
 * `placement.unique` (at most one per engine; without `count`, one on every engine that is
 * up), `multi` (default) lets the scheduler stack them. `bind_ports` is
 * `{"80/tcp": 8080}` or `["8080:80", "5353:53/udp"]` (host:container). `<cid>` may be the
 * container's name, its Instance uid or its Docker id (12+ hex characters).
 */
import { randomBytes } from 'node:crypto';
import type { ComputeNode, Instance } from '../crds/types.js';
import { CoreResources, isAlreadyExists, type KubeClient, type KubeObject } from '../runtime/client.js';
import { Resources } from '../controllers/resources.js';
import { badRequest, conflict, field, notFound, parseJsonObject, type Dialect, type JsonObject } from './http.js';
import { isDnsLabel, LEGACY_API_LABEL, objectName } from './names.js';
import type { LegacyApi } from './api.js';

export const clementineDialect: Dialect = {
  name: 'clementine',
  errorBody: (err) => ({ ok: false, data: null, error: err.status === 401 ? 'unauthorized' : err.message }),
  errorHeaders: (err): Record<string, string> => (err.status === 401 ? { 'www-authenticate': 'Token' } : {}),
};

export const TLS_SECRET = 'clementine-tls';
export const GROUP_LABEL = 'legacy.stratus.dev/group';
const HOST = /^[A-Za-z0-9]([-A-Za-z0-9.]{0,251}[A-Za-z0-9])?$/;

interface SecretObject extends KubeObject {
  type?: string;
  data?: Record<string, string>;
}

export type EngineStatus = 'up' | 'down' | 'unknown';

export interface EngineView {
  id: string;
  address: string;
  status: EngineStatus;
  message: string;
  version: string | null;
  last_heartbeat: string | null;
  containers: number;
}

export function engineStatus(node: ComputeNode): { status: EngineStatus; message: string } {
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
  if (!ready || ready.status === 'Unknown') return { status: 'unknown', message: ready?.message ?? 'not probed yet' };
  return ready.status === 'True' ? { status: 'up', message: '' } : { status: 'down', message: `${ready.reason ?? 'NotReady'}: ${ready.message ?? ''}`.trim() };
}

export function engineView(node: ComputeNode, containers: number): EngineView {
  return {
    id: node.metadata?.name ?? '',
    address: node.spec.docker?.address ?? '',
    ...engineStatus(node),
    version: node.status?.version ?? null,
    last_heartbeat: node.status?.lastHeartbeatTime ?? null,
    containers,
  };
}

export interface ContainerView {
  id: string;
  uid: string;
  container_id: string | null;
  image: string | null;
  state: string;
  engine: string | null;
  engine_status: EngineStatus;
  ip_address: string | null;
  bind_ports: string[];
  labels: Record<string, string>;
  group: string | null;
  type: 'multi' | 'unique';
  message: string | null;
}

function nodeOf(inst: Instance): string | undefined {
  return inst.spec.nodeName ?? inst.status?.nodeName;
}

/** Why the scheduler has not placed the Instance ("0/2 nodes: ..."), while it has not. */
function unscheduled(inst: Instance): string | undefined {
  const c = inst.status?.conditions?.find((x) => x.type === 'Scheduled');
  return c?.status === 'False' ? c.message : undefined;
}

export function containerView(inst: Instance, engines: Map<string, ComputeNode>): ContainerView {
  const node = nodeOf(inst);
  const engine = node ? engines.get(node) : undefined;
  return {
    id: inst.metadata?.name ?? '',
    uid: inst.metadata?.uid ?? '',
    container_id: inst.status?.providerID ? inst.status.providerID.replace(/^docker:\/\/[^/]*\//, '') : null,
    image: inst.spec.image ?? null,
    state: inst.metadata?.deletionTimestamp ? 'terminating' : (inst.status?.state ?? 'pending'),
    engine: node ?? null,
    engine_status: engine ? engineStatus(engine).status : 'unknown',
    ip_address: inst.status?.ipAddress || null,
    bind_ports: (inst.spec.ports ?? []).map((p) => `${p.hostPort ?? ''}:${p.containerPort}/${(p.protocol ?? 'TCP').toLowerCase()}`),
    labels: Object.fromEntries(Object.entries(inst.spec.docker?.labels ?? {}).filter((e): e is [string, string] => typeof e[1] === 'string')),
    group: inst.spec.placement?.group ?? null,
    type: inst.spec.placement?.unique ? 'unique' : 'multi',
    message: inst.status?.message ?? unscheduled(inst) ?? null,
  };
}

async function dockerEngines(client: KubeClient): Promise<ComputeNode[]> {
  const nodes = await client.resource<ComputeNode>(Resources.computeNodes).list();
  return nodes.filter((n) => n.spec?.provider === 'docker').sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
}

async function dockerInstances(client: KubeClient, namespace: string): Promise<Instance[]> {
  const all = await client.resource<Instance>(Resources.instances).list(namespace);
  return all.filter((i) => i.spec?.provider === 'docker').sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
}

async function engine(client: KubeClient, id: string): Promise<ComputeNode> {
  if (!isDnsLabel(id)) throw notFound('no such engine');
  const node = await client.resource<ComputeNode>(Resources.computeNodes).get(undefined, id);
  if (!node || node.spec?.provider !== 'docker') throw notFound('no such engine');
  return node;
}

/** `tcp://host:port` from the body: `address`, or `host` and `port` (default 2376). */
export function engineAddress(body: JsonObject): { address: string; host: string; port: number } {
  const address = field.string(body, 'address', { max: 1024 });
  let host: string;
  let port: number;
  if (address !== undefined) {
    const m = /^(?:tcp:\/\/)?([^\s/:]+):([0-9]{1,5})$/.exec(address);
    if (!m) throw badRequest('address must be tcp://host:port or host:port');
    host = m[1]!;
    port = Number(m[2]);
  } else {
    host = field.string(body, 'host', { required: true, max: 253 })!;
    port = field.integer(body, 'port', { min: 1, max: 65535 }) ?? 2376;
  }
  if (!HOST.test(host)) throw badRequest('host must be a host name or IPv4 address');
  if (port < 1 || port > 65535) throw badRequest('port must be from 1 to 65535');
  return { address: `tcp://${host}:${port}`, host, port };
}

interface PortSpec {
  containerPort: number;
  hostPort: number;
  protocol: 'TCP' | 'UDP';
}

function port(v: unknown, what: string): number {
  const n = typeof v === 'string' && /^[0-9]{1,5}$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 65535) throw badRequest(`${what} must be a port from 1 to 65535`);
  return n;
}

function protocol(p: string | undefined, what: string): 'TCP' | 'UDP' {
  if (p === undefined || p.toLowerCase() === 'tcp') return 'TCP';
  if (p.toLowerCase() === 'udp') return 'UDP';
  throw badRequest(`${what}: protocol must be tcp or udp`);
}

/** `{"80/tcp": 8080}` or `["8080:80", "5353:53/udp"]`. */
export function bindPorts(v: unknown): PortSpec[] {
  if (v === undefined || v === null) return [];
  const out: PortSpec[] = [];
  if (Array.isArray(v)) {
    if (v.length > 64) throw badRequest('bind_ports has more than 64 entries');
    v.forEach((e, i) => {
      const m = typeof e === 'string' ? /^([0-9]{1,5}):([0-9]{1,5})(?:\/([a-zA-Z]+))?$/.exec(e) : null;
      if (!m) throw badRequest(`bind_ports[${i}] must be "hostPort:containerPort[/tcp|udp]"`);
      out.push({ hostPort: port(m[1], `bind_ports[${i}]`), containerPort: port(m[2], `bind_ports[${i}]`), protocol: protocol(m[3], `bind_ports[${i}]`) });
    });
  } else if (typeof v === 'object') {
    const entries = Object.entries(v as JsonObject);
    if (entries.length > 64) throw badRequest('bind_ports has more than 64 entries');
    for (const [k, host] of entries) {
      const m = /^([0-9]{1,5})(?:\/([a-zA-Z]+))?$/.exec(k);
      if (!m) throw badRequest(`bind_ports key ${JSON.stringify(k)} must be "containerPort[/tcp|udp]"`);
      out.push({ containerPort: port(m[1], `bind_ports ${k}`), hostPort: port(host, `bind_ports ${k}`), protocol: protocol(m[2], `bind_ports ${k}`) });
    }
  } else {
    throw badRequest('bind_ports must be an object or a list');
  }
  const seen = new Set<string>();
  for (const p of out) {
    const key = `${p.containerPort}/${p.protocol}`;
    if (seen.has(key)) throw badRequest(`bind_ports: container port ${key} is bound twice`);
    seen.add(key);
  }
  return out;
}

function stringMap(v: unknown, key: string, maxItems: number): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw badRequest(`${key} must be an object of strings`);
  const entries = Object.entries(v as JsonObject);
  if (entries.length > maxItems) throw badRequest(`${key} has more than ${maxItems} entries`);
  for (const [k, val] of entries) {
    if (typeof val !== 'string') throw badRequest(`${key}.${k} must be a string`);
    if (k.length === 0 || k.length > 256 || val.length > 4096) throw badRequest(`${key}.${k} is too long`);
  }
  return Object.fromEntries(entries) as Record<string, string>;
}

function command(v: unknown): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v.trim() === '' ? undefined : ['/bin/sh', '-c', v];
  if (!Array.isArray(v) || v.length > 256 || !v.every((s) => typeof s === 'string' && s.length <= 4096)) {
    throw badRequest('command must be a string or a list of strings');
  }
  return v.length ? (v as string[]) : undefined;
}

const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;

function env(v: unknown): { name: string; value: string }[] | undefined {
  if (v === undefined || v === null) return undefined;
  let pairs: [string, string][];
  if (Array.isArray(v)) {
    pairs = v.map((e, i) => {
      const m = typeof e === 'string' ? /^([^=]+)=(.*)$/s.exec(e) : null;
      if (!m) throw badRequest(`env[${i}] must be "NAME=value"`);
      return [m[1]!, m[2]!];
    });
  } else {
    pairs = Object.entries(stringMap(v, 'env', 256) ?? {});
  }
  if (pairs.length > 256) throw badRequest('env has more than 256 entries');
  for (const [k, val] of pairs) if (!ENV_NAME.test(k) || k.length > 256 || val.length > 32768) throw badRequest(`env ${JSON.stringify(k)} is not a valid variable`);
  return pairs.map(([name, value]) => ({ name, value }));
}

/** Writes clementine's one CA and client certificate into the caller's namespace. */
async function storeTls(client: KubeClient, namespace: string, pem: { ca: string; cert: string; key: string }): Promise<void> {
  const secrets = client.resource<SecretObject>(CoreResources.secrets);
  const obj: SecretObject = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: TLS_SECRET, namespace, labels: { [LEGACY_API_LABEL]: 'clementine' } },
    type: 'Opaque',
    data: {
      'ca.pem': Buffer.from(pem.ca).toString('base64'),
      'cert.pem': Buffer.from(pem.cert).toString('base64'),
      'key.pem': Buffer.from(pem.key).toString('base64'),
    },
  };
  try {
    await secrets.create(obj);
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
    await secrets.replace(obj);
  }
}

function tlsFromBody(body: JsonObject): { ca: string; cert: string; key: string } | undefined {
  const ca = field.string(body, 'ca', { max: 65536 });
  const cert = field.string(body, 'cert', { max: 65536 });
  const key = field.string(body, 'key', { max: 65536 });
  const given = [ca, cert, key].filter((x) => x !== undefined).length;
  if (given === 0) return undefined;
  if (given !== 3) throw badRequest('ca, cert and key go together');
  for (const [k, v] of [['ca', ca], ['cert', cert], ['key', key]] as const) {
    if (!v!.includes('-----BEGIN ')) throw badRequest(`${k} must be PEM`);
  }
  return { ca: ca!, cert: cert!, key: key! };
}

function countBy(instances: Instance[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const i of instances) {
    const n = nodeOf(i);
    if (n) m.set(n, (m.get(n) ?? 0) + 1);
  }
  return m;
}

export const clementineApi: LegacyApi = {
  dialect: clementineDialect,
  prefixes: ['/apiv1/'],
  routes: [
    {
      method: 'POST',
      pattern: '/apiv1/engine',
      auth: 'token-unless-insecure',
      async handler(r, caller, client) {
        const body = parseJsonObject(await r.body());
        const { address, host, port: p } = engineAddress(body);
        const name = field.string(body, 'name', { max: 63 }) ?? objectName(`engine-${host}-${p}`);
        if (!isDnsLabel(name)) throw badRequest('name must be a DNS-1123 label (a-z, 0-9, -; at most 63)');
        const tls = tlsFromBody(body);
        const engines = await dockerEngines(client);
        if (engines.some((e) => e.spec.docker?.address === address)) throw conflict(`an engine at ${address} exists`);
        if (tls) await storeTls(client, caller.namespace, tls);
        const haveTls = tls !== undefined || (await client.resource<SecretObject>(CoreResources.secrets).get(caller.namespace, TLS_SECRET)) !== undefined;
        let node: ComputeNode;
        try {
          node = await client.resource<ComputeNode>(Resources.computeNodes).create({
            apiVersion: 'compute.stratus.dev/v1alpha1',
            kind: 'ComputeNode',
            metadata: { name, labels: { [LEGACY_API_LABEL]: 'clementine' } },
            spec: {
              provider: 'docker',
              docker: { address, ...(haveTls ? { tlsSecretRef: { name: TLS_SECRET, namespace: caller.namespace } } : {}) },
            },
          });
        } catch (err) {
          if (isAlreadyExists(err)) throw conflict(`engine ${name} exists`);
          throw err;
        }
        return { status: 201, json: { ok: true, data: engineView(node, 0) } };
      },
    },
    {
      method: 'GET',
      pattern: '/apiv1/engines',
      auth: 'token-unless-insecure',
      async handler(_r, caller, client) {
        const [engines, instances] = await Promise.all([dockerEngines(client), dockerInstances(client, caller.namespace)]);
        const counts = countBy(instances);
        return { status: 200, json: { ok: true, data: engines.map((e) => engineView(e, counts.get(e.metadata!.name!) ?? 0)) } };
      },
    },
    {
      method: 'GET',
      pattern: '/apiv1/containers',
      auth: 'token-unless-insecure',
      async handler(_r, caller, client) {
        const [engines, instances] = await Promise.all([dockerEngines(client), dockerInstances(client, caller.namespace)]);
        const byName = new Map(engines.map((e) => [e.metadata!.name!, e]));
        return { status: 200, json: { ok: true, data: instances.map((i) => containerView(i, byName)) } };
      },
    },
    {
      method: 'GET',
      pattern: '/apiv1/engine/:id/containers',
      auth: 'token-unless-insecure',
      async handler(r, caller, client) {
        const node = await engine(client, r.params.id!);
        const instances = (await dockerInstances(client, caller.namespace)).filter((i) => nodeOf(i) === node.metadata!.name);
        const byName = new Map([[node.metadata!.name!, node]]);
        return { status: 200, json: { ok: true, data: instances.map((i) => containerView(i, byName)) } };
      },
    },
    {
      method: 'DELETE',
      pattern: '/apiv1/engine/:id/container/:cid',
      auth: 'token-unless-insecure',
      async handler(r, caller, client) {
        const node = await engine(client, r.params.id!);
        const cid = r.params.cid!.toLowerCase();
        const byName = new Map([[node.metadata!.name!, node]]);
        const instances = (await dockerInstances(client, caller.namespace)).filter((i) => nodeOf(i) === node.metadata!.name);
        const inst = instances.find((i) => {
          const v = containerView(i, byName);
          return v.id === cid || v.uid === cid || (cid.length >= 12 && /^[0-9a-f]+$/.test(cid) && v.container_id?.startsWith(cid));
        });
        if (!inst) throw notFound('no such container on this engine');
        await client.resource<Instance>(Resources.instances).delete(caller.namespace, inst.metadata!.name!, { preconditions: { uid: inst.metadata!.uid! } });
        return { status: 200, json: { ok: true, data: { ...containerView(inst, byName), state: 'terminating' } } };
      },
    },
    {
      method: 'POST',
      pattern: '/apiv1/container',
      auth: 'token-unless-insecure',
      async handler(r, caller, client) {
        const body = parseJsonObject(await r.body());
        const image = field.string(body, 'image', { required: true, max: 1024 })!;
        const type = field.string(body, 'type') ?? 'multi';
        if (type !== 'multi' && type !== 'unique') throw badRequest('type must be "multi" or "unique"');
        const group = field.string(body, 'name', { max: 50 }) ?? `clementine-${randomBytes(4).toString('hex')}`;
        if (!isDnsLabel(group)) throw badRequest('name must be a DNS-1123 label (a-z, 0-9, -; at most 50)');
        let count = field.integer(body, 'count', { min: 1, max: 64 });
        const ports = bindPorts(body.bind_ports);
        const labels = stringMap(body.labels, 'labels', 64);
        const cmd = command(body.command);
        const vars = env(body.env);
        if (type === 'unique') {
          const schedulable = (await dockerEngines(client)).filter((e) => !e.spec.unschedulable);
          if (count === undefined) {
            count = schedulable.filter((e) => engineStatus(e).status === 'up').length;
            if (count === 0) throw conflict('no engine is up to run a unique config on');
          } else if (count > schedulable.length) {
            throw conflict(`a unique config runs at most once per engine: ${schedulable.length} engines for ${count} containers`);
          }
        }
        count ??= 1;
        const instances = client.resource<Instance>(Resources.instances);
        const created: Instance[] = [];
        for (let i = 0; i < count; i++) {
          created.push(
            await instances.create({
              apiVersion: 'compute.stratus.dev/v1alpha1',
              kind: 'Instance',
              metadata: { generateName: `${group}-`, namespace: caller.namespace, labels: { [LEGACY_API_LABEL]: 'clementine', [GROUP_LABEL]: group } },
              spec: {
                provider: 'docker',
                image,
                ...(ports.length ? { ports } : {}),
                ...(cmd ? { command: cmd } : {}),
                ...(vars ? { env: vars } : {}),
                ...(labels ? { docker: { labels } } : {}),
                placement: { group, ...(type === 'unique' ? { unique: true } : {}) },
              },
            }),
          );
        }
        const byName = new Map<string, ComputeNode>();
        return { status: 201, json: { ok: true, data: { name: group, type, image, count, containers: created.map((c) => containerView(c, byName)) } } };
      },
    },
  ],
};
