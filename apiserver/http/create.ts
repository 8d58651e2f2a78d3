/** POST to a collection: create one object. */
import { methodNotAllowed } from '../errors.js';
import { decodeObjectBody, drain, readBody } from './body.js';
import { negotiate } from './negotiate.js';
import { writeOptions } from './params.js';
import { respondObject, type ResourceRequest } from './request.js';

export async function serveCreate(rq: ResourceRequest): Promise<void> {
  const { ex, path, resource } = rq;
  if (path.name) {
    await drain(ex.req);
    throw methodNotAllowed();
  }
  if (resource.namespaced && path.namespace === undefined) {
    await drain(ex.req);
    throw methodNotAllowed('create requests must address a namespace for namespaced resources');
  }
  const out = negotiate(ex.req.headers.accept, false);
  const body = decodeObjectBody(ex.req, await readBody(ex.req));
  respondObject(rq, 201, await rq.deps.registry.create(rq.target, body, writeOptions(ex)), out);
}
