/**
 * `stratus serve`: the standalone control plane — the Kubernetes-compatible API server on
 * SQLite (default) or etcd, HTTPS only, every request authenticated (client certificate or
 * AccessToken) and authorized by RBAC. The admin kubeconfig is `DATA_DIR/kubeconfig`.
 * Prints one line when it listens; SIGTERM/SIGINT drain and exit 0.
 *
 * `--no-controllers`, `--legacy-listen`, `--s3-listen` and `--sim-node` are parsed here and handed to the
 * components registered with `addServeComponent` (controllers, the legacy proxy); the API
 * server itself does not read them.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import type { ApiServer } from '../apiserver/server.js';
import { log } from '../runtime/log.js';

export interface ServeOptions {
  dataDir: string;
  listen: string;
  etcdServers: string[];
  /** `--etcd-request-timeout`: bound of each etcd call, in seconds. */
  etcdRequestTimeoutSeconds: number;
  tlsCertFile?: string;
  tlsPrivateKeyFile?: string;
  clientCaFile?: string;
  crdDir: string;
  controllers: boolean;
  legacyListen: string;
  /** Deprecated alias of `legacyAnonymous: ['datacentred', 'clementine']`. */
  legacyInsecure: boolean;
  /** Legacy APIs admitting callers without credentials as `system:anonymous`. */
  legacyAnonymous: string[];
  simNode: boolean;
  /** LDAP login (`POST /login`), when `--ldap-url` is given. */
  ldap?: {
    url: string;
    baseDN: string;
    userAttribute?: string;
    bindDN?: string;
    bindPasswordFile?: string;
    userNamespace: string;
    tokenTtlSeconds: number;
  };
  /** `--dns-listen`, `--dns-zone`, `--dns-ttl`: the embedded DNS server (cli/serve-dns.ts). */
  dnsListen: string;
  dnsZone: string;
  dnsTtl: string;
  /** `--s3-listen` (`off` disables) and `--s3-domain`: the object store (cli/serve-s3.ts). */
  s3Listen: string;
  s3Domain: string;
}

/** Something `serve` runs next to the API server (controllers, the legacy proxy). */
export type ServeComponent = (server: ApiServer, options: ServeOptions) => Promise<{ close(): Promise<void> }>;

const components: ServeComponent[] = [];

/** Registers a component started after the API server and stopped before it, in reverse order. */
export function addServeComponent(c: ServeComponent): void {
  components.push(c);
}

/** The `crds/` directory of this installation (next to package.json). */
export function defaultCrdDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'crds'))) return join(dir, 'crds');
    const up = dirname(dir);
    if (up === dir) return resolve('crds');
    dir = up;
  }
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the standalone control plane: a Kubernetes-compatible API server (SQLite or etcd) and the controllers')
    .option('--data-dir <dir>', 'where the SQLite database and the kubeconfig live', './data')
    .option('--listen <host:port>', 'address of the Kubernetes API', '127.0.0.1:6443')
    .option('--etcd-servers <urls>', 'comma-separated etcd client URLs (instead of SQLite)')
    .option('--etcd-request-timeout <seconds>', 'bound of each etcd request, retries included; without quorum the API answers 503 after it', '5')
    .option('--tls-cert-file <file>', 'serving certificate (default: issued by the CA in DATA_DIR/pki, created on first start)')
    .option('--tls-private-key-file <file>', 'the private key of --tls-cert-file')
    .option('--client-ca-file <file>', 'also accept client certificates signed by these CAs (CN = user, O = groups)')
    .option('--crd-dir <dir>', 'CustomResourceDefinitions registered at start', defaultCrdDir())
    .option('--no-controllers', 'serve the API only, without the controllers')
    .option('--legacy-listen <host:port>', 'address of the legacy REST proxy', '127.0.0.1:8080')
    .option('--legacy-anonymous <apis>', 'legacy APIs (comma-separated: datacentred, clementine, cloudbrain, brume) that admit callers without credentials as system:anonymous')
    .option('--legacy-insecure', 'deprecated: the same as --legacy-anonymous datacentred,clementine', false)
    .option('--ldap-url <url>', 'LDAP directory (ldap://host:port) for `stratus login`')
    .option('--ldap-base-dn <dn>', 'where LDAP users and groups are searched, e.g. dc=example,dc=org')
    .option('--ldap-user-attribute <attr>', 'LDAP attribute holding the login name', 'uid')
    .option('--ldap-bind-dn <dn>', 'DN to search LDAP as (default: anonymous search)')
    .option('--ldap-bind-password-file <file>', 'file holding the password of --ldap-bind-dn')
    .option('--ldap-user-namespace <ns>', 'namespace of the legacy objects of Users created at their first login', 'default')
    .option('--login-token-ttl <seconds>', 'lifetime of the tokens `stratus login` obtains', '28800')
    .option('--sim-node', 'register a simulated compute node', false)
    .option('--dns-listen <host:port>', 'UDP and TCP address of the embedded DNS server ("off" disables)', '127.0.0.1:5353')
    .option('--dns-zone <zone>', 'the zone the embedded DNS server answers for', 'stratus.internal')
    .option('--dns-ttl <seconds>', 'TTL of the embedded zone\'s records', '60')
    .option('--s3-listen <host:port>', 'address of the S3-compatible object store ("off" disables)', '127.0.0.1:9000')
    .option('--s3-domain <domain>', 'virtual-host-style S3 requests address BUCKET.DOMAIN', 'localhost')
    .action(async (raw: Record<string, unknown>) => {
      // The server's modules load here, not at the top: every other `stratus` command would pay for them.
      const { parseAnonymousApis } = await import('../legacy/proxy.js');
      const options: ServeOptions = {
        dataDir: String(raw.dataDir),
        listen: String(raw.listen),
        etcdServers: typeof raw.etcdServers === 'string' ? raw.etcdServers.split(',').map((s) => s.trim()).filter((s) => s !== '') : [],
        etcdRequestTimeoutSeconds: etcdRequestTimeout(raw.etcdRequestTimeout),
        ...(typeof raw.tlsCertFile === 'string' ? { tlsCertFile: raw.tlsCertFile } : {}),
        ...(typeof raw.tlsPrivateKeyFile === 'string' ? { tlsPrivateKeyFile: raw.tlsPrivateKeyFile } : {}),
        ...(typeof raw.clientCaFile === 'string' ? { clientCaFile: raw.clientCaFile } : {}),
        crdDir: String(raw.crdDir),
        controllers: raw.controllers !== false,
        legacyListen: String(raw.legacyListen),
        simNode: raw.simNode === true,
        legacyInsecure: raw.legacyInsecure === true,
        legacyAnonymous: typeof raw.legacyAnonymous === 'string' ? parseAnonymousApis(raw.legacyAnonymous) : [],
        ...ldapOptions(raw),
        dnsListen: String(raw.dnsListen),
        dnsZone: String(raw.dnsZone),
        dnsTtl: String(raw.dnsTtl),
        s3Listen: String(raw.s3Listen),
        s3Domain: String(raw.s3Domain).toLowerCase(),
      };
      await serve(options);
    });
}

