import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { KubeClient, objectKey, splitKey, type KubeObject, type ResourceClient } from '../../../runtime/client.js';
import { Informer } from '../../../runtime/informer.js';
import { Controller, type ReconcileContext, type ReconcileResult, type Reconciler } from '../../../runtime/controller.js';
import { RuntimeMetrics } from '../../../runtime/metrics.js';
import { ReconcileError } from '../../../runtime/errors.js';
import { ExponentialBackoff } from '../../../runtime/queue.js';
import { FakeApiServer } from './fakeapi.js';
import { waitFor } from '../../harness/process.js';

const nodesRef = { group: 'test.stratus.dev', version: 'v1', plural: 'nodes', namespaced: false, kind: 'Node' };
const vmsRef = { group: 'test.stratus.dev', version: 'v1', plural: 'vms', namespaced: true, kind: 'VM' };
type Vm = KubeObject & { spec?: { node?: string; n?: number } };

/** A reconciler whose behaviour per call is scripted by the test. */
class ScriptedReconciler implements Reconciler {
  calls: Array<{ key: string; id: string }> = [];
  active = new Set<string>();
  overlaps = 0;
  constructor(private readonly script: (key: string, call: number) => Promise<ReconcileResult | void>) {}
  async reconcile(key: string, ctx: ReconcileContext): Promise<ReconcileResult | void> {
    if (this.active.has(key)) this.overlaps++;
    this.active.add(key);
    this.calls.push({ key, id: ctx.reconcileID });
    try {
      return await this.script(key, this.calls.filter((c) => c.key === key).length);
    } finally {
      this.active.delete(key);
    }
  }
  count(key: string): number {
    return this.calls.filter((c) => c.key === key).length;
  }
}

