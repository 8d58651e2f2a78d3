/**
 * `bin/stratus serve` for tests: a private data dir, a free loopback port, SQLite unless etcd
 * servers are given. Needs `make build` (dist/). Controllers are off unless asked for, so API
 * server tests see only what they do themselves. The server speaks HTTPS only; `fetch` talks
 * to it as the admin of the kubeconfig it wrote (CN admin, O system:masters).
 */
import { spawn } from 'node:child_process';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { readdirSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { stratusBin } from './paths.js';
import { kubeFetch, type KubeFetch } from './kubefetch.js';
import { freePort, removeDir, requireBinary, startDaemon, tempDir, waitFor, type Daemon } from './process.js';

export interface StratusServeOptions {
  etcdServers?: string[];
  /** Extra arguments for `stratus serve`. */
  args?: string[];
  /** Run the controllers too (default: `--no-controllers`). */
  controllers?: boolean;
  env?: Record<string, string>;
  /** Serve with this certificate and key instead of one from the server's own CA. */
  tls?: { certFile: string; keyFile: string };
  /** How long start-up (and each restart) may take before it counts as failed (default 30 s). */
  readyTimeoutMs?: number;
  /** Keep the data here (a directory the test owns, e.g. on a small filesystem) instead of a fresh temp dir. */
  dataDir?: string;
  /** Receives everything the server prints (stdout and stderr), unbounded, as it comes. */
  onOutput?: (chunk: string) => void;
}

export interface StratusServe {
  url: string;
  /** Path of the admin kubeconfig the server wrote. */
  kubeconfig: string;
  /** `fetch(url + path)` as the admin (client certificate of the kubeconfig). */
  fetch: KubeFetch;
  dataDir: string;
  /** PID of the running server (changes after `restart`). */
  readonly pid: number;
  /** Output of the current process so far (for failure messages). */
  output(): string;
  /** SIGTERM and wait; resolves to the exit code. The data dir stays. */
  terminate(): Promise<number | null>;
  /** Stops (SIGTERM, then SIGKILL after 10 s) and removes the data dir. */
  stop(): Promise<void>;
  /** SIGKILL now; the data dir stays. */
  kill(): Promise<void>;
  /** Stops gracefully if running, then starts again on the same data dir and port. */
  restart(): Promise<void>;
}

export async function startStratusServe(options: StratusServeOptions = {}): Promise<StratusServe> {
  const root = await tempDir('serve');
  const dataDir = options.dataDir ?? join(root, 'data');
  const port = await freePort();
  const url = `https://127.0.0.1:${port}`;
  const args = [
    stratusBin(),
    'serve',
    '--data-dir',
    dataDir,
    '--listen',
    `127.0.0.1:${port}`,
    ...(options.etcdServers?.length ? ['--etcd-servers', options.etcdServers.join(',')] : []),
    ...(options.controllers ? [] : ['--no-controllers']),
    ...(options.tls ? ['--tls-cert-file', options.tls.certFile, '--tls-private-key-file', options.tls.keyFile] : []),
    // a free port for the legacy proxy, so servers of several tests never collide (args may override)
    '--legacy-listen',
    `127.0.0.1:${await freePort()}`,
    // and for the embedded DNS server (UDP and TCP on one free port; the line it prints names it)
    '--dns-listen',
    '127.0.0.1:0',
    // and for the S3 endpoint (the line it prints names the port: see s3Url)
    '--s3-listen',
    '127.0.0.1:0',
    ...(options.args ?? []),
  ];
  let daemon: Daemon | undefined;
  let exitCode: number | null = null;

  const launch = async (): Promise<void> => {
    const d = startDaemon(process.execPath, args, {
      env: { ...process.env, STRATUS_LOG_LEVEL: process.env.STRATUS_LOG_LEVEL ?? 'warn', ...options.env },
    });
    daemon = d;
    if (options.onOutput) {
      const forward = (b: Buffer): void => options.onOutput?.(b.toString());
      d.child.stdout?.on('data', forward);
      d.child.stderr?.on('data', forward);
    }
    void d.exited.then((code) => {
      exitCode = code;
    });
    let exited = false;
    const early = d.exited.then((code) => {
      exited = true;
      throw new Error(`stratus serve exited with ${code} before it was ready:\n${d.output()}`);
    });
    early.catch(() => undefined);
    try {
      await Promise.race([
        early,
        waitFor(
          `stratus serve on ${url}`,
          async () => {
            if (exited) return true;
            if (!d.output().includes('serving the Kubernetes API at')) return false;
            return (await probe(`${url}/readyz`)) === 200;
          },
          // A guard against a hang, not a performance figure: a restart after SIGKILL on a
          // loaded 2-core machine has taken over 30 s (bench/ measures the start time).
          options.readyTimeoutMs ?? 60_000,
          50,
        ),
      ]);
      if (exited) await early;
    } catch (err) {
      await d.kill();
      throw err instanceof Error && err.message.includes(d.output()) ? err : new Error(`${err instanceof Error ? err.message : String(err)}\n${d.output()}`);
    }
  };

  try {
    await launch();
  } catch (err) {
    await removeDir(root);
    throw err;
  }
  let adminFetch: KubeFetch | undefined;
  return {
    url,
    kubeconfig: join(dataDir, 'kubeconfig'),
    // Built on first use: the CA and certificate stay the same across restarts.
    fetch: (u, init) => (adminFetch ??= kubeFetch(join(dataDir, 'kubeconfig')))(u, init),
    dataDir,
    get pid() {
      return daemon?.pid ?? 0;
    },
    output: () => daemon?.output() ?? '',
    async terminate() {
      await daemon?.stop(10_000);
      await daemon?.exited;
      return exitCode;
    },
    async stop() {
      try {
        await daemon?.stop(10_000);
      } finally {
        await removeDir(root);
      }
    },
    async kill() {
      await daemon?.kill();
    },
    async restart() {
      await daemon?.stop(10_000);
      await launch();
    },
  };
}

/** GET a URL (http or https, certificate not verified); resolves to the status code. */
export function probe(target: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = (target.startsWith('https:') ? httpsGet : httpGet)(target, { rejectUnauthorized: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
  });
}

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the real `/usr/bin/kubectl` against a kubeconfig, with a private discovery cache dir.
 * Never throws on a non-zero exit: tests assert on `code` and the output.
 */
export function kubectl(kubeconfig: string, cacheDir: string, args: string[], stdin?: string, timeoutMs = 60_000): Promise<KubectlResult> {
  return kubectlWith(requireBinary('kubectl', KUBECTL_SOURCE), kubeconfig, cacheDir, args, stdin, timeoutMs);
}

/** Where kubectl comes from: Debian has no package; the machine image installs Google's. */
const KUBECTL_SOURCE = 'the machine image (Google Cloud SDK\'s kubectl package, which brings kubectl.1.27 … kubectl.1.33 beside it)';

/**
 * The versioned kubectl binaries installed beside `kubectl` (Google's package ships
 * `kubectl.1.NN` for each supported minor), oldest first. Fails if there are none.
 */
export function kubectlVersions(): { minor: string; bin: string }[] {
  const dir = dirname(realpathSync(requireBinary('kubectl', KUBECTL_SOURCE)));
  const found = readdirSync(dir)
    .map((f) => /^kubectl\.(1\.\d+)$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ minor: m[1] ?? '', bin: join(dir, m[0]) }))
    .sort((a, b) => Number(a.minor.split('.')[1]) - Number(b.minor.split('.')[1]));
  if (found.length === 0) throw new Error(`no versioned kubectl.1.NN binaries beside ${dir}/kubectl: install them from ${KUBECTL_SOURCE}`);
  return found;
}

/** `kubectl` with a given binary (see `kubectlVersions`). */
export function kubectlWith(bin: string, kubeconfig: string, cacheDir: string, args: string[], stdin?: string, timeoutMs = 60_000): Promise<KubectlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ['--kubeconfig', kubeconfig, '--cache-dir', cacheDir, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(stdin ?? '');
  });
}

/** A long-running kubectl (`get -w`, `wait`) whose output the test reads while it runs. */
export function kubectlBackground(kubeconfig: string, cacheDir: string, args: string[]): { output(): string; stop(): Promise<number | null>; exited: Promise<number | null> } {
  const bin = requireBinary('kubectl', KUBECTL_SOURCE);
  const d = startDaemon(bin, ['--kubeconfig', kubeconfig, '--cache-dir', cacheDir, ...args]);
  return {
    output: () => d.output(),
    exited: d.exited,
    async stop() {
      await d.stop(2000);
      return d.exited;
    },
  };
}
