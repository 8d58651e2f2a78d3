/**
 * Real Docker engines for tests: a private CA and certificates (openssl), dockerd in a
 * private temp dir (own data root, exec root, bridge, pidfile, TLS port on 127.0.0.1), and a
 * busybox image imported from a rootfs tar (no registry is reachable here).
 *
 * Two engines side by side work: each has its own bridge (unique name, a random /24 inside
 * 10.200.0.0–10.255.255.0, only ever the engine's private bridge), its own cgroup parent and
 * its own containerd under its exec root. `stop()` and `kill()` stop by PID; `stop()` after a
 * `kill()` also ends what the killed engine left behind (its containerd, shims and container
 * processes, found through the engine's own temp dir) and unmounts its leftovers, so a test
 * can always clean up in `after()`.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { mkdir, readFile, readdir, symlink, writeFile, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import Docker from 'dockerode';
import type { ComputeNode } from '../../crds/types.js';
import { Resources } from '../../controllers/resources.js';
import { CoreResources, type KubeClient, type KubeObject } from '../../runtime/client.js';
import { execFileP, freePort, pidAlive, removeDir, requireBinary, startDaemon, tempDir, waitFor, type Daemon } from './process.js';

export interface CertBundle {
  /** PEM contents, as a Secret would hold them (`ca.pem`, `cert.pem`, `key.pem`). */
  ca: string;
  cert: string;
  key: string;
  caPath: string;
  certPath: string;
  keyPath: string;
  serverCertPath: string;
  serverKeyPath: string;
  /** A client certificate and key issued by a different CA, which the engines must refuse. */
  wrongCert: string;
  wrongKey: string;
  /** That other CA, which does not sign the engines' server certificate. */
  wrongCa: string;
  dir: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  await execFileP(requireBinary('openssl'), args, { cwd });
}

