/**
 * The legacy proxy: one HTTP listener serving Cloud Brain, DataCentred, clementine and Brume
 * over the Kubernetes API. It holds no state of its own: every write creates or changes an
 * object, every read comes from objects and their status, so the same proxy works against
 * `stratus serve` and against a real cluster with the CRDs installed.
 *
 * Per request: route by path (each API owns its prefixes, so even 404/405 come in that API's
 * error style), authenticate (a Cloud Brain token, Brume's body signature, or nothing for
 * the APIs listed in `anonymous`), run the handler as that identity, and render any failure
 * in the API's own style.
 *
 * Identity: the handler's Kubernetes client impersonates the caller (`Impersonate-User`,
 * `Impersonate-Group`), so the API server's RBAC and quotas judge the caller, not the proxy;
 * the proxy's own credentials need only the `impersonate` verb (and the reads that
 * authenticate: AccessTokens, Users, Groups, signing Secrets). A token acts as its
 * `spec.user` with that user's Groups (`groupsOf`), or as `system:serviceaccount:NS:default`
 * without one; a Brume signature as its user; a request without credentials to an API named
 * in `anonymous` as `system:anonymous` (group `system:unauthenticated`), otherwise 401. A client's mistake is always a 4xx; the Kubernetes API failing is a
 * 502/503; nothing a client sends can make the proxy throw. Logs carry method, path and
 * status — never headers or bodies, which hold tokens and signatures.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiError, type KubeClient } from '../runtime/client.js';
import { log } from '../runtime/log.js';
import { compile, fromDownstream, LegacyError, readBody, send, type LegacyRequest, type LegacyResponse } from './http.js';
import type { ApiRoute, Caller, LegacyApi } from './api.js';
import { cloudBrainApi } from './cloudbrain.js';
import { dataCentredApi } from './datacentred.js';
import { clementineApi } from './clementine.js';
import { brumeApi } from './brume.js';
import { TokenAuthenticator } from './tokens.js';
import { LoginRecorder, SignatureVerifier } from './users.js';
import { clientGroupSource } from './membership.js';
import { authenticatedUser, tokenUser } from '../apiserver/auth/membership.js';
import { anonymousUser } from '../apiserver/auth/user.js';
import { ensureClusterRole, ensureNamespaceRole } from './namespaces.js';

export const LEGACY_APIS: readonly LegacyApi[] = [cloudBrainApi, dataCentredApi, clementineApi, brumeApi];

/** The names `--legacy-anonymous` accepts. */
export const LEGACY_API_NAMES: readonly string[] = LEGACY_APIS.map((a) => a.dialect.name);

/** What `--legacy-insecure` (deprecated) means: `--legacy-anonymous datacentred,clementine`. */
export const INSECURE_ANONYMOUS_APIS: readonly string[] = ['datacentred', 'clementine'];

/** Parses `--legacy-anonymous a,b`; throws naming an unknown API. */
export function parseAnonymousApis(value: string): string[] {
  const names = value.split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== '');
  const unknown = names.filter((n) => !LEGACY_API_NAMES.includes(n));
  if (unknown.length > 0) throw new Error(`--legacy-anonymous: unknown legacy API ${unknown.map((u) => JSON.stringify(u)).join(', ')} (known: ${LEGACY_API_NAMES.join(', ')})`);
  return [...new Set(names)];
}

export interface LegacyProxyOptions {
  client: KubeClient;
  /** `host:port` (`[::1]:port` for IPv6); port 0 picks a free one. */
  listen: string;
  /** Legacy APIs (by name, see `LEGACY_API_NAMES`) that admit callers without credentials as `system:anonymous`. */
  anonymous?: readonly string[];
  /** Deprecated: the same as `anonymous: INSECURE_ANONYMOUS_APIS`. */
  insecure?: boolean;
  /** Namespace of anonymous callers. Default `default`. */
  insecureNamespace?: string;
}

