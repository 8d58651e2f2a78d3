/**
 * OvsSwitch and OvsdbClient against a real ovsdb-server + ovs-vswitchd (netdev datapath),
 * one private instance for the file. Names carry a random suffix so parallel runs never meet.
 */
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ReconcileError } from '../../../runtime/errors.js';
import { OvsdbClient, OvsdbError, ovsNamedUuid, ovsSet, ovsUuid, type MonitorEvent } from '../../../providers/ovs/ovsdb.js';
import { OvsSwitch, OWNER_KEY } from '../../../providers/ovs/switch.js';
import { startOvs, type OvsInstance } from '../../harness/ovs.js';
import { removeDir, tempDir, waitFor } from '../../harness/process.js';

const sfx = randomBytes(3).toString('hex');
const name = (base: string): string => `${base}${sfx}`; // ≤ 15 chars: keep bases ≤ 9

let ovs: OvsInstance;
let client: OvsdbClient;
let sw: OvsSwitch;

before(async () => {
  ovs = await startOvs();
  client = new OvsdbClient(ovs.dbSocket, { minBackoffMs: 20, maxBackoffMs: 200 });
  sw = new OvsSwitch(client);
});

after(async () => {
  await client?.close();
  await ovs?.stop();
});

/** How many rows of `table` have `name` (read with ovs-vsctl, not the code under test). */
async function countRows(table: string, rowName: string): Promise<number> {
  const out = await ovs.vsctl('--no-wait', '--bare', '--columns=_uuid', 'find', table, `name=${rowName}`);
  return out.split('\n').filter((l) => l.trim() !== '').length;
}

/** The switch's configuration as ovs-vsctl sees it (columns that do not change by themselves). */
async function snapshot(): Promise<string> {
  const parts = await Promise.all([
    ovs.vsctl('--no-wait', '--format=json', '--columns=_uuid,name,ports,datapath_type,external_ids', 'list', 'Bridge'),
    ovs.vsctl('--no-wait', '--format=json', '--columns=_uuid,name,tag,interfaces,external_ids', 'list', 'Port'),
    ovs.vsctl('--no-wait', '--format=json', '--columns=_uuid,name,type,external_ids', 'list', 'Interface'),
  ]);
  return parts.join('\n');
}

async function rejectsWith(p: Promise<unknown>, reason: string, message?: RegExp): Promise<ReconcileError> {
  let caught: unknown;
  await p.then(
    () => assert.fail(`expected ReconcileError ${reason}`),
    (err: unknown) => {
      caught = err;
    },
  );
  assert.ok(caught instanceof ReconcileError, `expected ReconcileError, got ${String(caught)}`);
  assert.equal(caught.reason, reason, caught.message);
  if (message) assert.match(caught.message, message);
  return caught;
}

