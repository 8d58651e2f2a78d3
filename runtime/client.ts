/**
 * A generic Kubernetes API client: one `ResourceClient<T>` per resource (CRDs and core
 * kinds alike), raw JSON in and out, errors as `ApiError` with the HTTP code and the
 * `Status` reason.
 *
 * Authentication, TLS and exec/token plugins come from the kubeconfig (`kubeconfig.ts`:
 * static credentials applied directly, every other form through `@kubernetes/client-node`'s
 * `KubeConfig`), so it works against a real cluster and stratus's own API server alike. The requests themselves go out through `node:http(s)` with one
 * keep-alive agent per client, because the generated client-node APIs cannot address a
 * resource generically (`CustomObjectsApi` has no core group, `KubernetesObjectApi` has no
 * `/status`), turn timestamps into `Date`s and drop unknown fields, and send JSON-patch
 * unless told otherwise. Here every patch names its content type.
 *
 * Guarantees: `get` returns `undefined` on 404; `delete` returns `false` on 404; every
 * other non-2xx answer rejects with `ApiError`; network failures reject with the Node
 * error (code `ECONNREFUSED`, ...). Plain requests time out after `requestTimeoutMs`
 * (default 30 s); watches are bounded by `timeoutSeconds` and a client-side idle timer.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { accessFromKubeConfig, loadKubeconfigFile, staticAccess, type ClusterAccess, type StaticAccess } from './kubeconfig.js';

import type { ObjectMeta } from '../crds/types.js';

/** `metadata` and owner references: one definition, generated with the CRD types. */
export type { ObjectMeta, OwnerReference } from '../crds/types.js';

/** Any Kubernetes object as it travels over the wire (JSON, timestamps as strings). */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
}

/** Which REST collection a resource lives in. `group: ''` is the core group (`/api/v1`). */
export interface ResourceRef {
  group: string;
  version: string;
  plural: string;
  namespaced: boolean;
  /** Kind, used to fill `kind`/`apiVersion` on created objects that lack them. */
  kind?: string;
}

/** The core resources the runtime itself uses. */
export const CoreResources = {
  secrets: { group: '', version: 'v1', plural: 'secrets', namespaced: true, kind: 'Secret' },
  configMaps: { group: '', version: 'v1', plural: 'configmaps', namespaced: true, kind: 'ConfigMap' },
  events: { group: '', version: 'v1', plural: 'events', namespaced: true, kind: 'Event' },
  namespaces: { group: '', version: 'v1', plural: 'namespaces', namespaced: false, kind: 'Namespace' },
  leases: { group: 'coordination.k8s.io', version: 'v1', plural: 'leases', namespaced: true, kind: 'Lease' },
} as const satisfies Record<string, ResourceRef>;

/** `apiVersion` of a resource: `v1` for core, `group/version` otherwise. */
export function apiVersionOf(ref: ResourceRef): string {
  return ref.group === '' ? ref.version : `${ref.group}/${ref.version}`;
}

/** The cache/queue key of an object: `namespace/name`, or `name` when cluster-scoped. */
export function objectKey(obj: KubeObject): string {
  const ns = obj.metadata?.namespace;
  const name = obj.metadata?.name ?? '';
  return ns ? `${ns}/${name}` : name;
}

/** Splits a key made by `objectKey`. */
export function splitKey(key: string): { namespace: string | undefined; name: string } {
  const i = key.indexOf('/');
  return i < 0 ? { namespace: undefined, name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

/** A non-2xx answer of the API server, carrying its `Status` when there was one. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    /** HTTP status code (409 conflict, 404 not found, 410 gone, 422 invalid, ...). */
    readonly code: number,
    /** `Status.reason` (`Conflict`, `NotFound`, `AlreadyExists`, `Expired`, ...) or the HTTP text. */
    readonly reason: string,
    message: string,
    /** The parsed response body (a `Status`), or the raw text. */
    readonly body: unknown,
  ) {
    super(message);
  }
}

