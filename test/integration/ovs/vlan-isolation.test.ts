/**
 * VLAN isolation, proven with traffic: network namespaces attached to a real netdev bridge
 * through `attachNamespace` (veth host end = OVS access port with the tag). Addresses are
 * 10.99.0.0/24 inside namespaces this test creates; nothing leaves them.
 */
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { OvsdbClient } from '../../../providers/ovs/ovsdb.js';
import { OvsSwitch } from '../../../providers/ovs/switch.js';
import { attachNamespace, detachNamespace, hostInterfaceName, type NamespaceAttachment } from '../../../providers/ovs/netns.js';
import { startOvs, type OvsInstance } from '../../harness/ovs.js';
import { execFileP, requireBinary, startDaemon, waitFor, type Daemon } from '../../harness/process.js';

const sfx = randomBytes(3).toString('hex');
const bridge = `stiso${sfx}`;
const netBlue = `net-blue-${sfx}`; // VLAN 10
const netRed = `net-red-${sfx}`; // VLAN 20
const names = { a: `stratus-a-${sfx}`, b: `stratus-b-${sfx}`, c: `stratus-c-${sfx}` };
const addr = { a: '10.99.0.1', b: '10.99.0.2', c: '10.99.0.3', d: '10.99.0.4' };

let ovs: OvsInstance;
let client: OvsdbClient;
let sw: OvsSwitch;
let container: Daemon | undefined;
const created: string[] = [];

before(async () => {
  requireBinary('busybox');
  requireBinary('nsenter');
  requireBinary('unshare');
  ovs = await startOvs();
  client = new OvsdbClient(ovs.dbSocket);
  sw = new OvsSwitch(client);
  await sw.ensureBridge({ name: bridge, datapathType: 'netdev', ownerUid: netBlue });
  for (const ns of Object.values(names)) {
    await execFileP('ip', ['netns', 'add', ns]);
    created.push(ns);
  }
});

after(async () => {
  await container?.kill();
  // Only there if the misplaced-host-end test failed to clean up after itself.
  await execFileP('ip', ['link', 'del', hostInterfaceName(`misplaced-${sfx}`)]).catch(() => undefined);
  for (const ns of created) await execFileP('ip', ['netns', 'del', ns]).catch(() => undefined);
  await client?.close();
  await ovs?.stop(); // deletes the switch's namespace, and with it every veth host end
});

function attachment(key: 'a' | 'b' | 'c', vlan: number, networkUid: string): NamespaceAttachment {
  return {
    bridge,
    vlan,
    ownerUid: `endpoint-${key}-${sfx}`,
    networkUid,
    target: { netns: names[key] },
    address: `${addr[key]}/24`,
    switchNetns: ovs.netns,
  };
}

/** True when `from` gets an answer from `to` (2 pings, 1 s wait each). */
async function reaches(from: string, to: string): Promise<boolean> {
  try {
    await execFileP('ip', ['netns', 'exec', from, 'busybox', 'ping', '-c', '2', '-W', '1', to]);
    return true;
  } catch {
    return false;
  }
}

test('two namespaces on VLAN 10 reach each other; one on VLAN 20 reaches neither', async () => {
  assert.equal((await attachNamespace(sw, attachment('a', 10, netBlue))).port, 'created');
  assert.equal((await attachNamespace(sw, attachment('b', 10, netBlue))).port, 'created');
  assert.equal((await attachNamespace(sw, attachment('c', 20, netRed))).port, 'created');

  const { stdout } = await execFileP('ip', ['-n', names.a, '-br', 'addr', 'show', 'dev', 'eth1']);
  assert.match(stdout, /^eth1@\S+\s+UP\s+10\.99\.0\.1\/24/);
  assert.equal(await ovs.vsctl('get', 'Port', hostInterfaceName(`endpoint-c-${sfx}`), 'tag'), '20');
  await ovs.settle();

  assert.equal(await reaches(names.a, addr.b), true, 'a reaches b on VLAN 10');
  assert.equal(await reaches(names.b, addr.a), true, 'b reaches a on VLAN 10');
  assert.equal(await reaches(names.c, addr.a), false, 'c on VLAN 20 must not reach a');
  assert.equal(await reaches(names.c, addr.b), false, 'c on VLAN 20 must not reach b');
});

test("after the red Network's VLAN changes to 10, its namespace reaches the others", async () => {
  assert.equal(await sw.retagNetwork(netRed, 10), 1);
  await ovs.settle();
  assert.equal(await reaches(names.c, addr.a), true, 'c reaches a after the retag');
  assert.equal(await reaches(names.c, addr.b), true, 'c reaches b after the retag');
  // And back: isolation follows the tag both ways.
  assert.equal(await sw.retagNetwork(netRed, 20), 1);
  await ovs.settle();
  assert.equal(await reaches(names.c, addr.a), false, 'c is isolated again on VLAN 20');
});

