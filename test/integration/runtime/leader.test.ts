/**
 * Two controller processes under leader election against `stratus serve`: only the leader
 * reconciles; after SIGKILL of the leader the standby takes the Lease and finishes the
 * work. Also `stratus controller` itself: up, healthy, leading, and releasing on SIGTERM.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { StratusServe } from '../../harness/apiserver.js';
import { startDaemon, waitFor, type Daemon } from '../../harness/process.js';
import { stratusBin } from '../../harness/paths.js';
import { CoreResources, KubeClient, type ResourceClient } from '../../../runtime/client.js';
import type { Lease } from '../../../runtime/leader.js';
import { WidgetResource, isSteady, type Widget } from './widgets.js';
import { ensureNamespace, pool, sample, startWidgetServer, widgetManagerCommand } from './setup.js';

describe('runtime against stratus serve: leader election across processes', () => {
  let srv: StratusServe;
  let client: KubeClient;
  let widgets: ResourceClient<Widget>;
  let leases: ResourceClient<Lease>;
  const daemons: Daemon[] = [];

  before(async () => {
    srv = await startWidgetServer();
    client = KubeClient.fromFile(srv.kubeconfig);
    widgets = client.resource<Widget>(WidgetResource);
    leases = client.resource<Lease>(CoreResources.leases);
    await ensureNamespace(client, 'default');
  });

  after(async () => {
    for (const d of daemons) await d.stop(2000);
    client?.close();
    await srv?.stop();
  });

  test('the standby takes over after SIGKILL of the leader and finishes the work', async () => {
    await ensureNamespace(client, 'le');
    const procs = ['alpha', 'beta'].map((id) => {
      const d = startDaemon(process.execPath, [...widgetManagerCommand(), srv.kubeconfig, id], { env: { ...process.env, STRATUS_LOG_LEVEL: 'warn' } });
      daemons.push(d);
      return { id, d };
    });
    for (const p of procs) await waitFor(`${p.id} ready`, () => p.d.output().includes('ready '), 60_000);
    const holder = async (): Promise<string> => (await leases.get('default', 'widget-manager'))?.spec?.holderIdentity ?? '';
    const first = await waitFor('a leader', async () => (await holder()) || undefined, 30_000);
    const leader = procs.find((p) => p.id === first);
    const standby = procs.find((p) => p.id !== first);
    assert.ok(leader && standby);

    // 50 ms per reconcile, 4 workers: work is still pending when the leader dies.
    const names = Array.from({ length: 200 }, (_, i) => `le${i}`);
    await pool(names, 16, async (name) => {
      await widgets.create({ metadata: { name, namespace: 'le' }, spec: { input: name, delayMs: 50 } });
    });
    const doneBy = async (id: string): Promise<number> => (await widgets.list('le')).filter((w) => isSteady(w) && w.status?.reconciledBy === id).length;
    await waitFor('the leader reconciled some', async () => (await doneBy(leader.id)) >= 10, 60_000);
    assert.equal(await doneBy(standby.id), 0, 'the standby reconciled nothing while the leader lived');

    const killedAt = Date.now();
    await leader.d.kill();
    const pendingAtKill = (await widgets.list('le')).filter((w) => !isSteady(w)).length;
    await waitFor('the standby holds the lease', async () => (await holder()) === standby.id, 60_000, 100);
    const takeoverMs = Date.now() - killedAt;
    await waitFor('all 200 steady', async () => (await widgets.list('le')).every(isSteady) || undefined, 120_000, 500);
    assert.ok(pendingAtKill > 0, 'work was pending when the leader died');
    assert.equal((await widgets.list('le')).length, 200);
    assert.ok((await doneBy(standby.id)) > 0, 'the new leader finished the remaining work');
    process.stderr.write(`# leader ${leader.id} SIGKILLed with ${pendingAtKill} widgets pending; ${standby.id} took the lease after ${takeoverMs} ms (lease 15 s, renew 10 s, retry 2 s)\n`);

    const port = /ready (\d+)/.exec(standby.d.output())?.[1];
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    assert.ok((sample(text, 'controller_runtime_reconcile_total{controller="widget",result="success"}') ?? 0) > 0);
    assert.equal(sample(text, `leader_election_master_status{name="${standby.id}"}`), 1);
  });

  test('stratus controller runs against the API server, leads, serves /healthz and /readyz, and releases the Lease on SIGTERM', async () => {
    const d = startDaemon(process.execPath, [stratusBin(), 'controller', '--kubeconfig', srv.kubeconfig, '--metrics-listen', '127.0.0.1:0', '--leader-elect', '--identity', 'cli-test'], {
      env: { ...process.env, STRATUS_LOG_LEVEL: 'warn' },
    });
    daemons.push(d);
    const m = await waitFor('controller up', () => /metrics at (http:\/\/\S+)\/metrics/.exec(d.output()) ?? undefined, 60_000);
    const base = m[1] as string;
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    await waitFor('ready', async () => (await fetch(`${base}/readyz`)).status === 200, 30_000);
    await waitFor('cli-test leads', async () => (await leases.get('default', 'stratus-controller'))?.spec?.holderIdentity === 'cli-test', 30_000);
    d.child.kill('SIGTERM');
    assert.equal(await d.exited, 0);
    assert.equal((await leases.get('default', 'stratus-controller'))?.spec?.holderIdentity, '', 'the lease is released on SIGTERM');
  });
});