export const isNotFound = (err: unknown): boolean => err instanceof ApiError && err.code === 404;
/** 409: stale resourceVersion (reason `Conflict`) or name taken (reason `AlreadyExists`). */
export const isConflict = (err: unknown): boolean => err instanceof ApiError && err.code === 409;
export const isAlreadyExists = (err: unknown): boolean => err instanceof ApiError && err.code === 409 && err.reason === 'AlreadyExists';
/** 410: the requested resourceVersion is too old — relist. */
export const isGone = (err: unknown): boolean => err instanceof ApiError && (err.code === 410 || err.reason === 'Expired' || err.reason === 'Gone');

export interface ListOptions {
  labelSelector?: string;
  fieldSelector?: string;
}

export interface ListResult<T> {
  items: T[];
  /** The collection's resourceVersion: start a watch here to see every later change. */
  resourceVersion: string;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK';

export interface WatchOptions extends ListOptions {
  resourceVersion?: string;
  allowWatchBookmarks?: boolean;
  /** Server-side bound of the watch; the stream then ends normally. Default 300. */
  timeoutSeconds?: number;
  signal?: AbortSignal;
}

export interface DeleteOptions {
  propagationPolicy?: 'Foreground' | 'Background' | 'Orphan';
  gracePeriodSeconds?: number;
  preconditions?: { uid?: string; resourceVersion?: string };
}

export interface JsonPatchOp {
  op: 'add' | 'remove' | 'replace' | 'test' | 'move' | 'copy';
  path: string;
  value?: unknown;
  from?: string;
}

const PATCH_MERGE = 'application/merge-patch+json';
const PATCH_JSON = 'application/json-patch+json';
const PATCH_APPLY = 'application/apply-patch+yaml';

interface RequestSpec {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
}

const DEFAULT_USER_AGENT = 'stratus';

/**
 * Whom a client acts as through Kubernetes impersonation (`Impersonate-User`,
 * `Impersonate-Group`): the API server authorizes the request as this identity, after
 * checking that the client's own identity may `impersonate` it.
 */
export interface Impersonation {
  user: string;
  groups?: readonly string[];
}

export interface ClientOptions {
  /** Plain requests give up after this many ms (default 30 s). */
  requestTimeoutMs?: number;
  /** `User-Agent` header (default `stratus`). */
  userAgent?: string;
}

/** Connection to one API server: auth from a KubeConfig, one keep-alive agent. */
export class KubeClient {
  readonly server: string;
  private agent: http.Agent | undefined;
  private readonly isHttps: boolean;
  private readonly usesProxy: boolean;

  private constructor(
    /** The server and the credentials every request carries. */
    readonly access: ClusterAccess,
    readonly requestTimeoutMs = 30_000,
    /** Sent as `User-Agent`, so the API server's request log tells clients apart. */
    readonly userAgent = DEFAULT_USER_AGENT,
    /** Sent as impersonation headers on every request. */
    readonly impersonation?: Impersonation,
    /** The client whose connection pool this one shares (an impersonating view of it). */
    private readonly pool?: KubeClient,
  ) {
    this.server = access.server;
    this.isHttps = this.server.startsWith('https:');
    this.usesProxy = access.viaProxy;
  }

  /** The current context of kubeconfig file `path`. */
  static fromFile(path: string, opts: ClientOptions = {}): KubeClient {
    return new KubeClient(loadKubeconfigFile(path), opts.requestTimeoutMs, opts.userAgent);
  }

  /** The current context of a client-node `KubeConfig` (in-cluster config, exec plugins, ...). */
  static fromKubeConfig(kc: KubeConfig, opts: ClientOptions = {}): KubeClient {
    return new KubeClient(accessFromKubeConfig(kc), opts.requestTimeoutMs, opts.userAgent);
  }

  /** A server and static credentials (a bearer token, a client certificate, ...). */
  static fromCredentials(credentials: StaticAccess, opts: ClientOptions = {}): KubeClient {
    return new KubeClient(staticAccess(credentials), opts.requestTimeoutMs, opts.userAgent);
  }

  /** A client on the same kubeconfig whose plain requests give up after `ms` (leases). */
  withRequestTimeout(ms: number): KubeClient {
    return new KubeClient(this.access, ms, this.userAgent, this.impersonation);
  }

  /**
   * A view of this client that acts as `who` (impersonation headers); it shares this
   * client's connections, so one per request costs nothing. Closing it closes nothing.
   */
  impersonating(who: Impersonation): KubeClient {
    return new KubeClient(this.access, this.requestTimeoutMs, this.userAgent, who, this.pool ?? this);
  }

