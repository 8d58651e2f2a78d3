/**
 * The runtime's helpers against the real standalone API server: finalizer flow (merge
 * patches with resourceVersion preconditions, deletionTimestamp), status writes through
 * /status with conflict retry, and Event aggregation.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { StratusServe } from '../../harness/apiserver.js';
import { CoreResources, KubeClient, isConflict, type ResourceClient } from '../../../runtime/client.js';
import { reconcileWithFinalizer, ensureFinalizer } from '../../../runtime/finalizers.js';
import { updateStatus } from '../../../runtime/status.js';
import { EventRecorder, type CoreEvent } from '../../../runtime/events.js';
import { WidgetResource, type Widget } from './widgets.js';
import { ensureNamespace, startWidgetServer } from './setup.js';

describe('runtime helpers against stratus serve', () => {
  let srv: StratusServe;
  let client: KubeClient;
  let widgets: ResourceClient<Widget>;

  before(async () => {
    srv = await startWidgetServer();
    client = KubeClient.fromFile(srv.kubeconfig);
    widgets = client.resource<Widget>(WidgetResource);
    await ensureNamespace(client, 'h');
  });

  after(async () => {
    client?.close();
    await srv?.stop();
  });

  test('the finalizer holds a deleted object until cleanup reports the external resource gone', async () => {
    const fin = 'test.stratus.dev/external';
    const external = new Set<string>();
    let failCleanup = true;
    const handlers = {
      apply: async (w: Widget) => {
        assert.ok(w.metadata?.finalizers?.includes(fin), 'protected before acting');
        external.add(w.metadata?.uid ?? '');
      },
      cleanup: async (w: Widget) => {
        if (failCleanup) throw new Error('provider unavailable');
        external.delete(w.metadata?.uid ?? '');
        return { done: true } as const;
      },
    };
    const created = await widgets.create({ metadata: { name: 'fin', namespace: 'h' }, spec: { input: 'x' } });
    await reconcileWithFinalizer(widgets, created, fin, handlers);
    assert.equal(external.size, 1);
    assert.deepEqual((await widgets.get('h', 'fin'))?.metadata?.finalizers, [fin]);

    await widgets.delete('h', 'fin');
    const deleting = await widgets.get('h', 'fin');
    assert.ok(deleting?.metadata?.deletionTimestamp, 'the object waits for its finalizer');
    await assert.rejects(reconcileWithFinalizer(widgets, deleting, fin, handlers), /provider unavailable/);
    assert.ok(await widgets.get('h', 'fin'), 'a failed cleanup keeps the object');
    failCleanup = false;
    await reconcileWithFinalizer(widgets, (await widgets.get('h', 'fin')) as Widget, fin, handlers);
    assert.equal(external.size, 0);
    assert.equal(await widgets.get('h', 'fin'), undefined, 'gone once the finalizer is removed');
  });

  test('a stale resourceVersion is a 409 on the real server, and ensureFinalizer recovers from it', async () => {
    const stale = await widgets.create({ metadata: { name: 'rv', namespace: 'h', finalizers: ['a/one'] }, spec: { input: 'x' } });
    await widgets.mergePatch('h', 'rv', { metadata: { finalizers: ['a/one', 'a/two'] } });
    await assert.rejects(widgets.mergePatch('h', 'rv', { metadata: { resourceVersion: stale.metadata?.resourceVersion, labels: { x: 'y' } } }), (err: unknown) => isConflict(err));
    const after = await ensureFinalizer(widgets, stale, 'a/three');
    assert.deepEqual(after.metadata?.finalizers, ['a/one', 'a/two', 'a/three']);
    await widgets.mergePatch('h', 'rv', { metadata: { finalizers: null } });
  });

  test('updateStatus writes only /status, and writes nothing when nothing changed', async () => {
    await widgets.create({ metadata: { name: 'st', namespace: 'h' }, spec: { input: 'x' } });
    const first = await updateStatus(widgets, 'h', 'st', (w) => {
      w.status = { output: 'x-done', observedGeneration: w.metadata?.generation };
      w.spec = { input: 'ignored by /status' };
    });
    assert.equal(first?.status?.output, 'x-done');
    assert.equal(first?.spec?.input, 'x', '/status does not change spec');
    const again = await updateStatus(widgets, 'h', 'st', (w) => {
      w.status = { output: 'x-done', observedGeneration: w.metadata?.generation };
    });
    assert.equal(again?.metadata?.resourceVersion, first?.metadata?.resourceVersion, 'no write in a steady state');
  });

  test('repeated events are aggregated into one Event with a count', async () => {
    const w = await widgets.create({ metadata: { name: 'ev', namespace: 'h' }, spec: { input: 'x' } });
    const rec = new EventRecorder<'Created' | 'Failed'>(client, 'runtime-test');
    rec.normal(w, 'Created', 'created the external resource');
    for (let i = 0; i < 3; i++) rec.warning(w, 'Failed', 'quota exceeded');
    await rec.flush();
    const events = (await client.resource<CoreEvent>(CoreResources.events).list('h')).filter((e) => e.involvedObject.uid === w.metadata?.uid);
    assert.equal(events.length, 2);
    const failed = events.find((e) => e.reason === 'Failed');
    assert.equal(failed?.count, 3);
    assert.equal(failed?.type, 'Warning');
    assert.equal(events.find((e) => e.reason === 'Created')?.count, 1);
  });
});