export interface LegacyProxy {
  /** `http://host:port` it listens on. */
  url: string;
  address: AddressInfo;
  close(): Promise<void>;
}

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):([0-9]{1,5})$/.exec(listen);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) throw new Error(`--listen ${JSON.stringify(listen)}: expected HOST:PORT`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

interface CompiledRoute {
  route: ApiRoute;
  match: (path: string) => Record<string, string> | undefined;
}

const notFoundDialect = LEGACY_APIS[0]!.dialect;

/** The request handler, without a listener (tests and other servers can mount it). */
export function legacyHandler(opts: Omit<LegacyProxyOptions, 'listen'>): (req: IncomingMessage, res: ServerResponse) => void {
  const tokens = new TokenAuthenticator(opts.client);
  const signatures = new SignatureVerifier(opts.client);
  const groupSource = clientGroupSource(opts.client);
  const grants = new CallerGrants(opts.client);
  const anonymousApis = new Set([...(opts.anonymous ?? []), ...(opts.insecure ? INSECURE_ANONYMOUS_APIS : [])]);
  const apis = LEGACY_APIS.map((api) => ({ api, routes: api.routes.map((route): CompiledRoute => ({ route, match: compile(route.pattern) })) }));
  const logger = log.child({ component: 'legacy' });
  const logins = new LoginRecorder(opts.client, 60_000, (err) => logger.debug({ err: err instanceof Error ? err.message : String(err) }, 'lastLoginTime not written'));

  const authenticate = async (api: LegacyApi, route: ApiRoute, r: LegacyRequest): Promise<Caller> => {
    const unauthorized = new LegacyError(401, 'unauthorized');
    const authorization = header(r.req, 'authorization');
    const username = header(r.req, 'x-username');
    const signature = header(r.req, 'x-signature');
    // Only a request with no credentials at all is anonymous: one that sends any still means
    // its own identity, so a bad token or signature is still refused.
    if (anonymousApis.has(api.dialect.name) && !authorization && !username && !signature) {
      return { namespace: opts.insecureNamespace ?? 'default', user: anonymousUser };
    }
    if (route.auth === 'signature') {
      const body = await r.body();
      const who = await signatures.verify(username, signature, body);
      if (!who) throw unauthorized;
      logins.record(who.user);
      return { namespace: who.namespace, user: await authenticatedUser(who.user, groupSource) };
    }
    const who = await tokens.authenticate(authorization);
    if (!who) throw unauthorized;
    return { namespace: who.namespace, user: await tokenUser(who, groupSource) };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = req.method ?? 'GET';
    let path: string;
    try {
      path = new URL(req.url ?? '/', 'http://legacy').pathname;
    } catch {
      path = '/';
    }
    const owner = apis.find(({ api }) => api.prefixes.some((p) => ownsPath(p, path)));
    let bodyPromise: Promise<Buffer> | undefined;
    const r: LegacyRequest = { req, method, path, params: {}, body: () => (bodyPromise ??= readBody(req)) };
    const dialect = owner?.api.dialect ?? notFoundDialect;
    let response: LegacyResponse;
    try {
      if (!owner) throw new LegacyError(404, 'not found');
      const matching = owner.routes.map((c) => ({ c, params: c.match(path) })).filter((m) => m.params !== undefined);
      const hit = matching.find((m) => m.c.route.method === method);
      if (!hit) {
        if (matching.length === 0) throw new LegacyError(404, 'not found');
        const allow = [...new Set(matching.map((m) => m.c.route.method))].join(', ');
        const err = new LegacyError(405, `method ${method} not allowed (allowed: ${allow})`);
        response = { status: 405, headers: { allow }, json: dialect.errorBody(err) };
      } else {
        r.params = hit.params!;
        const caller = await authenticate(owner.api, hit.c.route, r);
        // A grant that cannot be made now (the API unreachable) is tried again on the next
        // request; this one goes on, so its body is still judged first and an outage is a 503.
        await grants.ensure(owner.api, caller).catch((err: unknown) => logger.warn({ user: caller.user.username, err: err instanceof Error ? err.message : String(err) }, 'cannot grant the legacy caller its role yet'));
        const asCaller = opts.client.impersonating({ user: caller.user.username, groups: caller.user.groups });
        response = await hit.c.route.handler(r, caller, asCaller, opts.client).catch((err: unknown) => {
          throw callerRefusal(err) ?? err;
        });
      }
    } catch (err) {
      const e = fromDownstream(err);
      if (e.status >= 500) logger.warn({ method, path, status: e.status, err: err instanceof Error ? err.message : String(err) }, 'legacy request failed downstream');
      response = { status: e.status, headers: dialect.errorHeaders?.(e) ?? {}, json: dialect.errorBody(e) };
    }
    // Unread bodies (GET, early 401) are drained so keep-alive connections stay usable.
    if (!bodyPromise) req.resume();
    logger.debug({ api: owner?.api.dialect.name, method, path, status: response.status }, 'legacy request');
    if (!res.headersSent) send(res, response);
  };

  return (req, res) => {
    handle(req, res).catch((err: unknown) => {
      logger.error({ err: err instanceof Error ? err.message : String(err) }, 'legacy handler crashed');
      if (!res.headersSent) send(res, { status: 500, json: { error: 'internal error' } });
    });
  };
}

/**
 * A 403 on a request made as the caller is the caller's refusal (RBAC, a quota): the caller
 * sees it as a 403 with the API server's reason. Only the proxy's own identity being refused
 * impersonation is the proxy's problem (a 502, via `fromDownstream`).
 */
function callerRefusal(err: unknown): LegacyError | undefined {
  if (!(err instanceof ApiError) || err.code !== 403 || / cannot impersonate /.test(err.message)) return undefined;
  return new LegacyError(403, `forbidden: ${err.message}`);
}

/** `/host/` owns `/host` and `/host/...`; `/instances` owns `/instances` and `/instances/...`. */
function ownsPath(prefix: string, path: string): boolean {
  const base = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  return path === base || path.startsWith(`${base}/`);
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Starts the proxy on `listen`; resolves once it listens. */
export async function startLegacyProxy(opts: LegacyProxyOptions): Promise<LegacyProxy> {
  const { host, port } = parseListen(opts.listen);
  const server: Server = createServer({ requestTimeout: 60_000, headersTimeout: 30_000 }, legacyHandler(opts));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shown}:${address.port}`,
    address,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * The RBAC a legacy caller holds, granted on its first request: `stratus:legacy-caller` in
 * its namespace (what the old APIs let a caller do with its own objects) and, for the APIs
 * whose callers manage nodes, `stratus:legacy-engines`. Everything else is RBAC's to refuse,
 * and quotas count what the caller creates. Made with the proxy's own client; remembered per
 * process so only the first request pays for it.
 */
class CallerGrants {
  private readonly done = new Map<string, Promise<void>>();

  constructor(private readonly client: KubeClient) {}

  ensure(api: LegacyApi, caller: Caller): Promise<void> {
    const who = caller.user.username;
    const key = `${who}\0${caller.namespace}\0${api.managesNodes ? 'nodes' : ''}`;
    let p = this.done.get(key);
    if (!p) {
      p = (async () => {
        await ensureNamespaceRole(this.client, caller.namespace, who, 'stratus:legacy-caller');
        if (api.managesNodes) await ensureClusterRole(this.client, who, 'stratus:legacy-engines');
      })();
      this.done.set(key, p);
      p.catch(() => this.done.delete(key));
    }
    return p;
  }
}
