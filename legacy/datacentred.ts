/**
 * The DataCentred staging compute agent: libvirt guests installed from the network and OVS
 * VLAN networks for them. Answers are status codes; bodies are empty except errors, which
 * are `{"error": "<message>"}`. A trailing slash on every path is optional.
 *
 *   GET  /host/<hostname>/                         204 the libvirt domain exists, 404 it does not
 *   POST /host/<hostname>/ {memory, disks, networks, install, location, console}
 *                                                  201 created, 409 exists, 400 malformed
 *   GET  /host/<hostname>/network/<networkname>/   204 / 404
 *   POST /host/<hostname>/network/<networkname>/ {bridge, vlan}   201 / 409 / 400
 *
 * A guest is an Instance (`provider: libvirt`, `memoryMiB` = memory MB, `disks` = one disk of
 * each size in GB, in order, on virtio-scsi so the guest sees sda, sdb, ...; `networks` =
 * the host's Networks of those names; `libvirt.console` = serial when console is true). With
 * `install: true` the installer at `location` (required then) is booted once — an ISO, or an
 * install tree such as the document's `…/dists/<release>/main/installer-amd64`; without it the
 * domain is defined blank and boots from its first disk. A network is a Network
 * (`spec.bridge`, `spec.vlan`) belonging to the host in its path: its object name is derived
 * from host and network name, so two hosts may each have `mgmt`. Names that are not DNS-1123
 * labels map through `objectName`.
 */
import type { ComputeNode, Instance, Network } from '../crds/types.js';
import { domainName } from '../providers/libvirt/domain-xml.js';
import type { KubeClient, KubeObject } from '../runtime/client.js';
import { isAlreadyExists } from '../runtime/client.js';
import { Resources } from '../controllers/resources.js';
import { badRequest, conflict, field, notFound, parseJsonObject, type Dialect, type JsonObject } from './http.js';
import { guestHostname, LEGACY_API_LABEL, LEGACY_NAME_ANNOTATION, objectName } from './names.js';
import type { LegacyApi } from './api.js';

export const dataCentredDialect: Dialect = {
  name: 'datacentred',
  errorBody: (err) => ({ error: err.status === 401 ? 'unauthorized' : err.message }),
  errorHeaders: (err): Record<string, string> => (err.status === 401 ? { 'www-authenticate': 'Token' } : {}),
};

export const HOST_ANNOTATION = 'legacy.stratus.dev/host';

const LEGACY_NAME = /^[A-Za-z0-9][-A-Za-z0-9_.]{0,252}$/;
const BRIDGE = /^[A-Za-z0-9][-A-Za-z0-9_.]{0,14}$/;

function legacyName(kind: string, name: string): string {
  if (!LEGACY_NAME.test(name)) throw notFound(`no such ${kind}`);
  return name;
}

/** The object when it exists and was made for this legacy name (not a different name hashing alike). */
async function lookup<T extends KubeObject>(client: KubeClient, ref: typeof Resources.instances | typeof Resources.networks, namespace: string, legacy: string): Promise<T | undefined> {
  const name = objectName(legacy);
  const obj = await client.resource<T>(ref).get(namespace, name);
  if (!obj) return undefined;
  const recorded = obj.metadata?.annotations?.[LEGACY_NAME_ANNOTATION];
  return recorded === undefined ? (name === legacy ? obj : undefined) : recorded === legacy ? obj : undefined;
}

/** The Network of `net` on `host`, when it exists and was made for exactly that pair. */
async function lookupNetwork(client: KubeClient, namespace: string, host: string, net: string): Promise<Network | undefined> {
  const obj = await client.resource<Network>(Resources.networks).get(namespace, networkObjectName(host, net));
  const a = obj?.metadata?.annotations;
  return a?.[LEGACY_NAME_ANNOTATION] === net && a[HOST_ANNOTATION] === host ? obj : undefined;
}

async function libvirtNodes(client: KubeClient): Promise<ComputeNode[]> {
  return (await client.resource<ComputeNode>(Resources.computeNodes).list()).filter((n) => n.spec?.provider === 'libvirt');
}

/** When the Instance controller last changed its view of the machine (its conditions' transitions). */
function lastObserved(inst: Instance): number {
  const times = (inst.status?.conditions ?? []).filter((c) => c.type === 'Synced' || c.type === 'Ready').map((c) => Date.parse(c.lastTransitionTime ?? ''));
  return Math.max(0, ...times.filter(Number.isFinite));
}

