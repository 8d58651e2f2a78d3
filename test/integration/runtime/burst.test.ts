/**
 * The runtime against the real standalone API server (`stratus serve`, SQLite): a burst of
 * 1,000 objects all reach a steady state with no lost key, across a SIGKILL and restart of
 * the API server mid-run; /metrics then shows the controller-runtime series non-zero.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { StratusServe } from '../../harness/apiserver.js';
import { waitFor } from '../../harness/process.js';
import { KubeClient, objectKey, type ResourceClient } from '../../../runtime/client.js';
import { Manager } from '../../../runtime/manager.js';
import { RuntimeMetrics } from '../../../runtime/metrics.js';
import { WidgetReconciler, WidgetResource, isSteady, type Widget } from './widgets.js';
import { ensureNamespace, pool, retrying, sample, startWidgetServer } from './setup.js';

const N = 1000;

describe('runtime against stratus serve: a burst and an API server crash', () => {
  let srv: StratusServe;
  let client: KubeClient;
  let widgets: ResourceClient<Widget>;
  let mgr: Manager | undefined;

  before(async () => {
    srv = await startWidgetServer();
    client = KubeClient.fromFile(srv.kubeconfig);
    widgets = client.resource<Widget>(WidgetResource);
  });

  after(async () => {
    await mgr?.stop();
    client?.close();
    await srv?.stop();
  });

  test(`${N} widgets created in a burst all reach a steady state across a SIGKILL and restart of the API server`, async () => {
    await ensureNamespace(client, 'burst');
    const metrics = new RuntimeMetrics();
    mgr = new Manager({ client: KubeClient.fromFile(srv.kubeconfig), metricsListen: '127.0.0.1:0', metrics });
    const cache = mgr.informer<Widget>(WidgetResource, { namespace: 'burst' });
    const reconciler = new WidgetReconciler(mgr.resource<Widget>(WidgetResource), cache, 'in-process');
    mgr.addController({ name: 'widget', concurrency: 8 }, cache, reconciler);
    await mgr.start();

    const names = Array.from({ length: N }, (_, i) => `w${String(i).padStart(4, '0')}`);
    await pool(names, 16, async (name) => {
      await widgets.create({ metadata: { name, namespace: 'burst' }, spec: { input: name } });
    });

    // Kill the API server while the controller is still working through the burst.
    await waitFor('some reconciles before the kill', () => reconciler.counts.size >= 50, 60_000);
    const steadyBeforeKill = (await widgets.list('burst')).filter(isSteady).length;
    await srv.kill();
    await new Promise((r) => setTimeout(r, 500));
    await srv.restart();

    // Changes after the restart must be seen too (the informer resumed or relisted).
    const changed = names.filter((_, i) => i % 10 === 0);
    await pool(changed, 8, async (name) => {
      await retrying(() => widgets.mergePatch('burst', name, { spec: { input: `${name}-v2` } }));
    });

    const final = await waitFor(
      `all ${N} widgets steady`,
      async () => {
        const all = await widgets.list('burst');
        return all.length === N && all.every(isSteady) ? all : undefined;
      },
      240_000,
      500,
    );
    assert.ok(steadyBeforeKill < N, 'the kill happened while work was still pending');
    const missing = names.filter((n) => !reconciler.counts.has(`burst/${n}`));
    assert.deepEqual(missing, [], 'every key was reconciled');
    for (const w of final) {
      const cond = w.status?.conditions?.find((c) => c.type === 'Ready');
      assert.equal(cond?.status, 'True', `${objectKey(w)} Ready`);
      assert.equal(cond?.observedGeneration, w.metadata?.generation);
    }
    assert.equal(final.filter((w) => w.spec?.input?.endsWith('-v2')).length, changed.length);
    assert.ok(cache.restarts >= 1, 'the informer noticed the outage and restarted');

    const port = mgr.metricsAddress()?.port;
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    for (const series of [
      'controller_runtime_reconcile_total{controller="widget",result="success"}',
      'controller_runtime_reconcile_time_seconds_count{controller="widget"}',
      'workqueue_adds_total{name="widget"}',
      'workqueue_queue_duration_seconds_count{name="widget"}',
      'workqueue_work_duration_seconds_count{name="widget"}',
      'process_resident_memory_bytes',
    ]) {
      assert.ok((sample(text, series) ?? 0) > 0, `${series} is non-zero`);
    }
    for (const series of ['workqueue_depth{name="widget"}', 'controller_runtime_reconcile_errors_total{controller="widget"}', 'workqueue_retries_total{name="widget"}']) {
      assert.notEqual(sample(text, series), undefined, `${series} is exposed`);
    }
    const total = [...reconciler.counts.values()].reduce((a, b) => a + b, 0);
    process.stderr.write(
      `# ${N} widgets (${steadyBeforeKill} steady at the kill): ${total} reconciles, ${sample(text, 'controller_runtime_reconcile_errors_total{controller="widget"}')} errors during the outage, informer restarts ${cache.restarts}, relists ${cache.relists}\n`,
    );
  });
});
