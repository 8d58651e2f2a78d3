/**
 * The Instance lifecycle on libvirt's test driver through the real API server: the
 * controllers run in this process (as `stratus controller` would) against `stratus serve
 * --no-controllers`, so the test can reach behind their back through the same node
 * connections (the test driver's state lives in the process that opened it).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { ComputeNode, Instance } from '../../../crds/types.js';
import { ApiError, KubeClient } from '../../../runtime/client.js';
import { Manager } from '../../../runtime/manager.js';
import { registerControllers, type ControllerResources } from '../../../controllers/index.js';
import { Resources } from '../../../controllers/resources.js';
import { machineSpecFor } from '../../../controllers/machinespec.js';
import { simNodeUri } from '../../../providers/libvirt/index.js';
import { startStratusServe, type StratusServe } from '../../harness/apiserver.js';
import { removeDir, tempDir, waitFor } from '../../harness/process.js';

let serve: StratusServe;
let client: KubeClient;
let mgr: Manager;
let held: ControllerResources;
let simDir: string;
const nodes = () => client.resource<ComputeNode>(Resources.computeNodes);
const instances = () => client.resource<Instance>(Resources.instances);

before(async () => {
  serve = await startStratusServe();
  client = KubeClient.fromFile(serve.kubeconfig);
  simDir = await tempDir('sim');
  for (const [name, labels, memoryMiB] of [
    ['n1', { zone: 'a' }, 8192],
    ['n2', { zone: 'b' }, 8192],
    ['n3', { zone: 'b', disk: 'ssd' }, 8192],
  ] as const) {
    await nodes().create({
      apiVersion: 'compute.stratus.dev/v1alpha1',
      kind: 'ComputeNode',
      metadata: { name, labels: { ...labels } },
      spec: { provider: 'libvirt', libvirt: { uri: simNodeUri(join(simDir, name)), imagePool: 'default' }, capacityOverride: { cpus: 8, memoryMiB } },
    });
  }
  mgr = new Manager({ client: KubeClient.fromFile(serve.kubeconfig) });
  held = registerControllers(mgr, { instancePollMs: 300, instanceTransitionMs: 100, heartbeatMs: 500 });
  await mgr.start();
  await waitFor('three Ready nodes', async () => {
    const list = await nodes().list();
    return list.filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length === 3;
  }, 20_000);
});

after(async () => {
  try {
    for (const i of await instances().list().catch(() => [])) await instances().delete(i.metadata?.namespace, i.metadata?.name ?? '').catch(() => undefined);
    await waitFor('instances gone', async () => (await instances().list()).length === 0, 20_000).catch(() => undefined);
  } finally {
    await mgr?.stop();
    await held?.close();
    client?.close();
    await serve?.stop();
    if (simDir) await removeDir(simDir);
  }
});

function vm(name: string, spec: Partial<Instance['spec']> = {}): Instance {
  return {
    apiVersion: 'compute.stratus.dev/v1alpha1',
    kind: 'Instance',
    metadata: { name, namespace: 'default' },
    spec: { provider: 'libvirt', image: 'debian-12', cpus: 1, memoryMiB: 1024, ...spec },
  };
}

async function waitState(name: string, state: string, timeoutMs = 20_000): Promise<Instance> {
  return waitFor(`${name} ${state}`, async () => {
    const i = await instances().get('default', name);
    return i?.status?.state === state && i.status.observedGeneration === i.metadata?.generation ? i : undefined;
  }, timeoutMs, 50);
}

async function ownedOn(nodeName: string): Promise<string[]> {
  const node = await nodes().get(undefined, nodeName);
  assert.ok(node);
  return (await held.connections.get(node)).machines().listOwned();
}

async function deleteAndWait(name: string): Promise<void> {
  await instances().delete('default', name);
  await waitFor(`${name} deleted`, async () => (await instances().get('default', name)) === undefined, 20_000, 50);
}

describe('an Instance on libvirt', () => {
  test('goes pending → running, stops and starts with powerState, and its deletion removes the domain first', async () => {
    await instances().create(vm('life', { disks: [{ name: 'data', sizeGiB: 2 }] }));
    const running = await waitState('life', 'running');
    const node = running.spec.nodeName!;
    assert.ok(['n1', 'n2', 'n3'].includes(node));
    assert.ok(running.metadata?.finalizers?.includes('compute.stratus.dev/instance'));
    assert.ok(running.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
    assert.ok(running.status?.conditions?.some((c) => c.type === 'Scheduled' && c.status === 'True'));
    assert.match(running.status?.providerID ?? '', new RegExp(running.metadata!.uid!));
    assert.deepEqual(await ownedOn(node), [running.metadata!.uid!]);

    await instances().mergePatch('default', 'life', { spec: { powerState: 'Stopped' } });
    const stopped = await waitState('life', 'stopped');
    assert.ok(stopped.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'False' && c.reason === 'Stopped'));
    await instances().mergePatch('default', 'life', { spec: { powerState: 'Running' } });
    await waitState('life', 'running');

    await deleteAndWait('life');
    assert.deepEqual(await ownedOn(node), []);
  });

  test('a domain removed behind stratus is recreated, and one stopped behind its back is started again', async () => {
    await instances().create(vm('drift'));
    const inst = await waitState('drift', 'running');
    const node = (await nodes().get(undefined, inst.spec.nodeName!))!;
    const machines = (await held.connections.get(node)).machines();
    const spec = machineSpecFor(inst, { sshKey: () => undefined, network: () => undefined });

    await machines.update({ ...spec, powerState: 'Stopped' }, await machines.observe(spec));
    await waitFor('stopped behind its back, then running again', async () => (await machines.observe(spec)).state === 'running', 20_000, 50);

    await machines.delete(spec);
    assert.equal((await machines.observe(spec)).exists, false);
    await waitFor('recreated', async () => {
      const o = await machines.observe(spec);
      return o.exists && o.state === 'running';
    }, 20_000, 50);
    const events = await client.resource<{ reason?: string; involvedObject?: { name?: string } } & import('../../../runtime/client.js').KubeObject>(Resources.events).list('default');
    assert.ok(events.some((e) => e.involvedObject?.name === 'drift' && e.reason === 'Recreated'), 'a Recreated event');
    await deleteAndWait('drift');
  });

  test('an image that the pool does not have is Synced=False ImageNotFound and nothing is created', async () => {
    await instances().create(vm('noimage', { image: 'windows-95' }));
    const inst = await waitFor('ImageNotFound', async () => {
      const i = await instances().get('default', 'noimage');
      return i?.status?.conditions?.some((c) => c.type === 'Synced' && c.status === 'False' && c.reason === 'ImageNotFound') ? i : undefined;
    }, 20_000, 50);
    assert.deepEqual(await ownedOn(inst.spec.nodeName!), []);
    await deleteAndWait('noimage');
  });
});

describe('the scheduler', () => {
  test('spread places three Instances on three nodes; binpack fills one node', async () => {
    for (const n of ['s1', 's2', 's3']) await instances().create(vm(n, { placement: { strategy: 'spread' } }));
    const spread = await Promise.all(['s1', 's2', 's3'].map((n) => waitState(n, 'running')));
    assert.deepEqual(spread.map((i) => i.spec.nodeName).sort(), ['n1', 'n2', 'n3']);
    for (const n of ['b1', 'b2', 'b3']) await instances().create(vm(n, { placement: { strategy: 'binpack' } }));
    const packed = await Promise.all(['b1', 'b2', 'b3'].map((n) => waitState(n, 'running')));
    assert.equal(new Set(packed.map((i) => i.spec.nodeName)).size, 1, 'binpack uses one node');
    for (const n of ['s1', 's2', 's3', 'b1', 'b2', 'b3']) await instances().delete('default', n);
    await waitFor('all deleted', async () => (await instances().list('default')).length === 0, 20_000);
  });

  test('nodeSelector chooses among labelled nodes', async () => {
    await instances().create(vm('ssd', { nodeSelector: { disk: 'ssd' } }));
    assert.equal((await waitState('ssd', 'running')).spec.nodeName, 'n3');
    await deleteAndWait('ssd');
  });

  test('an Instance no node can hold stays pending with the counted reasons, and is placed once capacity appears', async () => {
    await instances().create(vm('huge', { memoryMiB: 12_000 }));
    const pending = await waitFor('Unschedulable', async () => {
      const i = await instances().get('default', 'huge');
      return i?.status?.conditions?.find((c) => c.type === 'Scheduled' && c.status === 'False');
    }, 10_000, 50);
    assert.equal(pending.reason, 'Unschedulable');
    assert.equal(pending.message, '0/3 nodes: 3 insufficient memory');
    assert.equal((await instances().get('default', 'huge'))?.status?.state, 'pending');
    await nodes().mergePatch(undefined, 'n2', { spec: { capacityOverride: { cpus: 8, memoryMiB: 16384 } } });
    assert.equal((await waitState('huge', 'running')).spec.nodeName, 'n2');
    await deleteAndWait('huge');
  });
});

describe('bad input', () => {
  const cases: { name: string; spec: Record<string, unknown>; field: string }[] = [
    { name: 'memory 0', spec: { memoryMiB: 0 }, field: 'spec.memoryMiB' },
    { name: 'a disk of -1 GiB', spec: { disks: [{ name: 'd', sizeGiB: -1 }] }, field: 'spec.disks[0].sizeGiB' },
    { name: 'an XML-looking hostname', spec: { hostname: '<x/>' }, field: 'spec.hostname' },
    { name: '10,000 networks', spec: { networks: Array.from({ length: 10_000 }, (_, i) => ({ name: `n${i}` })) }, field: 'spec.networks' },
  ];
  for (const c of cases) {
    test(`${c.name} is a 422 naming ${c.field}, and nothing is stored`, async () => {
      const obj = vm('bad');
      Object.assign(obj.spec, c.spec);
      const err = await instances().create(obj).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof ApiError, 'rejected');
      assert.equal(err.code, 422);
      const body = err.body as { details?: { causes?: { field?: string }[] } };
      assert.ok(body.details?.causes?.some((cause) => cause.field === c.field), JSON.stringify(body).slice(0, 400));
      assert.equal(await instances().get('default', 'bad'), undefined);
    });
  }
});
