/**
 * The etcd backend given several endpoints keeps serving when the member it talks to dies:
 * writes go on through the others and the watch carries on, each change exactly once.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { EtcdStore } from '../../../apiserver/storage/etcd.js';
import { UnavailableError, type KeyValue, type WatchEvent } from '../../../apiserver/storage/store.js';
import { startEtcdCluster } from '../../harness/etcd.js';
import { waitFor } from '../../harness/process.js';

describe('etcd backend on a 3-member cluster', () => {
  const cleanups: Array<() => Promise<void>> = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('survives losing each member in turn: writes continue and the watch sees every change exactly once', async () => {
    const cluster = await startEtcdCluster(3);
    cleanups.push(() => cluster.stop());
    const store = new EtcdStore({ endpoints: cluster.endpoints, prefix: '/ha', dialTimeoutMs: 2000, requestTimeoutMs: 2000 });
    cleanups.push(() => store.close());

    /** A create that rides over a member dying: an unavailable answer is retried unless it was applied. */
    const create = async (key: string, value: string): Promise<KeyValue> => {
      const giveUpAt = Date.now() + 60_000;
      for (;;) {
        try {
          return await store.create(key, value);
        } catch (err) {
          if (!(err instanceof UnavailableError) || Date.now() > giveUpAt) throw err;
          const applied = await store.get(key).catch(() => undefined);
          if (applied?.value === value) return applied;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    };

    const start = await store.currentRevision();
    const events: WatchEvent[] = [];
    let failure: Error | undefined;
    const handle = store.watch('/k/', start, { onEvent: (e) => events.push(e), onError: (e) => (failure = e) });
    cleanups.push(() => handle.close());

    const written: KeyValue[] = [];
    for (let i = 0; i < 20; i++) written.push(await create(`/k/a${i}`, `v${i}`));
    await waitFor('the first 20 events', () => events.length >= 20, 30_000);

    // Kill each member in turn (a quorum of two stays up), so whichever one carries the
    // watch stream dies once and the watch has to move to another.
    for (const [m, member] of cluster.members.entries()) {
      await member.kill();
      for (let i = 0; i < 10; i++) written.push(await create(`/k/m${m}-${i}`, `v${i}`));
      await member.restart();
    }
    await waitFor('all 50 events', () => {
      if (failure) throw failure;
      return events.length >= 50;
    }, 30_000);
    const sentinel = await create('/k/sentinel', 's');
    await waitFor('the sentinel', () => events.some((e) => e.key === '/k/sentinel'), 30_000);

    assert.equal(failure, undefined);
    assert.deepEqual(
      events.map((e) => [e.type, e.key, e.revision]),
      [...written, sentinel].map((kv) => ['ADDED', kv.key, kv.modRevision]),
    );
    assert.equal(await store.count('/k/'), 51);
  });
});
