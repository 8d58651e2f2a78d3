/**
 * The standalone Kubernetes-compatible API server, assembled: store, catalog (built-ins +
 * CRDs), registry, watch caches, garbage collector and namespace controller, HTTP(S).
 *
 * `startApiServer` resolves once the server accepts requests and `kubeconfigPath` has been
 * written; `close()` drains (stops accepting, ends watches cleanly, lets in-flight writes
 * finish) and closes the store. It knows nothing of the CLI, controllers or the legacy proxy.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { mkdirSync, readFileSync, existsSync } from 'node:fs';
import { isIP, type AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { log } from '../runtime/log.js';
import { instrumentStore, openStore, type Store } from './storage/index.js';
import { loadCrdDir } from './schema/validate.js';
import type { CustomResourceDefinition } from './schema/types.js';
import { ApiError, serviceUnavailable } from './errors.js';
import { createRequestHandler } from './http.js';
import type { Registry as PromRegistry } from 'prom-client';
import { ApiMetrics } from './metrics.js';
import { Registry, type Target } from './registry.js';
import { ResourceCatalog, storageVersion, type KubeObject, type Resource } from './resources.js';
import { WatchCaches, type Subscription } from './watchcache.js';
import type { WatchRegistry } from './watch.js';
import { GarbageCollector } from './gc.js';
import { CachedReads } from './cachedreads.js';
import { withAccessControl } from './auth/filter.js';
import { kubeconfigText, writeKubeconfig } from './auth/kubeconfig.js';
import { clientCertificate, ensurePki, type Pki } from './auth/pki.js';
import { startAccessControl, type AccessControlSetup } from './auth/setup.js';
import { QuotaAdmission } from './quota/admission.js';
import { InstanceDiskAdmission } from './instance-disks.js';
import { InitiatorAdmission } from './initiator.js';
import { GitBackend } from './git/backend.js';
import { GIT_PREFIX } from './git/paths.js';

export interface ApiServerOptions {
  dataDir: string;
  /** host:port; port 0 picks a free one. */
  listen: string;
  etcdServers?: string[];
  /**
   * Bound of each etcd call, retries included (default 5000): without quorum a request is
   * answered 503 ServiceUnavailable (Retry-After) after this long instead of hanging.
   */
  etcdRequestTimeoutMs?: number;
  /** CRDs registered (created or updated) at start. */
  crdDir: string;
  /** Serving certificate and key; default: issued by the data dir's own CA (`pki/`). */
  tlsCertFile?: string;
  tlsKeyFile?: string;
  /** More CAs whose client certificates authenticate (the data dir's CA always does). */
  clientCaFile?: string;
  /** Idle watch heartbeat / bookmark period (default 5 s). */
  heartbeatSeconds?: number;
  /**
   * Every this many seconds, history older than the revision seen one interval earlier is
   * compacted, as kube-apiserver does (default 300; 0 disables).
   */
  compactionIntervalSeconds?: number;
  /**
   * How long `close()` lets in-flight requests finish before it cuts every connection
   * (default 10). Shutdown never waits longer than this for clients.
   */
  drainTimeoutSeconds?: number;
  /** Where the Projects' push remotes live (`git/`); default `DATA_DIR/git`. */
  gitDir?: string;
}

export interface ApiServer {
  /** `https://host:port` clients use. */
  url: string;
  /** The admin kubeconfig (context `stratus`, CN `admin`, O `system:masters`): kubectl and @kubernetes/client-node use it as is. */
  kubeconfigPath: string;
  /** The CA clients trust (PEM). */
  caCert: string;
  store: Store;
  /** The registry `/metrics` serves: components in the same process (the controllers) register on it. */
  metricsRegistry: PromRegistry;
  /**
   * Writes (once; reused while valid) `DATA_DIR/pki/<file>.kubeconfig` with a client
   * certificate for `user` in `groups`: the server's own components (in-process
   * controllers, the legacy proxy) and tests use it to act as a given identity.
   */
  clientKubeconfig(file: string, user: string, groups: string[]): string;
  /**
   * Paths other components serve on this address without credentials (`/login`); add to
   * it before clients need them. See `HttpDeps.openRoutes`.
   */
  openRoutes: Map<string, (req: IncomingMessage, res: ServerResponse) => void>;
  close(): Promise<void>;
}

