/**
 * Routing a request that addresses a resource: find what the path names (404 otherwise),
 * check scope and subresource, validate the parameters every verb shares, then hand over to
 * the verb's file. Resolves true when the request became a long-running watch.
 */
import { ApiError, methodNotAllowed } from '../errors.js';
import type { Target } from '../registry.js';
import { drain } from './body.js';
import { serveCreate } from './create.js';
import { serveDelete } from './delete.js';
import type { HttpDeps } from './deps.js';
import type { Exchange } from './exchange.js';
import { serveGet } from './get.js';
import { serveList } from './list.js';
import { boolParam, commonParams, type CommonParams } from './params.js';
import { servePatch } from './patch.js';
import type { ResourcePath } from './paths.js';
import type { ResourceRequest } from './request.js';
import { serveScale } from './scale.js';
import { serveUpdate } from './update.js';
import { serveWatchRequest } from './watch.js';

/** The verb a request is counted and authorized as (kube's RequestInfo.Verb). */
export function requestVerb(method: string, path: ResourcePath, ex: Exchange): string {
  switch (method) {
    case 'GET':
    case 'HEAD':
      return path.name ? 'get' : boolParam(ex, 'watch') ? 'watch' : 'list';
    case 'DELETE':
      return path.name ? 'delete' : 'deletecollection';
    case 'POST':
      return 'create';
    case 'PUT':
      return 'update';
    case 'PATCH':
      return 'patch';
    default:
      return method.toLowerCase();
  }
}

export async function serveResource(deps: HttpDeps, ex: Exchange, path: ResourcePath, method: string): Promise<boolean> {
  ex.labels.group = path.group;
  ex.labels.version = path.version;
  ex.labels.resource = path.plural ?? '';
  ex.labels.subresource = path.subresource ?? '';
  const verb = requestVerb(method, path, ex);
  ex.labels.verb = verb;
  const found = deps.catalog.lookup(path.group, path.version, path.plural ?? '');
  if (!found) {
    await drain(ex.req);
    throw new ApiError(404, 'NotFound', `the server could not find the requested resource (${method.toLowerCase()} ${path.plural}${path.group ? `.${path.group}` : ''})`);
  }
  const { resource, version } = found;
  ex.labels.scope = path.name ? (resource.namespaced ? 'namespace' : 'cluster') : path.namespace ? 'namespace' : 'cluster';
  if (!resource.namespaced && path.namespace !== undefined) {
    await drain(ex.req);
    throw new ApiError(404, 'NotFound', `the server could not find the requested resource (${resource.plural} is not namespaced)`);
  }
  const servedSubresource = path.subresource === 'status' ? resource.statusSubresource : path.subresource === 'scale' ? resource.scale !== undefined : false;
  if (path.subresource !== undefined && (!servedSubresource || !path.name)) {
    await drain(ex.req);
    throw new ApiError(404, 'NotFound', `the server could not find the requested resource (subresource ${path.subresource})`);
  }
  let common: CommonParams;
  try {
    common = commonParams(ex);
  } catch (err) {
    await drain(ex.req);
    throw err;
  }
  const target: Target = { resource, version, ...(path.namespace !== undefined ? { namespace: path.namespace } : {}) };
  const rq: ResourceRequest = { deps, ex, path, resource, version, target, common };
  if (path.subresource === 'scale') {
    await serveScale(rq, verb);
    return false;
  }
  switch (verb) {
    case 'get':
      await serveGet(rq, path.name ?? '');
      return false;
    case 'watch':
      await serveWatchRequest(rq);
      return true;
    case 'list':
      await serveList(rq);
      return false;
    case 'create':
      await serveCreate(rq);
      return false;
    case 'update':
      await serveUpdate(rq);
      return false;
    case 'patch':
      await servePatch(rq);
      return false;
    case 'delete':
    case 'deletecollection':
      await serveDelete(rq);
      return false;
    default:
      await drain(ex.req);
      throw methodNotAllowed();
  }
}