describe('Controller', () => {
  const api = new FakeApiServer();
  let client: KubeClient;
  let vms: ResourceClient<Vm>;
  const stops: Array<() => Promise<void>> = [];
  before(async () => {
    await api.start();
    client = KubeClient.fromKubeConfig(api.kubeConfig());
    vms = client.resource<Vm>(vmsRef);
  });
  after(async () => {
    for (const s of stops.reverse()) await s();
    client.close();
    await api.stop();
  });

  async function run(ns: string, reconciler: Reconciler, opts: { concurrency?: number; metrics?: RuntimeMetrics } = {}): Promise<{ ctl: Controller<Vm>; inf: Informer<Vm> }> {
    const inf = new Informer(vms, { namespace: ns, initialBackoffMs: 10 });
    const ctl = new Controller({ name: `vm-${ns}`, concurrency: opts.concurrency ?? 2, metrics: opts.metrics, rateLimiter: () => new ExponentialBackoff(5, 50) }, inf, reconciler);
    inf.start();
    assert.equal(await ctl.start(), true);
    stops.push(async () => {
      await ctl.stop();
      await inf.stop();
    });
    return { ctl, inf };
  }

  test('reconciles every existing and new object, each with its own reconcile ID', async () => {
    for (let i = 0; i < 10; i++) await vms.create({ metadata: { name: `v${i}`, namespace: 'a' } });
    const r = new ScriptedReconciler(async () => {});
    await run('a', r);
    await vms.create({ metadata: { name: 'late', namespace: 'a' } });
    await waitFor('all keys', () => r.count('a/late') >= 1 && Array.from({ length: 10 }, (_, i) => r.count(`a/v${i}`)).every((n) => n >= 1));
    assert.equal(new Set(r.calls.map((c) => c.id)).size, r.calls.length, 'reconcile IDs are unique');
  });

  const outcomeCases: Array<{ name: string; script: (call: number) => Promise<ReconcileResult | void>; until: number; expectResults: Record<string, number>; panics?: number }> = [
    {
      name: 'a throw is retried with backoff until it succeeds',
      script: async (call) => {
        if (call < 4) throw new Error(`boom ${call}`);
      },
      until: 4,
      expectResults: { error: 3, success: 1 },
    },
    {
      name: 'requeueAfterMs checks the key again later',
      script: async (call) => (call < 3 ? { requeueAfterMs: 20 } : undefined),
      until: 3,
      expectResults: { requeue_after: 2, success: 1 },
    },
    {
      name: 'requeue retries without an error',
      script: async (call) => (call < 2 ? { requeue: true } : undefined),
      until: 2,
      expectResults: { requeue: 1, success: 1 },
    },
    {
      name: 'a ReconcileError naming retryAfterMs is checked again after it and counted as an error',
      script: async (call) => {
        if (call < 3) throw new ReconcileError('QuotaExceeded', 'try later', true, 20);
      },
      until: 3,
      expectResults: { error: 2, success: 1 },
      panics: 0,
    },
    {
      name: 'a panic (a TypeError, or a thrown non-Error) is recovered, counted, and retried',
      script: async (call) => {
        if (call === 1) throw new TypeError('x is undefined');
        if (call === 2) throw 'a string';
      },
      until: 3,
      expectResults: { error: 2, success: 1 },
      panics: 2,
    },
  ];
  let nsSeq = 0;
  for (const c of outcomeCases) {
    test(c.name, async () => {
      const ns = `o${nsSeq++}`;
      await vms.create({ metadata: { name: 'x', namespace: ns } });
      const metrics = new RuntimeMetrics({ processMetrics: false });
      const r = new ScriptedReconciler((_k, call) => c.script(call));
      await run(ns, r, { metrics });
      await waitFor('scripted calls', () => r.count(`${ns}/x`) >= c.until, 5000);
      await new Promise((res) => setTimeout(res, 100));
      assert.equal(r.count(`${ns}/x`), c.until, 'no reconcile after the final success');
      const text = await metrics.metricsText();
      for (const [result, n] of Object.entries(c.expectResults)) {
        assert.match(text, new RegExp(`controller_runtime_reconcile_total\\{controller="vm-${ns}",result="${result}"\\} ${n}\\b`));
      }
      if (c.expectResults.error) assert.match(text, new RegExp(`controller_runtime_reconcile_errors_total\\{controller="vm-${ns}"\\} ${c.expectResults.error}\\b`));
      if (c.panics !== undefined) assert.match(text, new RegExp(`controller_runtime_reconcile_panics_total\\{controller="vm-${ns}"\\} ${c.panics}\\b`));
    });
  }

  test('a key is never reconciled by two workers at once, and a change during a reconcile runs it again', async () => {
    await vms.create({ metadata: { name: 'hot', namespace: 'c' }, spec: { n: 0 } });
    let release: (() => void) | undefined;
    const blocked = new Promise<void>((r) => (release = r));
    const r = new ScriptedReconciler(async (_k, call) => {
      if (call === 1) await blocked;
    });
    const { inf } = await run('c', r, { concurrency: 4 });
    await waitFor('first reconcile to start', () => r.count('c/hot') === 1);
    for (let i = 1; i <= 5; i++) await vms.mergePatch('c', 'hot', { spec: { n: i } });
    // Every change has reached the informer (and so the queue) while the first reconcile runs.
    await waitFor('the informer to see all five changes', () => inf.get('c/hot')?.spec?.n === 5);
    assert.equal(r.count('c/hot'), 1, 'changes during a reconcile wait for it');
    release?.();
    await waitFor('the follow-up reconcile', () => r.count('c/hot') === 2);
    await new Promise((res) => setTimeout(res, 50));
    assert.equal(r.count('c/hot'), 2, 'five changes during one reconcile cause exactly one more');
    assert.equal(r.overlaps, 0);
  });

  test('watches map changes of another kind to primary keys', async () => {
    const nodes = client.resource(nodesRef);
    await vms.create({ metadata: { name: 'vm1', namespace: 'd' }, spec: { node: 'n1' } });
    const nodeInf = new Informer(nodes, { initialBackoffMs: 10 });
    const vmInf = new Informer(vms, { namespace: 'd', initialBackoffMs: 10 });
    vmInf.addIndex('node', (o) => (o.spec?.node ? [o.spec.node] : []));
    const r = new ScriptedReconciler(async () => {});
    const ctl = new Controller({ name: 'vm-d' }, vmInf, r).watches(nodeInf, (n) => vmInf.byIndex('node', n.metadata?.name ?? '').map(objectKey));
    nodeInf.start();
    vmInf.start();
    await ctl.start();
    stops.push(async () => {
      await ctl.stop();
      await nodeInf.stop();
      await vmInf.stop();
    });
    await waitFor('initial', () => r.count('d/vm1') === 1);
    await nodes.create({ metadata: { name: 'n1' } });
    await waitFor('node change reconciles its vm', () => r.count('d/vm1') === 2);
    await nodes.create({ metadata: { name: 'n2' } });
    await new Promise((res) => setTimeout(res, 50));
    assert.equal(r.count('d/vm1'), 2, 'an unrelated node does not touch vm1');
    assert.deepEqual(splitKey('d/vm1'), { namespace: 'd', name: 'vm1' });
  });

  test('stop aborts the signal of reconciles in flight and waits for them', async () => {
    await vms.create({ metadata: { name: 's', namespace: 'e' } });
    let sawAbort = false;
    let started = false;
    const r: Reconciler = {
      reconcile: (_key, ctx) =>
        new Promise((resolve) => {
          started = true;
          ctx.signal.addEventListener('abort', () => {
            sawAbort = true;
            resolve();
          });
        }),
    };
    const { ctl } = await run('e', r);
    await waitFor('start', () => started);
    await ctl.stop();
    assert.equal(sawAbort, true);
    assert.equal(ctl.isRunning, false);
  });
});
