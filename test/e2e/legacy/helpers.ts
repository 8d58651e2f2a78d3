/**
 * Shared by the legacy e2e tests: `stratus serve` with controllers, the sim node and the
 * legacy proxy on a free port; the `stratus token|user|proxy` commands as child processes;
 * and a small HTTP client that returns status, headers and parsed body.
 */
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { startStratusServe, type StratusServe } from '../../harness/apiserver.js';
import { stratusBin } from '../../harness/paths.js';
import { freePort, startDaemon, waitFor, type Daemon } from '../../harness/process.js';

const execFileP = promisify(execFile);

export interface LegacyServe {
  serve: StratusServe;
  /** `http://127.0.0.1:P` of the legacy APIs. */
  legacy: string;
}

/** `stratus serve --sim-node` with controllers and `--legacy-listen` on a free port. */
export async function startLegacyServe(extraArgs: string[] = [], env: Record<string, string> = {}): Promise<LegacyServe> {
  const port = await freePort();
  const serve = await startStratusServe({ controllers: true, args: ['--sim-node', '--legacy-listen', `127.0.0.1:${port}`, ...extraArgs], env });
  const legacy = `http://127.0.0.1:${port}`;
  if (!serve.output().includes(`legacy APIs at ${legacy}`)) {
    await serve.stop();
    throw new Error(`stratus serve did not report the legacy APIs at ${legacy}:\n${serve.output()}`);
  }
  return { serve, legacy };
}

/** Runs `bin/stratus ARGS` to completion; rejects on a non-zero exit with its output. */
export async function stratus(args: string[]): Promise<{ stdout: string; stderr: string }> {
  try {
    return await execFileP(process.execPath, [stratusBin(), ...args], { env: { ...process.env, STRATUS_LOG_LEVEL: 'warn' } });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`stratus ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

/** `stratus token create` and the token it printed. */
export async function createToken(kubeconfig: string, description: string, namespace = 'default'): Promise<{ token: string; id: string; secret: string; stdout: string }> {
  const { stdout } = await stratus(['token', 'create', description, '--namespace', namespace, '--kubeconfig', kubeconfig]);
  const m = /^generated token: (([0-9]+)-([0-9a-f]{32}))\n$/.exec(stdout);
  if (!m) throw new Error(`unexpected output of token create: ${JSON.stringify(stdout)}`);
  return { token: m[1]!, id: m[2]!, secret: m[3]!, stdout };
}

/** `stratus proxy` alone against a kubeconfig, on a free port. */
export async function startProxy(kubeconfig: string, extra: string[] = []): Promise<{ url: string; daemon: Daemon }> {
  const port = await freePort();
  const daemon = startDaemon(process.execPath, [stratusBin(), 'proxy', '--kubeconfig', kubeconfig, '--listen', `127.0.0.1:${port}`, ...extra], {
    env: { ...process.env, STRATUS_LOG_LEVEL: 'warn' },
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`stratus proxy on ${url}`, () => {
    if (daemon.child.exitCode !== null) throw new Error(`stratus proxy exited:\n${daemon.output()}`);
    return daemon.output().includes(`legacy APIs at ${url}`);
  }, 20_000);
  return { url, daemon };
}

export interface HttpResult {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed JSON body, or `undefined` when empty / not JSON. */
  json: unknown;
}

export async function http(method: string, url: string, opts: { body?: string | Buffer; headers?: Record<string, string> } = {}): Promise<HttpResult> {
  const res = await fetch(url, { method, headers: opts.headers, body: opts.body });
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? (JSON.parse(text) as unknown) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** JSON body + `Authorization: token T`. */
export function tokenHeaders(token: string | undefined): Record<string, string> {
  return { 'content-type': 'application/json', ...(token ? { authorization: `token ${token}` } : {}) };
}

/**
 * An install tree of the DataCentred document's form on 127.0.0.1: the Ubuntu archive's
 * `…/ubuntu/dists/xenial/main/installer-amd64` with its netboot kernel and initrd (tiny
 * stand-ins), so a host POSTed with the document's location installs from here and no test
 * traffic leaves the machine. `mirror` replaces `http://gb.archive.ubuntu.com`.
 */
export async function startInstallTree(): Promise<{ mirror: string; requests: string[]; close(): Promise<void> }> {
  const netboot = '/ubuntu/dists/xenial/main/installer-amd64/current/images/netboot/ubuntu-installer/amd64';
  const files = new Map<string, Buffer>([
    [`${netboot}/linux`, Buffer.from('stand-in installer kernel\n')],
    [`${netboot}/initrd.gz`, Buffer.from('stand-in installer initrd\n')],
  ]);
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(req.url ?? '');
    const body = files.get(req.url ?? '');
    res.writeHead(body ? 200 : 404, { 'content-length': body?.length ?? 0 });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    mirror: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
