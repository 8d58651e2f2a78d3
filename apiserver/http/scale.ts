/**
 * The `/scale` subresource of a custom resource whose CRD declares one
 * (`subresources.scale`), as kube-apiserver serves it: GET answers an `autoscaling/v1 Scale`
 * made from the object (`spec.replicas` from `specReplicasPath`, `status.replicas` from
 * `statusReplicasPath`, `status.selector` from `labelSelectorPath`); PUT and PATCH (merge,
 * strategic — Scale is a built-in type — and JSON patch) change only the replicas at
 * `specReplicasPath`. A `metadata.resourceVersion` the client sends is a precondition (409
 * when stale, what `kubectl scale --resource-version` relies on); without one the write is
 * re-applied to the fresh object on a concurrent write. The object's own schema then
 * validates the result, so its bounds (`maximum`) answer 422 as on any write.
 */
import jsonpatch from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';
import { ApiError, badRequest, invalid, methodNotAllowed, unsupportedMediaType } from '../errors.js';
import { clone, getPath, isPlainObject, mergePatch } from '../objects.js';
import type { KubeObject } from '../resources.js';
import type { ScaleSubresource } from '../schema/types.js';
import { decodeObjectBody, drain, mediaTypeOf, parseJson, patchTypes, readBody } from './body.js';
import { negotiate } from './negotiate.js';
import { writeOptions } from './params.js';
import type { ResourceRequest } from './request.js';

interface Scale {
  kind: 'Scale';
  apiVersion: 'autoscaling/v1';
  metadata: Record<string, unknown>;
  spec: { replicas?: number };
  status: { replicas: number; selector?: string };
}

/** The Scale of `obj` under the CRD's `scale` paths. */
export function scaleOf(obj: KubeObject, paths: ScaleSubresource): Scale {
  const m = (obj.metadata ?? {}) as Record<string, unknown>;
  const metadata: Record<string, unknown> = {};
  for (const k of ['name', 'namespace', 'uid', 'resourceVersion', 'creationTimestamp']) if (m[k] !== undefined) metadata[k] = m[k];
  const specReplicas = getPath(obj, paths.specReplicasPath);
  const statusReplicas = getPath(obj, paths.statusReplicasPath);
  const selector = paths.labelSelectorPath ? getPath(obj, paths.labelSelectorPath) : undefined;
  return {
    kind: 'Scale',
    apiVersion: 'autoscaling/v1',
    metadata,
    spec: typeof specReplicas === 'number' ? { replicas: specReplicas } : {},
    status: { replicas: typeof statusReplicas === 'number' ? statusReplicas : 0, ...(typeof selector === 'string' ? { selector } : {}) },
  };
}

/** Writes `replicas` at a `.spec.a.b` path of `obj` (creating the objects on the way). */
function setPath(obj: KubeObject, path: string, value: number): void {
  const parts = path.replace(/^\./, '').split('.');
  const last = parts.pop() ?? '';
  let cur = obj as Record<string, unknown>;
  for (const p of parts) {
    if (!isPlainObject(cur[p])) cur[p] = {};
    cur = cur[p] as Record<string, unknown>;
  }
  cur[last] = value;
}

export async function serveScale(rq: ResourceRequest, verb: string): Promise<void> {
  const { ex, path, resource, deps, target } = rq;
  const paths = resource.scale;
  const name = path.name ?? '';
  if (!paths) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource (subresource scale)');
  const out = negotiate(ex.req.headers.accept, false);
  const respond = (obj: KubeObject): void => ex.send(200, scaleOf(obj, paths), out.kind === 'yaml' ? out : { kind: 'json' });
  if (verb === 'get') {
    respond(await deps.registry.get(target, name));
    return;
  }
  if (verb !== 'update' && verb !== 'patch') {
    await drain(ex.req);
    throw methodNotAllowed();
  }
  let change: (current: Scale) => unknown;
  let clientPrecondition: boolean;
  if (verb === 'update') {
    const body = decodeObjectBody(ex.req, await readBody(ex.req));
    change = () => body;
    clientPrecondition = hasResourceVersion(body);
  } else {
    const type = patchTypes[mediaTypeOf(ex.req)];
    if (!type || type === 'apply') {
      await drain(ex.req);
      throw unsupportedMediaType(mediaTypeOf(ex.req));
    }
    const body = parseJson(await readBody(ex.req));
    if (type === 'json') {
      if (!Array.isArray(body)) throw badRequest('json patch must be an array of operations');
      const err = jsonpatch.validate(body as Operation[]);
      if (err) throw badRequest(`invalid json patch: ${err.message}`);
      clientPrecondition = (body as Operation[]).some((op) => op.path === '/metadata/resourceVersion' && op.op !== 'remove');
      change = (current) => {
        try {
          return jsonpatch.applyPatch(clone(current), clone(body as Operation[]), true, false).newDocument;
        } catch (e) {
          throw new ApiError(422, 'Invalid', `the server rejected our request due to an error in our request: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
        }
      };
    } else {
      if (!isPlainObject(body)) throw badRequest('a merge patch must be a JSON object');
      clientPrecondition = hasResourceVersion(body);
      change = (current) => mergePatch(current, body);
    }
  }
  const written = await deps.registry.guaranteedUpdate(
    target,
    name,
    writeOptions(ex),
    'scale',
    (stored) => {
      const current = deps.registry.decode(target, stored);
      const wanted = change(scaleOf(current, paths));
      const replicas = isPlainObject(wanted) && isPlainObject(wanted.spec) ? wanted.spec.replicas : undefined;
      if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
        throw invalid({ group: 'autoscaling', kind: 'Scale', plural: 'scale' }, name, [
          { reason: 'FieldValueInvalid', field: 'spec.replicas', message: `Invalid value: ${JSON.stringify(replicas ?? null)}: must be a non-negative integer` },
        ]);
      }
      const wm = isPlainObject(wanted) && isPlainObject(wanted.metadata) ? wanted.metadata : {};
      if (wm.name !== undefined && wm.name !== name) throw badRequest(`the name of the object (${String(wm.name)}) does not match the name on the URL (${name})`);
      const next = clone(stored);
      setPath(next, paths.specReplicasPath, replicas);
      const m = (next.metadata ?? {}) as Record<string, unknown>;
      if (clientPrecondition) m.resourceVersion = wm.resourceVersion;
      else delete m.resourceVersion;
      next.metadata = m;
      return next;
    },
    false,
    clientPrecondition,
  );
  respond(written);
}

function hasResourceVersion(body: unknown): boolean {
  return isPlainObject(body) && isPlainObject(body.metadata) && body.metadata.resourceVersion !== undefined && body.metadata.resourceVersion !== null && body.metadata.resourceVersion !== '';
}