test('ensureBridge twice creates one bridge carrying the owner, applied by vswitchd', async () => {
  const br = name('brid');
  assert.equal(await sw.ensureBridge({ name: br, datapathType: 'netdev', ownerUid: 'net-1', externalIds: { 'stratus-network': 'default/blue' } }), 'created');
  assert.equal(await sw.ensureBridge({ name: br, datapathType: 'netdev', ownerUid: 'net-1' }), 'unchanged');
  assert.equal(await countRows('Bridge', br), 1);
  assert.equal(await countRows('Port', br), 1);
  assert.equal(await ovs.vsctl('get', 'Bridge', br, `external_ids:${OWNER_KEY}`), 'net-1');
  assert.equal(await ovs.vsctl('get', 'Bridge', br, 'datapath_type'), 'netdev');
  assert.equal(await ovs.vsctl('get', 'Interface', br, `external_ids:${OWNER_KEY}`), 'net-1');
  // vswitchd opened the bridge's internal port: the change was applied, not just committed.
  assert.equal(await ovs.vsctl('get', 'Interface', br, 'ofport'), '65534');
  const observed = await sw.observeBridge(br);
  assert.equal(observed?.ownerUid, 'net-1');
  assert.equal(observed?.datapathType, 'netdev');
  assert.deepEqual(observed?.ports.map((p) => p.name), [br]);

  // A second Network on the same bridge shares it: the first owner stays.
  assert.equal(await sw.ensureBridge({ name: br, datapathType: 'netdev', ownerUid: 'net-other' }), 'unchanged');
  assert.equal(await ovs.vsctl('get', 'Bridge', br, `external_ids:${OWNER_KEY}`), 'net-1');
  // A stratus bridge's datapath type follows the spec.
  assert.equal(await sw.ensureBridge({ name: br, datapathType: 'system', ownerUid: 'net-1' }), 'updated');
  assert.equal(await ovs.vsctl('get', 'Bridge', br, 'datapath_type'), 'system');
  assert.equal(await sw.ensureBridge({ name: br, datapathType: 'netdev', ownerUid: 'net-1' }), 'updated');
  assert.equal(await ovs.vsctl('get', 'Bridge', br, 'datapath_type'), 'netdev');
  assert.equal(await countRows('Bridge', br), 1);
});

test('ensureAccessPort twice leaves one tagged access port with owner and network on port and interface', async () => {
  const br = name('brap');
  const port = name('pa');
  await sw.ensureBridge({ name: br, datapathType: 'netdev', ownerUid: 'net-2' });
  const spec = { bridge: br, port, vlan: 10, ownerUid: 'inst-2', networkUid: 'net-2', interfaceType: 'internal' as const };
  assert.equal(await sw.ensureAccessPort(spec), 'created');
  assert.equal(await sw.ensureAccessPort(spec), 'unchanged');
  assert.equal(await countRows('Port', port), 1);
  assert.equal(await countRows('Interface', port), 1);
  assert.equal(await ovs.vsctl('get', 'Port', port, 'tag'), '10');
  assert.equal(await ovs.vsctl('get', 'Port', port, 'vlan_mode'), 'access');
  assert.equal(await ovs.vsctl('get', 'Port', port, 'external_ids'), '{stratus-network=net-2, stratus-owner=inst-2}');
  assert.equal(await ovs.vsctl('get', 'Interface', port, `external_ids:${OWNER_KEY}`), 'inst-2');
  assert.equal(await ovs.vsctl('iface-to-br', port), br);
  const [observed] = await sw.listOwnedPorts('inst-2');
  assert.equal(observed?.name, port);
  assert.equal(observed?.tag, 10);
  assert.equal(observed?.interfaces[0]?.type, 'internal');
  assert.ok((observed?.interfaces[0]?.ofport ?? -1) > 0, 'vswitchd opened the internal port');
});

test('a VLAN change retags one port, or every port of a Network in one call', async () => {
  const br = name('brvl');
  const [p1, p2, p3] = [name('pv1'), name('pv2'), name('pv3')];
  await sw.ensureBridge({ name: br, datapathType: 'netdev', ownerUid: 'net-3' });
  await sw.ensureAccessPort({ bridge: br, port: p1, vlan: 10, ownerUid: 'i1', networkUid: 'net-blue', interfaceType: 'internal' });
  await sw.ensureAccessPort({ bridge: br, port: p2, vlan: 10, ownerUid: 'i2', networkUid: 'net-blue', interfaceType: 'internal' });
  await sw.ensureAccessPort({ bridge: br, port: p3, vlan: 20, ownerUid: 'i3', networkUid: 'net-red', interfaceType: 'internal' });

  assert.equal(await sw.setPortTag(p3, 21), 'updated');
  assert.equal(await sw.setPortTag(p3, 21), 'unchanged');
  assert.equal(await ovs.vsctl('get', 'Port', p3, 'tag'), '21');

  assert.equal(await sw.retagNetwork('net-blue', 30), 2);
  assert.equal(await sw.retagNetwork('net-blue', 30), 0);
  assert.equal(await ovs.vsctl('get', 'Port', p1, 'tag'), '30');
  assert.equal(await ovs.vsctl('get', 'Port', p2, 'tag'), '30');
  assert.equal(await ovs.vsctl('get', 'Port', p3, 'tag'), '21');
  assert.deepEqual((await sw.listNetworkPorts('net-blue')).map((p) => p.name).sort(), [p1, p2].sort());

  // ensureAccessPort also repairs a tag changed behind stratus's back.
  await ovs.vsctl('set', 'Port', p1, 'tag=99');
  assert.equal(await sw.ensureAccessPort({ bridge: br, port: p1, vlan: 30, ownerUid: 'i1', networkUid: 'net-blue', interfaceType: 'internal' }), 'updated');
  assert.equal(await ovs.vsctl('get', 'Port', p1, 'tag'), '30');
  await rejectsWith(sw.setPortTag(name('nope'), 5), 'PortNotFound');
});

