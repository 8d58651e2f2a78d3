/**
 * The Docker provider against two real dockerd engines reached over TCP with TLS client
 * certificates from one CA (test/harness/dockerd.ts). The engines are shared by every test in
 * this file; the test that kills one engine runs last.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ReconcileError } from '../../../runtime/errors.js';
import type { MachineSpec } from '../../../providers/machine.js';
import { LABEL_GROUP, LABEL_UID, connectDocker, containerName, type DockerNodeConnection } from '../../../providers/docker/index.js';
import { BUSYBOX_IMAGE, BUSYBOX_INDEX, importBusybox, makeCerts, startDockerd, type CertBundle, type Dockerd } from '../../harness/dockerd.js';
import { execFileP, freePort, pidAlive, removeDir, requireBinary, tempDir, waitFor } from '../../harness/process.js';

const HTTPD = ['busybox', 'httpd', '-f', '-p', '80', '-h', '/www'];

function instance(name: string, overrides: Partial<MachineSpec> = {}): MachineSpec {
  return {
    uid: randomUUID(),
    namespace: 'default',
    name,
    hostname: name,
    image: BUSYBOX_IMAGE,
    cpus: 1,
    memoryMiB: 64,
    disks: [],
    networks: [],
    sshAuthorizedKeys: [],
    env: {},
    command: HTTPD,
    ports: [],
    labels: {},
    powerState: 'Running',
    providerSpec: {},
    ...overrides,
  };
}

async function httpGet(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
  return { status: res.status, body: await res.text() };
}

/** Waits until `url` answers 200 (httpd needs a moment after the container starts). */
function served(url: string): Promise<string> {
  return waitFor(`HTTP 200 from ${url}`, async () => {
    const r = await httpGet(url);
    return r.status === 200 ? r.body : undefined;
  });
}

async function rejectsWith(p: Promise<unknown>, reason: string, message?: RegExp): Promise<ReconcileError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ReconcileError, `expected a ReconcileError, got ${String(err)}`);
    assert.equal(err.reason, reason, err.message);
    if (message) assert.match(err.message, message);
    return err;
  }
  assert.fail(`expected ReconcileError ${reason}, but the call succeeded`);
}

