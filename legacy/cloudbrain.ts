/**
 * Cloud Brain: a uniform compute API over Instances.
 *
 *   POST   /instances {provider, image}  → 201, Location: http://<host>/instances/<id> (absolute),
 *                                          {id, provider, image, ip_address: null, state: "creating"}
 *   GET    /instances/<id>               → 200, the same shape, current state and IP
 *   DELETE /instances/<id>               → 200, the same shape with state "terminating"
 *
 * `id` is the Instance's `metadata.uid`. Errors are `{"error": "<message>"}`; any invalid
 * token is 401 `{"error": "unauthorized"}`.
 */
import type { IncomingMessage } from 'node:http';
import type { Instance } from '../crds/types.js';
import type { KubeClient } from '../runtime/client.js';
import { Resources } from '../controllers/resources.js';
import { MACHINE_PROVIDERS } from '../providers/index.js';
import { badRequest, field, notFound, parseJsonObject, type Dialect, type LegacyResponse } from './http.js';
import { LEGACY_API_LABEL } from './names.js';
import type { LegacyApi } from './api.js';

export const cloudBrainDialect: Dialect = {
  name: 'cloudbrain',
  errorBody: (err) => ({ error: err.status === 401 ? 'unauthorized' : err.message }),
  errorHeaders: (err): Record<string, string> => (err.status === 401 ? { 'www-authenticate': 'Token' } : {}),
};

/** The providers a client may ask for: those of this build that run machines. */
export const PROVIDERS: readonly string[] = MACHINE_PROVIDERS;
type Provider = Instance['spec']['provider'];

export type CloudBrainState = 'creating' | 'starting' | 'running' | 'terminating';

/**
 * Cloud Brain knows four states. A deleted object is `terminating`; one that has not started
 * yet, or whose provider failed (the controller keeps retrying), is `creating`; one that is
 * stopped or stopping while it should run is on its way back up: `starting`.
 */
export function cloudBrainState(inst: Instance): CloudBrainState {
  if (inst.metadata?.deletionTimestamp) return 'terminating';
  switch (inst.status?.state) {
    case 'running':
      return 'running';
    case 'starting':
    case 'stopping':
    case 'stopped':
      return 'starting';
    case 'terminating':
      return 'terminating';
    default:
      return 'creating';
  }
}

export interface CloudBrainInstance {
  id: string;
  provider: string;
  image: string | null;
  ip_address: string | null;
  state: CloudBrainState;
}

export function cloudBrainView(inst: Instance): CloudBrainInstance {
  return {
    id: inst.metadata?.uid ?? '',
    provider: inst.spec.provider,
    image: inst.spec.image ?? null,
    ip_address: inst.status?.ipAddress || null,
    state: cloudBrainState(inst),
  };
}

const HOST_HEADER = /^[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$/;

/**
 * The absolute URL of `path` as the client reached the proxy, as Cloud Brain's `Location`
 * is (`https://cloud-brain/instances/<id>`): scheme and host from `X-Forwarded-Proto` /
 * `X-Forwarded-Host` when a front proxy set them, else `http` and the `Host` header, else the
 * address the connection arrived on. Header values that are not a host[:port] are ignored,
 * so a client cannot inject another URL.
 */
export function absoluteUrl(req: IncomingMessage, path: string): string {
  const first = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v)?.split(',')[0]?.trim();
  const proto = first(req.headers['x-forwarded-proto']);
  const scheme = proto === 'https' || proto === 'http' ? proto : 'encrypted' in req.socket && req.socket.encrypted ? 'https' : 'http';
  const candidates = [first(req.headers['x-forwarded-host']), req.headers.host];
  let host = candidates.find((h): h is string => h !== undefined && HOST_HEADER.test(h));
  if (!host) {
    const addr = req.socket.localAddress ?? '127.0.0.1';
    host = `${addr.includes(':') ? `[${addr}]` : addr}:${req.socket.localPort ?? 80}`;
  }
  return `${scheme}://${host}${path}`;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

async function findByUid(client: KubeClient, namespace: string, id: string): Promise<Instance> {
  if (!UUID.test(id)) throw notFound('instance not found');
  const all = await client.resource<Instance>(Resources.instances).list(namespace);
  const inst = all.find((i) => i.metadata?.uid?.toLowerCase() === id.toLowerCase());
  if (!inst) throw notFound('instance not found');
  return inst;
}

export const cloudBrainApi: LegacyApi = {
  dialect: cloudBrainDialect,
  prefixes: ['/instances'],
  routes: [
    {
      method: 'POST',
      pattern: '/instances',
      auth: 'token',
      async handler(r, caller, client): Promise<LegacyResponse> {
        const body = parseJsonObject(await r.body());
        const provider = field.string(body, 'provider', { required: true })!;
        if (!(PROVIDERS as readonly string[]).includes(provider)) {
          throw badRequest(`unknown provider ${JSON.stringify(provider)} (one of ${PROVIDERS.join(', ')})`);
        }
        const image = field.string(body, 'image', { required: true, max: 1024 })!;
        const created = await client.resource<Instance>(Resources.instances).create({
          apiVersion: 'compute.stratus.dev/v1alpha1',
          kind: 'Instance',
          metadata: { generateName: 'cloudbrain-', namespace: caller.namespace, labels: { [LEGACY_API_LABEL]: 'cloudbrain' } },
          spec: { provider: provider as Provider, image },
        });
        const view = cloudBrainView(created);
        // Just created: whatever the controllers did meanwhile, the client sees the start.
        return { status: 201, headers: { location: absoluteUrl(r.req, `/instances/${view.id}`) }, json: { ...view, ip_address: null, state: 'creating' } };
      },
    },
    {
      method: 'GET',
      pattern: '/instances/:id',
      auth: 'token',
      async handler(r, caller, client) {
        const inst = await findByUid(client, caller.namespace, r.params.id!);
        return { status: 200, json: cloudBrainView(inst) };
      },
    },
    {
      method: 'DELETE',
      pattern: '/instances/:id',
      auth: 'token',
      async handler(r, caller, client) {
        const inst = await findByUid(client, caller.namespace, r.params.id!);
        const instances = client.resource<Instance>(Resources.instances);
        await instances.delete(caller.namespace, inst.metadata!.name!, { preconditions: { uid: inst.metadata!.uid! } });
        return { status: 200, json: { ...cloudBrainView(inst), state: 'terminating' } };
      },
    },
  ],
};