test('a transaction failing at its last operation leaves OVS unchanged and names the operation', async () => {
  const br = name('brtx');
  const port = name('ptx');
  await sw.ensureBridge({ name: br, datapathType: 'netdev', ownerUid: 'net-4' });
  const bridgeUuid = (await sw.observeBridge(br))?.uuid ?? '';
  const before = await snapshot();
  await assert.rejects(
    client.transact('Open_vSwitch', [
      { op: 'insert', table: 'Interface', row: { name: port, type: 'internal' }, 'uuid-name': 'i' },
      { op: 'insert', table: 'Port', row: { name: port, interfaces: ovsNamedUuid('i'), tag: 10 }, 'uuid-name': 'p' },
      { op: 'mutate', table: 'Bridge', where: [['_uuid', '==', ovsUuid(bridgeUuid)]], mutations: [['ports', 'insert', ovsSet([ovsNamedUuid('p')])]] },
      { op: 'update', table: 'Port', where: [['name', '==', br]], row: { tag: 5000 } },
    ]),
    (err: unknown) =>
      err instanceof OvsdbError && err.opIndex === 3 && err.opName === 'update Port' && err.error === 'constraint violation' && /5000/.test(err.details ?? ''),
  );
  assert.equal(await snapshot(), before);
  assert.equal(await countRows('Port', port), 0);
});

test('a port whose interface name is taken fails at commit: OvsdbTransactionFailed, nothing changed', async () => {
  const br = name('brcf');
  const bond = name('bd');
  const [ifa, ifb] = [name('ifa'), name('ifb')];
  await sw.ensureBridge({ name: br, datapathType: 'netdev', ownerUid: 'net-5' });
  // An administrator's bond: port `bond` holds interfaces ifa and ifb (no Port is named ifa).
  await ovs.vsctl('add-bond', br, bond, ifa, ifb, '--', 'set', 'Interface', ifa, 'type=internal', '--', 'set', 'Interface', ifb, 'type=internal');
  const before = await snapshot();
  const err = await rejectsWith(
    sw.ensureAccessPort({ bridge: br, port: ifa, vlan: 10, ownerUid: 'inst-5' }),
    'OvsdbTransactionFailed',
    /cannot ensure port .* on bridge .*: ovsdb transaction failed at commit .*constraint violation/,
  );
  assert.equal(err.retryable, true);
  assert.equal(await snapshot(), before);
});

