import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { KubeClient, type KubeObject } from '../../../runtime/client.js';
import { Manager } from '../../../runtime/manager.js';
import { RuntimeMetrics } from '../../../runtime/metrics.js';
import type { Reconciler } from '../../../runtime/controller.js';
import { FakeApiServer } from './fakeapi.js';
import { waitFor } from '../../harness/process.js';

const thingsRef = { group: 'test.stratus.dev', version: 'v1', plural: 'things', namespaced: true, kind: 'Thing' };

describe('Manager', () => {
  const api = new FakeApiServer();
  const managers: Manager[] = [];
  before(() => api.start());
  after(async () => {
    for (const m of managers) await m.stop();
    await api.stop();
  });

  function manager(leaderElect: boolean, identity: string, seen: string[]): Manager {
    const mgr = new Manager({
      client: KubeClient.fromKubeConfig(api.kubeConfig()),
      metricsListen: '127.0.0.1:0',
      metrics: new RuntimeMetrics(),
      leaderElection: leaderElect ? { namespace: 'default', name: 'mgr-test', identity, leaseDurationMs: 1500, renewDeadlineMs: 1000, retryPeriodMs: 200 } : undefined,
    });
    managers.push(mgr);
    const reconciler: Reconciler = {
      reconcile: async (key) => {
        seen.push(key);
      },
    };
    mgr.addController({ name: 'things', concurrency: 2 }, mgr.informer<KubeObject>(thingsRef), reconciler);
    return mgr;
  }

  test('shares one informer per resource and selector', () => {
    const mgr = new Manager({ client: KubeClient.fromKubeConfig(api.kubeConfig()) });
    assert.equal(mgr.informer(thingsRef), mgr.informer(thingsRef));
    assert.notEqual(mgr.informer(thingsRef), mgr.informer(thingsRef, { namespace: 'x' }));
    mgr.client.close();
  });

  test('serves healthz, readyz and metrics with non-zero reconcile series', async () => {
    const rc = KubeClient.fromKubeConfig(api.kubeConfig()).resource(thingsRef);
    for (let i = 0; i < 3; i++) await rc.create({ metadata: { name: `t${i}`, namespace: 'm' } });
    const seen: string[] = [];
    const mgr = manager(false, 'solo', seen);
    await mgr.start();
    await waitFor('three reconciles', () => seen.length >= 3);
    const addr = mgr.metricsAddress();
    assert.ok(addr);
    const base = `http://127.0.0.1:${addr.port}`;
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
    const text = await (await fetch(`${base}/metrics`)).text();
    assert.match(text, /controller_runtime_reconcile_total\{controller="things",result="success"\} [1-9]/);
    assert.match(text, /workqueue_adds_total\{name="things"\} [1-9]/);
    assert.match(text, /controller_runtime_reconcile_time_seconds_count\{controller="things"\} [1-9]/);
    assert.match(text, /workqueue_queue_duration_seconds_count\{name="things"\} [1-9]/);
    assert.match(text, /workqueue_work_duration_seconds_count\{name="things"\} [1-9]/);
    assert.match(text, /process_cpu_seconds_total/);
    assert.match(text, /controller_runtime_max_concurrent_reconciles\{controller="things"\} 2/);
    assert.match(text, /controller_runtime_active_workers\{controller="things"\} 0/);
    assert.equal((await fetch(`${base}/nope`)).status, 404);
    rc.client.close();
  });

  test('under leader election only the leader reconciles; the standby takes over when it stops', async () => {
    const rc = KubeClient.fromKubeConfig(api.kubeConfig()).resource(thingsRef);
    const seenA: string[] = [];
    const seenB: string[] = [];
    const a = manager(true, 'a', seenA);
    await a.start();
    await waitFor('a leads', () => a.isLeader());
    const b = manager(true, 'b', seenB);
    await b.start();
    await rc.create({ metadata: { name: 'le1', namespace: 'le' } });
    await waitFor('a reconciles le1', () => seenA.includes('le/le1'));
    assert.equal(b.isLeader(), false);
    assert.equal(seenB.length, 0, 'the standby reconciles nothing');
    await a.stop();
    await waitFor('b leads', () => b.isLeader(), 10_000);
    await waitFor('b reconciles everything on takeover', () => seenB.includes('le/le1'));
    rc.client.close();
  });
});