/** Splits `host:port` / `[v6]:port`. */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(listen.trim());
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!m || host === undefined || host === '' || !(port >= 0 && port <= 65535)) {
    throw new Error(`invalid listen address ${JSON.stringify(listen)}: expected HOST:PORT, e.g. 127.0.0.1:6443`);
  }
  return { host, port };
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || host === '0:0:0:0:0:0:0:1';
  return false;
}

const crdResource = { group: 'apiextensions.k8s.io', plural: 'customresourcedefinitions' };

export async function startApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const { host, port } = parseListen(options.listen);
  if ((options.tlsCertFile === undefined) !== (options.tlsKeyFile === undefined)) {
    throw new Error('--tls-cert-file and --tls-private-key-file must be given together');
  }
  mkdirSync(options.dataDir, { recursive: true });
  const pki: Pki = ensurePki(options.dataDir, host);
  const serving = options.tlsCertFile && options.tlsKeyFile ? { cert: readFileSync(options.tlsCertFile, 'utf8'), key: readFileSync(options.tlsKeyFile, 'utf8') } : pki.serving;
  // With an operator's serving certificate, clients trust what it chains to: the file itself.
  const trustedByClients = options.tlsCertFile ? serving.cert : pki.caCert;
  const clientCas = [pki.caCert, ...(options.clientCaFile ? [readFileSync(options.clientCaFile, 'utf8')] : [])];
  const metrics = new ApiMetrics();
  const useEtcd = Boolean(options.etcdServers?.length);
  const store = instrumentStore(
    openStore({
      dataDir: options.dataDir,
      ...(useEtcd ? { etcdServers: options.etcdServers } : {}),
      ...(options.etcdRequestTimeoutMs !== undefined ? { etcd: { requestTimeoutMs: options.etcdRequestTimeoutMs } } : {}),
    }),
    metrics.registry,
    useEtcd ? 'etcd' : 'sqlite',
  );
  const catalog = new ResourceCatalog();
  const registry = new Registry(store, catalog);
  registry.admission.push(new InstanceDiskAdmission(), new QuotaAdmission(registry, catalog), new InitiatorAdmission());
  const caches = new WatchCaches(store);
  const openWatches: WatchRegistry = new Set();
  const crdRes = catalog.all().find((r) => r.group === crdResource.group && r.plural === crdResource.plural) as Resource;
  const crdTarget: Target = { resource: crdRes, version: storageVersion(crdRes) };
  let crdSub: Subscription | undefined;
  let gc: GarbageCollector | undefined;
  let access: AccessControlSetup | undefined;
  let ready = false;
  // Set by close(): from then on every request, including one on a kept-alive connection,
  // is refused, so nothing new (a watch above all) can start while the server drains.
  let draining = false;
  const openRoutes = new Map<string, (req: IncomingMessage, res: ServerResponse) => void>();

  const applyCrd = (obj: KubeObject, deleted: boolean): void => {
    const crd = obj as unknown as CustomResourceDefinition;
    const name = crd.metadata?.name ?? '';
    try {
      if (deleted) catalog.removeCrd(name);
      else catalog.putCrd(crd);
    } catch (err) {
      log.error({ component: 'apiserver', crd: name, err: String(err) }, 'cannot serve CustomResourceDefinition');
    }
  };

  try {
    registry.hooks.afterWrite = (r, obj, deleted) => {
      if (r === crdRes) applyCrd(obj, deleted);
    };
    // Kinds registered earlier (including by other servers sharing an etcd) come first.
    const crdCache = caches.for(crdRes.keyPrefix);
    await crdCache.start();
    const existing = await registry.list(crdTarget);
    for (const item of existing.items) applyCrd(item, false);
    crdSub = await crdCache.subscribe(Number(existing.resourceVersion), {
      onEvent: (ev) => applyCrd(ev.object, ev.type === 'DELETED'),
      onEnd: () => undefined,
    });
    await bootstrap(registry, catalog, options.crdDir, crdTarget);
    gc = new GarbageCollector(registry, catalog, caches);
    await gc.start();
    access = await startAccessControl({ registry, catalog, caches, auditDir: options.dataDir });

    const handler = withAccessControl(access.accessControl, createRequestHandler({
      registry,
      reads: new CachedReads(registry, caches),
      catalog,
      caches,
      metrics,
      serverAddress: () => `${host}:${boundPort}`,
      ready: () => ready,
      openWatches,
      heartbeatMs: (options.heartbeatSeconds ?? 5) * 1000,
      openRoutes,
    }), (path) => openRoutes.has(path));
    const projectsRes = (): Resource | undefined => catalog.all().find((r) => r.group === 'apps.stratus.dev' && r.plural === 'projects');
    const gitBackend = new GitBackend({
      gitDir: options.gitDir ?? join(options.dataDir, 'git'),
      apiURL: () => url,
      caCert: trustedByClients,
      projectExists: async (namespace, name) => {
        const r = projectsRes();
        if (!r) return false;
        return registry.get({ resource: r, version: storageVersion(r), namespace }, name).then(
          () => true,
          () => false,
        );
      },
    });
    const git = withAccessControl(access.accessControl, gitBackend.handle);
    const guarded = (req: IncomingMessage, res: ServerResponse): void => {
      if (draining) refuseWhileDraining(res);
      else if ((req.url ?? '').startsWith(GIT_PREFIX)) git(req, res);
      else handler(req, res);
    };
    // Client certificates are asked for, not required: token and anonymous requests go on to
    // the authenticator, which refuses a certificate that did not verify.
    const server: Server = createHttpsServer({ cert: serving.cert, key: serving.key, ca: clientCas, requestCert: true, rejectUnauthorized: false }, guarded);
    // Watches are long-lived: no request timeout; idle keep-alive connections are closed.
    server.requestTimeout = 0;
    server.headersTimeout = 60_000;
    server.keepAliveTimeout = 65_000;
    server.on('secureConnection', allowWholeResponsesBuffered);
    server.on('clientError', (_err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      else socket.destroy();
    });
    let boundPort = port;
    let url = '';
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    boundPort = (server.address() as AddressInfo).port;
    const clientHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
    url = `https://${isIP(clientHost) === 6 ? `[${clientHost}]` : clientHost}:${boundPort}`;
    const kubeconfigPath = join(options.dataDir, 'kubeconfig');
    writeKubeconfig(kubeconfigPath, kubeconfigText(url, trustedByClients, 'admin', { certificate: clientCertificate(pki, 'admin', 'admin', ['system:masters']) }));
    const clientKubeconfig = (file: string, user: string, groups: string[]): string => {
      const path = join(pki.dir, `${file}.kubeconfig`);
      writeKubeconfig(path, kubeconfigText(url, trustedByClients, user, { certificate: clientCertificate(pki, file, user, groups) }));
      return path;
    };
    const compaction = startCompaction(store, options.compactionIntervalSeconds ?? 300);
    ready = true;
    log.info({ component: 'apiserver', url, storage: options.etcdServers?.length ? 'etcd' : 'sqlite' }, 'API server ready');

    let closing: Promise<void> | undefined;
    return {
      url,
      kubeconfigPath,
      caCert: trustedByClients,
      store,
      metricsRegistry: metrics.registry,
      clientKubeconfig,
      openRoutes,
      close() {
        closing ??= (async () => {
          ready = false;
          draining = true;
          compaction.stop();
          const closed = new Promise<void>((resolve) => server.close(() => resolve()));
          const endWatchesAndIdle = (): void => {
            for (const end of [...openWatches]) end();
            server.closeIdleConnections();
          };
          endWatchesAndIdle();
          // In-flight requests finish; connections that stay idle are closed as they go idle,
          // and a watch whose set-up was under way when draining began is ended once it opens.
          const idle = setInterval(endWatchesAndIdle, 50);
          const cut = setTimeout(() => {
            log.warn({ component: 'apiserver' }, 'drain timeout: closing the connections still open');
            server.closeAllConnections();
          }, (options.drainTimeoutSeconds ?? 10) * 1000);
          await closed;
          clearInterval(idle);
          clearTimeout(cut);
          crdSub?.close();
          await access?.close();
          await gc?.stop();
          await caches.close();
          await store.close();
        })();
        return closing;
      },
    };
  } catch (err) {
    crdSub?.close();
    await access?.close().catch(() => undefined);
    await gc?.stop().catch(() => undefined);
    await caches.close().catch(() => undefined);
    await store.close().catch(() => undefined);
    throw err;
  }
}

