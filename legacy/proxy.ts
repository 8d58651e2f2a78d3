/**
 * The legacy proxy: one HTTP listener serving Cloud Brain, DataCentred, clementine and Brume
 * over the Kubernetes API. It holds no state of its own: every write creates or changes an
 * object, every read comes from objects and their status, so the same proxy works against
 * `stratus serve` and against a real cluster with the CRDs installed.
 *
 * Per request: route by path (each API owns its prefixes, so even 404/405 come in that API's
 * error style), authenticate (a Cloud Brain token, Brume's body signature, or nothing for
 * DataCentred/clementine under `insecure`), run the handler, and render any failure in the
 * API's own style. A client's mistake is always a 4xx; the Kubernetes API failing is a
 * 502/503; nothing a client sends can make the proxy throw. Logs carry method, path and
 * status — never headers or bodies, which hold tokens and signatures.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { KubeClient } from '../runtime/client.js';
import { log } from '../runtime/log.js';
import { compile, fromDownstream, LegacyError, readBody, send, type LegacyRequest, type LegacyResponse } from './http.js';
import type { ApiRoute, Caller, LegacyApi } from './api.js';
import { cloudBrainApi } from './cloudbrain.js';
import { dataCentredApi } from './datacentred.js';
import { clementineApi } from './clementine.js';
import { brumeApi } from './brume.js';
import { TokenAuthenticator } from './tokens.js';
import { SignatureVerifier } from './users.js';

export const LEGACY_APIS: readonly LegacyApi[] = [cloudBrainApi, dataCentredApi, clementineApi, brumeApi];

export interface LegacyProxyOptions {
  client: KubeClient;
  /** `host:port` (`[::1]:port` for IPv6); port 0 picks a free one. */
  listen: string;
  /** Serve DataCentred and clementine without a token (they had no authentication). */
  insecure?: boolean;
  /** Namespace of unauthenticated DataCentred/clementine callers under `insecure`. Default `default`. */
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
  const apis = LEGACY_APIS.map((api) => ({ api, routes: api.routes.map((route): CompiledRoute => ({ route, match: compile(route.pattern) })) }));
  const logger = log.child({ component: 'legacy' });

  const authenticate = async (route: ApiRoute, r: LegacyRequest): Promise<Caller> => {
    const unauthorized = new LegacyError(401, 'unauthorized');
    if (route.auth === 'signature') {
      const body = await r.body();
      const username = header(r.req, 'x-username');
      const who = await signatures.verify(username, header(r.req, 'x-signature'), body);
      if (!who) throw unauthorized;
      return { namespace: who.namespace };
    }
    const authorization = header(r.req, 'authorization');
    // Under --legacy-insecure a caller without a token lands in the default namespace; one
    // that sends a token still means its own namespace, so a bad token is still refused.
    if (route.auth === 'token-unless-insecure' && opts.insecure && !authorization) {
      return { namespace: opts.insecureNamespace ?? 'default' };
    }
    const who = await tokens.authenticate(authorization);
    if (!who) throw unauthorized;
    return { namespace: who.namespace };
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
        const caller = await authenticate(hit.c.route, r);
        response = await hit.c.route.handler(r, caller, opts.client);
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
