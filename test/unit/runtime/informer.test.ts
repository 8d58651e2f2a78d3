import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { KubeClient, type KubeObject, type ResourceClient } from '../../../runtime/client.js';
import { Informer } from '../../../runtime/informer.js';
import { FakeApiServer } from './fakeapi.js';
import { waitFor } from '../../harness/process.js';

const pods = { group: 'test.stratus.dev', version: 'v1', plural: 'boxes', namespaced: true, kind: 'Box' };
type Box = KubeObject & { spec?: { node?: string } };

describe('Informer', () => {
  const api = new FakeApiServer();
  let client: KubeClient;
  let rc: ResourceClient<Box>;
  const informers: Informer<Box>[] = [];
  const make = (): Informer<Box> => {
    const inf = new Informer(rc, { initialBackoffMs: 10, maxBackoffMs: 100 });
    informers.push(inf);
    return inf;
  };
  before(async () => {
    await api.start();
    client = KubeClient.fromKubeConfig(api.kubeConfig());
    rc = client.resource<Box>(pods);
  });
  after(async () => {
    for (const i of informers) await i.stop();
    client.close();
    await api.stop();
  });

  test('lists, syncs, then follows adds, updates and deletes with an index', async () => {
    await rc.create({ metadata: { name: 'a', namespace: 'x' }, spec: { node: 'n1' } });
    const inf = make();
    inf.addIndex('node', (o) => (o.spec?.node ? [o.spec.node] : []));
    const seen: string[] = [];
    inf.on('add', (o) => seen.push(`add ${o.metadata?.name}`));
    inf.on('update', (o, n) => seen.push(`update ${o.metadata?.name} ${o.spec?.node}->${n.spec?.node}`));
    inf.on('delete', (o) => seen.push(`delete ${o.metadata?.name}`));
    assert.equal(inf.hasSynced(), false);
    inf.start();
    assert.equal(await inf.waitForSync(), true);
    assert.equal(inf.get('x/a')?.spec?.node, 'n1');
    await rc.create({ metadata: { name: 'b', namespace: 'x' }, spec: { node: 'n1' } });
    await rc.mergePatch('x', 'a', { spec: { node: 'n2' } });
    await waitFor('index to follow', () => inf.byIndex('node', 'n2').length === 1 && inf.byIndex('node', 'n1').length === 1);
    await rc.delete('x', 'b');
    await waitFor('delete', () => inf.get('x/b') === undefined);
    assert.deepEqual(seen, ['add a', 'add b', 'update a n1->n2', 'delete b']);
    assert.deepEqual(inf.byIndex('node', 'n1'), []);
    assert.deepEqual(inf.keys(), ['x/a']);
    await rc.delete('x', 'a');
    await waitFor('cleanup', () => inf.size === 0);
  });

  test('a cut watch restarts from its resourceVersion and misses nothing', async () => {
    const inf = make();
    inf.start();
    await inf.waitForSync();
    const relists = inf.relists;
    api.failNext(3, 503);
    api.dropWatches();
    for (let i = 0; i < 5; i++) await rc.create({ metadata: { name: `c${i}`, namespace: 'y' } });
    await waitFor('five objects after the restart', () => inf.size === 5 || undefined, 5000);
    assert.equal(inf.relists, relists, 'a plain restart resumes the watch without relisting');
    assert.ok(inf.restarts >= 1);
    for (let i = 0; i < 5; i++) await rc.delete('y', `c${i}`);
    await waitFor('cleanup', () => inf.size === 0);
  });

  test('410 Gone relists and reports objects deleted while the watch was down', async () => {
    await rc.create({ metadata: { name: 'keep', namespace: 'z' } });
    await rc.create({ metadata: { name: 'gone', namespace: 'z' } });
    const inf = make();
    const deleted: string[] = [];
    const added: string[] = [];
    inf.on('delete', (o) => deleted.push(o.metadata?.name ?? ''));
    inf.on('add', (o) => added.push(o.metadata?.name ?? ''));
    inf.start();
    await inf.waitForSync();
    // Take the watch down, change things, compact history: the resume must get 410.
    api.failNext(1_000_000, 503);
    api.dropWatches();
    await rc.delete('z', 'gone');
    await rc.create({ metadata: { name: 'new', namespace: 'z' } });
    api.compact();
    api.clearFailures();
    await waitFor('relist', () => inf.relists >= 2 && inf.get('z/new') !== undefined, 5000);
    assert.ok(inf.expired >= 1, 'the resume really got 410 Gone');
    assert.equal(inf.get('z/gone'), undefined);
    assert.ok(deleted.includes('gone'), 'the relist emitted a delete for the vanished object');
    assert.ok(added.includes('new'));
    assert.ok(inf.get('z/keep'));
  });

  test('waitForSync returns false when its signal aborts first', async () => {
    const inf = make();
    const ac = new AbortController();
    const p = inf.waitForSync(ac.signal);
    ac.abort();
    assert.equal(await p, false);
  });
});
