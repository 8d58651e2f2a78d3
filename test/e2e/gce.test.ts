/**
 * Instances on Google Compute Engine through stratus serve and its controllers, against the
 * fake Compute API (the real one cannot be reached from here) used through the official
 * client: creating → starting → running with an external IP, stop, start, delete; a
 * QUOTA_EXCEEDED operation shows as Synced=False and clears when quota returns.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ElasticIP, Instance } from '../../crds/types.js';
import { instanceName } from '../../providers/gce/index.js';
import { KubeClient } from '../../runtime/client.js';
import { Resources } from '../../controllers/resources.js';
import { startStratusServe, type StratusServe } from '../harness/apiserver.js';
import { startFakeGce, type FakeGce } from '../fakes/gce/index.js';
import { registerGceNode } from '../harness/gce.js';
import { waitFor } from '../harness/process.js';

let fake: FakeGce;
let serve: StratusServe;
let client: KubeClient;
const instances = () => client.resource<Instance>(Resources.instances);

before(async () => {
  fake = await startFakeGce({ project: 'acme-prod', stepMs: 50 });
  serve = await startStratusServe({ controllers: true });
  client = KubeClient.fromFile(serve.kubeconfig);
  // The service-account key, as a user stores it: a Secret the ComputeNode names.
  await registerGceNode(client, fake, { project: 'acme-prod', imageProject: 'debian-cloud' });
});

after(async () => {
  client?.close();
  await serve?.stop();
  await fake?.close();
});

function vm(name: string): Instance {
  return {
    apiVersion: 'compute.stratus.dev/v1alpha1',
    kind: 'Instance',
    metadata: { name, namespace: 'default' },
    spec: { provider: 'gce', image: 'projects/debian-cloud/global/images/family/debian-12', cpus: 2, memoryMiB: 4096, gce: { externalAddress: true } },
  };
}

test('a GCE Instance goes creating → starting → running with an IP, stops, starts and is deleted', async () => {
  const seen = new Set<string>();
  await instances().create(vm('g1'));
  const running = await waitFor('g1 running', async () => {
    const i = await instances().get('default', 'g1');
    if (i?.status?.state) seen.add(i.status.state);
    return i?.status?.state === 'running' && i.status.ipAddress ? i : undefined;
  }, 60_000, 20);
  assert.ok(seen.has('creating') || seen.has('starting'), `passed through creating/starting: ${[...seen].join(',')}`);
  const vmInFake = [...fake.state.instances.values()].find((x) => x.labels?.['stratus-uid'] !== undefined);
  assert.ok(vmInFake, 'the VM exists in the Compute API with stratus labels');
  assert.ok(running.status?.addresses?.some((a) => a.type === 'ExternalIP' && a.address === running.status?.ipAddress));
  const insert = fake.requests.find((r) => r.method === 'POST' && /\/zones\/us-central1-a\/instances$/.test(r.path));
  assert.ok(insert, 'instances.insert was called');
  assert.match(JSON.stringify(insert.body), /ONE_TO_ONE_NAT/);

  await instances().mergePatch('default', 'g1', { spec: { powerState: 'Stopped' } });
  await waitFor('g1 stopped', async () => (await instances().get('default', 'g1'))?.status?.state === 'stopped', 60_000, 50);
  await instances().mergePatch('default', 'g1', { spec: { powerState: 'Running' } });
  await waitFor('g1 running again', async () => (await instances().get('default', 'g1'))?.status?.state === 'running', 60_000, 50);

  await instances().delete('default', 'g1');
  await waitFor('g1 deleted', async () => (await instances().get('default', 'g1')) === undefined, 60_000, 50);
  assert.ok(fake.requests.some((r) => r.method === 'DELETE' && /\/instances\/[^/]+$/.test(r.path)), 'instances.delete was called');
});

test('QUOTA_EXCEEDED shows as Synced=False QuotaExceeded and clears when the quota returns', async () => {
  fake.inject.quota('us-central1', 'CPUS', 1);
  await instances().create(vm('g2'));
  const cond = await waitFor('QuotaExceeded', async () => (await instances().get('default', 'g2'))?.status?.conditions?.find((c) => c.type === 'Synced' && c.status === 'False'), 60_000, 50);
  assert.equal(cond.reason, 'QuotaExceeded');
  assert.match(cond.message ?? '', /quota/i);
  fake.inject.quota('us-central1', 'CPUS', 24);
  await waitFor('g2 running once quota returns', async () => {
    const i = await instances().get('default', 'g2');
    return i?.status?.state === 'running' && i.status.conditions?.some((c) => c.type === 'Synced' && c.status === 'True');
  }, 90_000, 100);
  await instances().delete('default', 'g2');
  await waitFor('g2 deleted', async () => (await instances().get('default', 'g2')) === undefined, 60_000, 50);
});

test('an ElasticIP on GCE is a static address: bound as the VM access config, moved, released on delete', async () => {
  const eips = () => client.resource<ElasticIP>(Resources.elasticIPs);
  await instances().create(vm('e1'));
  await instances().create(vm('e2'));
  const uidOf = async (name: string) =>
    waitFor(`${name} running`, async () => {
      const i = await instances().get('default', name);
      return i?.status?.state === 'running' ? (i.metadata?.uid ?? '') : undefined;
    }, 60_000, 50);
  const [u1, u2] = [await uidOf('e1'), await uidOf('e2')];
  const users = () => [...fake.state.addresses.values()].flatMap((a) => a.users.map((u) => u.split('/').pop()));
  await eips().create({ apiVersion: 'compute.stratus.dev/v1alpha1', kind: 'ElasticIP', metadata: { name: 'web', namespace: 'default' }, spec: { instanceRef: { name: 'e1' } } });
  const bound = await waitFor('web bound to e1', async () => {
    const e = await eips().get('default', 'web');
    return e?.status?.boundTo === 'e1' && e.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? e : undefined;
  }, 30_000, 50);
  const reserved = [...fake.state.addresses.values()];
  assert.equal(reserved.length, 1, 'one static address reserved');
  assert.equal(bound.status?.address, reserved[0]?.address, 'status.address is the reserved address');
  assert.deepEqual(users(), [instanceName(u1)]);
  await waitFor('e1 lists the address', async () => (await instances().get('default', 'e1'))?.status?.elasticIPs?.includes(bound.status?.address ?? ''), 30_000, 50);

  await eips().mergePatch('default', 'web', { spec: { instanceRef: { name: 'e2' } } });
  await waitFor('web moved to e2', async () => (await eips().get('default', 'web'))?.status?.boundTo === 'e2', 30_000, 50);
  assert.deepEqual(users(), [instanceName(u2)]);
  assert.equal((await eips().get('default', 'web'))?.status?.address, bound.status?.address, 'the address moved with it');

  await eips().delete('default', 'web');
  await waitFor('web deleted', async () => (await eips().get('default', 'web')) === undefined, 30_000, 50);
  assert.equal(fake.state.addresses.size, 0, 'the static address was released');
  for (const n of ['e1', 'e2']) await instances().delete('default', n);
  for (const n of ['e1', 'e2']) await waitFor(`${n} deleted`, async () => (await instances().get('default', n)) === undefined, 60_000, 50);
});
