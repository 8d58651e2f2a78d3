/**
 * Two stratus installations sharing one etcd under neighbouring prefixes (`/stratus` and
 * `/stratus-staging`) never see each other's keys, even through the empty prefix.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { EtcdStore } from '../../../apiserver/storage/etcd.js';
import type { WatchEvent } from '../../../apiserver/storage/store.js';
import { startEtcd } from '../../harness/etcd.js';
import { waitFor } from '../../harness/process.js';

describe('etcd store prefix', () => {
  const cleanups: Array<() => Promise<void>> = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('keeps list, count and watch of the empty prefix inside the store', async () => {
    const etcd = await startEtcd();
    cleanups.push(() => etcd.stop());
    const prod = new EtcdStore({ endpoints: [etcd.endpoint] });
    const staging = new EtcdStore({ endpoints: [etcd.endpoint], prefix: '/stratus-staging' });
    cleanups.push(() => prod.close(), () => staging.close());

    const from = await prod.currentRevision();
    const events: WatchEvent[] = [];
    const w = prod.watch('', from, { onEvent: (e) => events.push(e), onError: (e) => assert.fail(e) });
    cleanups.push(() => w.close());
    await staging.create('/registry/a', 'staging');
    const mine = await prod.create('/registry/a', 'prod');
    await staging.create('/registry/b', 'staging');
    const sentinel = await prod.create('/registry/z', 'prod');
    await waitFor('the sentinel', () => events.some((e) => e.key === '/registry/z'));

    assert.deepEqual(events.map((e) => [e.key, e.value]), [['/registry/a', 'prod'], ['/registry/z', 'prod']]);
    assert.deepEqual((await prod.list('')).items, [mine, sentinel]);
    assert.equal(await prod.count(''), 2);
    assert.equal(await staging.count(''), 2);
    assert.deepEqual((await staging.list('')).items.map((kv) => kv.value), ['staging', 'staging']);
  });
});
