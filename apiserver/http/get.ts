/** GET (and HEAD) of one object by name. */
import { notAcceptable } from '../errors.js';
import { negotiate } from './negotiate.js';
import { respondObject, type ResourceRequest } from './request.js';

export async function serveGet(rq: ResourceRequest, name: string): Promise<void> {
  const accept = rq.ex.req.headers.accept;
  const out = negotiate(accept, false);
  if (out.kind === 'discovery') throw notAcceptable(accept ?? '');
  respondObject(rq, 200, await rq.deps.registry.get(rq.target, name), out);
}
