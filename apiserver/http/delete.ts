/**
 * DELETE of one object (a `Status` when it is gone, the object when finalizers keep it) or of
 * a collection (deletecollection: the list of what was deleted). Options come from the query
 * and from a `DeleteOptions` body; the query wins where both say something.
 */
import { badRequest, methodNotAllowed, type Status } from '../errors.js';
import type { DeleteOptions } from '../registry.js';
import { groupVersion } from '../resources.js';
import { decodeDeleteOptions, decodeObjectBody, drain, readBody } from './body.js';
import type { Exchange } from './exchange.js';
import { negotiate } from './negotiate.js';
import { boolParam, intParam, listOptions, withUser } from './params.js';
import { respondObject, type ResourceRequest } from './request.js';

export async function serveDelete(rq: ResourceRequest): Promise<void> {
  const { ex, path, resource, version } = rq;
  if (path.subresource) {
    await drain(ex.req);
    throw methodNotAllowed();
  }
  const out = negotiate(ex.req.headers.accept, false);
  const buf = await readBody(ex.req);
  const opts = deleteOptions(ex, buf.length > 0 ? decodeObjectBody(ex.req, buf) : undefined);
  if (path.name) {
    const r = await rq.deps.registry.delete(rq.target, path.name, opts);
    if (!r.deleted) {
      respondObject(rq, 200, r.object, out);
      return;
    }
    const uid = r.object.metadata?.uid;
    const status: Status = {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Success',
      details: { name: path.name, group: resource.group, kind: resource.plural, ...(uid ? { uid } : {}) },
      code: 200,
    };
    ex.send(200, status);
    return;
  }
  const lo = listOptions(ex);
  const deleted = await rq.deps.registry.deleteCollection(rq.target, lo, opts);
  ex.send(200, { kind: resource.listKind, apiVersion: groupVersion(resource.group, version.name), metadata: {}, items: deleted }, out);
}

function deleteOptions(ex: Exchange, body: unknown): DeleteOptions {
  const src = decodeDeleteOptions(body);
  const o: DeleteOptions = {};
  const policy = ex.query('propagationPolicy') ?? src.propagationPolicy;
  if (policy !== undefined && policy !== '') {
    if (policy !== 'Foreground' && policy !== 'Background' && policy !== 'Orphan') {
      throw badRequest(`Invalid propagationPolicy "${policy}": must be Foreground, Background or Orphan`);
    }
    o.propagationPolicy = policy;
  }
  if ((boolParam(ex, 'orphanDependents') ?? src.orphanDependents) === true) o.orphanDependents = true;
  // Accepted and checked for shape; objects here have no grace period to wait for.
  intParam(ex, 'gracePeriodSeconds');
  if (src.preconditions) o.preconditions = src.preconditions;
  const dry = [...ex.url.searchParams.getAll('dryRun'), ...(src.dryRun ?? [])];
  for (const d of dry) if (d !== 'All') throw badRequest(`Invalid dryRun value: "${d}": valid values are "All"`);
  if (dry.length > 0) o.dryRun = true;
  return { ...o, ...withUser(ex) };
}
