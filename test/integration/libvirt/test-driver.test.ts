/**
 * The libvirt provider against libvirt's test driver (`test:///<file>`), each test on its own
 * private node description so states never mix. Everything goes through the provider's one
 * virsh shell per connection, which is also how these tests look behind its back.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  connectLibvirt,
  closeLibvirtSessions,
  simNodeUri,
  simNodeXml,
  SIM_IMAGES,
  SIM_CAPACITY,
  ensureOvsNetwork,
  observeOvsNetwork,
  removeOvsNetwork,
  libvirtNetworkName,
  readOwnedDomain,
  type LibvirtNodeConnection,
} from '../../../providers/libvirt/index.js';
import { ReconcileError } from '../../../runtime/errors.js';
import type { MachineSpec } from '../../../providers/machine.js';
import { parseXml, child, childrenNamed } from '../../../providers/libvirt/xml.js';
import { pidAlive, removeDir, requireBinary, tempDir, waitFor } from '../../harness/process.js';

function machineSpec(over: Partial<MachineSpec> = {}): MachineSpec {
  return {
    uid: randomUUID(),
    namespace: 'default',
    name: 'web',
    hostname: 'web',
    image: 'debian-12',
    cpus: 1,
    memoryMiB: 512,
    disks: [{ name: 'data', sizeGiB: 2 }],
    networks: [],
    sshAuthorizedKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests test@stratus'],
    env: {},
    ports: [],
    labels: {},
    powerState: 'Running',
    providerSpec: {},
    ...over,
  };
}

let dir: string;
let seq = 0;
const open: LibvirtNodeConnection[] = [];

/** A connection to a fresh private sim node. */
async function freshNode(domainType?: string): Promise<LibvirtNodeConnection> {
  const file = join(dir, `node-${++seq}.xml`);
  await writeFile(file, simNodeXml());
  const conn = connectLibvirt({ uri: `test://${file}`, ...(domainType ? { domainType } : {}) });
  open.push(conn);
  return conn;
}

async function domainUuids(conn: LibvirtNodeConnection): Promise<string[]> {
  const out = await conn.shell().run(['list', '--all', '--uuid']);
  return out.split('\n').map((l) => l.trim()).filter(Boolean);
}

async function volumes(conn: LibvirtNodeConnection): Promise<string[]> {
  const out = await conn.shell().run(['vol-list', '--pool', 'default']);
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter(Boolean)
    .sort();
}

async function assertRejects(p: Promise<unknown>, reason: string, retryable: boolean, text?: RegExp): Promise<ReconcileError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ReconcileError, `expected a ReconcileError, got ${String(err)}`);
    assert.equal(err.reason, reason, err.message);
    assert.equal(err.retryable, retryable);
    if (text) assert.match(err.message, text);
    return err;
  }
  assert.fail(`expected ReconcileError ${reason}`);
}

before(async () => {
  requireBinary('virsh');
  requireBinary('xorriso');
  dir = await tempDir('libvirt-test-driver');
});

after(async () => {
  for (const c of open) await c.close();
  await closeLibvirtSessions();
  await removeDir(dir);
});