test('invalid input is refused before anything is sent, and admin-made rows are never taken over', async () => {
  const br = name('brin');
  await sw.ensureBridge({ name: br, datapathType: 'netdev', ownerUid: 'net-6' });
  const before = await snapshot();
  const e1 = await rejectsWith(sw.ensureAccessPort({ bridge: br, port: name('pin'), vlan: 4095, ownerUid: 'x' }), 'InvalidVLAN', /4095/);
  assert.equal(e1.retryable, false);
  await rejectsWith(sw.ensureAccessPort({ bridge: br, port: 'a-name-far-too-long', vlan: 10, ownerUid: 'x' }), 'InvalidName');
  await rejectsWith(sw.ensureAccessPort({ bridge: name('nobr'), port: name('pin'), vlan: 10, ownerUid: 'x' }), 'BridgeNotFound');
  assert.equal(await snapshot(), before);

  const adminBr = name('bradm');
  const adminPort = name('padm');
  await ovs.vsctl('add-br', adminBr, '--', 'set', 'Bridge', adminBr, 'datapath_type=netdev', '--', 'add-port', adminBr, adminPort, '--', 'set', 'Interface', adminPort, 'type=internal');
  await rejectsWith(sw.ensureAccessPort({ bridge: adminBr, port: adminPort, vlan: 10, ownerUid: 'x' }), 'PortConflict', /created outside stratus/);
  await rejectsWith(sw.ensureAccessPort({ bridge: br, port: adminPort, vlan: 10, ownerUid: 'x' }), 'PortConflict');
  // An existing bridge stratus did not make is used as it is...
  assert.equal(await sw.ensureBridge({ name: adminBr, datapathType: 'system', ownerUid: 'net-6' }), 'unchanged');
  assert.equal(await ovs.vsctl('get', 'Bridge', adminBr, 'datapath_type'), 'netdev');
  // ...and never removed by it.
  assert.equal(await sw.removeBridge(adminBr, { force: true }), 'not-owned');
  assert.equal(await countRows('Bridge', adminBr), 1);
});

test('orphans are found by owner, removed in one go, and bridges in use are kept', async () => {
  const br = name('bror');
  const [pa, pb, pc] = [name('poa'), name('pob'), name('poc')];
  await sw.ensureBridge({ name: br, datapathType: 'netdev', ownerUid: `net-7-${sfx}` });
  await sw.ensureAccessPort({ bridge: br, port: pa, vlan: 10, ownerUid: `live-${sfx}`, interfaceType: 'internal' });
  await sw.ensureAccessPort({ bridge: br, port: pb, vlan: 10, ownerUid: `gone-${sfx}`, interfaceType: 'internal' });
  await sw.ensureAccessPort({ bridge: br, port: pc, vlan: 11, ownerUid: `gone-${sfx}`, interfaceType: 'internal' });

  const known = [`net-7-${sfx}`, `live-${sfx}`];
  const orphans = await sw.listOrphans(known);
  const mine = orphans.ports.filter((p) => p.bridge === br);
  assert.deepEqual(mine.map((p) => p.name).sort(), [pb, pc].sort());
  assert.equal(orphans.bridges.some((b) => b.name === br), false);

  assert.deepEqual((await sw.removePortsOwnedBy(`gone-${sfx}`)).sort(), [pb, pc].sort());
  assert.deepEqual(await sw.removePortsOwnedBy(`gone-${sfx}`), []);
  assert.equal(await countRows('Port', pb), 0);
  assert.equal(await countRows('Interface', pc), 0, 'the interface went with its port');

  assert.equal(await sw.removeBridge(br, { ownerUid: 'someone-else' }), 'not-owned');
  assert.equal(await sw.removeBridge(br), 'in-use');
  assert.equal(await sw.removePort(pa), true);
  assert.equal(await sw.removePort(pa), false);
  assert.equal(await sw.removeBridge(br, { ownerUid: `net-7-${sfx}` }), 'removed');
  assert.equal(await sw.removeBridge(br), 'absent');
  assert.equal(await countRows('Bridge', br), 0);
  assert.equal(await countRows('Port', br), 0);
});

