/** PATCH of one object or its status: merge, JSON, strategic merge or server-side apply. */
import { badRequest, methodNotAllowed, unsupportedMediaType } from '../errors.js';
import { drain, mediaTypeOf, parseJson, parseYamlBody, patchTypes, readBody } from './body.js';
import { negotiate } from './negotiate.js';
import { boolParam, writeOptions } from './params.js';
import { respondObject, type ResourceRequest } from './request.js';

export async function servePatch(rq: ResourceRequest): Promise<void> {
  const { ex, path } = rq;
  if (!path.name) {
    await drain(ex.req);
    throw methodNotAllowed();
  }
  const out = negotiate(ex.req.headers.accept, false);
  const type = patchTypes[mediaTypeOf(ex.req)];
  if (!type) {
    await drain(ex.req);
    throw unsupportedMediaType(mediaTypeOf(ex.req));
  }
  const buf = await readBody(ex.req);
  const body = type === 'apply' ? parseYamlBody(buf) : parseJson(buf);
  const force = boolParam(ex, 'force') ?? false;
  if (force && type !== 'apply') throw badRequest('force is only allowed with apply patches');
  respondObject(rq, 200, await rq.deps.registry.patch(rq.target, path.name, type, body, writeOptions(ex), path.subresource, force), out);
}
