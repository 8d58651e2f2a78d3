/**
 * The HTTP layer: routing Kubernetes API paths to the registry, content negotiation (JSON,
 * YAML, Table, PartialObjectMetadata, aggregated discovery), `Status` errors, the 3 MiB
 * body limit, request logging and metrics. Every failure becomes a `Status`; only a bug
 * yields a 500, and no request can take the process down.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { UnavailableError } from './storage/store.js';
import { log } from '../runtime/log.js';
import {
  ApiError,
  badRequest,
  internalError,
  methodNotAllowed,
  notAcceptable,
  serviceUnavailable,
  tooLarge,
  unsupportedMediaType,
  type Status,
} from './errors.js';
import { aggregatedDiscovery, apiGroupDoc, apiGroupList, apiResourceList, apiVersions } from './discovery.js';
import type { ApiMetrics, RequestLabels } from './metrics.js';
import { isPlainObject } from './objects.js';
import { openApiV2Doc, openApiV3Doc, openApiV3Root } from './openapi.js';
import { decodeKubeProtobuf, ProtobufError } from './protobuf.js';
import { managerFromUserAgent, validateFieldManager } from './apply/index.js';
import type { DeleteOptions, FieldValidation, ListOptions, PatchType, Registry, Target, WriteOptions } from './registry.js';
import { groupVersion, type KubeObject, type ResourceCatalog } from './resources.js';
import { toTable, toTableRowForWatch } from './table.js';
import { serveWatch, type WatchRegistry } from './watch.js';
import type { WatchCaches } from './watchcache.js';
import type { PrinterColumn } from './schema/types.js';
import { requestUser, type UserInfo } from './auth/user.js';

export const maxBodyBytes = 3 * 1024 * 1024;

export interface HttpDeps {
  registry: Registry;
  catalog: ResourceCatalog;
  caches: WatchCaches;
  metrics: ApiMetrics;
  /** host:port clients reach this server at (discovery's serverAddressByClientCIDRs). */
  serverAddress(): string;
  ready(): boolean;
  openWatches: WatchRegistry;
  heartbeatMs: number;
}

type Output =
  | { kind: 'json' }
  | { kind: 'yaml' }
  | { kind: 'table'; version: string }
  | { kind: 'partial' }
  | { kind: 'discovery'; version: string };

interface MediaType {
  type: string;
  params: Record<string, string>;
}

function parseMediaTypes(header: string | undefined): MediaType[] {
  if (!header) return [];
  return header
    .split(',')
    .map((part) => {
      const [type = '', ...rest] = part.split(';').map((s) => s.trim());
      const params: Record<string, string> = {};
      for (const p of rest) {
        const i = p.indexOf('=');
        if (i > 0) params[p.slice(0, i).trim().toLowerCase()] = p.slice(i + 1).trim().replace(/^"|"$/g, '');
      }
      return { type: type.toLowerCase(), params };
    })
    .filter((m) => m.type !== '' && m.params.q !== '0');
}

/** The first acceptable representation the client asked for. */
function negotiate(accept: string | undefined, allowDiscovery: boolean): Output {
  const types = parseMediaTypes(accept);
  if (types.length === 0) return { kind: 'json' };
  for (const m of types) {
    const isJson = m.type === 'application/json' || m.type === '*/*' || m.type === 'application/*';
    const as = m.params.as;
    if (isJson && as === undefined) return { kind: 'json' };
    if (m.type === 'application/yaml' && as === undefined) return { kind: 'yaml' };
    if (m.type !== 'application/json') continue;
    if (as === 'Table' && m.params.g === 'meta.k8s.io' && (m.params.v === 'v1' || m.params.v === 'v1beta1')) return { kind: 'table', version: m.params.v };
    if ((as === 'PartialObjectMetadata' || as === 'PartialObjectMetadataList') && m.params.g === 'meta.k8s.io') return { kind: 'partial' };
    if (allowDiscovery && as === 'APIGroupDiscoveryList' && m.params.g === 'apidiscovery.k8s.io' && (m.params.v === 'v2' || m.params.v === 'v2beta1')) {
      return { kind: 'discovery', version: m.params.v };
    }
  }
  throw notAcceptable(accept ?? '');
}

