/** GET of a collection with `watch`: hands the connection to the watch server (apiserver/watch.ts). */
import { notAcceptable } from '../errors.js';
import type { KubeObject } from '../resources.js';
import type { PrinterColumn } from '../schema/types.js';
import { toTableRowForWatch } from '../table.js';
import { serveWatch } from '../watch.js';
import { negotiate, tableContentType, type Output } from './negotiate.js';
import { boolParam, includeObject, listOptions, type IncludeObject } from './params.js';
import type { ResourceRequest } from './request.js';

export async function serveWatchRequest(rq: ResourceRequest): Promise<void> {
  const { ex, deps, target } = rq;
  const accept = ex.req.headers.accept;
  const out = negotiate(accept, false);
  if (out.kind === 'discovery') throw notAcceptable(accept ?? '');
  const lo = listOptions(ex);
  const filter = deps.registry.filter(target, lo.labelSelector, lo.fieldSelector);
  const sendInitialEvents = boolParam(ex, 'sendInitialEvents');
  const allowWatchBookmarks = boolParam(ex, 'allowWatchBookmarks') ?? false;
  const timeoutSeconds = rq.common.timeoutSeconds;
  await serveWatch(
    ex.req,
    ex.res,
    deps.registry,
    deps.caches.for(rq.resource.keyPrefix),
    {
      target,
      filter,
      ...(lo.labelSelector ? { labelSelector: lo.labelSelector } : {}),
      ...(lo.fieldSelector ? { fieldSelector: lo.fieldSelector } : {}),
      ...(lo.resourceVersion !== undefined ? { resourceVersion: lo.resourceVersion } : {}),
      ...(sendInitialEvents !== undefined ? { sendInitialEvents } : {}),
      allowWatchBookmarks,
      ...(timeoutSeconds !== undefined ? { timeoutSeconds } : {}),
      contentType: out.kind === 'table' ? tableContentType(out.version) : 'application/json',
      present: watchPresenter(out, rq.version.columns, includeObject(ex)),
      heartbeatMs: deps.heartbeatMs,
      sharedEncoding: out.kind === 'json',
    },
    deps.openWatches,
  );
  ex.labels.code = '200';
}

/** Watch events in Table form carry column definitions on the first event only, as kube does. */
function watchPresenter(out: Output, columns: PrinterColumn[], include: IncludeObject): (obj: KubeObject) => unknown {
  let first = true;
  return (obj) => {
    if (out.kind === 'partial') return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: obj.metadata };
    if (out.kind !== 'table') return obj;
    const t = toTableRowForWatch(columns, obj, { includeObject: include, noHeaders: !first });
    first = false;
    return t;
  };
}
