/**
 * The etcd backend given several endpoints keeps serving when the member it talks to dies:
 * writes go on through the others and the watch carries on, each change exactly once. When
 * quorum is gone, `stratus serve` answers kubectl a prompt 503 (never a hang, never a 500)
 * and writes succeed again once quorum is back, nothing acknowledged lost.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { EtcdStore } from '../../../apiserver/storage/etcd.js';
import { UnavailableError, type KeyValue, type WatchEvent } from '../../../apiserver/storage/store.js';
import { kubectl, startStratusServe } from '../../harness/apiserver.js';
import { startEtcdCluster, type EtcdCluster } from '../../harness/etcd.js';
import { removeDir, tempDir, waitFor } from '../../harness/process.js';

describe('etcd backend on a 3-member cluster', () => {
  const cleanups: Array<() => Promise<void>> = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  // one cluster for every case (each leaves every member running)
  let shared: EtcdCluster | undefined;
  const theCluster = async (): Promise<EtcdCluster> => {
    if (!shared) {
      const c = await startEtcdCluster(3);
      cleanups.push(() => c.stop());
      shared = c;
    }
    return shared;
  };

  it('survives losing each member in turn: writes continue and the watch sees every change exactly once', async () => {
    const cluster = await theCluster();
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

  it('without quorum a kubectl create is answered 503 ServiceUnavailable with Retry-After (not a hang, not a 500), and succeeds once quorum is back', { timeout: 240_000 }, async () => {
    const cluster = await theCluster();
    const serve = await startStratusServe({ etcdServers: cluster.endpoints, args: ['--etcd-request-timeout', '2'] });
    cleanups.push(() => serve.stop());
    const cache = await tempDir('kubectl-cache');
    cleanups.push(() => removeDir(cache));
    const k = (...args: string[]) => kubectl(serve.kubeconfig, cache, ['--request-timeout=120s', ...args], undefined, 180_000);

    const before = await k('create', 'configmap', 'before-loss', '--from-literal=v=1');
    assert.equal(before.code, 0, before.stderr);

    // Two of three members stopped (a partition: they hold their ports but answer nothing).
    const stopped = cluster.members.slice(0, 2);
    for (const m of stopped) process.kill(m.pid, 'SIGSTOP');
    let resumed = false;
    const resume = (): void => {
      if (resumed) return;
      resumed = true;
      for (const m of stopped) process.kill(m.pid, 'SIGCONT');
    };
    cleanups.push(async () => resume());
    try {
      // kubectl (client-go) retries a 503 that carries Retry-After, then reports it (-v=6 logs each answer).
      const during = await k('create', 'configmap', 'during-loss', '--from-literal=v=2', '-v=6');
      assert.notEqual(during.code, 0, `a create was acknowledged without quorum: ${during.stdout}`);
      assert.match(during.stderr, /POST https:\/\/\S+\/configmaps\S* 503 Service Unavailable/, during.stderr);
      assert.doesNotMatch(during.stderr, / 500 Internal Server Error/, during.stderr);
      assert.match(during.stderr, /failed to create configmap: storage is unavailable: etcd did not answer within 2 s/, during.stderr);
      // The answer itself, in Kubernetes Status shape.
      const r = await serve.fetch(`${serve.url}/api/v1/namespaces/default/configmaps`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'during-loss-raw' } }),
      });
      const status = (await r.json()) as { kind?: string; code?: number; reason?: string; status?: string };
      assert.equal(r.status, 503);
      assert.equal(r.headers.get('retry-after'), '1');
      assert.deepEqual([status.kind, status.status, status.reason, status.code], ['Status', 'Failure', 'ServiceUnavailable', 503]);
      // Reads need quorum too (they are linearizable): also a 503, not a hang.
      const get = await serve.fetch(`${serve.url}/api/v1/namespaces/default/configmaps/before-loss`);
      assert.equal(get.status, 503, await get.text());
    } finally {
      resume();
    }

    // Quorum back: writes succeed (kubectl's own retries ride over the election), nothing acknowledged lost.
    const restored = await k('create', 'configmap', 'after-restore', '--from-literal=v=3');
    assert.equal(restored.code, 0, restored.stderr);
    const kept = await k('get', 'configmap', 'before-loss', '-o', 'jsonpath={.data.v}');
    assert.equal(kept.code, 0, kept.stderr);
    assert.equal(kept.stdout, '1');
  });
});