class Exchange {
  readonly start = performance.now();
  readonly labels: RequestLabels = { verb: '', group: '', version: '', resource: '', subresource: '', scope: '', code: '0' };
  readonly warnings: string[] = [];
  readonly url: URL;
  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
  ) {
    this.url = new URL('http://localhost');
    const raw = req.url ?? '/';
    try {
      this.url = new URL(raw.startsWith('/') ? raw : `/${raw}`, 'http://localhost');
    } catch {
      throw badRequest('malformed request URL');
    }
  }

  query(name: string): string | undefined {
    const v = this.url.searchParams.get(name);
    return v === null ? undefined : v;
  }

  flag(name: string): boolean | undefined {
    const v = this.query(name);
    if (v === undefined) return undefined;
    if (v === '' || v === 'true' || v === '1') return true;
    if (v === 'false' || v === '0') return false;
    throw badRequest(`invalid boolean value for ${name}: "${v}"`);
  }

  send(code: number, body: unknown, output: Output = { kind: 'json' }, contentType?: string): void {
    this.labels.code = String(code);
    if (this.res.headersSent) return;
    if (this.warnings.length > 0) this.res.setHeader('Warning', this.warnings.map((w) => `299 - ${JSON.stringify(w)}`));
    let text: string;
    let type: string;
    if (output.kind === 'yaml') {
      text = stringifyYaml(body);
      type = 'application/yaml';
    } else {
      text = JSON.stringify(body);
      type = contentType ?? 'application/json';
    }
    this.res.writeHead(code, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-cache, private' });
    this.res.end(text);
  }

  sendText(code: number, text: string, type = 'text/plain; charset=utf-8'): void {
    this.labels.code = String(code);
    this.res.writeHead(code, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(text) });
    this.res.end(text);
  }

  sendStatus(err: ApiError): void {
    if (err.code === 413) this.res.setHeader('Connection', 'close');
    this.send(err.code, err.toStatus());
  }
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > maxBodyBytes) {
    req.resume();
    throw tooLarge();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > maxBodyBytes) {
      req.resume();
      throw tooLarge();
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

function mediaTypeOf(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

function parseJson(buf: Buffer): unknown {
  try {
    return JSON.parse(buf.toString('utf8')) as unknown;
  } catch (err) {
    throw badRequest(`the body of the request could not be decoded as JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function parseYamlBody(buf: Buffer): unknown {
  try {
    return parseYaml(buf.toString('utf8'), { uniqueKeys: true, maxAliasCount: 100 }) as unknown;
  } catch (err) {
    throw badRequest(`the body of the request could not be decoded as YAML: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
  }
}

/** A POST, PUT or DELETE body: JSON, YAML, or protobuf for the built-in kinds. */
function decodeObjectBody(req: IncomingMessage, buf: Buffer): unknown {
  const type = mediaTypeOf(req);
  if (type === '' || type === 'application/json' || type === '*/*') return parseJson(buf);
  if (type === 'application/yaml' || type === 'application/x-yaml' || type === 'text/yaml') return parseYamlBody(buf);
  if (type === 'application/vnd.kubernetes.protobuf') {
    try {
      return decodeKubeProtobuf(buf);
    } catch (err) {
      if (err instanceof ProtobufError) throw new ApiError(415, 'UnsupportedMediaType', `cannot decode the protobuf body: ${err.message}`);
      throw err;
    }
  }
  throw unsupportedMediaType(type);
}

const patchTypes: Record<string, PatchType> = {
  'application/merge-patch+json': 'merge',
  'application/json-patch+json': 'json',
  'application/strategic-merge-patch+json': 'strategic',
  'application/apply-patch+yaml': 'apply',
};

interface ResourcePath {
  group: string;
  version: string;
  namespace?: string;
  plural?: string;
  name?: string;
  subresource?: string;
}

/** `/api/v1/...` or `/apis/g/v/...` split into its parts; undefined for non-resource paths. */
function parseResourcePath(segs: string[]): ResourcePath | undefined {
  let rest: string[];
  let group: string;
  let version: string;
  if (segs[0] === 'api' && segs.length >= 2) {
    group = '';
    version = segs[1] ?? '';
    rest = segs.slice(2);
  } else if (segs[0] === 'apis' && segs.length >= 3) {
    group = segs[1] ?? '';
    version = segs[2] ?? '';
    rest = segs.slice(3);
  } else {
    return undefined;
  }
  if (rest.length === 0) return { group, version };
  if (rest[0] === 'namespaces' && rest.length >= 3 && rest[2] !== 'status' && rest[2] !== 'finalize') {
    return { group, version, namespace: rest[1], plural: rest[2], name: rest[3], subresource: rest.slice(4).join('/') || undefined };
  }
  return { group, version, plural: rest[0], name: rest[1], subresource: rest.slice(2).join('/') || undefined };
}

export function createRequestHandler(deps: HttpDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    let ex: Exchange;
    try {
      ex = new Exchange(req, res);
    } catch (err) {
      const status = err instanceof ApiError ? err.toStatus() : internalError(String(err)).toStatus();
      res.writeHead(status.code, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(status));
      return;
    }
    let isWatch = false;
    deps.metrics.inflight.inc();
    const done = (): void => {
      deps.metrics.inflight.dec();
      const seconds = (performance.now() - ex.start) / 1000;
      deps.metrics.observe(ex.labels, seconds);
      const line = {
        component: 'apiserver',
        verb: ex.labels.verb,
        uri: req.url,
        code: Number(ex.labels.code),
        ms: Math.round(seconds * 1000),
        userAgent: req.headers['user-agent'],
      };
      // Writes and failures at info, reads at debug: controllers read all the time.
      const code = Number(ex.labels.code);
      if (code >= 500) log.error(line, 'request');
      else if (code >= 400 || !['get', 'list', 'watch', 'head'].includes(ex.labels.verb)) log.info(line, 'request');
      else log.debug(line, 'request');
    };
    route(deps, ex)
      .then((watch) => {
        isWatch = watch;
      })
      .catch((err: unknown) => {
        if (err instanceof ApiError) {
          ex.sendStatus(err);
        } else if (err instanceof UnavailableError) {
          ex.res.setHeader('Retry-After', '1');
          ex.sendStatus(serviceUnavailable(`storage is unavailable: ${err.message}`));
        } else {
          log.error({ component: 'apiserver', err: err instanceof Error ? err.stack : String(err), uri: req.url }, 'internal error');
          ex.sendStatus(internalError(err instanceof Error ? err.message : String(err)));
        }
      })
      .finally(() => {
        if (!isWatch) done();
        else {
          // A watch is logged when it starts (it may run for hours), like kube's audit stage RequestReceived.
          log.info({ component: 'apiserver', verb: ex.labels.verb, uri: req.url, code: 200, userAgent: req.headers['user-agent'] }, 'request');
          deps.metrics.inflight.dec();
          deps.metrics.watchers.inc();
          res.once('close', () => {
            deps.metrics.watchers.dec();
            ex.labels.code = '200';
            deps.metrics.observe(ex.labels, (performance.now() - ex.start) / 1000);
          });
        }
      });
  };
}

/** Handles one request; resolves true when it became a long-running watch. */
async function route(deps: HttpDeps, ex: Exchange): Promise<boolean> {
  let segs: string[];
  try {
    segs = ex.url.pathname.split('/').filter((s) => s !== '').map((s) => decodeURIComponent(s));
  } catch {
    throw badRequest('malformed path');
  }
  const method = ex.req.method ?? 'GET';
  const rp = parseResourcePath(segs);
  if (!rp || !rp.plural) {
    ex.labels.verb = method.toLowerCase();
    if (method !== 'GET' && method !== 'HEAD') {
      await drain(ex.req);
      throw methodNotAllowed();
    }
    await serveNonResource(deps, ex, segs, rp);
    return false;
  }
  return serveResource(deps, ex, rp, method);
}

async function drain(req: IncomingMessage): Promise<void> {
  try {
    await readBody(req);
  } catch {
    // the error response already says what went wrong
  }
}

async function serveNonResource(deps: HttpDeps, ex: Exchange, segs: string[], rp: ResourcePath | undefined): Promise<void> {
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
    const out = negotiate(accept, false);
    if (out.kind !== 'json' && out.kind !== 'yaml') throw notAcceptable(accept ?? '');
    ex.send(200, openApiV2Doc(deps.catalog), out);
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

function writeOptions(ex: Exchange): WriteOptions {
  const dry = ex.url.searchParams.getAll('dryRun');
  for (const d of dry) if (d !== 'All') throw badRequest(`Invalid dryRun value: "${d}": valid values are "All"`);
  const fv = ex.query('fieldValidation');
  let fieldValidation: FieldValidation | undefined;
  if (fv !== undefined && fv !== '') {
    const norm = fv.charAt(0).toUpperCase() + fv.slice(1).toLowerCase();
    if (norm !== 'Strict' && norm !== 'Warn' && norm !== 'Ignore') {
      throw badRequest(`Invalid fieldValidation: "${fv}": valid values are "Ignore", "Warn" and "Strict"`);
    }
    fieldValidation = norm;
  }
  let fieldManager = ex.query('fieldManager');
  if (fieldManager !== undefined && fieldManager !== '') {
    const why = validateFieldManager(fieldManager);
    if (why) throw new ApiError(422, 'Invalid', why, { causes: [{ reason: 'FieldValueInvalid', field: 'fieldManager', message: why }] });
  } else {
    fieldManager = managerFromUserAgent(ex.req.headers['user-agent']) || 'unknown';
  }
  return {
    dryRun: dry.length > 0,
    ...(fieldManager ? { fieldManager } : {}),
    ...(fieldValidation ? { fieldValidation } : {}),
    warnings: ex.warnings,
    ...withUser(ex),
  };
}

function listOptions(ex: Exchange): ListOptions {
  const limitText = ex.query('limit');
  let limit: number | undefined;
  if (limitText !== undefined && limitText !== '') {
    if (!/^\d+$/.test(limitText)) throw badRequest(`invalid limit "${limitText}"`);
    limit = Number(limitText);
  }
  const o: ListOptions = {};
  const set = (k: 'labelSelector' | 'fieldSelector' | 'continue' | 'resourceVersion' | 'resourceVersionMatch'): void => {
    const v = ex.query(k);
    if (v !== undefined && v !== '') o[k] = v;
  };
  set('labelSelector');
  set('fieldSelector');
  set('continue');
  set('resourceVersion');
  set('resourceVersionMatch');
  if (limit !== undefined) o.limit = limit;
  if (o.resourceVersionMatch && !['Exact', 'NotOlderThan'].includes(o.resourceVersionMatch)) {
    throw badRequest(`invalid resourceVersionMatch "${o.resourceVersionMatch}"`);
  }
  return o;
}

function deleteOptions(ex: Exchange, body: unknown): DeleteOptions {
  const o: DeleteOptions = {};
  const src: Record<string, unknown> = isPlainObject(body) ? body : {};
  const policy = ex.query('propagationPolicy') ?? src.propagationPolicy;
  if (policy !== undefined && policy !== null && policy !== '') {
    if (policy !== 'Foreground' && policy !== 'Background' && policy !== 'Orphan') {
      throw badRequest(`Invalid propagationPolicy "${String(policy)}": must be Foreground, Background or Orphan`);
    }
    o.propagationPolicy = policy;
  }
  const orphan = ex.flag('orphanDependents') ?? src.orphanDependents;
  if (orphan === true) o.orphanDependents = true;
  if (isPlainObject(src.preconditions)) {
    const p = src.preconditions;
    o.preconditions = {
      ...(typeof p.uid === 'string' ? { uid: p.uid } : {}),
      ...(typeof p.resourceVersion === 'string' ? { resourceVersion: p.resourceVersion } : {}),
    };
  }
  const dry = [...ex.url.searchParams.getAll('dryRun'), ...(Array.isArray(src.dryRun) ? src.dryRun : [])];
  for (const d of dry) if (d !== 'All') throw badRequest(`Invalid dryRun value: "${String(d)}": valid values are "All"`);
  if (dry.length > 0) o.dryRun = true;
  return { ...o, ...withUser(ex) };
}

function withUser(ex: Exchange): { user?: UserInfo } {
  const user = requestUser(ex.req);
  return user ? { user } : {};
}

const verbByMethod: Record<string, string> = { POST: 'create', PUT: 'update', PATCH: 'patch' };

async function serveResource(deps: HttpDeps, ex: Exchange, rp: ResourcePath, method: string): Promise<boolean> {
  const found = deps.catalog.lookup(rp.group, rp.version, rp.plural ?? '');
  ex.labels.group = rp.group;
  ex.labels.version = rp.version;
  ex.labels.resource = rp.plural ?? '';
  ex.labels.subresource = rp.subresource ?? '';
  ex.labels.verb = method === 'GET' ? (rp.name ? 'get' : ex.flag('watch') ? 'watch' : 'list') : method === 'DELETE' ? (rp.name ? 'delete' : 'deletecollection') : (verbByMethod[method] ?? method.toLowerCase());
  if (!found) {
    await drain(ex.req);
    throw new ApiError(404, 'NotFound', `the server could not find the requested resource (${method.toLowerCase()} ${rp.plural}${rp.group ? `.${rp.group}` : ''})`);
  }
  const { resource, version } = found;
  ex.labels.scope = rp.name ? (resource.namespaced ? 'namespace' : 'cluster') : rp.namespace ? 'namespace' : 'cluster';
  if (!resource.namespaced && rp.namespace !== undefined) {
    await drain(ex.req);
    throw new ApiError(404, 'NotFound', `the server could not find the requested resource (${resource.plural} is not namespaced)`);
  }
  if (rp.subresource !== undefined && (rp.subresource !== 'status' || !resource.statusSubresource || !rp.name)) {
    await drain(ex.req);
    throw new ApiError(404, 'NotFound', `the server could not find the requested resource (subresource ${rp.subresource})`);
  }
  const target: Target = { resource, version, ...(rp.namespace !== undefined ? { namespace: rp.namespace } : {}) };
  const gv = groupVersion(resource.group, version.name);
  const accept = ex.req.headers.accept;

  const present = (obj: KubeObject, out: Output): unknown => {
    if (out.kind === 'partial') return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: obj.metadata };
    if (out.kind === 'table') {
      return toTable(version.columns, [obj], { includeObject: includeObject(ex) });
    }
    return obj;
  };
  const respond = (code: number, obj: KubeObject, out: Output): void => {
    const body = present(obj, out);
    const type = out.kind === 'table' ? `application/json;as=Table;v=${out.version};g=meta.k8s.io` : undefined;
    ex.send(code, body, out, type);
  };

  switch (method) {
    case 'GET':
    case 'HEAD': {
      const out = negotiate(accept, false);
      if (out.kind === 'discovery') throw notAcceptable(accept ?? '');
      if (rp.name) {
        respond(200, await deps.registry.get(target, rp.name), out);
        return false;
      }
      if (ex.flag('watch')) {
        const lo = listOptions(ex);
        const filter = deps.registry.filter(target, lo.labelSelector, lo.fieldSelector);
        const timeoutText = ex.query('timeoutSeconds');
        if (timeoutText !== undefined && !/^\d+$/.test(timeoutText)) throw badRequest(`invalid timeoutSeconds "${timeoutText}"`);
        const sendInitialEvents = ex.flag('sendInitialEvents');
        await serveWatch(
          ex.req,
          ex.res,
          deps.registry,
          deps.caches.for(resource.keyPrefix),
          {
            target,
            filter,
            ...(lo.labelSelector ? { labelSelector: lo.labelSelector } : {}),
            ...(lo.fieldSelector ? { fieldSelector: lo.fieldSelector } : {}),
            ...(lo.resourceVersion !== undefined ? { resourceVersion: lo.resourceVersion } : {}),
            ...(sendInitialEvents !== undefined ? { sendInitialEvents } : {}),
            allowWatchBookmarks: ex.flag('allowWatchBookmarks') ?? false,
            ...(timeoutText !== undefined ? { timeoutSeconds: Number(timeoutText) } : {}),
            contentType: out.kind === 'table' ? `application/json;as=Table;v=${out.version};g=meta.k8s.io` : 'application/json',
            present: watchPresenter(out, version.columns, includeObject(ex)),
            heartbeatMs: deps.heartbeatMs,
          },
          deps.openWatches,
        );
        ex.labels.code = '200';
        return true;
      }
      const list = await deps.registry.list(target, listOptions(ex));
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
        ex.send(200, table, out, `application/json;as=Table;v=${out.version};g=meta.k8s.io`);
      } else if (out.kind === 'partial') {
        ex.send(200, {
          kind: 'PartialObjectMetadataList',
          apiVersion: 'meta.k8s.io/v1',
          metadata: listMeta,
          items: list.items.map((i) => ({ kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: i.metadata })),
        });
      } else {
        ex.send(200, { kind: resource.listKind, apiVersion: gv, metadata: listMeta, items: list.items }, out);
      }
      return false;
    }
    case 'POST': {
      if (rp.name) {
        await drain(ex.req);
        throw methodNotAllowed();
      }
      if (resource.namespaced && rp.namespace === undefined) {
        await drain(ex.req);
        throw methodNotAllowed('create requests must address a namespace for namespaced resources');
      }
      const out = negotiate(accept, false);
      const body = decodeObjectBody(ex.req, await readBody(ex.req));
      const created = await deps.registry.create(target, body, writeOptions(ex));
      respond(201, created, out);
      return false;
    }
    case 'PUT': {
      if (!rp.name) {
        await drain(ex.req);
        throw methodNotAllowed();
      }
      const out = negotiate(accept, false);
      const body = decodeObjectBody(ex.req, await readBody(ex.req));
      respond(200, await deps.registry.update(target, rp.name, body, writeOptions(ex), rp.subresource), out);
      return false;
    }
    case 'PATCH': {
      if (!rp.name) {
        await drain(ex.req);
        throw methodNotAllowed();
      }
      const out = negotiate(accept, false);
      const type = patchTypes[mediaTypeOf(ex.req)];
      if (!type) {
        await drain(ex.req);
        throw unsupportedMediaType(mediaTypeOf(ex.req));
      }
      const buf = await readBody(ex.req);
      const body = type === 'apply' ? parseYamlBody(buf) : parseJson(buf);
      const force = ex.flag('force') ?? false;
      if (force && type !== 'apply') throw badRequest('force is only allowed with apply patches');
      respond(200, await deps.registry.patch(target, rp.name, type, body, writeOptions(ex), rp.subresource, force), out);
      return false;
    }
    case 'DELETE': {
      if (rp.subresource) {
        await drain(ex.req);
        throw methodNotAllowed();
      }
      const out = negotiate(accept, false);
      const buf = await readBody(ex.req);
      const body = buf.length > 0 ? decodeObjectBody(ex.req, buf) : undefined;
      const opts = deleteOptions(ex, body);
      if (rp.name) {
        const r = await deps.registry.delete(target, rp.name, opts);
        if (r.deleted) {
          const m = (r.object.metadata ?? {}) as { uid?: string };
          const status: Status = {
            kind: 'Status',
            apiVersion: 'v1',
            metadata: {},
            status: 'Success',
            details: { name: rp.name, group: resource.group, kind: resource.plural, ...(m.uid ? { uid: m.uid } : {}) },
            code: 200,
          };
          ex.send(200, status);
        } else {
          respond(200, r.object, out);
        }
        return false;
      }
      const deleted = await deps.registry.deleteCollection(target, listOptions(ex), opts);
      ex.send(200, { kind: resource.listKind, apiVersion: gv, metadata: {}, items: deleted }, out);
      return false;
    }
    default:
      await drain(ex.req);
      throw methodNotAllowed();
  }
}

/** Watch events in Table form carry column definitions on the first event only, as kube does. */
function watchPresenter(out: Output, columns: PrinterColumn[], include: 'None' | 'Metadata' | 'Object'): (obj: KubeObject) => unknown {
  let first = true;
  return (obj) => {
    if (out.kind === 'partial') return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: obj.metadata };
    if (out.kind !== 'table') return obj;
    const t = toTableRowForWatch(columns, obj, { includeObject: include, noHeaders: !first });
    first = false;
    return t;
  };
}

function includeObject(ex: Exchange): 'None' | 'Metadata' | 'Object' {
  const v = ex.query('includeObject');
  if (v === undefined || v === '') return 'Metadata';
  if (v === 'None' || v === 'Metadata' || v === 'Object') return v;
  throw badRequest(`invalid includeObject "${v}": must be None, Metadata or Object`);
}