test('attaching again changes nothing and repairs a drifted tag', async () => {
  const again = await attachNamespace(sw, attachment('a', 10, netBlue));
  assert.equal(again.port, 'unchanged');
  await ovs.vsctl('set', 'Port', again.hostIfName, 'tag=99');
  await ovs.settle();
  assert.equal(await reaches(names.a, addr.b), false, 'a is cut off on VLAN 99');
  assert.equal((await attachNamespace(sw, attachment('a', 10, netBlue))).port, 'updated');
  await ovs.settle();
  assert.equal(await reaches(names.a, addr.b), true, 'a is back on VLAN 10');
  assert.equal((await sw.listOwnedPorts(`endpoint-a-${sfx}`)).length, 1);
});

test("a container's namespace is attached by PID, the way Docker containers are", async () => {
  container = startDaemon('unshare', ['--net', '--', 'busybox', 'sleep', '600']);
  const pid = container.pid;
  // unshare execs busybox in place: the PID is in its own namespace once unshare(2) ran.
  await waitFor('the container process to enter its namespace', async () => {
    const [{ stdout: mine }, { stdout: theirs }] = await Promise.all([
      execFileP('readlink', ['/proc/self/ns/net']),
      execFileP('readlink', [`/proc/${pid}/ns/net`]),
    ]);
    return mine !== theirs;
  });
  const owner = `container-${sfx}`;
  const res = await attachNamespace(sw, {
    bridge,
    vlan: 10,
    ownerUid: owner,
    networkUid: netBlue,
    target: { pid },
    ifName: 'eth1',
    address: `${addr.d}/24`,
    switchNetns: ovs.netns,
  });
  assert.equal(res.port, 'created');
  await ovs.settle();
  assert.equal(await reaches(names.a, addr.d), true, 'a reaches the container on VLAN 10');
  const { stdout } = await execFileP('nsenter', [`--net=/proc/${pid}/ns/net`, '--', 'busybox', 'ping', '-c', '2', '-W', '1', addr.b]);
  assert.match(stdout, /2 packets received/);

  assert.equal(await detachNamespace(sw, { ownerUid: owner, switchNetns: ovs.netns }), true);
  assert.equal(await detachNamespace(sw, { ownerUid: owner, switchNetns: ovs.netns }), false);
  await ovs.settle();
  assert.equal(await reaches(names.a, addr.d), false, 'the container is gone from the VLAN');
  await assert.rejects(execFileP('nsenter', [`--net=/proc/${pid}/ns/net`, '--', 'ip', 'link', 'show', 'eth1']), 'eth1 left with the pair');
  assert.deepEqual(await sw.listOwnedPorts(owner), []);
});

test('detach removes the port and both veth ends', async () => {
  const owner = `endpoint-b-${sfx}`;
  const host = hostInterfaceName(owner);
  assert.equal(await detachNamespace(sw, { ownerUid: owner, switchNetns: ovs.netns }), true);
  await ovs.settle();
  await assert.rejects(execFileP('ip', ['-n', ovs.netns, 'link', 'show', host]), 'the host end is gone');
  await assert.rejects(execFileP('ip', ['-n', names.b, 'link', 'show', 'eth1']), 'the namespace end is gone');
  assert.deepEqual(await sw.listOwnedPorts(owner), []);
  assert.equal(await reaches(names.a, addr.b), false);
});

test('attaching a namespace that does not exist fails cleanly and leaves no port', async () => {
  await assert.rejects(
    attachNamespace(sw, { ...attachment('a', 10, netBlue), ownerUid: `ghost-${sfx}`, target: { netns: `stratus-none-${sfx}` } }),
    (err: unknown) => err instanceof Error && 'reason' in err && err.reason === 'NamespaceNotFound',
  );
  assert.deepEqual(await sw.listOwnedPorts(`ghost-${sfx}`), []);
  await assert.rejects(execFileP('ip', ['-n', ovs.netns, 'link', 'show', hostInterfaceName(`ghost-${sfx}`)]));
});

test('a host end vswitchd cannot open (wrong namespace) fails the attach with its error and leaves nothing', async () => {
  const owner = `misplaced-${sfx}`;
  const host = hostInterfaceName(owner);
  // No switchNetns: the host end is made in our namespace, where this vswitchd cannot see it.
  const { switchNetns: _ignored, ...wrong } = { ...attachment('a', 10, netBlue), ownerUid: owner, ifName: 'eth7' };
  await assert.rejects(
    attachNamespace(sw, wrong),
    (err: unknown) => err instanceof Error && 'reason' in err && err.reason === 'AttachFailed' && /could not open network device/.test(err.message),
  );
  assert.deepEqual(await sw.listOwnedPorts(owner), []);
  await assert.rejects(execFileP('ip', ['link', 'show', host]), 'the veth pair was removed');
  await assert.rejects(execFileP('ip', ['-n', names.a, 'link', 'show', 'eth7']), 'no interface left in the namespace');
});