describe('docker provider on two TLS engines', () => {
  let certDir: string;
  let certs: CertBundle;
  let a: Dockerd | undefined;
  let b: Dockerd | undefined;
  let nodeA: DockerNodeConnection;
  let nodeB: DockerNodeConnection;
  const servers: Server[] = [];
  const scratch: string[] = [];

  before(async () => {
    certDir = await tempDir('docker-certs');
    certs = await makeCerts(certDir);
    [a, b] = await Promise.all([startDockerd({ certs }), startDockerd({ certs })]);
    await Promise.all([importBusybox(a), importBusybox(b)]);
    const tls = { ca: certs.ca, cert: certs.cert, key: certs.key };
    nodeA = connectDocker({ address: a.address, tls, stopGraceSeconds: 1, deleteGraceSeconds: 1 });
    // Both engines share this host's loopback: engine B publishes on 127.0.0.2 so the same
    // host port can be taken on both, as it can on two real hosts.
    nodeB = connectDocker({ address: b.address, tls, stopGraceSeconds: 1, deleteGraceSeconds: 1, defaultHostIP: '127.0.0.2' });
  });

  after(async () => {
    for (const s of servers) s.close();
    await nodeA?.close();
    await nodeB?.close();
    await Promise.allSettled([a?.stop(), b?.stop()]);
    for (const d of scratch) await removeDir(d);
    if (certDir) await removeDir(certDir);
  });

  it('describes an engine: capacity from /info, Docker version, stratus containers', async () => {
    const info = await a!.client.info();
    const d = await nodeA.describe();
    assert.equal(d.capacity.cpus, info.NCPU);
    assert.equal(d.capacity.memoryMiB, Math.floor(info.MemTotal / 1048576));
    assert.ok(d.capacity.memoryMiB > 0);
    assert.equal(d.version, `Docker ${info.ServerVersion}`);
    const before = d.machineCount;
    // A container stratus did not create is not counted.
    await a!.client.createContainer({ name: 'foreign-idle', Image: BUSYBOX_IMAGE, Cmd: ['sleep', '1000'] });
    assert.equal((await nodeA.describe()).machineCount, before);
    const spec = instance('counted');
    await nodeA.machines().create(spec);
    assert.equal((await nodeA.describe()).machineCount, before + 1);
    await nodeA.machines().delete(spec);
    assert.equal((await nodeA.describe()).machineCount, before);

    // The same engine over its unix socket (no TLS); a socket that does not exist is unreachable.
    const local = connectDocker({ address: `unix://${a!.socket}` });
    const missing = connectDocker({ address: `unix://${a!.dir}/no-such.sock` });
    try {
      assert.equal((await local.describe()).version, d.version);
      await rejectsWith(missing.describe(), 'NodeUnreachable', /ENOENT/);
    } finally {
      await local.close();
      await missing.close();
    }
  });

  it('runs a busybox Instance serving HTTP on a host port bound to 127.0.0.1', async () => {
    const port = await freePort();
    const spec = instance('web', { ports: [{ containerPort: 80, hostPort: port, protocol: 'TCP' }], labels: { app: 'web' } });
    const m = nodeA.machines();
    await m.create(spec);
    assert.equal(await served(`http://127.0.0.1:${port}/index.html`), BUSYBOX_INDEX);

    const obs = await m.observe(spec);
    assert.equal(obs.exists, true);
    assert.equal(obs.state, 'running');
    assert.equal(obs.upToDate, true, obs.message);
    assert.ok(obs.pid && pidAlive(obs.pid), 'the container init process runs on this host');
    const prefix = a!.bridgeCidr.split('.').slice(0, 3).join('.') + '.';
    assert.ok(obs.ipAddress?.startsWith(prefix), `${obs.ipAddress} is on the engine's bridge ${a!.bridgeCidr}`);
    assert.deepEqual(obs.addresses, [{ type: 'InternalIP', address: obs.ipAddress }]);

    // Behind stratus's back: name, labels, binding address, limits.
    const info = await a!.client.getContainer(obs.providerID!).inspect();
    assert.equal(info.Name, `/${containerName(spec)}`);
    assert.match(info.Name, new RegExp(`^/stratus-web-${spec.uid.slice(0, 8)}$`));
    assert.equal(info.Config.Labels[LABEL_UID], spec.uid);
    assert.equal(info.Config.Labels['stratus.dev/namespace'], 'default');
    assert.equal(info.Config.Labels['stratus.dev/name'], 'web');
    assert.equal(info.Config.Labels.app, 'web');
    assert.equal(info.Config.Hostname, 'web');
    assert.deepEqual(info.HostConfig.PortBindings, { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: String(port) }] });
    assert.equal(info.HostConfig.NanoCpus, 1e9);
    assert.equal(info.HostConfig.Memory, 64 * 1048576);
    assert.deepEqual(await m.listOwned().then((u) => u.includes(spec.uid)), true);
    await m.delete(spec);
    assert.equal((await m.observe(spec)).exists, false);
    await m.delete(spec); // absent is success
  });

  it('create is idempotent: twice in a row, and concurrently, make one container', async () => {
    const m = nodeA.machines();
    const spec = instance('idem');
    await m.create(spec);
    const first = await m.observe(spec);
    await m.create(spec);
    assert.equal((await m.observe(spec)).providerID, first.providerID);
    assert.equal((await m.find(spec.uid)).length, 1);
    await m.delete(spec);

    // Two workers racing: one creates, the other hits the name conflict and adopts it.
    const raced = instance('raced');
    await Promise.all([m.create(raced), m.create(raced)]);
    assert.equal((await m.find(raced.uid)).length, 1);
    assert.equal((await m.observe(raced)).state, 'running');
    await m.delete(raced);
  });

  it('a container of the same name without our uid is a NameConflict, not adopted', async () => {
    const spec = instance('squatted');
    await a!.client.createContainer({ name: containerName(spec), Image: BUSYBOX_IMAGE, Cmd: ['sleep', '1000'] });
    await rejectsWith(nodeA.machines().create(spec), 'NameConflict', /not owned by Instance default\/squatted/);
  });

  it('stops and starts with powerState, and reports it', async () => {
    const port = await freePort();
    const m = nodeA.machines();
    const spec = instance('power', { ports: [{ containerPort: 80, hostPort: port, protocol: 'TCP' }] });
    await m.create(spec);
    await served(`http://127.0.0.1:${port}/`);
    const running = await m.observe(spec);

    const stopped = { ...spec, powerState: 'Stopped' as const };
    const drifted = await m.observe(stopped);
    assert.equal(drifted.upToDate, false);
    assert.match(drifted.message ?? '', /powerState is Stopped/);
    await m.update(stopped, drifted);
    const obs = await m.observe(stopped);
    assert.equal(obs.state, 'stopped');
    assert.equal(obs.upToDate, true, obs.message);
    assert.equal(obs.pid, undefined);
    assert.equal(pidAlive(running.pid!), false);
    await assert.rejects(httpGet(`http://127.0.0.1:${port}/`));

    const again = await m.observe(spec);
    assert.equal(again.upToDate, false);
    await m.update(spec, again);
    assert.equal((await m.observe(spec)).state, 'running');
    assert.equal(await served(`http://127.0.0.1:${port}/`), BUSYBOX_INDEX);
    assert.equal((await m.observe(spec)).providerID, running.providerID, 'same container, not a new one');

    // A container stopped behind stratus's back while powerState is Running is drift.
    await a!.client.getContainer(running.providerID!).kill();
    await waitFor('container to exit', async () => (await m.observe(spec)).state === 'stopped');
    const killed = await m.observe(spec);
    assert.equal(killed.upToDate, false);
    await m.update(spec, killed);
    assert.equal(await served(`http://127.0.0.1:${port}/`), BUSYBOX_INDEX);

    // Created with powerState Stopped: exists, not running, up to date.
    const cold = instance('cold', { powerState: 'Stopped' });
    await m.create(cold);
    const coldObs = await m.observe(cold);
    assert.equal(coldObs.exists, true);
    assert.equal(coldObs.state, 'stopped');
    assert.equal(coldObs.upToDate, true, coldObs.message);
    await m.delete(cold);
    await m.delete(spec);
  });

  it('a container removed behind stratus’s back is observed as absent and recreated by create', async () => {
    const port = await freePort();
    const m = nodeA.machines();
    const spec = instance('phoenix', { ports: [{ containerPort: 80, hostPort: port, protocol: 'TCP' }] });
    await m.create(spec);
    await served(`http://127.0.0.1:${port}/`);
    const old = await m.observe(spec);
    await a!.client.getContainer(old.providerID!).remove({ force: true });
    const gone = await m.observe(spec);
    assert.equal(gone.exists, false);
    assert.equal(gone.upToDate, false);
    await m.create(spec);
    const back = await m.observe(spec);
    assert.equal(back.exists, true);
    assert.notEqual(back.providerID, old.providerID);
    assert.equal(await served(`http://127.0.0.1:${port}/`), BUSYBOX_INDEX);
    await m.delete(spec);
  });

  it('repairs drift: env recreates (keeping named volumes), memory and restart policy update in place', async () => {
    const m = nodeA.machines();
    const volumes = [{ name: 'data', containerPath: '/data' }];
    const spec = instance('drifty', { env: { STAGE: 'one' }, providerSpec: { volumes } });
    await m.create(spec);
    const first = await m.observe(spec);
    assert.equal((await nodeA.exec(spec.uid, ['sh', '-c', 'echo kept > /data/file && echo $STAGE'])).stdout, 'one\n');

    const changed = { ...spec, env: { STAGE: 'two' } };
    const drifted = await m.observe(changed);
    assert.equal(drifted.upToDate, false);
    assert.match(drifted.message ?? '', /recreate/);
    await m.update(changed, drifted);
    const second = await m.observe(changed);
    assert.notEqual(second.providerID, first.providerID, 'env changes recreate the container');
    assert.equal(second.upToDate, true, second.message);
    assert.equal(second.state, 'running');
    const r = await nodeA.exec(spec.uid, ['sh', '-c', 'echo $STAGE; cat /data/file']);
    assert.equal(r.stdout, 'two\nkept\n');

    const resized = { ...changed, memoryMiB: 256, providerSpec: { volumes, restartPolicy: 'unless-stopped' } };
    const r2 = await m.observe(resized);
    assert.equal(r2.upToDate, false);
    assert.match(r2.message ?? '', /memory 64 MiB ≠ 256 MiB/);
    await m.update(resized, r2);
    const third = await m.observe(resized);
    assert.equal(third.providerID, second.providerID, 'memory and restart policy change in place');
    assert.equal(third.upToDate, true, third.message);
    const info = await a!.client.getContainer(third.providerID!).inspect();
    assert.equal(info.HostConfig.Memory, 256 * 1048576);
    assert.equal(info.HostConfig.RestartPolicy?.Name, 'unless-stopped');

    const vols = async (): Promise<string[]> =>
      ((await a!.client.listVolumes({ filters: { label: [`${LABEL_UID}=${spec.uid}`] } })).Volumes ?? []).map((v) => v.Name);
    assert.deepEqual(await vols(), [`stratus-${spec.uid}-data`]);
    await m.delete(resized);
    assert.deepEqual(await vols(), [], 'the Instance’s named volumes go with it');
  });

  it('a host port already taken on the engine is a PortConflict and leaves nothing behind', async () => {
    const port = await freePort();
    const m = nodeA.machines();
    const holder = instance('holder', { ports: [{ containerPort: 80, hostPort: port, protocol: 'TCP' }] });
    await m.create(holder);
    const late = instance('late', { ports: [{ containerPort: 80, hostPort: port, protocol: 'TCP' }] });
    await rejectsWith(m.create(late), 'PortConflict', new RegExp(`${port}`));
    assert.equal((await m.find(late.uid)).length, 0);
    assert.equal((await m.observe(late)).exists, false);

    // The same host port is free on the other engine (its own host address).
    await nodeB.machines().create(late);
    assert.equal(await served(`http://127.0.0.2:${port}/`), BUSYBOX_INDEX);
    await nodeB.machines().delete(late);
    await m.delete(holder);

    // A process outside Docker holding the port is a conflict too.
    const busy = await freePort();
    const server = createServer();
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(busy, '127.0.0.1', resolve));
    const blocked = instance('blocked', { ports: [{ containerPort: 80, hostPort: busy, protocol: 'TCP' }] });
    await rejectsWith(m.create(blocked), 'PortConflict', /address already in use/);
    assert.equal((await m.find(blocked.uid)).length, 0);
  });

  it('a command that cannot start is StartFailed, observed as failed, and repaired by a spec change', async () => {
    const m = nodeA.machines();
    const broken = instance('broken', { command: ['/no/such/program'] });
    const err = await rejectsWith(m.create(broken), 'StartFailed', /no such file or directory/);
    assert.equal(err.retryable, false);
    const obs = await m.observe(broken);
    assert.equal(obs.exists, true);
    assert.equal(obs.state, 'failed');
    assert.match(obs.message ?? '', /container error: .*no such file or directory/);
    const fixed = { ...broken, command: HTTPD };
    await m.update(fixed, await m.observe(fixed));
    const repaired = await m.observe(fixed);
    assert.equal(repaired.state, 'running');
    assert.equal(repaired.upToDate, true, repaired.message);
    await m.delete(fixed);
  });

  it('a missing image is ImageNotFound (not retryable) and creates nothing', async () => {
    const spec = instance('ghost', { image: 'stratus/missing:1' });
    const err = await rejectsWith(nodeA.machines().create(spec), 'ImageNotFound', /stratus\/missing:1/);
    assert.equal(err.retryable, false);
    assert.equal((await nodeA.machines().find(spec.uid)).length, 0);
  });

  it('engineUsage lists host ports (stopped ones too), counts and placement groups', async () => {
    const m = nodeB.machines();
    const [p1, p2, p3] = [await freePort(), await freePort(), await freePort()];
    const one = instance('g1', { labels: { [LABEL_GROUP]: 'default/cache' }, ports: [{ containerPort: 80, hostPort: p1, protocol: 'TCP' }] });
    const two = instance('g2', {
      labels: { [LABEL_GROUP]: 'default/cache' },
      ports: [{ containerPort: 80, hostPort: p2, protocol: 'TCP' }, { containerPort: 53, hostPort: p2, protocol: 'UDP' }],
      powerState: 'Stopped',
    });
    await m.create(one);
    await m.create(two);
    // A container stratus does not manage, publishing a port.
    const foreign = await b!.client.createContainer({
      name: 'foreign-web', Image: BUSYBOX_IMAGE, Cmd: HTTPD, ExposedPorts: { '80/tcp': {} },
      HostConfig: { PortBindings: { '80/tcp': [{ HostIp: '127.0.0.2', HostPort: String(p3) }] } },
    });
    await foreign.start();
    const u = await nodeB.engineUsage();
    const ports = u.hostPorts.map((p) => `${p.port}/${p.protocol}@${p.hostIP}${p.uid ? ' ' + p.uid : ''}`);
    assert.ok(ports.includes(`${p1}/TCP@127.0.0.2 ${one.uid}`), ports.join(', '));
    assert.ok(ports.includes(`${p2}/TCP@127.0.0.2 ${two.uid}`), 'a stopped container still reserves its ports');
    assert.ok(ports.includes(`${p2}/UDP@127.0.0.2 ${two.uid}`));
    assert.ok(ports.includes(`${p3}/TCP@127.0.0.2`), 'foreign containers’ ports count');
    assert.equal(u.groups['default/cache'], 2);
    assert.ok(u.containers >= 2);
    assert.ok(u.running >= 1 && u.running < u.containers);
    assert.ok(u.foreignContainers >= 1);
    await foreign.remove({ force: true });
    await m.delete(one);
    await m.delete(two);
    assert.equal((await nodeB.engineUsage()).groups['default/cache'], undefined);
  });

  it('exec collects stdout, stderr, exit code and stdin; uploadArchive extracts a tar into the container', async () => {
    const port = await freePort();
    const spec = instance('shell', { ports: [{ containerPort: 80, hostPort: port, protocol: 'TCP' }] });
    await nodeA.machines().create(spec);
    const r = await nodeA.exec(spec.uid, ['sh', '-c', 'echo out; echo err >&2; exit 3']);
    assert.deepEqual(r, { exitCode: 3, stdout: 'out\n', stderr: 'err\n', truncated: false });
    const piped = await nodeA.exec(spec.uid, ['sh', '-c', 'tr a-z A-Z'], { stdin: 'hello\n' });
    assert.equal(piped.stdout, 'HELLO\n');
    assert.equal((await nodeA.exec(spec.uid, ['pwd'], { workingDir: '/www' })).stdout, '/www\n');
    assert.equal((await nodeA.exec(spec.uid, ['sh', '-c', 'echo $GREETING'], { env: { GREETING: 'hi' } })).stdout, 'hi\n');
    const capped = await nodeA.exec(spec.uid, ['sh', '-c', 'yes | head -c 10000'], { maxOutputBytes: 100 });
    assert.equal(capped.stdout.length, 100);
    assert.equal(capped.truncated, true);

    const dir = await tempDir('docker-upload');
    scratch.push(dir);
    await mkdir(join(dir, 'site'));
    await writeFile(join(dir, 'site', 'release.html'), 'release 42\n');
    await execFileP(requireBinary('tar'), ['-C', join(dir, 'site'), '-cf', join(dir, 'site.tar'), 'release.html']);
    await nodeA.uploadArchive(spec.uid, '/www', await readFile(join(dir, 'site.tar')));
    assert.equal(await served(`http://127.0.0.1:${port}/release.html`), 'release 42\n');
    await rejectsWith(nodeA.uploadArchive(spec.uid, '/no/such/dir', await readFile(join(dir, 'site.tar'))), 'PathNotFound');
    await rejectsWith(nodeA.exec(randomUUID(), ['true']), 'ContainerNotFound');
    await nodeA.machines().delete(spec);
  });

  it('a wrong client certificate or an unknown server CA is a TLSError with a clear message', async () => {
    const wrongCert = connectDocker({ address: a!.address, tls: { ca: certs.ca, cert: certs.wrongCert, key: certs.wrongKey } });
    const wrongCa = connectDocker({ address: a!.address, tls: { ca: certs.wrongCa, cert: certs.cert, key: certs.key } });
    const noTls = connectDocker({ address: a!.address });
    try {
      const e1 = await rejectsWith(wrongCert.describe(), 'TLSError', /rejected our client certificate/);
      assert.equal(e1.retryable, false);
      await rejectsWith(wrongCert.machines().observe(instance('x')), 'TLSError');
      await rejectsWith(wrongCa.describe(), 'TLSError', /server certificate could not be verified/);
      await rejectsWith(noTls.describe(), 'TLSError', /requires TLS/);
    } finally {
      await wrongCert.close();
      await wrongCa.close();
      await noTls.close();
    }
  });

  it('killing an engine: describe fails with NodeUnreachable, the other engine’s containers keep running', async () => {
    const portA = await freePort();
    const survivor = instance('survivor', { ports: [{ containerPort: 80, hostPort: portA, protocol: 'TCP' }] });
    const victim = instance('victim');
    await nodeA.machines().create(survivor);
    await nodeB.machines().create(victim);
    await served(`http://127.0.0.1:${portA}/`);

    // A hung engine (the port accepts, nothing answers) fails the call at its deadline.
    const impatient = connectDocker({ address: b!.address, tls: { ca: certs.ca, cert: certs.cert, key: certs.key }, timeoutMs: 1000 });
    process.kill(b!.pid, 'SIGSTOP');
    try {
      await rejectsWith(impatient.describe(), 'NodeUnreachable', /did not answer within 1000 ms/);
      // The caller's signal (the reconcile's deadline) ends a machine call before the engine's own 5 s deadline.
      await rejectsWith(nodeB.machines().observe(victim, AbortSignal.timeout(200)), 'DeadlineExceeded', /caller stopped waiting/);
    } finally {
      process.kill(b!.pid, 'SIGCONT');
      await impatient.close();
    }
    assert.equal((await nodeB.machines().observe(victim)).state, 'running', 'the engine answers again once it resumes');

    await b!.kill();
    await rejectsWith(nodeB.describe(), 'NodeUnreachable', new RegExp(b!.address.replace(/[.]/g, '\\.')));
    const e = await rejectsWith(nodeB.machines().observe(victim), 'NodeUnreachable');
    assert.equal(e.retryable, true);
    await rejectsWith(nodeB.machines().listOwned(), 'NodeUnreachable');

    const obs = await nodeA.machines().observe(survivor);
    assert.equal(obs.state, 'running');
    assert.equal(await served(`http://127.0.0.1:${portA}/`), BUSYBOX_INDEX);
    assert.equal((await nodeA.describe()).version.startsWith('Docker '), true);
    await nodeA.machines().delete(survivor);
  });
});