async function makeCa(dir: string, name: string): Promise<void> {
  await openssl(
    [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', `${name}-key.pem`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${name}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
}

async function issue(dir: string, ca: string, name: string, extensions: string): Promise<void> {
  await openssl(
    ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', `/CN=${name}`],
    dir,
  );
  await writeFile(join(dir, `${name}.ext`), extensions);
  await openssl(
    ['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}-key.pem`, '-CAcreateserial',
      '-out', `${name}-cert.pem`, '-days', '2', '-extfile', `${name}.ext`],
    dir,
  );
}

/**
 * One CA with a server certificate (SAN `IP:127.0.0.1,DNS:localhost`) and a client
 * certificate, plus a second CA with its own client certificate for the wrong-cert tests.
 */
export async function makeCerts(dir: string): Promise<CertBundle> {
  await mkdir(dir, { recursive: true });
  await makeCa(dir, 'ca');
  await makeCa(dir, 'wrong-ca');
  await issue(dir, 'ca', 'server', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  await issue(dir, 'ca', 'client', 'extendedKeyUsage=clientAuth\n');
  await issue(dir, 'wrong-ca', 'wrong-client', 'extendedKeyUsage=clientAuth\n');
  const read = (f: string): Promise<string> => readFile(join(dir, f), 'utf8');
  return {
    dir,
    ca: await read('ca.pem'),
    cert: await read('client-cert.pem'),
    key: await read('client-key.pem'),
    caPath: join(dir, 'ca.pem'),
    certPath: join(dir, 'client-cert.pem'),
    keyPath: join(dir, 'client-key.pem'),
    serverCertPath: join(dir, 'server-cert.pem'),
    serverKeyPath: join(dir, 'server-key.pem'),
    wrongCert: await read('wrong-client-cert.pem'),
    wrongKey: await read('wrong-client-key.pem'),
    wrongCa: await read('wrong-ca.pem'),
  };
}

export interface Dockerd {
  /** `tcp://127.0.0.1:P`, TLS with client certificates from the bundle's CA; `unix://SOCKET` for an engine in a netns. */
  address: string;
  port: number;
  /** Path of the engine's unix socket (no TLS), for test setup. */
  socket: string;
  /** PID of the running engine (changes after `restart`). */
  readonly pid: number;
  bridge: string;
  /** The bridge's address in CIDR form, e.g. `10.213.7.1/24`. */
  bridgeCidr: string;
  dir: string;
  /** A dockerode client on the unix socket, for setup and for checks behind stratus's back. */
  client: Docker;
  output(): string;
  /** SIGTERM (containers are stopped), then removes the bridge and the temp dir. Safe to call twice. */
  stop(): Promise<void>;
  /** SIGKILL the engine only: its containers keep running until `stop()`. */
  kill(): Promise<void>;
  /**
   * Starts the engine again (after `kill`) on the same data root, socket, port and bridge;
   * resolves once `/_ping` answers. What becomes of the containers is the engine's business.
   */
  restart(): Promise<void>;
}

/** Addresses already on this host, so a new bridge never overlaps one. */
async function takenSubnets(): Promise<Set<string>> {
  const { stdout } = await execFileP(requireBinary('ip'), ['-4', '-o', 'addr', 'show']);
  const taken = new Set<string>();
  for (const m of stdout.matchAll(/inet (\d+)\.(\d+)\.(\d+)\.\d+\//g)) taken.add(`${m[1]}.${m[2]}.${m[3]}`);
  return taken;
}

async function createBridge(netns?: string): Promise<{ bridge: string; cidr: string }> {
  const ip = requireBinary('ip');
  const inNs = (args: string[]): string[] => (netns ? ['-n', netns, ...args] : args);
  const bridge = `strd${randomBytes(5).toString('hex')}`; // 14 chars, under IFNAMSIZ
  const taken = await takenSubnets();
  let prefix = '';
  for (let i = 0; i < 100 && !prefix; i++) {
    const candidate = `10.${200 + Math.floor(Math.random() * 56)}.${Math.floor(Math.random() * 256)}`;
    if (!taken.has(candidate)) prefix = candidate;
  }
  if (!prefix) throw new Error('no free 10.2xx.x.0/24 subnet for a test bridge');
  const cidr = `${prefix}.1/24`;
  await execFileP(ip, inNs(['link', 'add', bridge, 'type', 'bridge']));
  try {
    await execFileP(ip, inNs(['addr', 'add', cidr, 'dev', bridge]));
    await execFileP(ip, inNs(['link', 'set', bridge, 'up']));
  } catch (err) {
    await deleteBridge(bridge, netns);
    throw err;
  }
  return { bridge, cidr };
}

async function deleteBridge(bridge: string, netns?: string): Promise<void> {
  try {
    await execFileP(requireBinary('ip'), [...(netns ? ['-n', netns] : []), 'link', 'del', bridge]);
  } catch (err) {
    const text = String((err as { stderr?: string }).stderr ?? err);
    if (!/Cannot find device|does not exist/.test(text)) throw err;
  }
}

interface ProcInfo {
  pid: number;
  ppid: number;
  cmdline: string;
}

async function processTable(): Promise<ProcInfo[]> {
  const out: ProcInfo[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = await readFile(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const cmdline = (await readFile(`/proc/${name}/cmdline`, 'utf8')).replaceAll('\0', ' ');
      out.push({ pid: Number(name), ppid, cmdline });
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

/**
 * Ends what a killed engine left behind: every process whose command line names the engine's
 * private dir (its containerd and the shims) and all their descendants (the containers),
 * children first. Only PIDs traced from our own temp dir are signalled.
 */
async function killLeftovers(dir: string): Promise<void> {
  const table = await processTable();
  const roots = table.filter((p) => p.cmdline.includes(dir + '/') && p.pid !== process.pid);
  const victims = new Set<number>();
  const addTree = (pid: number): void => {
    if (victims.has(pid)) return;
    victims.add(pid);
    for (const child of table.filter((p) => p.ppid === pid)) addTree(child.pid);
  };
  for (const r of roots) addTree(r.pid);
  // SIGKILL cannot be caught, so the order does not matter; children go first anyway.
  const ordered = [...victims].reverse();
  for (const pid of ordered) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await waitFor('leftover engine processes to exit', () => ordered.every((pid) => !pidAlive(pid) || isZombie(pid)), 10_000);
}

/** A zombie has exited; only its parent (which may be gone itself) can reap it. */
function isZombie(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return true;
  }
}

async function killContainers(client: Docker): Promise<void> {
  const signal = AbortSignal.timeout(5000);
  const running = await client.listContainers({ abortSignal: signal });
  await Promise.all(running.map((c) => client.getContainer(c.Id).kill({ abortSignal: signal }).catch(() => undefined)));
}

/** Unmounts everything mounted under `dir` (shm, netns files of a killed engine), deepest first. */
async function unmountUnder(dir: string): Promise<void> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  const points = info
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => !!p && (p === dir || p.startsWith(dir + '/')))
    .sort((a, b) => b.length - a.length);
  for (const p of points) {
    try {
      await execFileP(requireBinary('umount'), ['-l', p]);
    } catch {
      // already unmounted by the engine
    }
  }
}

/**
 * Starts a private dockerd with TLS on a free 127.0.0.1 port, per ENVIRONMENT.md: vfs storage,
 * no iptables / ip forwarding / masquerading, its own bridge. Resolves once `/_ping` answers.
 *
 * With `netns`, the engine and its bridge live in that (test-made) network namespace — only
 * its network namespace: `nsenter --net`, so its mounts stay visible — and it listens on its
 * unix socket alone (`address` is `unix://…`; a TCP port would be on the namespace's loopback).
 */
export async function startDockerd(options: { certs: CertBundle } | { netns: string }): Promise<Dockerd> {
  const netns = 'netns' in options ? options.netns : undefined;
  const certs = 'certs' in options ? options.certs : undefined;
  const dockerdBin = requireBinary('dockerd');
  const proxyBin = requireBinary('docker-proxy');
  requireBinary('containerd');
  requireBinary('runc');
  const dir = await tempDir('dockerd');
  let bridge: string | undefined;
  try {
    const made = await createBridge(netns);
    bridge = made.bridge;
    const port = await freePort();
    const socket = join(dir, 'docker.sock');
    await writeFile(join(dir, 'daemon.json'), '{}\n');
    const tcp = certs
      ? ['-H', `tcp://127.0.0.1:${port}`, '--tlsverify', '--tlscacert', certs.caPath, '--tlscert', certs.serverCertPath, '--tlskey', certs.serverKeyPath]
      : [];
    const [cmd, prefix] = netns ? [requireBinary('nsenter'), [`--net=/run/netns/${netns}`, '--', dockerdBin]] : [dockerdBin, []];
    const launch = (): Daemon => startDaemon(
      cmd,
      [
        ...prefix,
        '--config-file', join(dir, 'daemon.json'),
        '--data-root', join(dir, 'root'),
        '--exec-root', join(dir, 'exec'),
        '--pidfile', join(dir, 'docker.pid'),
        '-H', `unix://${socket}`,
        ...tcp,
        '--storage-driver=vfs',
        '--iptables=false',
        '--ip6tables=false',
        '--ip-forward=false',
        '--ip-masq=false',
        `--bridge=${bridge}`,
        `--cgroup-parent=${bridge}`,
        '--userland-proxy-path', proxyBin,
        '--shutdown-timeout=1',
        '--log-level=warn',
      ],
      { env: { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin:/usr/bin:/bin` } },
    );
    let daemon = launch();
    const client = new Docker({ socketPath: socket });
    const answering = (): Promise<unknown> =>
      waitFor(
        `dockerd on ${socket} to answer /_ping`,
        async () => {
          if (!pidAlive(daemon.pid)) throw new Error(`dockerd exited:\n${daemon.output().slice(-2000)}`);
          const pong = await client.ping();
          return String(pong) === 'OK';
        },
        20_000,
        50,
      );
    const engineBridge = bridge;
    let stopped = false;
    const engine: Dockerd = {
      address: certs ? `tcp://127.0.0.1:${port}` : `unix://${socket}`,
      port: certs ? port : 0,
      socket,
      get pid() {
        return daemon.pid;
      },
      bridge: engineBridge,
      bridgeCidr: made.cidr,
      dir,
      client,
      output: () => daemon.output(),
      async kill() {
        await daemon.kill();
      },
      async restart() {
        if (pidAlive(daemon.pid)) await daemon.kill();
        daemon = launch();
        await answering();
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        // Containers whose init ignores SIGTERM would hold dockerd's shutdown for their full
        // stop timeout; kill them first (a dead engine simply fails this step).
        await killContainers(client).catch(() => undefined);
        await daemon.stop(15_000);
        await killLeftovers(dir);
        await unmountUnder(dir);
        await deleteBridge(engineBridge, netns);
        await removeDir(dir);
      },
    };
    try {
      await answering();
    } catch (err) {
      await engine.stop();
      throw err;
    }
    return engine;
  } catch (err) {
    if (bridge) await deleteBridge(bridge, netns).catch(() => undefined);
    await unmountUnder(dir).catch(() => undefined);
    await removeDir(dir).catch(() => undefined);
    throw err;
  }
}

/** The image `importBusybox` creates. */
export const BUSYBOX_IMAGE = 'stratus/busybox:1';
/** What `/www/index.html` in that image holds, for HTTP checks. */
export const BUSYBOX_INDEX = '<h1>stratus busybox</h1>\n';

let rootfsTar: Promise<string> | undefined;

/** Builds (once per process) a rootfs tar: /bin/busybox, its applet links, /www/index.html. */
async function busyboxRootfs(): Promise<string> {
  const busybox = requireBinary('busybox', 'make deps-apt (busybox-static)');
  const tar = requireBinary('tar');
  const dir = await tempDir('busybox-rootfs');
  const root = join(dir, 'rootfs');
  for (const d of ['bin', 'etc', 'www', 'tmp', 'proc', 'sys', 'dev', 'root']) await mkdir(join(root, d), { recursive: true });
  await copyFile(busybox, join(root, 'bin', 'busybox'));
  const { stdout } = await execFileP(busybox, ['--list']);
  for (const applet of stdout.split('\n').map((s) => s.trim())) {
    if (!applet || applet === 'busybox' || applet.includes('/')) continue;
    await symlink('busybox', join(root, 'bin', applet));
  }
  await writeFile(join(root, 'www', 'index.html'), BUSYBOX_INDEX);
  await writeFile(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  await writeFile(join(root, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
  const tarPath = join(dir, 'rootfs.tar');
  await execFileP(tar, ['-C', root, '--numeric-owner', '--owner=0', '--group=0', '-cf', tarPath, '.']);
  // The tar outlives this call for the rest of the process; remove it at exit.
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return tarPath;
}

/**
 * Imports the busybox rootfs into `engine` as `stratus/busybox:1` (or `as`, with Dockerfile
 * `changes` such as `CMD ["sleep", "3600"]`) and returns that reference.
 */
export async function importBusybox(engine: Pick<Dockerd, 'client'>, options: { as?: string; changes?: string[] } = {}): Promise<string> {
  rootfsTar ??= busyboxRootfs();
  const tarPath = await rootfsTar;
  const ref = options.as ?? BUSYBOX_IMAGE;
  const [repo, tag] = ref.split(':') as [string, string];
  const stream = await engine.client.importImage(tarPath, { repo, tag, ...(options.changes ? { changes: options.changes } : {}) });
  await new Promise<void>((resolve, reject) => {
    engine.client.modem.followProgress(stream, (err: Error | null, events: Array<{ error?: string }>) => {
      const failed = events.find((e) => e.error);
      if (err) reject(err);
      else if (failed) reject(new Error(`docker import failed: ${failed.error}`));
      else resolve();
    });
  });
  return ref;
}

/**
 * Registers `engine` with a stratus API as a Docker ComputeNode, the way an operator does:
 * a Secret holding the client certificate bundle, then the ComputeNode naming it.
 */
export async function registerDockerNode(
  client: KubeClient,
  engine: Pick<Dockerd, 'address'>,
  certs: Pick<CertBundle, 'ca' | 'cert' | 'key'>,
  options: { name?: string; secret?: string; capacity?: { cpus: number; memoryMiB: number }; heartbeatSeconds?: number; ovs?: { database: string; netns?: string } } = {},
): Promise<ComputeNode> {
  const secret = options.secret ?? 'engine-tls';
  await client.resource<KubeObject & { stringData: Record<string, string> }>(CoreResources.secrets).create({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: secret, namespace: 'default' },
    stringData: { 'ca.pem': certs.ca, 'cert.pem': certs.cert, 'key.pem': certs.key },
  });
  return client.resource<ComputeNode>(Resources.computeNodes).create({
    apiVersion: 'compute.stratus.dev/v1alpha1',
    kind: 'ComputeNode',
    metadata: { name: options.name ?? 'engine-1' },
    spec: {
      provider: 'docker',
      docker: { address: engine.address, tlsSecretRef: { name: secret, namespace: 'default' } },
      ...(options.ovs ? { ovs: options.ovs } : {}),
      ...(options.capacity ? { capacityOverride: options.capacity } : {}),
      ...(options.heartbeatSeconds ? { heartbeatSeconds: options.heartbeatSeconds } : {}),
    },
  });
}
