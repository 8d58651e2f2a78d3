/** Paths that address no resource: the root, version, health, metrics, OpenAPI and discovery. */
import { ApiError, notAcceptable } from '../errors.js';
import { aggregatedDiscovery, apiGroupDoc, apiGroupList, apiResourceList, apiVersions } from '../discovery.js';
import { openApiV2Doc, openApiV3Doc, openApiV3Root } from '../openapi.js';
import { encodeOpenApiV2, OPENAPI_V2_PROTOBUF, OPENAPI_V2_PROTOBUF_RESPONSE } from '../openapi-proto.js';
import { createHash } from 'node:crypto';
import type { ResourceCatalog } from '../resources.js';
import type { HttpDeps } from './deps.js';
import type { Exchange } from './exchange.js';
import { negotiate } from './negotiate.js';
import type { ResourcePath } from './paths.js';

/**
 * `/openapi/v2` in its JSON and protobuf encodings, built once per catalog generation (a CRD
 * added, changed or removed) with an ETag per encoding, as kube-apiserver serves it: kubectl
 * asks for the protobuf form on every `apply`/`explain` and revalidates with If-None-Match.
 */
interface OpenApiV2Encoded {
  generation: number;
  json: string;
  jsonETag: string;
  proto?: Buffer;
  protoETag?: string;
}
const openApiV2Cache = new WeakMap<ResourceCatalog, OpenApiV2Encoded>();

const etagOf = (body: string | Buffer): string => `"${createHash('sha512').update(body).digest('hex').slice(0, 32).toUpperCase()}"`;

function openApiV2(catalog: ResourceCatalog, protobuf: boolean): { body: string | Buffer; etag: string; doc: () => unknown } {
  let c = openApiV2Cache.get(catalog);
  if (!c || c.generation !== catalog.generation) {
    const json = JSON.stringify(openApiV2Doc(catalog));
    c = { generation: catalog.generation, json, jsonETag: etagOf(json) };
    openApiV2Cache.set(catalog, c);
  }
  const entry = c;
  if (protobuf) {
    entry.proto ??= encodeOpenApiV2(JSON.parse(entry.json) as Record<string, unknown>);
    entry.protoETag ??= etagOf(entry.proto);
    return { body: entry.proto, etag: entry.protoETag, doc: () => JSON.parse(entry.json) };
  }
  return { body: entry.json, etag: entry.jsonETag, doc: () => JSON.parse(entry.json) };
}

/** True (and answered 304) when the client's If-None-Match names `etag`. */
function notModified(ex: Exchange, etag: string): boolean {
  const inm = ex.req.headers['if-none-match'];
  if (!inm || !inm.split(',').some((t) => t.trim() === etag || t.trim() === '*')) return false;
  ex.labels.code = '304';
  ex.res.writeHead(304, { ETag: etag, 'Cache-Control': 'no-cache, private', Vary: 'Accept' });
  ex.res.end();
  return true;
}

export async function serveNonResource(deps: HttpDeps, ex: Exchange, segs: string[], rp: ResourcePath | undefined): Promise<void> {
  const path = segs.join('/');
  const accept = ex.req.headers.accept;
  if (path === '') {
    ex.send(200, {
      paths: ['/api', '/api/v1', '/apis', ...[...deps.catalog.groups().keys()].map((g) => `/apis/${g}`), '/healthz', '/livez', '/metrics', '/openapi/v2', '/openapi/v3', '/readyz', '/version'],
    });
    return;
  }
  if (path === 'version') {
    ex.send(200, {
      major: '1',
      minor: '32',
      gitVersion: 'v1.32.0-stratus',
      gitCommit: '0000000000000000000000000000000000000000',
      gitTreeState: 'clean',
      buildDate: '2026-01-01T00:00:00Z',
      goVersion: 'go1.23.0',
      compiler: 'gc',
      platform: `${process.platform}/${process.arch === 'x64' ? 'amd64' : process.arch}`,
    });
    return;
  }
  if (segs[0] === 'healthz' || segs[0] === 'livez' || segs[0] === 'readyz') {
    if (segs[0] === 'readyz' && !deps.ready()) {
      ex.sendText(503, '[-]stratus not ready\nreadyz check failed\n');
      return;
    }
    ex.sendText(200, 'ok');
    return;
  }
  if (path === 'metrics') {
    const text = await deps.metrics.registry.metrics();
    ex.sendText(200, text, deps.metrics.registry.contentType);
    return;
  }
  if (path === 'openapi/v2') {
    const protobuf = accept?.includes(OPENAPI_V2_PROTOBUF) === true;
    const out = protobuf ? undefined : negotiate(accept, false);
    if (out && out.kind !== 'json' && out.kind !== 'yaml') throw notAcceptable(accept ?? '');
    const v2 = openApiV2(deps.catalog, protobuf);
    if (out?.kind === 'yaml') {
      ex.send(200, v2.doc(), out);
      return;
    }
    ex.res.setHeader('Vary', 'Accept');
    if (notModified(ex, v2.etag)) return;
    ex.res.setHeader('ETag', v2.etag);
    ex.sendBody(200, v2.body, protobuf ? OPENAPI_V2_PROTOBUF_RESPONSE : 'application/json');
    return;
  }
  if (path === 'openapi/v3') {
    ex.send(200, openApiV3Root(deps.catalog), negotiate(accept, false));
    return;
  }
  if (segs[0] === 'openapi' && segs[1] === 'v3') {
    const doc = openApiV3Doc(deps.catalog, segs.slice(2).join('/'));
    if (!doc) throw new ApiError(404, 'NotFound', `the server could not find the requested resource (${ex.url.pathname})`);
    const out = negotiate(accept, false);
    if (out.kind !== 'json' && out.kind !== 'yaml') throw notAcceptable(accept ?? '');
    if (ex.query('hash')) ex.res.setHeader('Cache-Control', 'public, immutable');
    ex.send(200, doc, out);
    return;
  }
  if (path === 'api' || path === 'apis') {
    const out = negotiate(accept, true);
    ex.res.setHeader('Vary', 'Accept');
    if (out.kind === 'discovery') {
      const apiVersion = `apidiscovery.k8s.io/${out.version}`;
      ex.send(200, aggregatedDiscovery(deps.catalog, path === 'api', apiVersion), { kind: 'json' }, `application/json;g=apidiscovery.k8s.io;v=${out.version};as=APIGroupDiscoveryList`);
    } else if (path === 'api') {
      ex.send(200, apiVersions(deps.serverAddress()), out);
    } else {
      ex.send(200, apiGroupList(deps.catalog), out);
    }
    return;
  }
  if (segs[0] === 'apis' && segs.length === 2) {
    const doc = apiGroupDoc(deps.catalog, segs[1] ?? '');
    if (doc) {
      ex.send(200, doc, negotiate(accept, false));
      return;
    }
  }
  if (rp && !rp.plural) {
    const doc = apiResourceList(deps.catalog, rp.group, rp.version);
    if (doc) {
      ex.send(200, doc, negotiate(accept, false));
      return;
    }
  }
  throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
}
