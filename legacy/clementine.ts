/**
 * clementine: a cluster of Docker engines (seeds/002). Every answer is `{"ok": true, "data":
 * ...}`; errors are `{"ok": false, "data": null, "error": "<message>"}` with a 4xx/5xx status.
 * Shapes are in `clementine-shapes.ts`.
 *
 *   POST   /apiv1/engine {id, addr, cpus, memory, labels}         201 → engine
 *   GET    /apiv1/engines                                          200 → [engine]
 *   GET    /apiv1/engine/<id>/status                               200 → {engine..., status, message, disabled, ...}
 *   POST   /apiv1/engine/<id>/status {"disabled": bool}            200 → the same
 *   GET    /apiv1/engine/<id>/containers                           200 → [container]
 *   DELETE /apiv1/engine/<id>/container/<cid>                      200 → "Container container ... destroyed ..."
 *   POST   /apiv1/container <image config>                         201 → placed container
 *   GET    /apiv1/containers                                       200 → [container]
 *   POST   /apiv1/image/<id> <image config>                        201 (200 replaced) → {id, image}
 *   GET    /apiv1/images, GET|DELETE /apiv1/image/<id>             200
 *   POST   /apiv1/image/<id>/run                                   201 → placed container
 *   POST   /apiv1/image/<id>/scale {"count": N}                    200 → [container]
 *
 * An engine is a ComputeNode (`provider: docker`, named by `id`); its liveness is the node's
 * `Ready` condition, which the ComputeNode controller keeps current, so listing never calls an
 * engine and an engine that is down is still listed (its status route says why). A container
 * is an Instance (`provider: docker`). `POST /apiv1/container` creates one Instance in a
 * placement group (`unique`: at most one per engine) selecting the engines that carry every
 * label of the config, then waits (up to `PLACEMENT_WAIT_MS`) until the scheduler placed it and
 * the engine created the container, because clementine answered with the running container.
 * A config no engine can take is removed again and answered 409.
 *
 * Saved image configs are ConfigMaps `clementine-image-<id>` in the caller's namespace (key
 * `config.json`): a config is data, not something a controller reconciles, so a new kind
 * would add nothing. The containers of a saved config carry the label
 * `legacy.stratus.dev/image=<id>`; `scale` maps onto the InstanceGroup `clementine-<id>`
 * (template from the config, replicas from the request), whose controller creates and deletes
 * the Instances, so `kubectl get ig` shows it (see `scaleImage`).
 */
import { createHash } from 'node:crypto';
import type { ComputeNode, Instance, InstanceGroup } from '../crds/types.js';
import { CoreResources, isAlreadyExists, isConflict, type KubeClient, type KubeObject } from '../runtime/client.js';
import { Resources } from '../controllers/resources.js';
import { isReady } from '../controllers/instancegroup.js';
import { badRequest, conflict, field, notFound, parseJsonObject, type Dialect, type JsonObject, type LegacyResponse } from './http.js';
import { isDnsLabel, LEGACY_API_LABEL, objectName } from './names.js';
import type { Caller, LegacyApi } from './api.js';
import {
  CONFIG_ANNOTATION,
  containerPorts,
  containerView,
  destroyedMessage,
  dockerId,
  echoedConfig,
  engineLabels,
  engineRequest,
  engineView,
  ENGINE_ANNOTATION,
  imageConfig,
  instanceSpec,
  nodeOf,
  type ImageConfig,
  type PlacedContainer,
} from './clementine-shapes.js';

export const clementineDialect: Dialect = {
  name: 'clementine',
  errorBody: (err) => ({ ok: false, data: null, error: err.status === 401 ? 'unauthorized' : err.message }),
  errorHeaders: (err): Record<string, string> => (err.status === 401 ? { 'www-authenticate': 'Token' } : {}),
};

export const TLS_SECRET = 'clementine-tls';
export const GROUP_LABEL = 'legacy.stratus.dev/group';
export const IMAGE_LABEL = 'legacy.stratus.dev/image';
const IMAGE_PREFIX = 'clementine-image-';
/** How long a container POST waits for the container to exist before answering. */
export const PLACEMENT_WAIT_MS = 60_000;

