/**
 * GET (and HEAD) of one object by name, from the watch cache when it is current enough for
 * the request's `resourceVersion` (JSON straight from the cached encoding), else from the
 * store.
 */
import { notAcceptable, notFound } from '../errors.js';
import { negotiate } from './negotiate.js';
import { respondObject, type ResourceRequest } from './request.js';

export async function serveGet(rq: ResourceRequest, name: string): Promise<void> {
  const { ex, deps, target } = rq;
  const accept = ex.req.headers.accept;
  const out = negotiate(accept, false);
  if (out.kind === 'discovery') throw notAcceptable(accept ?? '');
  const cached = await deps.reads.get(target, name, ex.query('resourceVersion'));
  if (cached === null) throw notFound(rq.resource, name);
  if (cached === undefined) {
    respondObject(rq, 200, await deps.registry.get(target, name), out);
    return;
  }
  if (out.kind === 'json') ex.sendBody(200, deps.reads.json(target, cached), 'application/json');
  else respondObject(rq, 200, deps.reads.present(target, cached), out);
}