test('a monitor delivers the snapshot and every insert and retag of a port', async () => {
  const br = name('brmo');
  const port = name('pmo');
  await sw.ensureBridge({ name: br, datapathType: 'netdev', ownerUid: 'net-8' });
  const events: MonitorEvent[] = [];
  const m = await client.monitor('Open_vSwitch', { Port: { columns: ['name', 'tag'], where: [['name', '==', port]] } }, (e) => events.push(e));
  try {
    assert.deepEqual(events, [{ kind: 'initial', resync: false, updates: {} }]);
    await sw.ensureAccessPort({ bridge: br, port, vlan: 10, ownerUid: 'inst-8', interfaceType: 'internal' });
    const inserted = await waitFor('the insert', () =>
      events.flatMap((e) => Object.values(e.updates.Port ?? {})).find((u) => u.insert?.name === port),
    );
    assert.equal(inserted.insert?.tag, 10);
    await sw.setPortTag(port, 20);
    const modified = await waitFor('the retag', () => events.flatMap((e) => Object.values(e.updates.Port ?? {})).find((u) => u.modify));
    assert.deepEqual(modified.modify, { tag: 20 });
    await sw.removePort(port);
    await waitFor('the delete', () => events.flatMap((e) => Object.values(e.updates.Port ?? {})).find((u) => 'delete' in u));
  } finally {
    await m.cancel();
  }
});

test('ovsdb restarted empty: the monitor resyncs and the next ensure re-creates bridge and port', async () => {
  const br = name('brre');
  const port = name('pre');
  await sw.ensureBridge({ name: br, datapathType: 'netdev', ownerUid: 'net-9' });
  await sw.ensureAccessPort({ bridge: br, port, vlan: 10, ownerUid: 'inst-9', interfaceType: 'internal' });
  const events: MonitorEvent[] = [];
  const m = await client.monitor('Open_vSwitch', { Bridge: { columns: ['name'] } }, (e) => events.push(e));
  try {
    assert.ok(Object.values(events[0]?.updates.Bridge ?? {}).some((u) => u.initial?.name === br));
    await ovs.restartEmpty();
    const resync = await waitFor('the resync snapshot', () => events.find((e) => e.resync), 15_000);
    assert.deepEqual(resync.updates, {}, 'the new database has no bridges');
    assert.equal(await sw.observeBridge(br), undefined);

    assert.equal(await sw.ensureBridge({ name: br, datapathType: 'netdev', ownerUid: 'net-9' }), 'created');
    assert.equal(await sw.ensureAccessPort({ bridge: br, port, vlan: 10, ownerUid: 'inst-9', interfaceType: 'internal' }), 'created');
    assert.equal(await ovs.vsctl('get', 'Port', port, 'tag'), '10');
    assert.ok(((await sw.listOwnedPorts('inst-9'))[0]?.interfaces[0]?.ofport ?? -1) > 0, 'vswitchd re-created the port');
  } finally {
    await m.cancel();
  }
});

test('a database without its root row gets one when the first bridge is made', async () => {
  await client.transact('Open_vSwitch', [{ op: 'delete', table: 'Open_vSwitch', where: [] }]);
  assert.equal((await sw.observe()).initialized, false);
  const br = name('brrt');
  assert.equal(await sw.ensureBridge({ name: br, datapathType: 'netdev', ownerUid: 'net-10' }), 'created');
  const obs = await sw.observe();
  assert.equal(obs.initialized, true);
  assert.equal(obs.applied, true);
  assert.deepEqual(obs.bridges.map((b) => b.name), [br]);
  assert.equal(await ovs.vsctl('get', 'Interface', br, 'ofport'), '65534');
});

test('an unreachable database is OvsdbUnreachable, not a hang', async () => {
  const dir = await tempDir('ovs-absent');
  const c = new OvsdbClient(`unix:${dir}/db.sock`);
  try {
    await rejectsWith(new OvsSwitch(c).observe(), 'OvsdbUnreachable', /cannot observe Open vSwitch: cannot connect to ovsdb at unix:/);
  } finally {
    await c.close();
    await removeDir(dir);
  }
});