interface SecretObject extends KubeObject {
  type?: string;
  data?: Record<string, string>;
}
interface ConfigMapObject extends KubeObject {
  data?: Record<string, string>;
}

export type EngineStatus = 'up' | 'down' | 'unknown';

export function engineStatus(node: ComputeNode): { status: EngineStatus; message: string } {
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
  if (!ready || ready.status === 'Unknown') return { status: 'unknown', message: ready?.message ?? 'not probed yet' };
  return ready.status === 'True' ? { status: 'up', message: '' } : { status: 'down', message: `${ready.reason ?? 'NotReady'}: ${ready.message ?? ''}`.trim() };
}

async function dockerEngines(client: KubeClient): Promise<ComputeNode[]> {
  const nodes = await client.resource<ComputeNode>(Resources.computeNodes).list();
  return nodes.filter((n) => n.spec?.provider === 'docker').sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
}

async function dockerInstances(client: KubeClient, namespace: string): Promise<Instance[]> {
  const all = await client.resource<Instance>(Resources.instances).list(namespace);
  return all
    .filter((i) => i.spec?.provider === 'docker')
    .sort((a, b) => (a.metadata?.creationTimestamp ?? '').localeCompare(b.metadata?.creationTimestamp ?? '') || (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
}

async function engine(client: KubeClient, id: string): Promise<ComputeNode> {
  if (!isDnsLabel(id)) throw notFound('no such engine');
  const node = await client.resource<ComputeNode>(Resources.computeNodes).get(undefined, id);
  if (!node || node.spec?.provider !== 'docker') throw notFound('no such engine');
  return node;
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

const ok = (data: unknown, status = 200): LegacyResponse => ({ status, json: { ok: true, data } });

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Creates `count` Instances of `config` and waits until each is placed and its container
 * exists. When the scheduler still cannot place one at the deadline, every Instance this call
 * made is deleted and the answer is 409 with the scheduler's reason.
 */
async function schedule(client: KubeClient, caller: Caller, config: ImageConfig, count: number, extraLabels: Record<string, string> = {}): Promise<Instance[]> {
  const engines = (await dockerEngines(client)).filter((e) => !e.spec.unschedulable);
  const wanted = engineLabels(config.labels ?? []);
  const eligible = engines.filter((e) => Object.keys(wanted).every((k) => e.metadata?.labels?.[k] !== undefined));
  if (eligible.length === 0) throw conflict(config.labels?.length ? `no engine has the labels ${config.labels.join(', ')}` : 'no engine to run the container on');
  // One placement group per image (per saved config): clementine's unique scheduler kept two
  // containers of one image off the same engine.
  const group = extraLabels[IMAGE_LABEL] ? `image-${extraLabels[IMAGE_LABEL]}` : objectName(config.name, 'clementine-');
  if (config.type === 'unique') {
    const placed = (await dockerInstances(client, caller.namespace)).filter((i) => i.spec.placement?.group === group && !i.metadata?.deletionTimestamp).length;
    if (placed + count > eligible.length) throw conflict(`a unique config runs at most once per engine: ${eligible.length} engines for ${placed + count} containers`);
  }
  const instances = client.resource<Instance>(Resources.instances);
  const created: Instance[] = [];
  for (let i = 0; i < count; i++) {
    created.push(
      await instances.create({
        apiVersion: 'compute.stratus.dev/v1alpha1',
        kind: 'Instance',
        metadata: {
          generateName: 'clementine-',
          namespace: caller.namespace,
          labels: { [LEGACY_API_LABEL]: 'clementine', [GROUP_LABEL]: group, ...extraLabels },
          annotations: { [CONFIG_ANNOTATION]: JSON.stringify(config) },
        },
        spec: instanceSpec(config, group),
      }),
    );
  }
  const deadline = Date.now() + PLACEMENT_WAIT_MS;
  const current = [...created];
  for (;;) {
    for (let i = 0; i < current.length; i++) {
      if (dockerId(current[i]!)) continue;
      current[i] = (await instances.get(caller.namespace, current[i]!.metadata!.name!)) ?? current[i]!;
    }
    if (current.every((i) => dockerId(i))) return current;
    if (Date.now() >= deadline) break;
    await sleep(250);
  }
  const unplaced = current.find((i) => !nodeOf(i));
  if (!unplaced) return current; // placed; the engine is still creating: answer what is known
  const why = unplaced.status?.conditions?.find((c) => c.type === 'Scheduled' && c.status === 'False')?.message ?? 'not placed in time';
  for (const i of created) await instances.delete(caller.namespace, i.metadata!.name!).catch(() => undefined);
  throw conflict(`no engine can run ${config.name}: ${why}`);
}

async function placedView(client: KubeClient, inst: Instance, echoed: JsonObject): Promise<PlacedContainer> {
  const node = nodeOf(inst);
  const engineNode = node ? await client.resource<ComputeNode>(Resources.computeNodes).get(undefined, node) : undefined;
  return { id: dockerId(inst), image: echoed, engine: engineNode ? engineView(engineNode) : null, ports: containerPorts(inst, engineNode) };
}

async function savedConfig(client: KubeClient, namespace: string, id: string): Promise<{ config: ImageConfig; body: JsonObject }> {
  if (!isDnsLabel(id) || id.length > 63 - IMAGE_PREFIX.length) throw notFound('no such image');
  const cm = await client.resource<ConfigMapObject>(CoreResources.configMaps).get(namespace, `${IMAGE_PREFIX}${id}`);
  if (!cm?.data?.['config.json']) throw notFound('no such image');
  const body = JSON.parse(cm.data['config.json']) as JsonObject;
  return { config: imageConfig(body), body };
}

function imageId(id: string): string {
  if (!isDnsLabel(id) || id.length > 63 - IMAGE_PREFIX.length) throw badRequest(`image id must be a DNS-1123 label of at most ${63 - IMAGE_PREFIX.length} characters`);
  return id;
}

export const clementineApi: LegacyApi = {
  managesNodes: true,
  dialect: clementineDialect,
  prefixes: ['/apiv1/'],
  routes: [
    {
      method: 'POST',
      pattern: '/apiv1/engine',
      auth: 'token-unless-insecure',
      async handler(r, caller, client) {
        const body = parseJsonObject(await r.body());
        const req = engineRequest(body, (host, p) => objectName(`engine-${host}-${p}`));
        const tls = tlsFromBody(body);
        const engines = await dockerEngines(client);
        if (engines.some((e) => e.spec.docker?.address === req.address)) throw conflict(`an engine at ${req.addr} exists`);
        if (tls) await storeTls(client, caller.namespace, tls);
        const haveSecret = tls !== undefined || (await client.resource<SecretObject>(CoreResources.secrets).get(caller.namespace, TLS_SECRET)) !== undefined;
        const useTls = req.tls || (req.tlsFromSecret && haveSecret);
        let node: ComputeNode;
        try {
          node = await client.resource<ComputeNode>(Resources.computeNodes).create({
            apiVersion: 'compute.stratus.dev/v1alpha1',
            kind: 'ComputeNode',
            metadata: {
              name: req.id,
              labels: { [LEGACY_API_LABEL]: 'clementine', ...engineLabels(req.labels) },
              annotations: { [ENGINE_ANNOTATION]: JSON.stringify({ addr: req.addr, labels: req.labels }) },
            },
            spec: {
              provider: 'docker',
              // clementine's engines published on every address, as Docker does by default.
              docker: { address: req.address, hostIP: '0.0.0.0', ...(useTls ? { tlsSecretRef: { name: TLS_SECRET, namespace: caller.namespace } } : {}) },
              ...(req.cpus !== undefined || req.memory !== undefined
                ? { capacityOverride: { ...(req.cpus !== undefined ? { cpus: req.cpus } : {}), ...(req.memory !== undefined ? { memoryMiB: req.memory } : {}) } }
                : {}),
            },
          });
        } catch (err) {
          if (isAlreadyExists(err)) throw conflict(`engine ${req.id} exists`);
          throw err;
        }
        return ok(engineView(node), 201);
      },
    },
    {
      method: 'GET',
      pattern: '/apiv1/engines',
      auth: 'token-unless-insecure',
      async handler(_r, _caller, client) {
        return ok((await dockerEngines(client)).map(engineView));
      },
    },
    {
      method: 'GET',
      pattern: '/apiv1/engine/:id/status',
      auth: 'token-unless-insecure',
      async handler(r, caller, client) {
        const node = await engine(client, r.params.id!);
        return ok(await statusView(client, caller, node));
      },
    },
    {
      method: 'POST',
      pattern: '/apiv1/engine/:id/status',
      auth: 'token-unless-insecure',
      async handler(r, caller, client) {
        const node = await engine(client, r.params.id!);
        const body = parseJsonObject(await r.body());
        const disabled = field.boolean(body, 'disabled');
        if (disabled === undefined) throw badRequest('disabled is required (true: no new containers on the engine)');
        const updated = await client.resource<ComputeNode>(Resources.computeNodes).mergePatch(undefined, node.metadata!.name!, { spec: { unschedulable: disabled } });
        return ok(await statusView(client, caller, updated));
      },
    },
    {
      method: 'GET',
      pattern: '/apiv1/containers',
      auth: 'token-unless-insecure',
      async handler(_r, caller, client) {
        const [engines, instances] = await Promise.all([dockerEngines(client), dockerInstances(client, caller.namespace)]);
        const byName = new Map(engines.map((e) => [e.metadata!.name!, e]));
        return ok(instances.map((i) => containerView(i, byName)));
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
        return ok(instances.map((i) => containerView(i, byName)));
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
          const id = dockerId(i);
          return i.metadata?.name === cid || i.metadata?.uid === cid || (cid.length >= 12 && /^[0-9a-f]+$/.test(cid) && id.startsWith(cid));
        });
        if (!inst) throw notFound('no such container on this engine');
        await client.resource<Instance>(Resources.instances).delete(caller.namespace, inst.metadata!.name!, { preconditions: { uid: inst.metadata!.uid! } });
        const view = engineView(node);
        return ok(destroyedMessage(containerView(inst, byName), view.id, view.addr));
      },
    },
    {
      method: 'POST',
      pattern: '/apiv1/container',
      auth: 'token-unless-insecure',
      async handler(r, caller, client) {
        const body = parseJsonObject(await r.body());
        const config = imageConfig(body);
        const count = field.integer(body, 'count', { min: 1, max: 64 }) ?? 1;
        const placed = await schedule(client, caller, config, count);
        const views = await Promise.all(placed.map((i) => placedView(client, i, echoedConfig(body, config))));
        return ok(body.count === undefined ? views[0] : views, 201);
      },
    },
    {
      method: 'GET',
      pattern: '/apiv1/images',
      auth: 'token-unless-insecure',
      async handler(_r, caller, client) {
        const cms = await client.resource<ConfigMapObject>(CoreResources.configMaps).list(caller.namespace);
        const saved = cms
          .filter((c) => c.metadata?.name?.startsWith(IMAGE_PREFIX) && c.metadata.labels?.[LEGACY_API_LABEL] === 'clementine' && c.data?.['config.json'])
          .sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''))
          .map((c) => ({ id: c.metadata!.name!.slice(IMAGE_PREFIX.length), image: JSON.parse(c.data!['config.json']!) as unknown }));
        return ok(saved);
      },
    },
    {
      method: 'POST',
      pattern: '/apiv1/image/:id',
      auth: 'token-unless-insecure',
      async handler(r, caller, client) {
        const id = imageId(r.params.id!);
        const body = parseJsonObject(await r.body());
        const config = imageConfig(body);
        const saved = echoedConfig(body, config);
        const cms = client.resource<ConfigMapObject>(CoreResources.configMaps);
        const obj: ConfigMapObject = {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: `${IMAGE_PREFIX}${id}`, namespace: caller.namespace, labels: { [LEGACY_API_LABEL]: 'clementine' } },
          data: { 'config.json': JSON.stringify(saved) },
        };
        try {
          await cms.create(obj);
          return ok({ id, image: saved }, 201);
        } catch (err) {
          if (!isAlreadyExists(err)) throw err;
          await cms.replace(obj);
          return ok({ id, image: saved });
        }
      },
    },
    {
      method: 'GET',
      pattern: '/apiv1/image/:id',
      auth: 'token-unless-insecure',
      async handler(r, caller, client) {
        const { body } = await savedConfig(client, caller.namespace, r.params.id!);
        return ok({ id: r.params.id!, image: body });
      },
    },
    {
      method: 'DELETE',
      pattern: '/apiv1/image/:id',
      auth: 'token-unless-insecure',
      async handler(r, caller, client) {
        await savedConfig(client, caller.namespace, r.params.id!);
        await client.resource<ConfigMapObject>(CoreResources.configMaps).delete(caller.namespace, `${IMAGE_PREFIX}${r.params.id!}`);
        // Its containers stay, as they did in clementine: the group goes, orphaning them.
        await client.resource<InstanceGroup>(Resources.instanceGroups).delete(caller.namespace, imageGroupName(r.params.id!), { propagationPolicy: 'Orphan' });
        return ok(`image ${r.params.id!} deleted`);
      },
    },
    {
      method: 'POST',
      pattern: '/apiv1/image/:id/run',
      auth: 'token-unless-insecure',
      async handler(r, caller, client) {
        const id = r.params.id!;
        const { config, body } = await savedConfig(client, caller.namespace, id);
        const [inst] = await schedule(client, caller, config, 1, { [IMAGE_LABEL]: id });
        return ok(await placedView(client, inst!, body), 201);
      },
    },
    {
      method: 'POST',
      pattern: '/apiv1/image/:id/scale',
      auth: 'token-unless-insecure',
      async handler(r, caller, client) {
        const id = r.params.id!;
        const { config } = await savedConfig(client, caller.namespace, id);
        const count = field.integer(parseJsonObject(await r.body()), 'count', { required: true, min: 0, max: 64 })!;
        return ok(await scaleImage(client, caller, id, config, count));
      },
    },
  ],
};