/**
 * Whether the libvirt domain of `host` exists, as the agent's probe answered. The nodes'
 * heartbeats list every domain they carry (`ComputeNode.status.machines`), so:
 * - a guest made through this API exists when its node lists its domain — or, while the
 *   node's list predates the Instance controller's latest observation of it, when that
 *   controller has seen it (`status.providerID`);
 * - a guest that is gone behind stratus's back is absent from the next heartbeat: 404 (until
 *   the Instance controller's drift repair defines it again);
 * - a domain named `host` that was defined outside stratus exists too (204), as it did for the
 *   agent, which probed the hypervisor.
 */
export async function domainExists(client: KubeClient, namespace: string, host: string): Promise<boolean> {
  const [inst, nodes] = await Promise.all([lookup<Instance>(client, Resources.instances, namespace, host), libvirtNodes(client)]);
  if (!inst) return nodes.some((n) => n.status?.machines?.includes(host));
  if (inst.metadata?.deletionTimestamp || !inst.status?.providerID) return false;
  const node = nodes.find((n) => n.metadata?.name === inst.spec.nodeName);
  if (!node) return false;
  const listed = node.status?.machines;
  if (!listed) return true; // a provider that does not list its machines: the Instance's word
  if (listed.includes(domainName({ namespace, name: inst.metadata!.name!, uid: inst.metadata!.uid! }))) return true;
  const heartbeat = Date.parse(node.status?.lastHeartbeatTime ?? '');
  return !Number.isFinite(heartbeat) || heartbeat <= lastObserved(inst);
}

/** How long a host POST waits for the controller to define the domain (the agent answered once it had). */
export const DEFINE_WAIT_MS = 30_000;

/** Waits until the Instance controller defined the domain or reported why it cannot, at most `DEFINE_WAIT_MS`. */
async function untilDefined(client: KubeClient, inst: Instance): Promise<void> {
  const deadline = Date.now() + DEFINE_WAIT_MS;
  const instances = client.resource<Instance>(Resources.instances);
  while (Date.now() < deadline) {
    const cur = await instances.get(inst.metadata!.namespace!, inst.metadata!.name!);
    if (!cur || cur.status?.providerID || cur.status?.conditions?.some((c) => c.type === 'Synced' && c.status === 'False')) return;
    await new Promise((r) => setTimeout(r, 200));
  }
}

function intList(o: JsonObject, key: string, min: number, max: number, maxItems: number): number[] {
  const v = o[key];
  if (v === undefined || v === null) throw badRequest(`${key} is required`);
  if (!Array.isArray(v)) throw badRequest(`${key} must be a list of integers`);
  if (v.length > maxItems) throw badRequest(`${key} has more than ${maxItems} entries`);
  return v.map((x, i) => {
    if (typeof x !== 'number' || !Number.isInteger(x)) throw badRequest(`${key}[${i}] must be an integer`);
    if (x < min || x > max) throw badRequest(`${key}[${i}] must be from ${min} to ${max}`);
    return x;
  });
}

function nameList(o: JsonObject, key: string, maxItems: number): string[] {
  const v = o[key];
  if (v === undefined || v === null) throw badRequest(`${key} is required`);
  if (!Array.isArray(v)) throw badRequest(`${key} must be a list of names`);
  if (v.length > maxItems) throw badRequest(`${key} has more than ${maxItems} entries`);
  const seen = new Set<string>();
  return v.map((x, i) => {
    if (typeof x !== 'string' || !LEGACY_NAME.test(x)) throw badRequest(`${key}[${i}] must be a network name`);
    if (seen.has(x)) throw badRequest(`${key}[${i}]: ${x} is listed twice`);
    seen.add(x);
    return x;
  });
}

/**
 * The Network object of network `net` on host `host`: networks belong to the host named in
 * their path (two hosts may each have `mgmt`), so the name is derived from both.
 */
export function networkObjectName(host: string, net: string): string {
  return objectName(`${host}/${net}`);
}

/**
 * Validates a host request body into an Instance spec (throws 400 naming the field). With
 * `install: true` the guest boots the installer at `location` (required then); without it the
 * domain is defined blank and boots from its first disk, as the agent did. `console: true`
 * gives the guest a serial console either way.
 */
