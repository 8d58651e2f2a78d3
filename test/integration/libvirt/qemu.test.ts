/**
 * The libvirt provider against a real `libvirtd` (qemu:///session as `nobody`, started by
 * this test) running real qemu processes under TCG. The base image is a small blank qcow2
 * made with `qemu-img` — nothing boots, which also proves the shutdown timeout: the guest
 * ignores ACPI, so stopping ends with a destroy.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { chown, mkdir, open as openFile, readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectLibvirt, findQemuPid, type LibvirtNodeConnection } from '../../../providers/libvirt/index.js';
import { libvirtProvider } from '../../../providers/libvirt/provider.js';
import { ReconcileError } from '../../../runtime/errors.js';
import type { MachineObservation, MachineSpec } from '../../../providers/machine.js';
import { startLibvirtd, processesMentioning, type PrivateLibvirtd } from '../../harness/libvirtd.js';
import { startSshd } from '../../harness/sshd.js';
import { execFileP, pidAlive, requireBinary, startDaemon, waitFor } from '../../harness/process.js';

let daemon: PrivateLibvirtd | undefined;
let conn: LibvirtNodeConnection | undefined;
let poolDir = '';
let http: Server | undefined;
/** What the test's HTTP server (on 127.0.0.1) serves, and the requests it saw. */
const files = new Map<string, Buffer>();
const requests: string[] = [];