async function statusView(client: KubeClient, caller: Caller, node: ComputeNode): Promise<JsonObject> {
  const containers = (await dockerInstances(client, caller.namespace)).filter((i) => nodeOf(i) === node.metadata!.name).length;
  return {
    ...engineView(node),
    ...engineStatus(node),
    disabled: node.spec.unschedulable === true,
    version: node.status?.version ?? null,
    last_heartbeat: node.status?.lastHeartbeatTime ?? null,
    containers,
  };
}

/**
 * The InstanceGroup of saved config `id`: `clementine-<id>` (ids too long for the group's
 * Instance names, `GROUP-HASH-RANDOM` within 63 characters, are shortened with a hash).
 */
export function imageGroupName(id: string): string {
  const name = `clementine-${id}`;
  if (name.length <= 46) return name;
  return `clementine-${id.slice(0, 26).replace(/-+$/, '')}-${createHash('sha256').update(id).digest('hex').slice(0, 8)}`;
}

/** The InstanceGroup spec that runs `replicas` containers of saved config `id`. */
function imageGroupSpec(id: string, config: ImageConfig, replicas: number): InstanceGroup['spec'] {
  const placement = `image-${id}`;
  return {
    replicas,
    selector: { matchLabels: { [LEGACY_API_LABEL]: 'clementine', [IMAGE_LABEL]: id } },
    template: {
      metadata: {
        labels: { [LEGACY_API_LABEL]: 'clementine', [GROUP_LABEL]: placement, [IMAGE_LABEL]: id },
        annotations: { [CONFIG_ANNOTATION]: JSON.stringify(config) },
      },
      spec: instanceSpec(config, placement) as unknown as InstanceGroup['spec']['template']['spec'],
    },
  };
}

