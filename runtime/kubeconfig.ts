/**
 * Where a `KubeClient` sends its requests and how it proves who it is: the server URL, and
 * per request the TLS material and auth headers.
 *
 * `@kubernetes/client-node`'s `KubeConfig` knows every kubeconfig form (exec plugins, auth
 * providers, OIDC, token files that rotate, proxies) but loading it costs about 0.6 s of CPU,
 * which every `stratus` command, every git push hook and every server start would pay. So a
 * kubeconfig file is read here first: when its current context uses only the static forms
 * that `stratus serve`, `stratus login` and most clusters write — a server, a CA (file or
 * data) or `insecure-skip-tls-verify`, `tls-server-name`, and a bearer token, a client
 * certificate and key (file or data) or a username and password — it is applied here, as
 * kubectl applies it (relative paths from the file's folder). Any other form loads
 * client-node and lets its `KubeConfig` do the work, unchanged.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import type * as https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';

export interface ClusterAccess {
  /** The API server's base URL, without a trailing slash. */
  readonly server: string;
  /** True when requests must go through the kubeconfig's proxy (the agent `apply` sets). */
  readonly viaProxy: boolean;
  /** Adds TLS material (`ca`, `cert`, `key`, `rejectUnauthorized`, `servername`) and auth (`headers.Authorization`, `auth`) for one request. */
  apply(opts: https.RequestOptions): Promise<void>;
}

/** The access a client-node `KubeConfig` describes (its current context). */
export function accessFromKubeConfig(kc: KubeConfig): ClusterAccess {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig has no current cluster');
  const server = cluster.server.replace(/\/+$/, '');
  return {
    server,
    viaProxy: Boolean(cluster.proxyUrl),
    async apply(opts) {
      try {
        await kc.applyToHTTPSOptions(opts);
      } catch (err) {
        // client-node refuses http:// unless insecure-skip-tls-verify is set; it fails while
        // building its agent, after the auth headers are in `opts`. kubectl accepts plain
        // http (there is no TLS to skip), and so do we: the client's own agent is used anyway.
        if (server.startsWith('https:') || !(err instanceof Error && /HTTP protocol is not allowed/.test(err.message))) throw err;
      }
    },
  };
}

/** Static credentials: what the fast path applies itself. */
export interface StaticAccess {
  server: string;
  /** PEM of the CA that signs the server's certificate (default: the system's roots). */
  ca?: string | Buffer;
  insecureSkipTLSVerify?: boolean;
  tlsServerName?: string;
  token?: string;
  cert?: string | Buffer;
  key?: string | Buffer;
  username?: string;
  password?: string;
}

export function staticAccess(s: StaticAccess): ClusterAccess {
  const server = s.server.replace(/\/+$/, '');
  if (!/^https?:\/\//.test(server)) throw new Error(`kubeconfig server "${s.server}" is not an http(s) URL`);
  return {
    server,
    viaProxy: false,
    apply(opts) {
      if (s.ca !== undefined) opts.ca = s.ca;
      if (s.cert !== undefined) opts.cert = s.cert;
      if (s.key !== undefined) opts.key = s.key;
      if (s.insecureSkipTLSVerify) opts.rejectUnauthorized = false;
      if (s.tlsServerName) opts.servername = s.tlsServerName;
      if (s.token) opts.headers = { ...(opts.headers ?? {}), Authorization: `Bearer ${s.token}` };
      else if (s.username !== undefined) opts.auth = `${s.username}:${s.password ?? ''}`;
      return Promise.resolve();
    },
  };
}

const CLUSTER_KEYS = new Set(['server', 'certificate-authority', 'certificate-authority-data', 'insecure-skip-tls-verify', 'tls-server-name', 'extensions']);
const USER_KEYS = new Set(['token', 'client-certificate', 'client-certificate-data', 'client-key', 'client-key-data', 'username', 'password', 'extensions']);

interface Named<T> {
  name?: string;
  cluster?: T;
  user?: T;
  context?: T;
}
type Fields = Record<string, unknown>;

/**
 * The access of kubeconfig file `path`'s current context: applied here when it is static,
 * else by client-node's `KubeConfig` (loaded on the first request).
 */
export function loadKubeconfigFile(path: string): ClusterAccess {
  const text = readFileSync(path, 'utf8');
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new Error(`kubeconfig ${path} is not YAML: ${(err as Error).message}`);
  }
  const cfg = (typeof doc === 'object' && doc !== null ? doc : {}) as { 'current-context'?: string; contexts?: Named<Fields>[]; clusters?: Named<Fields>[]; users?: Named<Fields>[] };
  const find = (list: Named<Fields>[] | undefined, name: unknown, field: 'cluster' | 'user' | 'context'): Fields | undefined =>
    (Array.isArray(list) ? list : []).find((e) => e?.name === name)?.[field];
  const context = find(cfg.contexts, cfg['current-context'], 'context');
  const cluster = context ? find(cfg.clusters, context.cluster, 'cluster') : undefined;
  if (!cluster || typeof cluster.server !== 'string') throw new Error('kubeconfig has no current cluster');
  const user = (context?.user !== undefined ? find(cfg.users, context.user, 'user') : undefined) ?? {};
  const simple = Object.keys(cluster).every((k) => CLUSTER_KEYS.has(k)) && Object.keys(user).every((k) => USER_KEYS.has(k));
  if (!simple) return lazyClientNode(path, cluster.server, typeof cluster['proxy-url'] === 'string' && cluster['proxy-url'] !== '');

  const here = dirname(path);
  const file = (p: unknown): Buffer | undefined => (typeof p === 'string' && p !== '' ? readFileSync(isAbsolute(p) ? p : join(here, p)) : undefined);
  const data = (d: unknown): Buffer | undefined => (typeof d === 'string' && d !== '' ? Buffer.from(d, 'base64') : undefined);
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
  return staticAccess({
    server: cluster.server,
    ca: data(cluster['certificate-authority-data']) ?? file(cluster['certificate-authority']),
    insecureSkipTLSVerify: cluster['insecure-skip-tls-verify'] === true,
    tlsServerName: str(cluster['tls-server-name']),
    token: str(user.token),
    cert: data(user['client-certificate-data']) ?? file(user['client-certificate']),
    key: data(user['client-key-data']) ?? file(user['client-key']),
    username: str(user.username),
    password: typeof user.password === 'string' ? user.password : undefined,
  });
}

/** client-node's `KubeConfig` for the file, imported and loaded on the first request. */
function lazyClientNode(path: string, server: string, viaProxy: boolean): ClusterAccess {
  let loaded: Promise<ClusterAccess> | undefined;
  const load = (): Promise<ClusterAccess> =>
    (loaded ??= import('@kubernetes/client-node').then(({ KubeConfig }) => {
      const kc = new KubeConfig();
      kc.loadFromFile(path);
      return accessFromKubeConfig(kc);
    }));
  return {
    server: server.replace(/\/+$/, ''),
    viaProxy,
    async apply(opts) {
      await (await load()).apply(opts);
    },
  };
}