export function hostSpec(body: JsonObject, host: string): Instance['spec'] {
  const memory = field.integer(body, 'memory', { required: true, min: 4, max: 4194304 })!;
  const disks = intList(body, 'disks', 1, 65536, 16);
  const networks = nameList(body, 'networks', 16);
  const install = field.boolean(body, 'install') ?? false;
  const location = field.string(body, 'location', { max: 2048 });
  const console = field.boolean(body, 'console');
  if (install && location === undefined) throw badRequest('location is required with install');
  if (install && !/^(https?|ftp|nfs):\/\/\S+$/.test(location!)) throw badRequest('location must be an http, https, ftp or nfs URL');
  if (!install && disks.length === 0) throw badRequest('disks: a guest that is not installed boots from its first disk, so it needs one');
  const libvirt = { ...(install ? { location: location! } : { boot: 'disk' as const }), console: console ? ('serial' as const) : ('none' as const) };
  return {
    provider: 'libvirt',
    memoryMiB: memory,
    disks: disks.map((sizeGiB, i) => ({ name: `disk${i}`, sizeGiB })),
    networks: networks.map((n) => ({ name: networkObjectName(host, n) })),
    libvirt,
  };
}

/** Validates a network request body. */
export function networkSpec(body: JsonObject): Network['spec'] {
  const bridge = field.string(body, 'bridge', { required: true })!;
  if (!BRIDGE.test(bridge)) throw badRequest('bridge must be an interface name (letters, digits, -_. ; at most 15)');
  const vlan = field.integer(body, 'vlan', { required: true, min: 1, max: 4094 })!;
  return { bridge, vlan };
}

export const dataCentredApi: LegacyApi = {
  managesNodes: true,
  dialect: dataCentredDialect,
  prefixes: ['/host/'],
  routes: [
    {
      method: 'GET',
      pattern: '/host/:hostname/',
      auth: 'token-unless-insecure',
      async handler(r, caller, client) {
        const host = legacyName('host', r.params.hostname!);
        if (!(await domainExists(client, caller.namespace, host))) throw notFound('no such host');
        return { status: 204 };
      },
    },
    {
      method: 'POST',
      pattern: '/host/:hostname/',
      auth: 'token-unless-insecure',
      async handler(r, caller, client) {
        const host = r.params.hostname!;
        if (!LEGACY_NAME.test(host)) throw badRequest('hostname must be letters, digits, -_. (at most 253)');
        const body = parseJsonObject(await r.body());
        const spec = hostSpec(body, host);
        const hostname = guestHostname(host);
        if (hostname) spec.hostname = hostname;
        const name = objectName(host);
        if (await client.resource<Instance>(Resources.instances).get(caller.namespace, name)) throw conflict('host exists');
        if ((await libvirtNodes(client)).some((n) => n.status?.machines?.includes(host))) throw conflict('a libvirt domain of that name exists');
        let created: Instance;
        try {
          created = await client.resource<Instance>(Resources.instances).create({
            apiVersion: 'compute.stratus.dev/v1alpha1',
            kind: 'Instance',
            metadata: { name, namespace: caller.namespace, labels: { [LEGACY_API_LABEL]: 'datacentred' }, annotations: { [LEGACY_NAME_ANNOTATION]: host } },
            spec,
          });
        } catch (err) {
          if (isAlreadyExists(err)) throw conflict('host exists');
          throw err;
        }
        await untilDefined(client, created);
        return { status: 201 };
      },
    },
    {
      method: 'GET',
      pattern: '/host/:hostname/network/:networkname/',
      auth: 'token-unless-insecure',
      async handler(r, caller, client) {
        const host = legacyName('host', r.params.hostname!);
        const net = legacyName('network', r.params.networkname!);
        if (!(await lookupNetwork(client, caller.namespace, host, net))) throw notFound('no such network');
        return { status: 204 };
      },
    },
    {
      method: 'POST',
      pattern: '/host/:hostname/network/:networkname/',
      auth: 'token-unless-insecure',
      async handler(r, caller, client) {
        const host = r.params.hostname!;
        const net = r.params.networkname!;
        if (!LEGACY_NAME.test(host)) throw badRequest('hostname must be letters, digits, -_. (at most 253)');
        if (!LEGACY_NAME.test(net)) throw badRequest('network name must be letters, digits, -_. (at most 253)');
        const spec = networkSpec(parseJsonObject(await r.body()));
        const name = networkObjectName(host, net);
        const networks = client.resource<Network>(Resources.networks);
        if (await networks.get(caller.namespace, name)) throw conflict('network exists');
        try {
          await networks.create({
            apiVersion: 'compute.stratus.dev/v1alpha1',
            kind: 'Network',
            metadata: {
              name,
              namespace: caller.namespace,
              labels: { [LEGACY_API_LABEL]: 'datacentred' },
              annotations: { [LEGACY_NAME_ANNOTATION]: net, [HOST_ANNOTATION]: host },
            },
            spec,
          });
        } catch (err) {
          if (isAlreadyExists(err)) throw conflict('network exists');
          throw err;
        }
        return { status: 201 };
      },
    },
  ],
};
