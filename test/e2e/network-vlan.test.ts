/**
 * Networks end to end: `stratus serve` with its controllers, a real Docker engine (TLS) as a
 * ComputeNode, and a real Open vSwitch (netdev datapath) as the node's switch. Three
 * container Instances join two Networks; traffic proves the VLANs isolate, and follows a
 * Network's VLAN change.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { ComputeNode, Instance, Network } from '../../crds/types.js';
import { KubeClient } from '../../runtime/client.js';
import { Resources } from '../../controllers/resources.js';
import { startStratusServe, type StratusServe } from '../harness/apiserver.js';
import { startOvs, type OvsInstance } from '../harness/ovs.js';
import { importBusybox, makeCerts, registerDockerNode, startDockerd, type Dockerd } from '../harness/dockerd.js';
import { removeDir, tempDir, waitFor } from '../harness/process.js';

let serve: StratusServe | undefined;
let ovs: OvsInstance | undefined;
let engine: Dockerd | undefined;
let certDir: string | undefined;
let client: KubeClient;
let image = '';
const bridge = `brv${randomBytes(4).toString('hex')}`;

before(async () => {
  certDir = await tempDir('netcerts');
  const certs = await makeCerts(join(certDir, 'certs'));
  [ovs, engine] = await Promise.all([startOvs(), startDockerd({ certs })]);
  image = await importBusybox(engine);
  serve = await startStratusServe({ controllers: true });
  client = KubeClient.fromFile(serve.kubeconfig);
  await registerDockerNode(client, engine, certs, { ovs: { database: ovs.dbSocket, netns: ovs.netns }, capacity: { cpus: 16, memoryMiB: 16384 } });
});

after(async () => {
  try {
    if (serve && client) {
      const instances = client.resource<Instance>(Resources.instances);
      for (const name of ['a', 'b', 'c']) await instances.delete('default', name).catch(() => undefined);
      await waitFor('instances deleted', async () => (await instances.list('default')).length === 0, 30_000).catch(() => undefined);
    }
  } finally {
    client?.close();
    await serve?.stop();
    await engine?.stop();
    await ovs?.stop();
    if (certDir) await removeDir(certDir);
  }
});

function network(name: string, vlan: number): Network {
  return {
    apiVersion: 'compute.stratus.dev/v1alpha1',
    kind: 'Network',
    metadata: { name, namespace: 'default' },
    spec: { bridge, vlan, datapathType: 'netdev', cidr: '10.99.0.0/24' },
  };
}

function container(name: string, net: string, ip: string): Instance {
  return {
    apiVersion: 'compute.stratus.dev/v1alpha1',
    kind: 'Instance',
    metadata: { name, namespace: 'default' },
    spec: { provider: 'docker', image, command: ['/bin/busybox', 'sleep', '3600'], cpus: 1, memoryMiB: 64, networks: [{ name: net, ipAddress: ip }] },
  };
}

/** Pings `to` from inside Instance `from`'s container; true when a reply came back. */
async function pings(from: string, to: string): Promise<boolean> {
  const containers = await engine!.client.listContainers({ filters: { label: [`stratus.dev/name=${from}`] } });
  assert.equal(containers.length, 1, `container of ${from}`);
  const exec = await engine!.client.getContainer(containers[0]!.Id).exec({ Cmd: ['/bin/busybox', 'ping', '-c', '2', '-W', '1', to], AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({});
  await new Promise<void>((resolve) => {
    stream.on('end', resolve);
    stream.on('close', resolve);
    stream.resume();
  });
  const info = await exec.inspect();
  return info.ExitCode === 0;
}

test('containers on one VLAN reach each other, another VLAN reaches neither, and a VLAN change moves reachability', async () => {
  const networks = client.resource<Network>(Resources.networks);
  const instances = client.resource<Instance>(Resources.instances);
  await waitFor('engine-1 Ready', async () => {
    const n = await client.resource<ComputeNode>(Resources.computeNodes).get(undefined, 'engine-1');
    return n?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
  }, 30_000);
  await networks.create(network('net10', 10));
  await networks.create(network('net20', 20));
  await instances.create(container('a', 'net10', '10.99.0.1'));
  await instances.create(container('b', 'net10', '10.99.0.2'));
  await instances.create(container('c', 'net20', '10.99.0.3'));

  // Every container running with its port on the switch, tagged with its Network's VLAN.
  await waitFor('three containers running and attached', async () => {
    const all = await instances.list('default');
    const running = all.filter((i) => i.status?.state === 'running' && i.status.conditions?.some((c) => c.type === 'Synced' && c.status === 'True'));
    const ports10 = (await networks.get('default', 'net10'))?.status?.ports ?? [];
    const ports20 = (await networks.get('default', 'net20'))?.status?.ports ?? [];
    return running.length === 3 && ports10.length === 2 && ports20.length === 1 && ports20[0]?.tag === 20;
  }, 90_000, 250);
  const net10 = await networks.get('default', 'net10');
  assert.deepEqual(net10?.status?.ports?.map((p) => p.instance).sort(), ['a', 'b']);
  assert.ok(net10?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));

  await ovs!.settle();
  assert.equal(await pings('a', '10.99.0.2'), true, 'a reaches b on VLAN 10');
  assert.equal(await pings('c', '10.99.0.1'), false, 'c on VLAN 20 must not reach a');
  assert.equal(await pings('c', '10.99.0.2'), false, 'c on VLAN 20 must not reach b');

  // A Network the switch refuses (its bridge would clash with a's port): nothing changes on
  // the switch and the Network says why.
  const bridgesBefore = await ovs!.vsctl('list-br');
  const portName = net10!.status!.ports!.find((p) => p.instance === 'a')!.name;
  await networks.create({ ...network('clash', 30), spec: { bridge: portName, vlan: 30, datapathType: 'netdev' } });
  const synced = await waitFor('clash Synced=False', async () => (await networks.get('default', 'clash'))?.status?.conditions?.find((c) => c.type === 'Synced' && c.status === 'False'), 30_000, 200);
  assert.ok(['OvsdbTransactionFailed', 'PortConflict'].includes(synced.reason ?? ''), `reason ${synced.reason}: ${synced.message}`);
  assert.match(synced.message ?? '', new RegExp(portName));
  assert.equal(await ovs!.vsctl('list-br'), bridgesBefore, 'the switch is unchanged');
  await networks.delete('default', 'clash');
  await waitFor('clash gone', async () => (await networks.get('default', 'clash')) === undefined, 30_000);

  // Move net20 to VLAN 10: c's port is retagged and c joins a and b.
  await networks.mergePatch('default', 'net20', { spec: { vlan: 10 } });
  await waitFor('net20 retagged', async () => {
    const n = await networks.get('default', 'net20');
    return n?.status?.observedGeneration === n?.metadata?.generation && n?.status?.ports?.[0]?.tag === 10;
  }, 30_000, 200);
  await ovs!.settle();
  assert.equal(await pings('c', '10.99.0.1'), true, 'after the VLAN change c reaches a');

  // Deleting a Network removes its ports from the switch.
  await instances.delete('default', 'c');
  await waitFor('c gone', async () => (await instances.get('default', 'c')) === undefined, 30_000);
  await networks.delete('default', 'net20');
  await waitFor('net20 gone', async () => (await networks.get('default', 'net20')) === undefined, 30_000);
  const portsLeft = await ovs!.vsctl('list-ports', bridge);
  assert.equal(portsLeft.split('\n').filter((p) => p.trim() !== '').length, 2, `only a's and b's ports remain: ${portsLeft}`);
});
