/**
 * Containers across two real Docker engines with TLS from one CA, through `stratus serve`
 * and its controllers (clementine's cluster, as ComputeNodes with `provider: docker`):
 * an HTTP server reachable on its bound port, placement (spread, unique, host ports),
 * drift repair, a wrong client certificate, and an engine that dies.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { ComputeNode, Instance } from '../../crds/types.js';
import { KubeClient, CoreResources, type KubeObject } from '../../runtime/client.js';
import { Resources } from '../../controllers/resources.js';
import { kubectl, startStratusServe, type StratusServe } from '../harness/apiserver.js';
import { BUSYBOX_INDEX, importBusybox, makeCerts, startDockerd, type CertBundle, type Dockerd } from '../harness/dockerd.js';
import { freePort, removeDir, tempDir, waitFor } from '../harness/process.js';

let serve: StratusServe | undefined;
let engines: Dockerd[] = [];
let work = '';
let certs: CertBundle;
let client: KubeClient;
let image = '';
const hostIPs = ['127.0.0.1', '127.0.0.2'];

const nodes = () => client.resource<ComputeNode>(Resources.computeNodes);
const instances = () => client.resource<Instance>(Resources.instances);

before(async () => {
  work = await tempDir('engines');
  certs = await makeCerts(join(work, 'certs'));
  engines = await Promise.all([startDockerd({ certs }), startDockerd({ certs })]);
  [image] = await Promise.all(engines.map((e) => importBusybox(e)));
  serve = await startStratusServe({ controllers: true });
  client = KubeClient.fromFile(serve.kubeconfig);
  const secrets = client.resource<KubeObject & { stringData: Record<string, string> }>(CoreResources.secrets);
  await secrets.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'engines-tls', namespace: 'default' }, stringData: { 'ca.pem': certs.ca, 'cert.pem': certs.cert, 'key.pem': certs.key } });
  for (const [i, e] of engines.entries()) {
    await nodes().create({
      apiVersion: 'compute.stratus.dev/v1alpha1',
      kind: 'ComputeNode',
      metadata: { name: `engine-${i + 1}`, labels: { pool: 'web' } },
      spec: {
        provider: 'docker',
        docker: { address: e.address, tlsSecretRef: { name: 'engines-tls', namespace: 'default' }, hostIP: hostIPs[i]! },
        capacityOverride: { cpus: 32, memoryMiB: 32768 },
        heartbeatSeconds: 1,
      },
    });
  }
  await waitFor('both engines Ready', async () => (await nodes().list()).filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length === 2, 30_000);
});

after(async () => {
  try {
    if (client) {
      for (const i of await instances().list().catch(() => [])) await instances().delete(i.metadata?.namespace, i.metadata?.name ?? '').catch(() => undefined);
      // Instances on the dead engine cannot be removed from it: release them.
      await waitFor('instances gone', async () => {
        for (const i of await instances().list()) {
          if (i.metadata?.deletionTimestamp && i.spec.nodeName === 'engine-2') await instances().mergePatch('default', i.metadata.name!, { metadata: { finalizers: null } }).catch(() => undefined);
        }
        return (await instances().list()).length === 0;
      }, 30_000).catch(() => undefined);
    }
  } finally {
    client?.close();
    await serve?.stop();
    await Promise.all(engines.map((e) => e.stop()));
    if (work) await removeDir(work);
  }
});

function container(name: string, spec: Partial<Instance['spec']> = {}): Instance {
  return {
    apiVersion: 'compute.stratus.dev/v1alpha1',
    kind: 'Instance',
    metadata: { name, namespace: 'default' },
    spec: { provider: 'docker', image, command: ['/bin/busybox', 'sleep', '3600'], cpus: 1, memoryMiB: 64, ...spec },
  };
}

async function running(name: string): Promise<Instance> {
  return waitFor(`${name} running`, async () => {
    const i = await instances().get('default', name);
    return i?.status?.state === 'running' && i.status.observedGeneration === i.metadata?.generation ? i : undefined;
  }, 60_000, 100);
}

async function removeAll(names: string[]): Promise<void> {
  for (const n of names) await instances().delete('default', n);
  await waitFor('deleted', async () => {
    const left = (await instances().list('default')).filter((i) => names.includes(i.metadata?.name ?? ''));
    return left.length === 0;
  }, 60_000, 100);
}

describe('containers on two TLS engines', () => {
  test('a busybox Instance serves HTTP on the port it binds on its engine', async () => {
    const port = await freePort();
    await instances().create(container('web', { command: ['/bin/busybox', 'httpd', '-f', '-p', '80', '-h', '/www'], ports: [{ containerPort: 80, hostPort: port, protocol: 'TCP' }] }));
    const web = await running('web');
    const hostIP = hostIPs[Number(web.spec.nodeName!.slice(-1)) - 1]!;
    const body = await waitFor('HTTP answer', async () => {
      const r = await fetch(`http://${hostIP}:${port}/`);
      return r.ok ? r.text() : undefined;
    }, 20_000, 100);
    assert.equal(body, BUSYBOX_INDEX);
    assert.ok(web.status?.ipAddress, 'the container address is reported');
    await removeAll(['web']);
  });

  test('five Instances spread over both engines', async () => {
    const names = ['s1', 's2', 's3', 's4', 's5'];
    for (const n of names) await instances().create(container(n));
    const placed = await Promise.all(names.map(running));
    const perNode = new Map<string, number>();
    for (const i of placed) perNode.set(i.spec.nodeName!, (perNode.get(i.spec.nodeName!) ?? 0) + 1);
    assert.deepEqual([...perNode.values()].sort(), [2, 3]);
    await removeAll(names);
  });

  test('unique puts one Instance of a group per engine and leaves a third pending with the reason', async () => {
    const names = ['u1', 'u2', 'u3'];
    for (const n of names) await instances().create(container(n, { placement: { strategy: 'spread', group: 'cache', unique: true } }));
    const pending = await waitFor('a third one unschedulable', async () => {
      const all = (await instances().list('default')).filter((i) => names.includes(i.metadata?.name ?? ''));
      const waiting = all.filter((i) => i.status?.conditions?.some((c) => c.type === 'Scheduled' && c.status === 'False'));
      const run = all.filter((i) => i.status?.state === 'running');
      return waiting.length === 1 && run.length === 2 ? { waiting: waiting[0]!, run } : undefined;
    }, 60_000, 100);
    assert.notEqual(pending.run[0]!.spec.nodeName, pending.run[1]!.spec.nodeName);
    const cond = pending.waiting.status!.conditions!.find((c) => c.type === 'Scheduled')!;
    assert.equal(cond.message, '0/2 nodes: 2 already running the unique group');
    assert.equal(pending.waiting.status?.state, 'pending');
    await removeAll(names);
  });

  test('a host port already bound on one engine sends the next Instance to the other', async () => {
    const port = await freePort();
    const ports = [{ containerPort: 80, hostPort: port, protocol: 'TCP' as const }];
    await instances().create(container('p1', { ports }));
    const p1 = await running('p1');
    await instances().create(container('p2', { ports, placement: { strategy: 'binpack' } }));
    const p2 = await running('p2');
    assert.notEqual(p2.spec.nodeName, p1.spec.nodeName);
    await removeAll(['p1', 'p2']);
  });

  test('a container removed behind stratus is recreated', async () => {
    await instances().create(container('drift'));
    const before = await running('drift');
    const engine = engines[Number(before.spec.nodeName!.slice(-1)) - 1]!;
    const [c] = await engine.client.listContainers({ all: true, filters: { label: [`stratus.dev/uid=${before.metadata!.uid}`] } });
    assert.ok(c);
    await engine.client.getContainer(c.Id).remove({ force: true });
    const after = await waitFor('recreated', async () => {
      const i = await instances().get('default', 'drift');
      return i?.status?.state === 'running' && i.status.providerID !== before.status?.providerID ? i : undefined;
    }, 60_000, 100);
    assert.ok(after.status?.providerID);
    await removeAll(['drift']);
  });

  test('a wrong client certificate is a clear Ready=False reason on the node', async () => {
    const secrets = client.resource<KubeObject & { stringData: Record<string, string> }>(CoreResources.secrets);
    await secrets.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'wrong-tls', namespace: 'default' }, stringData: { 'ca.pem': certs.ca, 'cert.pem': certs.wrongCert, 'key.pem': certs.wrongKey } });
    await nodes().create({
      apiVersion: 'compute.stratus.dev/v1alpha1',
      kind: 'ComputeNode',
      metadata: { name: 'impostor' },
      spec: { provider: 'docker', docker: { address: engines[0]!.address, tlsSecretRef: { name: 'wrong-tls', namespace: 'default' } }, heartbeatSeconds: 1 },
    });
    const ready = await waitFor('impostor not ready', async () => (await nodes().get(undefined, 'impostor'))?.status?.conditions?.find((c) => c.type === 'Ready' && c.status === 'False'), 20_000, 100);
    assert.equal(ready.reason, 'TLSError');
    assert.match(ready.message ?? '', /certificate/i);
    await nodes().delete(undefined, 'impostor');
  });

  test('when an engine dies its node goes NotReady within a heartbeat and the other engine\'s Instances keep running', async () => {
    await instances().create(container('k1', { nodeName: 'engine-1' }));
    await instances().create(container('k2', { nodeName: 'engine-2' }));
    await Promise.all([running('k1'), running('k2')]);
    await engines[1]!.kill();
    const notReady = await waitFor('engine-2 NotReady', async () => (await nodes().get(undefined, 'engine-2'))?.status?.conditions?.find((c) => c.type === 'Ready' && c.status === 'False'), 10_000, 100);
    assert.equal(notReady.reason, 'NodeUnreachable');
    await waitFor('k2 says its node is not ready', async () => (await instances().get('default', 'k2'))?.status?.conditions?.some((c) => c.type === 'NodeReady' && c.status === 'False'), 10_000, 100);
    assert.equal((await instances().get('default', 'k1'))?.status?.state, 'running');
    assert.ok((await nodes().get(undefined, 'engine-1'))?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
    const out = await kubectl(serve!.kubeconfig, join(work, 'kcache'), ['get', 'instances', '-o', 'name']);
    assert.equal(out.code, 0, out.stderr);
    assert.deepEqual(out.stdout.trim().split('\n').sort(), ['instance.compute.stratus.dev/k1', 'instance.compute.stratus.dev/k2']);
  });
});
