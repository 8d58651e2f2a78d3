/** PUT of one object or its status: replace it. */
import { methodNotAllowed } from '../errors.js';
import { decodeObjectBody, drain, readBody } from './body.js';
import { negotiate } from './negotiate.js';
import { writeOptions } from './params.js';
import { respondObject, type ResourceRequest } from './request.js';

export async function serveUpdate(rq: ResourceRequest): Promise<void> {
  const { ex, path } = rq;
  if (!path.name) {
    await drain(ex.req);
    throw methodNotAllowed();
  }
  const out = negotiate(ex.req.headers.accept, false);
  const body = decodeObjectBody(ex.req, await readBody(ex.req));
  respondObject(rq, 200, await rq.deps.registry.update(rq.target, path.name, body, writeOptions(ex), path.subresource), out);
}