function etcdRequestTimeout(raw: unknown): number {
  const seconds = Number(raw);
  if (!Number.isFinite(seconds) || seconds < 0.1 || seconds > 600) throw new Error(`--etcd-request-timeout ${String(raw)}: expected seconds between 0.1 and 600`);
  return seconds;
}

function ldapOptions(raw: Record<string, unknown>): Pick<ServeOptions, 'ldap'> {
  if (typeof raw.ldapUrl !== 'string') return {};
  if (!/^ldaps?:\/\//.test(raw.ldapUrl)) throw new Error(`--ldap-url ${JSON.stringify(raw.ldapUrl)}: expected ldap://HOST:PORT or ldaps://HOST:PORT`);
  if (typeof raw.ldapBaseDn !== 'string' || raw.ldapBaseDn === '') throw new Error('--ldap-url needs --ldap-base-dn');
  const ttl = Number(raw.loginTokenTtl);
  if (!Number.isInteger(ttl) || ttl < 60 || ttl > 31 * 86400) throw new Error(`--login-token-ttl ${String(raw.loginTokenTtl)}: expected whole seconds between 60 and 2678400`);
  return {
    ldap: {
      url: raw.ldapUrl,
      baseDN: raw.ldapBaseDn,
      userAttribute: String(raw.ldapUserAttribute),
      ...(typeof raw.ldapBindDn === 'string' ? { bindDN: raw.ldapBindDn } : {}),
      ...(typeof raw.ldapBindPasswordFile === 'string' ? { bindPasswordFile: raw.ldapBindPasswordFile } : {}),
      userNamespace: String(raw.ldapUserNamespace),
      tokenTtlSeconds: ttl,
    },
  };
}

export async function serve(options: ServeOptions): Promise<void> {
  const { startApiServer } = await import('../apiserver/server.js');
  const server = await startApiServer({
    dataDir: options.dataDir,
    listen: options.listen,
    etcdServers: options.etcdServers,
    etcdRequestTimeoutMs: options.etcdRequestTimeoutSeconds * 1000,
    crdDir: options.crdDir,
    ...(options.tlsCertFile ? { tlsCertFile: options.tlsCertFile } : {}),
    ...(options.tlsPrivateKeyFile ? { tlsKeyFile: options.tlsPrivateKeyFile } : {}),
    ...(options.clientCaFile ? { clientCaFile: options.clientCaFile } : {}),
  });
  const running: { close(): Promise<void> }[] = [];
  let stopping: Promise<void> | undefined;
  const stop = (signal: string): Promise<void> => {
    stopping ??= (async () => {
      log.info({ component: 'serve', signal }, 'draining');
      for (const c of running.reverse()) await c.close().catch((err: unknown) => log.error({ err: String(err) }, 'component did not stop cleanly'));
      await server.close();
    })();
    return stopping;
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    void stop(signal).then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`stratus: shutdown failed: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  try {
    for (const c of components) running.push(await c(server, options));
  } catch (err) {
    await stop('startup failure');
    throw err;
  }
  process.stdout.write(
    `stratus: serving the Kubernetes API at ${server.url} (${options.etcdServers.length ? `etcd ${options.etcdServers.join(',')}` : 'SQLite'}; kubeconfig ${server.kubeconfigPath})\n`,
  );
  // Keep running until a signal arrives.
  await new Promise<never>(() => undefined);
}