/** The answer to a request that arrives while the server drains: retry elsewhere or later. */
/**
 * Lets a connection buffer a whole response before it counts as backed up. Node's HTTP server
 * pauses a connection's parser when a request arrives while the previous response has not
 * drained (`write()` returned false: more than the 16 KiB high-water mark queued); over TLS the
 * parser reads straight from the TLS stream, whose already-decrypted records keep coming, so the
 * paused parser fails with `HPE_PAUSED`, the connection is reset and the request in progress is
 * lost (seen as ECONNRESET, a 400, or "aborted" logged as a 500 — about a third of sequential
 * 200 KB creates on one keep-alive connection on a busy server). Responses are written whole
 * (`end(text)`), so a larger mark buffers nothing more; it only keeps that pause from happening.
 */
function allowWholeResponsesBuffered(socket: TLSSocket): void {
  const state = (socket as unknown as { _writableState?: { highWaterMark: number } })._writableState;
  if (state) state.highWaterMark = Math.max(state.highWaterMark, RESPONSE_BUFFER_BYTES);
}

/** Past the largest request body (3 MiB) and most LISTs. */
const RESPONSE_BUFFER_BYTES = 64 * 1024 * 1024;

function refuseWhileDraining(res: ServerResponse): void {
  const body = JSON.stringify(serviceUnavailable('the API server is shutting down').toStatus());
  res.writeHead(503, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), Connection: 'close', 'Retry-After': '1' });
  res.end(body);
}