/** Creates the group of saved config `id`, or sets its template and replicas; answers the replicas it had (0 when new). */
async function applyImageGroup(client: KubeClient, namespace: string, id: string, config: ImageConfig, replicas: number): Promise<{ group: InstanceGroup; before: number }> {
  const groups = client.resource<InstanceGroup>(Resources.instanceGroups);
  const name = imageGroupName(id);
  for (let attempt = 0; ; attempt++) {
    const existing = await groups.get(namespace, name);
    try {
      if (!existing) {
        const group = await groups.create({
          apiVersion: 'compute.stratus.dev/v1alpha1',
          kind: 'InstanceGroup',
          metadata: { name, namespace, labels: { [LEGACY_API_LABEL]: 'clementine', [IMAGE_LABEL]: id } },
          spec: imageGroupSpec(id, config, replicas),
        });
        return { group, before: 0 };
      }
      const group = await groups.replace({ ...existing, spec: { ...existing.spec, ...imageGroupSpec(id, config, replicas) } });
      return { group, before: existing.spec.replicas ?? 1 };
    } catch (err) {
      if (attempt < 3 && (isConflict(err) || isAlreadyExists(err))) continue;
      throw err;
    }
  }
}

/**
 * `scale`: the containers of saved config `id` become `count`. They are the Instances of the
 * InstanceGroup `clementine-<id>` (its controller creates and deletes them) plus those started
 * by name (`run`), which count toward N: the group gets `count - run ones` replicas, and when
 * `count` is below the run ones the newest of those are deleted. Answers once the group holds
 * its replicas and each is placed with its container created (at most `PLACEMENT_WAIT_MS`);
 * when the scheduler cannot place them by then, the group's replicas go back and the answer is
 * 409 with the scheduler's reason.
 */
