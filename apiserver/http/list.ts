/** GET of a collection: a List, a Table or a PartialObjectMetadataList. */
import { notAcceptable } from '../errors.js';
import { groupVersion } from '../resources.js';
import { toTable } from '../table.js';
import { negotiate, tableContentType } from './negotiate.js';
import { includeObject, listOptions } from './params.js';
import type { ResourceRequest } from './request.js';

export async function serveList(rq: ResourceRequest): Promise<void> {
  const { ex, resource, version } = rq;
  const accept = ex.req.headers.accept;
  const out = negotiate(accept, false);
  if (out.kind === 'discovery') throw notAcceptable(accept ?? '');
  const list = await rq.deps.registry.list(rq.target, listOptions(ex));
  const listMeta = {
    resourceVersion: list.resourceVersion,
    ...(list.continue ? { continue: list.continue } : {}),
    ...(list.remainingItemCount !== undefined ? { remainingItemCount: list.remainingItemCount } : {}),
  };
  if (out.kind === 'table') {
    const table = toTable(version.columns, list.items, {
      includeObject: includeObject(ex),
      listMeta: { resourceVersion: list.resourceVersion, ...(list.continue ? { continue: list.continue } : {}) },
    });
    ex.send(200, table, out, tableContentType(out.version));
  } else if (out.kind === 'partial') {
    ex.send(200, {
      kind: 'PartialObjectMetadataList',
      apiVersion: 'meta.k8s.io/v1',
      metadata: listMeta,
      items: list.items.map((i) => ({ kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: i.metadata })),
    });
  } else {
    ex.send(200, { kind: resource.listKind, apiVersion: groupVersion(resource.group, version.name), metadata: listMeta, items: list.items }, out);
  }
}
