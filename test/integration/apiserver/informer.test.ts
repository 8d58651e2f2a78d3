/**
 * A @kubernetes/client-node informer against the standalone API server: it lists and
 * watches, keeps going across a server restart, and relists after a 410 when the history it
 * would resume from was compacted while the server was down.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { KubeConfig, CustomObjectsApi, makeInformer, type KubernetesObject, type KubernetesListObject } from '@kubernetes/client-node';
import { startApiServer, type ApiServer } from '../../../apiserver/server.js';
import { openStore } from '../../../apiserver/storage/index.js';
import { repoRoot } from '../../harness/paths.js';
import { freePort, removeDir, tempDir, waitFor } from '../../harness/process.js';
import { kubeFetch } from '../../harness/kubefetch.js';
import { KubeClient, type KubeObject } from '../../../runtime/client.js';
import { Informer } from '../../../runtime/informer.js';

const group = 'compute.stratus.dev';
const version = 'v1alpha1';
const plural = 'instances';

function instance(name: string): object {
  return {
    apiVersion: `${group}/${version}`,
    kind: 'Instance',
    metadata: { name },
    spec: { provider: 'docker', image: 'busybox', cpus: 1, memoryMiB: 128 },
  };
}

describe('client-node informer against the standalone API server', () => {
  let dir: string;
  let port: number;
  let server: ApiServer | undefined;
  const start = async (): Promise<ApiServer> =>
    startApiServer({ dataDir: join(dir, 'data'), listen: `127.0.0.1:${port}`, crdDir: join(repoRoot(), 'crds'), heartbeatSeconds: 1 });

  before(async () => {
    dir = await tempDir('informer');
    port = await freePort();
    server = await start();
  });
  after(async () => {
    await server?.close();
    await removeDir(dir);
  });

  it('lists, watches, survives a restart and relists after 410', async () => {
    const s = server;
    assert.ok(s);
    const kc = new KubeConfig();
    kc.loadFromFile(s.kubeconfigPath);
    const api = kc.makeApiClient(CustomObjectsApi);
    await api.createNamespacedCustomObject({ group, version, namespace: 'default', plural, body: instance('before-start') });

    const list = async (): Promise<KubernetesListObject<KubernetesObject>> =>
      (await api.listNamespacedCustomObject({ group, version, namespace: 'default', plural })) as KubernetesListObject<KubernetesObject>;
    const informer = makeInformer(kc, `/apis/${group}/${version}/namespaces/default/${plural}`, list);
    const added: string[] = [];
    let stopping = false;
    let errors = 0;
    informer.on('add', (o) => added.push(o.metadata?.name ?? ''));
    // client-node does not retry watch errors other than 410 (e.g. connection refused while
    // the server restarts): restart the informer, as controllers do.
    informer.on('error', () => {
      errors++;
      if (!stopping) setTimeout(() => void informer.start().catch(() => undefined), 200);
    });
    await informer.start();
    try {
      await waitFor('initial list', () => added.includes('before-start'));
      await api.createNamespacedCustomObject({ group, version, namespace: 'default', plural, body: instance('while-watching') });
      await waitFor('watch event', () => added.includes('while-watching'));

      // Restart: the informer resumes and sees new objects.
      await s.close();
      server = await start();
      const api2 = kc.makeApiClient(CustomObjectsApi);
      await api2.createNamespacedCustomObject({ group, version, namespace: 'default', plural, body: instance('after-restart') });
      await waitFor('event after restart', () => added.includes('after-restart'), 20_000);
      assert.deepEqual(informer.list().map((o) => o.metadata?.name).sort(), ['after-restart', 'before-start', 'while-watching']);

      // While the server is down, history moves on and is compacted: the informer's
      // resourceVersion is too old, it gets 410 Gone and relists.
      await server.close();
      const store = openStore({ dataDir: join(dir, 'data') });
      const key = '/registry/compute.stratus.dev/instances/default/';
      const listed = await store.list(key);
      const template = JSON.parse(listed.items[0]?.value ?? '{}') as { metadata: Record<string, unknown> };
      const written = await store.create(`${key}while-down`, JSON.stringify({ ...template, metadata: { ...template.metadata, name: 'while-down', uid: 'uid-while-down' } }));
      await store.update(written.key, written.value, written.modRevision);
      await store.compact(await store.currentRevision());
      await store.close();
      server = await start();
      await waitFor('relist after 410', () => added.includes('while-down'), 20_000);
      assert.deepEqual(informer.list().map((o) => o.metadata?.name).sort(), ['after-restart', 'before-start', 'while-down', 'while-watching']);
      assert.ok(errors >= 1, 'the restart surfaced as a watch error the test recovered from');
    } finally {
      stopping = true;
      await informer.stop();
    }
  });

  it("stratus's own informer gets 410 Gone after compaction while the server was down, and relists", async () => {
    const client = KubeClient.fromFile(server!.kubeconfigPath);
    const rc = client.resource<KubeObject>({ group, version, plural, namespaced: true, kind: 'Instance' });
    const informer = new Informer(rc, { namespace: 'default', initialBackoffMs: 50, maxBackoffMs: 500 });
    informer.start();
    try {
      assert.equal(await informer.waitForSync(), true);
      const before = informer.relists;
      // Down; history moves on and is compacted past the informer's resourceVersion.
      await server!.close();
      const store = openStore({ dataDir: join(dir, 'data') });
      const key = '/registry/compute.stratus.dev/instances/default/';
      const template = JSON.parse((await store.list(key)).items[0]?.value ?? '{}') as { metadata: Record<string, unknown> };
      const written = await store.create(`${key}own-while-down`, JSON.stringify({ ...template, metadata: { ...template.metadata, name: 'own-while-down', uid: 'uid-own-while-down' } }));
      await store.update(written.key, written.value, written.modRevision);
      await store.compact(await store.currentRevision());
      await store.close();
      server = await start();
      await waitFor('relist after 410', () => (informer.get('default/own-while-down') ? true : undefined), 20_000);
      assert.ok(informer.expired >= 1, `the resume got 410 Gone (restarts ${informer.restarts}, relists ${informer.relists})`);
      assert.ok(informer.relists > before, 'and relisted');
    } finally {
      await informer.stop();
      client.close();
    }
  });

  it('a watch from a compacted resourceVersion ends with a 410 ERROR event', async () => {
    const s = server;
    assert.ok(s);
    const current = await s.store.currentRevision();
    await s.store.compact(current);
    const r = await kubeFetch(s.kubeconfigPath)(`${s.url}/apis/${group}/${version}/namespaces/default/${plural}?watch=true&resourceVersion=1`);
    assert.equal(r.status, 200);
    const text = await r.text();
    const events = text.trim().split('\n').map((l) => JSON.parse(l) as { type: string; object: { code?: number; reason?: string } });
    assert.equal(events.length, 1);
    assert.equal(events[0]?.type, 'ERROR');
    assert.equal(events[0]?.object.code, 410);
    assert.equal(events[0]?.object.reason, 'Expired');
  });
});