async function scaleImage(client: KubeClient, caller: Caller, id: string, config: ImageConfig, count: number): Promise<ContainerViewList> {
  const instances = client.resource<Instance>(Resources.instances);
  const groupName = imageGroupName(id);
  const ofImage = async (): Promise<Instance[]> => (await dockerInstances(client, caller.namespace)).filter((i) => i.metadata?.labels?.[IMAGE_LABEL] === id && !i.metadata.deletionTimestamp);
  const owned = (i: Instance, uid: string): boolean => (i.metadata?.ownerReferences ?? []).some((o) => o.controller && o.kind === 'InstanceGroup' && o.uid === uid);
  const existingGroup = await client.resource<InstanceGroup>(Resources.instanceGroups).get(caller.namespace, groupName);
  const byName = (await ofImage()).filter((i) => !existingGroup || !owned(i, existingGroup.metadata!.uid!));
  const replicas = Math.max(0, count - byName.length);
  if (replicas > 0) {
    const engines = (await dockerEngines(client)).filter((e) => !e.spec.unschedulable);
    const wanted = engineLabels(config.labels ?? []);
    const eligible = engines.filter((e) => Object.keys(wanted).every((k) => e.metadata?.labels?.[k] !== undefined));
    if (eligible.length === 0) throw conflict(config.labels?.length ? `no engine has the labels ${config.labels.join(', ')}` : 'no engine to run the container on');
    if (config.type === 'unique' && count > eligible.length) throw conflict(`a unique config runs at most once per engine: ${eligible.length} engines for ${count} containers`);
  }
  const { group, before } = await applyImageGroup(client, caller.namespace, id, config, replicas);
  // Scaling down removes the newest first.
  for (const i of byName.slice(count).reverse()) await instances.delete(caller.namespace, i.metadata!.name!).catch(() => undefined);
  const uid = group.metadata!.uid!;
  const deadline = Date.now() + PLACEMENT_WAIT_MS;
  let mine: Instance[] = [];
  for (;;) {
    mine = (await ofImage()).filter((i) => owned(i, uid));
    const settled = mine.length === replicas && mine.every((i) => dockerId(i) || failed(i));
    if (settled || Date.now() >= deadline) break;
    await sleep(250);
  }
  if (mine.length < replicas || mine.some((i) => !nodeOf(i))) {
    const unplaced = mine.find((i) => !nodeOf(i));
    const why = unplaced?.status?.conditions?.find((c) => c.type === 'Scheduled' && c.status === 'False')?.message ?? 'not placed in time';
    await applyImageGroup(client, caller.namespace, id, config, before).catch(() => undefined);
    throw conflict(`no engine can run ${config.name}: ${why}`);
  }
  const engines = new Map((await dockerEngines(client)).map((e) => [e.metadata!.name!, e]));
  return (await ofImage()).map((i) => containerView(i, engines));
}

type ContainerViewList = ReturnType<typeof containerView>[];

/** An Instance its provider refused or that failed: the scale answers it rather than wait. */
function failed(i: Instance): boolean {
  return i.status?.state === 'failed' || (!isReady(i) && i.status?.conditions?.some((c) => c.type === 'Synced' && c.status === 'False') === true);
}
