/**
 * GET of a collection: a List, a Table or a PartialObjectMetadataList. Served from the watch
 * cache when it can be (see cachedreads.ts); a JSON list from the cache is streamed from the
 * objects' cached encodings, never built as one object nor one string.
 */
import { notAcceptable } from '../errors.js';
import type { ListResult } from '../registry.js';
import { groupVersion } from '../resources.js';
import { toTable } from '../table.js';
import type { CachedList } from '../cachedreads.js';
import { negotiate, tableContentType } from './negotiate.js';
import { includeObject, listOptions } from './params.js';
import type { ResourceRequest } from './request.js';

/** Bytes gathered before one write of a streamed list. */
const chunkBytes = 64 * 1024;

export async function serveList(rq: ResourceRequest): Promise<void> {
  const { ex, resource, version, deps, target } = rq;
  const accept = ex.req.headers.accept;
  const out = negotiate(accept, false);
  if (out.kind === 'discovery') throw notAcceptable(accept ?? '');
  const opts = listOptions(ex);
  const cached = await deps.reads.list(target, opts);
  if (cached && out.kind === 'json') {
    await streamList(rq, cached);
    return;
  }
  const list: ListResult = cached
    ? {
        items: cached.items.map((o) => deps.reads.present(target, o)),
        resourceVersion: cached.resourceVersion,
        ...(cached.continue ? { continue: cached.continue } : {}),
        ...(cached.remainingItemCount !== undefined ? { remainingItemCount: cached.remainingItemCount } : {}),
      }
    : await deps.registry.list(target, opts);
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
      metadata: listMeta(list),
      items: list.items.map((i) => ({ kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: i.metadata })),
    });
  } else {
    ex.send(200, { kind: resource.listKind, apiVersion: groupVersion(resource.group, version.name), metadata: listMeta(list), items: list.items }, out);
  }
}

function listMeta(list: { resourceVersion: string; continue?: string; remainingItemCount?: number }): Record<string, unknown> {
  return {
    resourceVersion: list.resourceVersion,
    ...(list.continue ? { continue: list.continue } : {}),
    ...(list.remainingItemCount !== undefined ? { remainingItemCount: list.remainingItemCount } : {}),
  };
}

/** Writes the list in chunks (chunked transfer encoding), waiting whenever the socket is full. */
async function streamList(rq: ResourceRequest, list: CachedList): Promise<void> {
  const { ex, resource, version, deps, target } = rq;
  const res = ex.res;
  ex.labels.code = '200';
  const head = `{"kind":${JSON.stringify(resource.listKind)},"apiVersion":${JSON.stringify(groupVersion(resource.group, version.name))},"metadata":${JSON.stringify(listMeta(list))},"items":[`;
  res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' });
  let closed = false;
  res.once('close', () => {
    closed = true;
  });
  let buf = head;
  for (let i = 0; i < list.items.length; i++) {
    buf += (i > 0 ? ',' : '') + deps.reads.json(target, list.items[i] as (typeof list.items)[number]);
    if (buf.length >= chunkBytes) {
      if (closed) return;
      const ok = res.write(buf);
      buf = '';
      if (!ok) await new Promise<void>((resolve) => {
        const go = (): void => {
          res.off('drain', go);
          res.off('close', go);
          resolve();
        };
        res.on('drain', go);
        res.on('close', go);
      });
    }
  }
  if (!closed) res.end(buf + ']}');
}