/** Starts the HTTP server once (Range requests supported, as qemu's curl driver needs); returns its port. */
async function serveFiles(): Promise<number> {
  if (!http) {
    const server = createServer((req, res) => {
      requests.push(`${req.method} ${req.url} ${req.headers.range ?? ''}`);
      const body0 = files.get(req.url ?? '');
      if (!body0) {
        res.writeHead(404).end();
        return;
      }
      const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
      const start = range ? Number(range[1]) : 0;
      const end = range && range[2] ? Math.min(Number(range[2]), body0.length - 1) : body0.length - 1;
      const body = body0.subarray(start, end + 1);
      res.writeHead(range ? 206 : 200, {
        'Accept-Ranges': 'bytes',
        'Content-Length': String(body.length),
        ...(range ? { 'Content-Range': `bytes ${start}-${end}/${body0.length}` } : {}),
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    http = server;
  }
  return (http.address() as AddressInfo).port;
}

/**
 * A 39-byte multiboot "installer" for the install-tree test: qemu loads it as a kernel, and
 * it resets the machine at once (keyboard-controller reset), like an installer rebooting.
 */
function rebootingKernel(): Buffer {
  const magic = 0x1badb002;
  const flags = 0x00010000; // load addresses given in the header (no ELF)
  const load = 0x100000;
  const header = Buffer.alloc(32);
  [magic, flags, (-(magic + flags)) >>> 0, load, load, 0, 0, load + 32].forEach((v, i) => header.writeUInt32LE(v, i * 4));
  return Buffer.concat([header, Buffer.from([0xb0, 0xfe, 0xe6, 0x64, 0xf4, 0xeb, 0xfd])]); // mov al,0xfe; out 0x64,al; hlt; jmp $
}
const POOL = 'stratus-test-images';
const GiB = 1024 ** 3;

function spec(over: Partial<MachineSpec> = {}): MachineSpec {
  return {
    uid: randomUUID(),
    namespace: 'qemu-test',
    name: 'vm',
    hostname: 'vm',
    image: 'tiny',
    cpus: 1,
    memoryMiB: 64,
    disks: [{ name: 'data', sizeGiB: 1 }],
    networks: [],
    sshAuthorizedKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests test@stratus'],
    userData: '#cloud-config\npackages: [htop]\n',
    env: {},
    ports: [],
    labels: {},
    powerState: 'Running',
    providerSpec: { console: true, shutdownTimeoutSeconds: 1 },
    ...over,
  };
}

/** Calls observe/update like the controller's poll until `done` holds. */
async function reconcileUntil(s: MachineSpec, done: (o: MachineObservation) => boolean, what: string): Promise<MachineObservation> {
  const m = conn!.machines();
  return waitFor(
    what,
    async () => {
      const o = await m.observe(s);
      if (done(o)) return o;
      if (o.exists && !o.upToDate) await m.update(s, o);
      return undefined;
    },
    30_000,
    200,
  );
}

before(async () => {
  requireBinary('qemu-img');
  requireBinary('xorriso');
  daemon = await startLibvirtd();
  poolDir = join(daemon.dir, 'images');
  await mkdir(poolDir);
  await execFileP('qemu-img', ['create', '-q', '-f', 'qcow2', join(poolDir, 'tiny.qcow2'), '64M']);
  for (const p of [poolDir, join(poolDir, 'tiny.qcow2')]) await chown(p, 65534, 65534);
  conn = connectLibvirt({ uri: daemon.uri, imagePool: POOL });
  await conn.shell().run(['pool-define-as', '--name', POOL, '--type', 'dir', '--target', poolDir]);
  await conn.shell().run(['pool-start', POOL]);
});

after(async () => {
  try {
    if (conn) {
      // Whatever a failed test left: domains first, then the pool.
      for (const uuid of await conn.domains().list().catch(() => [])) {
        await conn.domains().destroy(uuid).catch(() => undefined);
        await conn.domains().undefine(uuid).catch(() => undefined);
      }
      await conn.close();
    }
  } finally {
    await daemon?.stop();
    http?.closeAllConnections();
    await new Promise<void>((r) => (http ? http.close(() => r()) : r()));
  }
});

describe('libvirt provider on a real libvirtd (qemu:///session, TCG)', () => {
  it('runs a machine as a real qemu process, stops and starts it, and delete leaves no process or volume', async () => {
    const c = conn!;
    const m = c.machines();
    assert.ok(['qemu', 'kvm'].includes(await c.domainType()));
    const node = await c.describe();
    assert.ok(node.capacity.cpus >= 1 && node.capacity.memoryMiB > 0);
    assert.match(node.version, /^libvirt \d+\.\d+\.\d+ \/ QEMU \d+/);

    const s = spec();
    await m.create(s);
    let obs = await reconcileUntil(s, (o) => o.state === 'running' && o.pid !== undefined, 'the domain to run');
    const pid1 = obs.pid!;
    assert.ok(pidAlive(pid1));
    assert.match(await readFile(`/proc/${pid1}/cmdline`, 'latin1'), /qemu-system/);
    assert.equal(obs.upToDate, true);
    assert.equal((await c.describe()).machineCount, 1);
    await m.create(s); // idempotent while running
    assert.deepEqual(await m.listOwned(), [s.uid]);

    // The boot disk is a copy-on-write clone of the base image; the seed is a real cidata ISO.
    const boot = JSON.parse((await execFileP('qemu-img', ['info', '-U', '--output', 'json', join(poolDir, `${s.uid}-boot.qcow2`)])).stdout) as {
      format: string;
      'backing-filename'?: string;
    };
    assert.equal(boot.format, 'qcow2');
    assert.equal(boot['backing-filename'], join(poolDir, 'tiny.qcow2'));
    const iso = await openFile(join(poolDir, `${s.uid}-seed.iso`));
    const label = Buffer.alloc(6);
    await iso.read(label, 0, 6, 16 * 2048 + 40);
    await iso.close();
    assert.equal(label.toString(), 'cidata');
    const listing = (await execFileP('xorriso', ['-indev', join(poolDir, `${s.uid}-seed.iso`), '-find', '/', '-type', 'f'], {})).stdout;
    for (const f of ['meta-data', 'user-data']) assert.match(listing, new RegExp(`'/${f}'`));

    // The daemon restarts under the connection: the same handle reconnects, qemu keeps running.
    await daemon!.restart();
    assert.equal((await c.describe()).machineCount, 1);
    obs = await m.observe(s);
    assert.equal(obs.state, 'running');
    assert.equal(obs.pid, pid1);
    // A dead virsh shell is replaced on the next command.
    const shellPid = c.shell().pid;
    assert.ok(shellPid !== undefined);
    process.kill(shellPid, 'SIGKILL');
    await waitFor('the virsh shell to exit', () => !pidAlive(shellPid), 10_000);
    assert.equal((await c.describe()).machineCount, 1);
    assert.notEqual(c.shell().pid, shellPid);

    const stopped = { ...s, powerState: 'Stopped' as const };
    obs = await m.observe(stopped);
    await m.update(stopped, obs);
    obs = await m.observe(stopped);
    assert.equal(obs.state, 'stopping', 'a graceful shutdown is requested first, without blocking');
    obs = await reconcileUntil(stopped, (o) => o.state === 'stopped', 'the domain to stop (destroy after the shutdown timeout)');
    assert.equal(obs.upToDate, true);
    await waitFor('the qemu process to exit', () => !pidAlive(pid1), 10_000);

    obs = await reconcileUntil(s, (o) => o.state === 'running' && o.pid !== undefined, 'the domain to run again');
    const pid2 = obs.pid!;
    assert.notEqual(pid2, pid1);
    assert.ok(pidAlive(pid2));

    await m.delete(s);
    await waitFor('the qemu process to exit', () => !pidAlive(pid2), 10_000);
    assert.equal(await findQemuPid(s.uid), undefined);
    assert.deepEqual(await processesMentioning(s.uid), []);
    assert.equal((await m.observe(s)).exists, false);
    assert.deepEqual(await c.domains().list(), []);
    assert.deepEqual(await readdir(poolDir), ['tiny.qcow2']);
    const vols = await c.shell().run(['vol-list', '--pool', POOL]);
    assert.doesNotMatch(vols, new RegExp(s.uid));
    await m.delete(s);
  });

  it('grows a data disk online (blockresize: qemu sees it) and stopped (vol-resize), and refuses to shrink it', async () => {
    const c = conn!;
    const m = c.machines();
    const resize = libvirtProvider.capabilities.diskResize!;
    const signal = AbortSignal.timeout(60_000);
    const virsh = async (...args: string[]): Promise<string> => (await execFileP('virsh', ['-c', daemon!.uri, ...args])).stdout;
    const s = spec();
    await m.create(s);
    await reconcileUntil(s, (o) => o.state === 'running' && o.pid !== undefined, 'the domain to run');
    const volume = `${s.uid}-disk-data.qcow2`;
    assert.deepEqual(await resize.sizes(c, s, signal), [{ name: 'data', bytes: GiB }]);

    // Running: qemu grows the disk it has open; the domain's own view (domblkinfo) has the new size.
    assert.deepEqual(await resize.grow(c, s, 'data', 2 * GiB, signal), { online: true, state: 'done' });
    assert.match(await virsh('domblkinfo', s.uid, 'sdb'), new RegExp(`Capacity:\\s+${2 * GiB}\\n`));
    assert.match(await virsh('vol-info', '--pool', POOL, volume, '--bytes'), new RegExp(`Capacity:\\s+${2 * GiB} bytes`));
    assert.deepEqual(await resize.sizes(c, s, signal), [{ name: 'data', bytes: 2 * GiB }]);
    assert.deepEqual(await resize.grow(c, s, 'data', 2 * GiB, signal), { online: true, state: 'done' }, 'growing to the size it has is a no-op');

    // Stopped: the volume grows in the pool (qemu-img underneath); the file's qcow2 header says so.
    const stopped = { ...s, powerState: 'Stopped' as const };
    await reconcileUntil(stopped, (o) => o.state === 'stopped', 'the domain to stop');
    assert.deepEqual(await resize.grow(c, stopped, 'data', 3 * GiB, signal), { online: false, state: 'done' });
    assert.match(await virsh('vol-info', '--pool', POOL, volume, '--bytes'), new RegExp(`Capacity:\\s+${3 * GiB} bytes`));
    const info = JSON.parse((await execFileP('qemu-img', ['info', '-U', '--output', 'json', join(poolDir, volume)])).stdout) as { 'virtual-size': number };
    assert.equal(info['virtual-size'], 3 * GiB);

    // Shrinking is refused and changes nothing.
    await assert.rejects(resize.grow(c, stopped, 'data', GiB, signal), (e: unknown) => e instanceof ReconcileError && e.reason === 'DiskShrinkRefused' && !e.retryable);
    assert.match(await virsh('vol-info', '--pool', POOL, volume, '--bytes'), new RegExp(`Capacity:\\s+${3 * GiB} bytes`));

    // Started again, the domain has the grown disk.
    await reconcileUntil(s, (o) => o.state === 'running' && o.pid !== undefined, 'the domain to run again');
    assert.match(await virsh('domblkinfo', s.uid, 'sdb'), new RegExp(`Capacity:\\s+${3 * GiB}\\n`));
    await m.delete(s);
    await waitFor('the domain to go', async () => !(await m.observe(s)).exists, 30_000);
  });

  it('boots an installer ISO from its http location: qemu reads it from the URL', async () => {
    const c = conn!;
    const m = c.machines();
    const src = join(daemon!.dir, 'iso-src');
    await mkdir(src);
    await writeFile(join(src, 'README'), 'stratus installer test\n');
    const isoPath = join(daemon!.dir, 'installer.iso');
    await execFileP('xorriso', ['-as', 'mkisofs', '-quiet', '-V', 'INSTALLER', '-J', '-r', '-o', isoPath, src]);
    const iso = await readFile(isoPath);
    files.set('/images/installer.iso', iso);
    const port = await serveFiles();

    const s = spec({ image: undefined, disks: [], providerSpec: { location: `http://127.0.0.1:${port}/images/installer.iso` } });
    delete s.image;
    await m.create(s);
    const obs = await reconcileUntil(s, (o) => o.state === 'running' && o.pid !== undefined, 'the installer domain to run');
    assert.ok(pidAlive(obs.pid!));
    await waitFor('qemu to read the ISO over http', () => requests.some((r) => r.startsWith('GET /images/installer.iso')), 10_000);
    await m.delete(s);
    await waitFor('the qemu process to exit', () => !pidAlive(obs.pid!), 10_000);
    assert.deepEqual(await readdir(poolDir), ['tiny.qcow2']);
  });

  it('a create killed (SIGKILL) right after define leaves exactly one domain once create runs again', async () => {
    const c = conn!;
    const m = c.machines();
    const s = spec();
    const self = fileURLToPath(import.meta.url);
    const childFile = join(self, '..', `create-child${extname(self)}`);
    const loaders: string[] = [];
    process.execArgv.forEach((a, i) => {
      if ((a === '--import' || a === '--require' || a === '--loader') && process.execArgv[i + 1]) loaders.push(a, process.execArgv[i + 1] ?? '');
      else if (/^--(import|require|loader)=/.test(a)) loaders.push(a);
    });
    const child = startDaemon(process.execPath, [...loaders, childFile, daemon!.uri, POOL, JSON.stringify(s)]);
    try {
      await waitFor(
        'the child to define the domain',
        async () => {
          if (child.child.exitCode !== null) throw new Error(`child exited early: ${child.output()}`);
          return (await c.domains().state(s.uid)) !== undefined;
        },
        30_000,
        5,
      );
    } finally {
      await child.kill();
    }
    assert.doesNotMatch(child.output(), /created/, 'the child was killed inside create');

    await m.create(s);
    await m.create(s);
    const obs = await reconcileUntil(s, (o) => o.state === 'running' && o.pid !== undefined, 'the domain to run');
    assert.ok(pidAlive(obs.pid!));
    assert.deepEqual((await c.domains().list()).filter((u) => u === s.uid), [s.uid]);
    assert.equal((await processesMentioning(s.uid)).length, 1);
    await m.delete(s);
    await waitFor('the qemu process to exit', () => !pidAlive(obs.pid!), 10_000);
    assert.deepEqual(await readdir(poolDir), ['tiny.qcow2']);
  });

  it('installs from an http install tree: boots the fetched installer once, then its disk', async () => {
    const c = conn!;
    const m = c.machines();
    files.set('/tree/images/pxeboot/vmlinuz', rebootingKernel());
    files.set('/tree/images/pxeboot/initrd.img', Buffer.from('initrd for the test installer\n'));
    const port = await serveFiles();
    const location = `http://127.0.0.1:${port}/tree`;
    const s = spec({ image: undefined, disks: [{ name: 'root', sizeGiB: 1 }], providerSpec: { location, cmdline: 'console=ttyS0', shutdownTimeoutSeconds: 1 } });
    delete s.image;
    await m.create(s);
    const defined = await c.domains().xml(s.uid, true);
    assert.match(defined ?? '', /<kernel>[^<]*-install-kernel<\/kernel>/);
    assert.match(defined ?? '', new RegExp(`<cmdline>inst\\.repo=${location.replace(/[.]/g, '\\.')}/ console=ttyS0</cmdline>`));
    assert.ok(requests.some((r) => r.startsWith('GET /tree/images/pxeboot/vmlinuz')));
    // The installer resets the guest at once; the provider then boots the disk.
    const obs = await reconcileUntil(s, (o) => o.state === 'running' && o.upToDate && o.pid !== undefined, 'the installed machine to run from its disk');
    const final = (await c.domains().xml(s.uid, true)) ?? '';
    assert.doesNotMatch(final, /<kernel>/);
    assert.match(final, /<boot dev='hd'\/>/);
    assert.match(await readFile(`/proc/${obs.pid!}/cmdline`, 'latin1'), /root\.qcow2/);
    assert.doesNotMatch(await readFile(`/proc/${obs.pid!}/cmdline`, 'latin1'), /-kernel/);
    assert.deepEqual((await readdir(poolDir)).sort(), [`${s.uid}-disk-root.qcow2`, `${s.uid}-seed.iso`, 'tiny.qcow2']);
    await m.delete(s);
    await waitFor('the qemu process to exit', () => !pidAlive(obs.pid!), 10_000);
    assert.deepEqual(await readdir(poolDir), ['tiny.qcow2']);
  });

  it('manages a remote node over qemu+ssh:// (a local sshd): the seed streams over SSH, qemu runs, delete leaves nothing', async () => {
    const sshd = await startSshd();
    const socket = new URL(daemon!.uri).searchParams.get('socket') ?? '';
    // libvirt's ssh transport: `ssh -p PORT -i KEY ... nc -U SOCKET` on the "remote" host.
    const uri = `qemu+ssh://${sshd.user}@127.0.0.1:${sshd.port}/session?socket=${socket}&proxy=netcat&keyfile=${sshd.privateKeyPath}&no_verify=1&no_tty=1`;
    const remote = connectLibvirt({ uri, imagePool: POOL });
    const s = spec({ name: 'remote' });
    try {
      assert.ok(['qemu', 'kvm'].includes(await remote.domainType()));
      const m = remote.machines();
      await m.create(s);
      const obs = await waitFor('the remote domain to run', async () => {
        const o = await m.observe(s);
        return o.state === 'running' ? o : undefined;
      }, 30_000, 200);
      assert.equal(obs.providerID, `libvirt://${s.uid}`);
      assert.equal(obs.pid, undefined, 'no PID for a remote node');
      assert.equal((await processesMentioning(s.uid)).length, 1, 'one qemu process runs the domain');
      const listing = (await execFileP('xorriso', ['-indev', join(poolDir, `${s.uid}-seed.iso`), '-find', '/', '-type', 'f'], {})).stdout;
      for (const f of ['meta-data', 'user-data']) assert.match(listing, new RegExp(`'/${f}'`), 'the seed was uploaded over ssh');
      await m.delete(s);
      await waitFor('the qemu process to exit', async () => (await processesMentioning(s.uid)).length === 0, 10_000);
      assert.equal((await m.observe(s)).exists, false);
      assert.deepEqual(await readdir(poolDir), ['tiny.qcow2']);
      assert.match(sshd.output(), /Accepted publickey/, 'the connection went through the sshd');
    } finally {
      await remote.close();
      await sshd.stop();
    }
  });
});
