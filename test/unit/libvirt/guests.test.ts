/**
 * The guest-facing pieces of the libvirt provider without a hypervisor: the graceful
 * shutdown state machine (against a recording fake of the domain backend, on a fake clock),
 * the SSH readiness probe (against local TCP servers on 127.0.0.1), the cloud login user,
 * and image file inspection (qemu-img on temp files).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { DomainBackend, DomainRunState } from '../../../providers/libvirt/domains.js';
import { GracefulShutdown } from '../../../providers/libvirt/shutdown.js';
import { probeSsh } from '../../../providers/libvirt/guest-ready.js';
import { guestLoginUser } from '../../../providers/libvirt/guest-user.js';
import { inspectImageFile } from '../../../providers/libvirt/image-import.js';
import { guestAgentConnected } from '../../../providers/libvirt/machines.js';
import { DEBIAN_12_RECIPE, imagePath, recipeHash } from '../../../providers/libvirt/image-build.js';
import type { MachineSpec } from '../../../providers/machine.js';
import { ReconcileError } from '../../../runtime/errors.js';
import { buildDomainXml, domainName } from '../../../providers/libvirt/domain-xml.js';
import { validateSpec } from '../../../providers/libvirt/validate.js';
import { child, childrenNamed, parseXml } from '../../../providers/libvirt/xml.js';
import { execFileP, removeDir, tempDir } from '../../harness/process.js';

function fakeDomains(calls: string[]): DomainBackend {
  const rec = (what: string) => async (uuid: string): Promise<void> => {
    calls.push(`${what} ${uuid}`);
  };
  return {
    kind: 'virsh',
    state: async () => 'running',
    xml: async () => undefined,
    define: async () => undefined,
    start: rec('start'),
    shutdown: rec('shutdown'),
    destroy: rec('destroy'),
    resume: rec('resume'),
    undefine: rec('undefine'),
    list: async () => [],
    nodeInfo: async () => ({ cpus: 1, memoryKiB: 1 }),
    close: async () => undefined,
  };
}

interface Step {
  at: number;
  run: DomainRunState;
  done: boolean;
  outcome?: 'clean' | 'forced';
  calls: string[];
}

const cases: { name: string; timeoutMs: number; steps: Step[] }[] = [
  {
    name: 'a guest that powers off after the request is a clean shutdown',
    timeoutMs: 60_000,
    steps: [
      { at: 0, run: 'running', done: false, calls: ['shutdown u'] },
      { at: 2000, run: 'running', done: false, calls: [] },
      { at: 12_000, run: 'shutoff', done: true, outcome: 'clean', calls: [] },
    ],
  },
  {
    name: 'an unanswered request is repeated every 5 s and forced off at the timeout',
    timeoutMs: 12_000,
    steps: [
      { at: 0, run: 'running', done: false, calls: ['shutdown u'] },
      { at: 5000, run: 'running', done: false, calls: ['shutdown u'] },
      { at: 7000, run: 'running', done: false, calls: [] },
      { at: 12_000, run: 'running', done: true, outcome: 'forced', calls: ['destroy u'] },
    ],
  },
  {
    name: 'a timeout of 0 destroys at once without asking',
    timeoutMs: 0,
    steps: [{ at: 0, run: 'running', done: true, outcome: 'forced', calls: ['destroy u'] }],
  },
  {
    name: 'a paused domain is destroyed without an outcome (no guest to ask)',
    timeoutMs: 60_000,
    steps: [{ at: 0, run: 'paused', done: true, calls: ['destroy u'] }],
  },
  {
    name: 'a domain already off without a request is done, with no outcome',
    timeoutMs: 60_000,
    steps: [{ at: 0, run: 'shutoff', done: true, calls: [] }],
  },
];

for (const c of cases) {
  test(`graceful shutdown: ${c.name}`, async () => {
    let now = 0;
    const calls: string[] = [];
    const g = new GracefulShutdown(() => fakeDomains(calls), () => now);
    for (const s of c.steps) {
      now = s.at;
      calls.length = 0;
      const r = await g.step('u', s.run, c.timeoutMs);
      assert.equal(r.done, s.done, `done at ${s.at} ms`);
      assert.equal(r.done ? r.outcome?.kind : undefined, s.outcome, `outcome at ${s.at} ms`);
      assert.deepEqual(calls, s.calls, `calls at ${s.at} ms`);
    }
    const last = c.steps.at(-1)!;
    assert.equal(g.last('u')?.kind, last.outcome);
    assert.equal(g.requested('u'), false, 'no request left pending');
  });
}

test('graceful shutdown: the outcome says how long the guest took and is forgotten when it runs again', async () => {
  let now = 1000;
  const g = new GracefulShutdown(() => fakeDomains([]), () => now);
  await g.step('u', 'running', 60_000);
  now = 13_500;
  const o = g.observeOff('u');
  assert.equal(o?.kind, 'clean');
  assert.equal(o?.seconds, 12.5);
  assert.match(o?.message ?? '', /shut down cleanly 12\.5 s after the ACPI power-off request/);
  g.forget('u');
  assert.equal(g.last('u'), undefined);
});

async function listen(onConnect: (s: import('node:net').Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer(onConnect);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port };
}

test('probeSsh is ready once an SSH identification line arrives, even after other lines', async () => {
  const { server, port } = await listen((s) => s.write('hello there\r\nSSH-2.0-OpenSSH_9.2p1 Debian-2\r\n'));
  try {
    const r = await probeSsh('127.0.0.1', port, 2000);
    assert.deepEqual(r, { ready: true, banner: 'SSH-2.0-OpenSSH_9.2p1 Debian-2' });
  } finally {
    server.close();
  }
});

test('probeSsh is not ready for a closed port, a silent server or a server that hangs up', async () => {
  const silent = await listen(() => undefined);
  const hangup = await listen((s) => s.end('HTTP/1.0 400 Bad Request\r\n\r\n'));
  const closedPort = await listen(() => undefined);
  closedPort.server.close();
  try {
    const refused = await probeSsh('127.0.0.1', closedPort.port, 2000);
    assert.equal(refused.ready, false);
    assert.match(refused.ready ? '' : refused.message, /ECONNREFUSED/);
    const quiet = await probeSsh('127.0.0.1', silent.port, 300);
    assert.equal(quiet.ready, false);
    assert.match(quiet.ready ? '' : quiet.message, /no SSH banner .* within 300 ms/);
    const hung = await probeSsh('127.0.0.1', hangup.port, 2000);
    assert.equal(hung.ready, false);
    assert.match(hung.ready ? '' : hung.message, /closed the connection before an SSH banner/);
  } finally {
    silent.server.close();
    hangup.server.close();
  }
});

test('the login user follows the image\'s distribution, and the annotation wins', () => {
  assert.equal(guestLoginUser('debian-12'), 'debian');
  assert.equal(guestLoginUser('ubuntu-24.04-server-cloudimg'), 'ubuntu');
  assert.equal(guestLoginUser('Rocky-9-GenericCloud.qcow2'), 'cloud-user');
  assert.equal(guestLoginUser('my-appliance'), 'root');
  assert.equal(guestLoginUser(undefined), 'root');
  assert.equal(guestLoginUser('debian-12', { 'compute.stratus.dev/ssh-user': 'admin' }), 'admin');
});

test('image import accepts qcow2 and raw disk images and names the problem with anything else', async () => {
  const dir = await tempDir('imgcheck');
  try {
    const q = join(dir, 'a.qcow2');
    await execFileP('qemu-img', ['create', '-q', '-f', 'qcow2', q, '64M']);
    assert.deepEqual({ ...(await inspectImageFile(q)), fileBytes: 0 }, { format: 'qcow2', virtualBytes: 64 * 1024 ** 2, fileBytes: 0 });
    const backed = join(dir, 'b.qcow2');
    await execFileP('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', q, '-F', 'qcow2', backed]);
    await assert.rejects(inspectImageFile(backed), (e: unknown) => e instanceof ReconcileError && e.reason === 'InvalidImage' && /has a backing file/.test(e.message));
    const vmdk = join(dir, 'c.vmdk');
    await execFileP('qemu-img', ['create', '-q', '-f', 'vmdk', vmdk, '64M']);
    await assert.rejects(inspectImageFile(vmdk), /is a vmdk image; only qcow2 and raw/);
    const empty = join(dir, 'empty.img');
    await writeFile(empty, '');
    await assert.rejects(inspectImageFile(empty), /is empty/);
    await assert.rejects(inspectImageFile(join(dir, 'missing.qcow2')), /no such file/);
  } finally {
    await removeDir(dir);
  }
});

test('the image path is content-addressed: any recipe change gives another file', () => {
  const a = imagePath(DEBIAN_12_RECIPE, '/cache');
  assert.match(a, /^\/cache\/debian-12-[0-9a-f]{16}\.qcow2$/);
  assert.equal(imagePath({ ...DEBIAN_12_RECIPE }, '/cache'), a, 'same recipe, same path');
  assert.notEqual(recipeHash({ ...DEBIAN_12_RECIPE, packages: [...DEBIAN_12_RECIPE.packages, 'vim-tiny'] }), recipeHash(DEBIAN_12_RECIPE));
  assert.notEqual(recipeHash({ ...DEBIAN_12_RECIPE, cmdline: `${DEBIAN_12_RECIPE.cmdline} quiet` }), recipeHash(DEBIAN_12_RECIPE));
});

test('each disk is its own SCSI target in disk order, a userspace-datapath interface gets no checksum offload, and the XML is valid', async () => {
  const spec: MachineSpec = {
    uid: '6f1c2a4e-8d0b-4f3a-9c55-0e7b2d9a1f10', namespace: 'default', name: 'guest', hostname: 'guest', image: 'debian-12',
    cpus: 1, memoryMiB: 768, disks: [{ name: 'data1', sizeGiB: 1 }, { name: 'data2', sizeGiB: 2 }], networks: [{ name: 'lan', bridge: 'br0', vlan: 42, userspaceDatapath: true }],
    sshAuthorizedKeys: [], env: {}, ports: [], labels: {}, powerState: 'Running', providerSpec: {},
  };
  const xml = buildDomainXml(spec, {
    type: 'qemu',
    name: domainName(spec),
    boot: { path: '/pool/boot.qcow2', format: 'qcow2' },
    data: [{ path: '/pool/data1.qcow2', format: 'qcow2' }, { path: '/pool/data2.qcow2', format: 'qcow2' }],
    seed: { path: '/pool/seed.iso', format: 'raw' },
    interfaces: [
      { network: 'stratus-lan', portgroup: 'vlan-42', mac: '52:54:00:00:00:01', fullChecksums: true },
      { network: 'stratus-other', portgroup: 'vlan-7', mac: '52:54:00:00:00:02' },
    ],
    settings: validateSpec(spec),
  });
  const disks = childrenNamed(child(parseXml(xml), 'devices'), 'disk');
  assert.deepEqual(
    disks.map((d) => [basename(child(d, 'source')?.attrs.file ?? ''), child(d, 'target')?.attrs.dev, child(d, 'address')?.attrs.target, child(d, 'address')?.attrs.unit]),
    [['boot.qcow2', 'sda', '0', '0'], ['data1.qcow2', 'sdb', '1', '0'], ['data2.qcow2', 'sdc', '2', '0'], ['seed.iso', 'sdd', '3', '0']],
  );
  const nics = childrenNamed(child(parseXml(xml), 'devices'), 'interface');
  assert.deepEqual(child(nics[0], 'driver/host')?.attrs, { csum: 'off', gso: 'off', tso4: 'off', tso6: 'off', ecn: 'off', ufo: 'off' });
  assert.equal(child(nics[1], 'driver'), undefined, 'a kernel-datapath interface keeps its offloads');
  const dir = await tempDir('domxml');
  try {
    await writeFile(join(dir, 'domain.xml'), xml);
    await execFileP('virt-xml-validate', [join(dir, 'domain.xml'), 'domain']);
  } finally {
    await removeDir(dir);
  }
});

test('a domain counts as running a guest OS only while its guest agent channel is connected', () => {
  const xml = (state?: string): string =>
    `<domain><devices><channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'${state ? ` state='${state}'` : ''}/></channel></devices></domain>`;
  assert.equal(guestAgentConnected(xml('connected')), true);
  assert.equal(guestAgentConnected(xml('disconnected')), false);
  assert.equal(guestAgentConnected(xml()), false, 'the test driver reports no state');
  assert.equal(guestAgentConnected('<domain><devices/></domain>'), false);
  assert.equal(guestAgentConnected(undefined), false);
});