  resource<T extends KubeObject = KubeObject>(ref: ResourceRef): ResourceClient<T> {
    return new ResourceClient<T>(this, ref);
  }

  /** Closes idle keep-alive connections (open watches end when their signal aborts). */
  close(): void {
    if (this.pool) return;
    this.agent?.destroy();
    this.agent = undefined;
  }

  /** One JSON request; resolves with the parsed body, rejects with `ApiError` on non-2xx. */
  async request(spec: RequestSpec): Promise<unknown> {
    const { res, req } = await this.open(spec, this.requestTimeoutMs);
    const text = await readAll(res, req);
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) throw apiErrorFrom(status, res.statusMessage, text);
    if (text === '') return undefined;
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new ApiError(status, 'BadResponse', `${spec.method} ${spec.path}: response is not JSON`, text);
    }
  }

  /**
   * A streaming GET that delivers each newline-terminated JSON line to `onLine`. Resolves
   * when the server ends the stream or `signal` aborts; rejects on HTTP errors, socket
   * errors, or when no byte arrives for `idleMs`.
   */
  async stream(spec: RequestSpec, idleMs: number, onLine: (value: unknown) => void): Promise<void> {
    const { res, req } = await this.open(spec, idleMs);
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) {
      const text = await readAll(res, req);
      throw apiErrorFrom(status, res.statusMessage, text);
    }
    await new Promise<void>((resolve, reject) => {
      let buf = '';
      let settled = false;
      const finish = (err?: Error): void => {
        if (settled) return;
        settled = true;
        spec.signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      const onAbort = (): void => {
        req.destroy();
        finish();
      };
      spec.signal?.addEventListener('abort', onAbort, { once: true });
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line === '') continue;
          let value: unknown;
          try {
            value = JSON.parse(line) as unknown;
          } catch {
            finish(new Error(`watch ${spec.path}: unparsable line`));
            req.destroy();
            return;
          }
          try {
            onLine(value);
          } catch (err) {
            finish(err instanceof Error ? err : new Error(String(err)));
            req.destroy();
            return;
          }
        }
      });
      res.on('end', () => finish());
      res.on('error', (err) => finish(spec.signal?.aborted ? undefined : err));
      res.on('close', () => finish(spec.signal?.aborted || res.complete ? undefined : new Error(`watch ${spec.path}: connection closed`)));
      if (spec.signal?.aborted) onAbort();
    });
  }

  private async open(spec: RequestSpec, timeoutMs: number): Promise<{ req: http.ClientRequest; res: http.IncomingMessage }> {
    const opts: https.RequestOptions = { headers: {} };
    await this.access.apply(opts);
    const url = new URL(this.server + spec.path);
    for (const [k, v] of Object.entries(spec.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: http.OutgoingHttpHeaders = { ...(opts.headers as http.OutgoingHttpHeaders), accept: 'application/json', 'user-agent': this.userAgent };
    if (this.impersonation) {
      headers['impersonate-user'] = this.impersonation.user;
      // Node sends an array header as repeated lines, as kube expects for several groups.
      if (this.impersonation.groups?.length) headers['impersonate-group'] = [...this.impersonation.groups];
    }
    let payload: Buffer | undefined;
    if (spec.body !== undefined) {
      payload = Buffer.from(JSON.stringify(spec.body));
      headers['content-type'] = spec.contentType ?? 'application/json';
      headers['content-length'] = payload.length;
    }
    const agent = this.usesProxy ? opts.agent : this.sharedAgent(opts);
    const reqOpts: https.RequestOptions = {
      method: spec.method,
      headers,
      agent,
      auth: opts.auth,
      signal: spec.signal,
    };
    const mod = this.isHttps ? https : http;
    return new Promise((resolve, reject) => {
      const req = mod.request(url, reqOpts, (res) => resolve({ req, res }));
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`${spec.method} ${url.pathname}: no answer within ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** TLS material is static per kubeconfig, so one agent (and its pooled sockets) serves all requests. */
  private sharedAgent(opts: https.RequestOptions): http.Agent {
    if (this.pool) return this.pool.sharedAgent(opts);
    if (this.agent) return this.agent;
    const common = { keepAlive: true, maxSockets: 64, maxFreeSockets: 16 };
    this.agent = this.isHttps
      ? new https.Agent({
          ...common,
          ca: opts.ca,
          cert: opts.cert,
          key: opts.key,
          pfx: opts.pfx,
          passphrase: opts.passphrase,
          servername: opts.servername,
          rejectUnauthorized: opts.rejectUnauthorized,
        })
      : new http.Agent(common);
    return this.agent;
  }
}

function readAll(res: http.IncomingMessage, req: http.ClientRequest): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
    req.on('error', reject);
  });
}

interface StatusBody {
  kind?: string;
  code?: number;
  reason?: string;
  message?: string;
}

function apiErrorFrom(code: number, statusText: string | undefined, text: string): ApiError {
  let body: unknown = text;
  try {
    body = JSON.parse(text) as unknown;
  } catch {
    // not JSON: keep the text
  }
  const st = typeof body === 'object' && body !== null ? (body as StatusBody) : {};
  const reason = st.reason ?? statusText ?? http.STATUS_CODES[code] ?? 'Unknown';
  return new ApiError(code, reason, st.message ?? `${code} ${reason}${typeof body === 'string' && body ? `: ${body.slice(0, 200)}` : ''}`, body);
}

/** CRUD, patch, status and watch on one resource. `ns` is ignored for cluster-scoped ones. */
export class ResourceClient<T extends KubeObject = KubeObject> {
  constructor(
    readonly client: KubeClient,
    readonly ref: ResourceRef,
  ) {}

  get apiVersion(): string {
    return apiVersionOf(this.ref);
  }

  /** The collection path (`ns` undefined on a namespaced resource → all namespaces). */
  path(ns?: string, name?: string, sub?: string): string {
    const r = this.ref;
    let p = r.group === '' ? `/api/${r.version}` : `/apis/${r.group}/${r.version}`;
    if (r.namespaced && ns) p += `/namespaces/${encodeURIComponent(ns)}`;
    p += `/${r.plural}`;
    if (name !== undefined) {
      if (r.namespaced && !ns) throw new Error(`${r.plural} is namespaced: a namespace is required for ${name}`);
      p += `/${encodeURIComponent(name)}`;
      if (sub) p += `/${sub}`;
    }
    return p;
  }

  /** The object, or `undefined` when it does not exist. */
  async get(ns: string | undefined, name: string): Promise<T | undefined> {
    try {
      return (await this.client.request({ method: 'GET', path: this.path(ns, name) })) as T;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Every matching object (all pages). `ns` undefined lists all namespaces. */
  async list(ns?: string, opts: ListOptions = {}): Promise<T[]> {
    return (await this.listWithVersion(ns, opts)).items;
  }

  /** Like `list`, plus the collection resourceVersion to start a watch from. */
  async listWithVersion(ns?: string, opts: ListOptions = {}, signal?: AbortSignal): Promise<ListResult<T>> {
    const items: T[] = [];
    let resourceVersion = '';
    let cont: string | undefined;
    do {
      const page = (await this.client.request({
        method: 'GET',
        path: this.path(ns),
        query: { labelSelector: opts.labelSelector, fieldSelector: opts.fieldSelector, limit: 500, continue: cont },
        signal,
      })) as { items?: T[]; metadata?: { resourceVersion?: string; continue?: string } };
      for (const it of page.items ?? []) items.push(this.withTypeMeta(it));
      if (!resourceVersion) resourceVersion = page.metadata?.resourceVersion ?? '';
      cont = page.metadata?.continue || undefined;
    } while (cont);
    return { items, resourceVersion };
  }

  async create(obj: T): Promise<T> {
    return (await this.client.request({ method: 'POST', path: this.path(obj.metadata?.namespace), body: this.withTypeMeta(obj) })) as T;
  }

  /** PUT; with `metadata.resourceVersion` set this fails with 409 when the object moved on. */
  async replace(obj: T): Promise<T> {
    const { namespace, name } = this.nameOf(obj);
    return (await this.client.request({ method: 'PUT', path: this.path(namespace, name), body: this.withTypeMeta(obj) })) as T;
  }

  /** RFC 7386 merge patch. Put `metadata.resourceVersion` in the patch for a precondition. */
  async mergePatch(ns: string | undefined, name: string, patch: unknown): Promise<T> {
    return (await this.client.request({ method: 'PATCH', path: this.path(ns, name), body: patch, contentType: PATCH_MERGE })) as T;
  }

  /** RFC 6902 JSON patch (`test` ops give preconditions on any field). */
  async jsonPatch(ns: string | undefined, name: string, ops: JsonPatchOp[]): Promise<T> {
    return (await this.client.request({ method: 'PATCH', path: this.path(ns, name), body: ops, contentType: PATCH_JSON })) as T;
  }

  /** Server-side apply (JSON is valid YAML). */
  async applyPatch(ns: string | undefined, name: string, obj: T, fieldManager: string, force = false): Promise<T> {
    return (await this.client.request({
      method: 'PATCH',
      path: this.path(ns, name),
      query: { fieldManager, force: force || undefined },
      body: this.withTypeMeta(obj),
      contentType: PATCH_APPLY,
    })) as T;
  }

  /** Returns `false` when the object was already gone (404). */
  async delete(ns: string | undefined, name: string, opts: DeleteOptions = {}): Promise<boolean> {
    try {
      await this.client.request({
        method: 'DELETE',
        path: this.path(ns, name),
        body: { apiVersion: 'v1', kind: 'DeleteOptions', ...opts },
      });
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /** PUT on `/status`; 409 when `metadata.resourceVersion` is stale. */
  async replaceStatus(obj: T): Promise<T> {
    const { namespace, name } = this.nameOf(obj);
    return (await this.client.request({ method: 'PUT', path: this.path(namespace, name, 'status'), body: this.withTypeMeta(obj) })) as T;
  }

  async mergePatchStatus(ns: string | undefined, name: string, patch: unknown): Promise<T> {
    return (await this.client.request({ method: 'PATCH', path: this.path(ns, name, 'status'), body: patch, contentType: PATCH_MERGE })) as T;
  }

  /**
   * One watch stream. `onEvent` sees ADDED/MODIFIED/DELETED/BOOKMARK; an `ERROR` event
   * rejects with its `ApiError` (410 → relist). Resolves when the server closes the stream
   * (normal after `timeoutSeconds`) or `signal` aborts.
   */
  async watch(ns: string | undefined, opts: WatchOptions, onEvent: (type: WatchEventType, obj: T) => void): Promise<void> {
    const timeoutSeconds = opts.timeoutSeconds ?? 300;
    await this.client.stream(
      {
        method: 'GET',
        path: this.path(ns),
        query: {
          watch: 'true',
          resourceVersion: opts.resourceVersion,
          labelSelector: opts.labelSelector,
          fieldSelector: opts.fieldSelector,
          allowWatchBookmarks: opts.allowWatchBookmarks,
          timeoutSeconds,
        },
        signal: opts.signal,
      },
      (timeoutSeconds + 30) * 1000,
      (line) => {
        const ev = line as { type?: string; object?: unknown };
        if (ev.type === 'ERROR') {
          const st = (ev.object ?? {}) as StatusBody;
          throw new ApiError(st.code ?? 500, st.reason ?? 'WatchError', st.message ?? 'watch error', st);
        }
        if (ev.type === 'ADDED' || ev.type === 'MODIFIED' || ev.type === 'DELETED' || ev.type === 'BOOKMARK') {
          onEvent(ev.type, this.withTypeMeta(ev.object as T));
        }
      },
    );
  }

  private nameOf(obj: T): { namespace: string | undefined; name: string } {
    const name = obj.metadata?.name;
    if (!name) throw new Error(`${this.ref.plural}: object has no metadata.name`);
    return { namespace: obj.metadata?.namespace, name };
  }

  /** Lists omit apiVersion/kind on items; creates need them. */
  private withTypeMeta(obj: T): T {
    if (obj.apiVersion && obj.kind) return obj;
    if (!this.ref.kind) return obj;
    return { ...obj, apiVersion: obj.apiVersion ?? this.apiVersion, kind: obj.kind ?? this.ref.kind };
  }
}