describe('libvirt provider on the test driver', () => {
  it('runs the lifecycle: create → running → stop → stopped → start → delete leaves no domain or volume', async () => {
    const conn = await freshNode();
    const m = conn.machines();
    const spec = machineSpec();
    const volumesBefore = await volumes(conn);

    await m.create(spec);
    let obs = await m.observe(spec);
    assert.equal(obs.exists, true);
    assert.equal(obs.state, 'running');
    assert.equal(obs.upToDate, true);
    assert.equal(obs.providerID, `libvirt://${spec.uid}`);
    assert.deepEqual(await m.listOwned(), [spec.uid]);
    // No networks in the spec: one NIC on the node's NAT network `default`, address from its DHCP.
    assert.match(obs.ipAddress ?? '', /^192\.168\.122\.\d+$/);
    assert.deepEqual(obs.addresses, [{ type: 'InternalIP', address: obs.ipAddress }]);

    const xml = (await conn.shell().run(['dumpxml', '--domain', spec.uid])) ?? '';
    const root = parseXml(xml);
    assert.equal(child(root, 'uuid')?.text, spec.uid);
    const devices = child(root, 'devices');
    const ctrl = childrenNamed(devices, 'controller').find((c) => c.attrs.type === 'scsi');
    assert.equal(ctrl?.attrs.model, 'virtio-scsi');
    const disks = childrenNamed(devices, 'disk').map((d) => ({
      device: d.attrs.device,
      dev: child(d, 'target')?.attrs.dev,
      bus: child(d, 'target')?.attrs.bus,
      file: child(d, 'source')?.attrs.file ?? '',
    }));
    assert.deepEqual(
      disks.map((d) => [d.device, d.dev, d.bus]),
      [
        ['disk', 'sda', 'scsi'],
        ['disk', 'sdb', 'scsi'],
        ['cdrom', 'sdc', 'scsi'],
      ],
    );
    assert.match(disks[0]?.file ?? '', new RegExp(`${spec.uid}-boot\\.qcow2$`));
    assert.match(disks[2]?.file ?? '', new RegExp(`${spec.uid}-seed\\.iso$`));
    assert.equal(child(root, 'memory')?.text, String(512 * 1024));
    assert.equal(child(root, 'vcpu')?.text, '1');
    assert.deepEqual(
      childrenNamed(devices, 'interface').map((i) => [i.attrs.type, child(i, 'source')?.attrs.network, child(i, 'virtualport')]),
      [['network', 'default', undefined]],
    );

    const boot = await conn.shell().run(['vol-dumpxml', '--pool', 'default', `${spec.uid}-boot.qcow2`]);
    const bootXml = parseXml(boot);
    assert.equal(child(bootXml, 'target/format')?.attrs.type, 'qcow2');
    assert.match(child(bootXml, 'backingStore/path')?.text ?? '', /debian-12\.qcow2$/);
    const data = parseXml(await conn.shell().run(['vol-dumpxml', '--pool', 'default', `${spec.uid}-disk-data.qcow2`]));
    assert.equal(Number(child(data, 'capacity')?.text), 2 * 1024 ** 3);

    const stopped = { ...spec, powerState: 'Stopped' as const };
    obs = await m.observe(stopped);
    assert.equal(obs.upToDate, false);
    await m.update(stopped, obs);
    obs = await m.observe(stopped);
    assert.equal(obs.state, 'stopped');
    assert.equal(obs.upToDate, true);

    obs = await m.observe(spec);
    assert.equal(obs.upToDate, false);
    await m.update(spec, obs);
    obs = await m.observe(spec);
    assert.equal(obs.state, 'running');
    assert.equal(obs.upToDate, true);

    await m.delete(spec);
    obs = await m.observe(spec);
    assert.equal(obs.exists, false);
    assert.deepEqual(await domainUuids(conn), []);
    assert.deepEqual(await volumes(conn), volumesBefore);
    assert.deepEqual(await m.listOwned(), []);
    await m.delete(spec); // absent is success
  });

  it('creating the same uid twice leaves exactly one domain', async () => {
    const conn = await freshNode();
    const m = conn.machines();
    const spec = machineSpec();
    await m.create(spec);
    await m.create(spec);
    await m.create({ ...spec, name: 'renamed', memoryMiB: 1024 });
    assert.deepEqual(await domainUuids(conn), [spec.uid]);
    assert.equal((await volumes(conn)).filter((v) => v.startsWith(spec.uid)).length, 3);
  });

  it('observe reports a domain destroyed or undefined behind its back, and update/create repair it', async () => {
    const conn = await freshNode();
    const m = conn.machines();
    const spec = machineSpec();
    await m.create(spec);

    await conn.shell().run(['destroy', '--domain', spec.uid]);
    let obs = await m.observe(spec);
    assert.equal(obs.exists, true);
    assert.equal(obs.state, 'stopped');
    assert.equal(obs.upToDate, false);
    await m.update(spec, obs);
    assert.equal((await m.observe(spec)).state, 'running');

    await conn.shell().run(['destroy', '--domain', spec.uid]);
    await conn.shell().run(['undefine', '--domain', spec.uid]);
    obs = await m.observe(spec);
    assert.equal(obs.exists, false);
    assert.equal(obs.upToDate, false);
    await m.create(spec);
    obs = await m.observe(spec);
    assert.equal(obs.exists, true);
    assert.equal(obs.state, 'running');
    assert.deepEqual(await domainUuids(conn), [spec.uid]);
  });

  it('applies a memory/cpu change by redefining and restarting the domain', async () => {
    const conn = await freshNode();
    const m = conn.machines();
    const spec = machineSpec({ providerSpec: { shutdownTimeoutSeconds: 0 } });
    await m.create(spec);
    const bigger = { ...spec, memoryMiB: 1024, cpus: 2 };
    let obs = await m.observe(bigger);
    assert.equal(obs.upToDate, false);
    assert.match(obs.message ?? '', /memoryMiB 512 → 1024/);
    for (let i = 0; i < 5 && !obs.upToDate; i++) {
      await m.update(bigger, obs);
      obs = await m.observe(bigger);
    }
    assert.equal(obs.upToDate, true, obs.message);
    assert.equal(obs.state, 'running');
    const root = parseXml(await conn.shell().run(['dumpxml', '--domain', spec.uid]));
    assert.equal(child(root, 'memory')?.text, String(1024 * 1024));
    assert.equal(child(root, 'vcpu')?.text, '2');
  });

  it('escapes every value: XML in names, labels and userData round-trips as text', async () => {
    const conn = await freshNode();
    const m = conn.machines();
    const spec = machineSpec({
      name: `a<x/>'"&`,
      namespace: 'ns</name><injected/>',
      labels: { 'k<x/>': `v'"<y/>` },
      userData: '#!/bin/sh\necho "</domain>" > /tmp/x\n',
    });
    await m.create(spec);
    const xml = await conn.shell().run(['dumpxml', '--domain', spec.uid]);
    const owned = readOwnedDomain(xml);
    assert.equal(owned?.name, spec.name);
    assert.equal(owned?.namespace, spec.namespace);
    assert.deepEqual(owned?.labels, spec.labels);
    const names = new Set<string>();
    const walk = (el: ReturnType<typeof parseXml>): void => {
      names.add(el.name);
      el.children.forEach(walk);
    };
    walk(parseXml(xml));
    assert.ok(!names.has('x') && !names.has('injected') && !names.has('y'), [...names].join(','));
    const domName = (await conn.shell().run(['domname', '--domain', spec.uid])).trim();
    assert.match(domName, /^[A-Za-z0-9_.-]+$/);
  });

  it('rejects an XML-looking hostname, memory 0, a disk of -1 GiB and 10,000 networks before creating anything', async () => {
    const conn = await freshNode();
    const m = conn.machines();
    const before = await volumes(conn);
    const tooMany = Array.from({ length: 10_000 }, (_, i) => ({ name: `net${i}`, bridge: 'br0', vlan: (i % 4094) + 1 }));
    const cases: [string, Partial<MachineSpec>, RegExp][] = [
      ['hostname', { hostname: '<x/>' }, /^hostname:/],
      ['memory 0', { memoryMiB: 0 }, /^memoryMiB:/],
      ['disk -1', { disks: [{ name: 'data', sizeGiB: -1 }] }, /^disks\[0\]\.sizeGiB:/],
      ['10,000 networks', { networks: tooMany }, /^networks: at most/],
      ['bad vlan', { networks: [{ name: 'n', bridge: 'br0', vlan: 5000 }] }, /^networks\[0\]\.vlan/],
      ['bad location', { providerSpec: { location: 'file:///etc/passwd' } }, /^libvirt\.location/],
    ];
    for (const [what, over, text] of cases) {
      const spec = machineSpec(over);
      await assertRejects(m.create(spec), 'InvalidSpec', false, text);
      assert.equal((await m.observe(spec)).exists, false, what);
    }
    assert.deepEqual(await domainUuids(conn), []);
    assert.deepEqual(await volumes(conn), before);
    assert.equal((await observeOvsNetwork(conn, libvirtNetworkName('net0'))) ?? null, null);
  });

  it('a missing image is ImageNotFound (not retryable) and creates nothing', async () => {
    const conn = await freshNode();
    const m = conn.machines();
    const before = await volumes(conn);
    const spec = machineSpec({ image: 'windows-95' });
    await assertRejects(m.create(spec), 'ImageNotFound', false, /windows-95/);
    assert.deepEqual(await domainUuids(conn), []);
    assert.deepEqual(await volumes(conn), before);
  });

  it('a cloud-init seed that cannot be written fails the create (SeedUploadFailed) and leaves nothing behind', async () => {
    // Domain type `qemu` on the test driver: the provider treats the node as one whose guests
    // boot, and the driver really cannot upload (libvirt: "not supported by the connection driver").
    const conn = await freshNode('qemu');
    const m = conn.machines();
    const before = await volumes(conn);
    const spec = machineSpec();
    const err = await assertRejects(m.create(spec), 'SeedUploadFailed', false, /cloud-init seed .*not supported/);
    assert.match(err.message, new RegExp(`volume ${spec.uid}-seed\\.iso of pool default`));
    assert.deepEqual(await domainUuids(conn), [], 'no domain was defined');
    assert.deepEqual(await volumes(conn), before, 'the boot clone, data disk and seed volumes were rolled back');
  });

  it('a machine without image gets no boot disk', async () => {
    const conn = await freshNode();
    const m = conn.machines();
    const spec = machineSpec({ image: undefined, disks: [], providerSpec: { console: true } });
    delete spec.image;
    await m.create(spec);
    const root = parseXml(await conn.shell().run(['dumpxml', '--domain', spec.uid]));
    const devices = child(root, 'devices');
    assert.deepEqual(
      childrenNamed(devices, 'disk').map((d) => d.attrs.device),
      ['cdrom'],
    );
    assert.equal(childrenNamed(devices, 'serial').length, 1);
    assert.equal((await m.observe(spec)).state, 'running');
  });

  it('the sim node reports its capacity and carries its named images', async () => {
    const file = simNodeUri(join(dir, 'sim-data'));
    assert.match(file, /^test:\/\/\/.*sim-node\.xml$/);
    const conn = connectLibvirt({ uri: file });
    open.push(conn);
    const node = await conn.describe();
    assert.deepEqual(node.capacity, SIM_CAPACITY);
    assert.match(node.version, /^libvirt \d+\.\d+\.\d+ \/ TEST/);
    assert.equal(node.machineCount, 0);
    const m = conn.machines();
    for (const img of SIM_IMAGES) {
      const spec = machineSpec({ image: img.name, hostname: img.name.replace(/\./g, '-') });
      await m.create(spec);
      const boot = parseXml(await conn.shell().run(['vol-dumpxml', '--pool', 'default', `${spec.uid}-boot.qcow2`]));
      assert.match(child(boot, 'backingStore/path')?.text ?? '', new RegExp(`/${img.name.replace(/\./g, '\\.')}\\.qcow2$`));
      assert.equal(Number(child(boot, 'capacity')?.text), img.sizeGiB * 1024 ** 3);
    }
    assert.equal((await conn.describe()).machineCount, SIM_IMAGES.length);
  });

  it('handles for one URI share one world: domains, volumes and networks agree', async () => {
    const a = await freshNode();
    const b = connectLibvirt({ uri: a.uri });
    open.push(b);
    const spec = machineSpec();
    await a.machines().create(spec);
    assert.equal((await b.machines().observe(spec)).state, 'running');
    assert.ok((await volumes(b)).includes(`${spec.uid}-boot.qcow2`));
    assert.equal(b.shell(), a.shell());
    await b.machines().delete(spec);
    assert.equal((await a.machines().observe(spec)).exists, false);
  });

  it('a test:/// world survives closing and reopening its connection until closeLibvirtSessions', async () => {
    const a = await freshNode();
    const spec = machineSpec();
    await a.machines().create(spec);
    const shellPid = a.shell().pid;
    assert.ok(shellPid !== undefined && pidAlive(shellPid));
    await a.close();
    const b = connectLibvirt({ uri: a.uri });
    open.push(b);
    assert.equal((await b.machines().observe(spec)).state, 'running');
    await b.close();
    await closeLibvirtSessions();
    await waitFor('the virsh shell to exit', () => !pidAlive(shellPid), 10_000);
    const c = connectLibvirt({ uri: a.uri });
    open.push(c);
    assert.equal((await c.machines().observe(spec)).exists, false, 'a new session loads the node file afresh');
  });

  it('ensureOvsNetwork defines, starts and autostarts a bridge network with VLAN portgroups, idempotently', async () => {
    const conn = await freshNode();
    const name = libvirtNetworkName('tenant-a');
    await ensureOvsNetwork(conn, { name, bridge: 'br-int', vlans: [20, 10, 10] });
    const obs = await observeOvsNetwork(conn, name);
    const uuid = obs?.uuid ?? '';
    assert.match(uuid, /^[0-9a-f-]{36}$/);
    assert.deepEqual(obs, { name, uuid, bridge: 'br-int', vlans: [10, 20], ovs: true, active: true, autostart: true });
    const xml = parseXml(await conn.shell().run(['net-dumpxml', name]));
    assert.equal(child(xml, 'forward')?.attrs.mode, 'bridge');
    assert.equal(child(xml, 'virtualport')?.attrs.type, 'openvswitch');
    assert.deepEqual(
      childrenNamed(xml, 'portgroup').map((p) => [p.attrs.name, child(p, 'vlan/tag')?.attrs.id]),
      [
        ['vlan-10', '10'],
        ['vlan-20', '20'],
      ],
    );
    await ensureOvsNetwork(conn, { name, bridge: 'br-int', vlans: [10, 20] });
    assert.equal(child(parseXml(await conn.shell().run(['net-dumpxml', name])), 'uuid')?.text, uuid);
    await ensureOvsNetwork(conn, { name, bridge: 'br-ext', vlans: [30] });
    assert.deepEqual(await observeOvsNetwork(conn, name), { name, uuid, bridge: 'br-ext', vlans: [30], ovs: true, active: true, autostart: true });
    await removeOvsNetwork(conn, name);
    assert.equal(await observeOvsNetwork(conn, name), undefined);
    await removeOvsNetwork(conn, name);
  });

  it('attaches one OVS interface per network, creating the libvirt network, and reports static addresses', async () => {
    const conn = await freshNode();
    const m = conn.machines();
    const spec = machineSpec({
      networks: [
        { name: 'front', bridge: 'br-int', vlan: 100, address: '10.20.0.5/24', gateway: '10.20.0.1' },
        { name: 'back', bridge: 'br-int', vlan: 200, mac: '52:54:00:aa:bb:cc' },
      ],
    });
    await m.create(spec);
    const root = parseXml(await conn.shell().run(['dumpxml', '--domain', spec.uid]));
    const nics = childrenNamed(child(root, 'devices'), 'interface').map((i) => ({
      type: i.attrs.type,
      network: child(i, 'source')?.attrs.network,
      portgroup: child(i, 'source')?.attrs.portgroup,
      vport: child(i, 'virtualport')?.attrs.type,
      mac: child(i, 'mac')?.attrs.address,
    }));
    assert.equal(nics.length, 2);
    assert.deepEqual(nics[0] && { ...nics[0], mac: undefined }, { type: 'network', network: 'stratus-front', portgroup: 'vlan-100', vport: 'openvswitch', mac: undefined });
    assert.match(nics[0]?.mac ?? '', /^52:54:00(:[0-9a-f]{2}){3}$/);
    assert.deepEqual(nics[1], { type: 'network', network: 'stratus-back', portgroup: 'vlan-200', vport: 'openvswitch', mac: '52:54:00:aa:bb:cc' });
    assert.deepEqual((await observeOvsNetwork(conn, 'stratus-front'))?.vlans, [100]);
    const obs = await m.observe(spec);
    assert.equal(obs.ipAddress, '10.20.0.5');
    assert.deepEqual(obs.addresses, [{ type: 'InternalIP', address: '10.20.0.5' }]);
  });

  it('machines created in parallel on one network all get their VLAN portgroup', async () => {
    const conn = await freshNode();
    const m = conn.machines();
    const specs = [100, 101, 102, 103, 104].map((vlan) => machineSpec({ networks: [{ name: 'shared', bridge: 'br-int', vlan }] }));
    await Promise.all(specs.map((s) => m.create(s)));
    assert.deepEqual((await observeOvsNetwork(conn, libvirtNetworkName('shared')))?.vlans, [100, 101, 102, 103, 104]);
    for (const s of specs) assert.equal((await m.observe(s)).state, 'running');
    assert.equal((await domainUuids(conn)).length, specs.length);
  });

  it('an unreachable node is NodeUnreachable with libvirt\'s message', async () => {
    const conn = connectLibvirt({ uri: `qemu+unix:///session?socket=${join(dir, 'no-such-dir', 'sock')}` });
    open.push(conn);
    const err = await assertRejects(conn.describe(), 'NodeUnreachable', true, /Failed to connect socket/);
    assert.match(err.message, /no-such-dir/);
    await assertRejects(conn.machines().observe(machineSpec()), 'NodeUnreachable', true);
  });
});