/** Compacts to the revision observed one interval ago, like kube-apiserver's compactor. */
function startCompaction(store: Store, intervalSeconds: number): { stop(): void } {
  if (intervalSeconds <= 0) return { stop: () => undefined };
  let previous = 0;
  const timer = setInterval(() => {
    void (async () => {
      const current = await store.currentRevision();
      if (previous > 0 && previous > (await store.compactedRevision())) await store.compact(previous);
      previous = current;
    })().catch((err: unknown) => log.warn({ component: 'apiserver', err: String(err) }, 'compaction failed'));
  }, intervalSeconds * 1000);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

/** `default` and `kube-system` namespaces, and the CRDs of `crdDir` (created or updated). */
async function bootstrap(registry: Registry, catalog: ResourceCatalog, crdDir: string, crdTarget: Target): Promise<void> {
  const nsRes = catalog.all().find((r) => r.group === '' && r.plural === 'namespaces') as Resource;
  const nsTarget: Target = { resource: nsRes, version: storageVersion(nsRes) };
  for (const name of ['default', 'kube-system', 'kube-public']) {
    try {
      await registry.create(nsTarget, { metadata: { name } }, { fieldManager: 'stratus' });
    } catch (err) {
      if (!(err instanceof ApiError && err.reason === 'AlreadyExists')) throw err;
    }
  }
  if (!existsSync(crdDir)) throw new Error(`CRD directory ${crdDir} does not exist`);
  for (const crd of loadCrdDir(crdDir)) {
    const name = crd.metadata.name;
    try {
      await registry.create(crdTarget, crd, { fieldManager: 'stratus', fieldValidation: 'Ignore' });
    } catch (err) {
      if (!(err instanceof ApiError && err.reason === 'AlreadyExists')) throw wrapCrdError(name, err);
      try {
        const current = await registry.get(crdTarget, name);
        const desired = { ...crd, metadata: { ...(current.metadata ?? {}), labels: crd.metadata.labels, annotations: crd.metadata.annotations } };
        delete (desired.metadata as { resourceVersion?: string }).resourceVersion;
        await registry.update(crdTarget, name, desired, { fieldManager: 'stratus', fieldValidation: 'Ignore' });
      } catch (e) {
        throw wrapCrdError(name, e);
      }
    }
  }
}

function wrapCrdError(name: string, err: unknown): Error {
  return new Error(`cannot register CustomResourceDefinition ${name}: ${err instanceof Error ? err.message : String(err)}`);
}
