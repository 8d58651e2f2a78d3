import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { KubeClient, CoreResources, type KubeObject, type ResourceClient } from '../../../runtime/client.js';
import { setCondition, getCondition, isTrue, type Condition } from '../../../runtime/conditions.js';
import { ensureFinalizer, removeFinalizer, reconcileWithFinalizer, type CleanupResult } from '../../../runtime/finalizers.js';
import { updateStatus, deepEqual } from '../../../runtime/status.js';
import { EventRecorder, type CoreEvent } from '../../../runtime/events.js';
import { FakeApiServer } from './fakeapi.js';
import { createServer, type AddressInfo, type Socket } from 'node:net';

const T0 = new Date('2026-01-01T00:00:00.000Z');
const T1 = new Date('2026-01-01T00:05:00.000Z');

describe('setCondition', () => {
  const ready = (status: Condition['status'], reason: string, at: string, gen = 1, message = ''): Condition => ({ type: 'Ready', status, reason, message, lastTransitionTime: at, observedGeneration: gen });
  const cases: Array<{ name: string; before: Condition[] | undefined; set: { status: Condition['status']; reason: string; message?: string }; gen: number; want: Condition[] }> = [
    { name: 'adds a condition to an empty list, stamped now', before: undefined, set: { status: 'False', reason: 'Creating' }, gen: 1, want: [ready('False', 'Creating', '2026-01-01T00:05:00Z')] },
    { name: 'keeps lastTransitionTime when status is unchanged', before: [ready('False', 'Creating', '2026-01-01T00:00:00Z')], set: { status: 'False', reason: 'Starting', message: 'booting' }, gen: 2, want: [ready('False', 'Starting', '2026-01-01T00:00:00Z', 2, 'booting')] },
    { name: 'moves lastTransitionTime when status changes', before: [ready('False', 'Creating', '2026-01-01T00:00:00Z')], set: { status: 'True', reason: 'Running' }, gen: 1, want: [ready('True', 'Running', '2026-01-01T00:05:00Z')] },
    { name: 'replaces in place and leaves other types alone', before: [{ type: 'Synced', status: 'True', reason: 'OK', message: '', lastTransitionTime: '2026-01-01T00:00:00Z' }, ready('True', 'Running', '2026-01-01T00:00:00Z')], set: { status: 'Unknown', reason: 'Lost' }, gen: 3, want: [{ type: 'Synced', status: 'True', reason: 'OK', message: '', lastTransitionTime: '2026-01-01T00:00:00Z' }, ready('Unknown', 'Lost', '2026-01-01T00:05:00Z', 3)] },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const frozen = c.before ? structuredClone(c.before) : undefined;
      const got = setCondition(c.before, { type: 'Ready', ...c.set }, c.gen, T1);
      assert.deepEqual(got, c.want);
      assert.deepEqual(c.before, frozen, 'the input list is not modified');
    });
  }
  test('getCondition and isTrue read by type', () => {
    const list = setCondition(undefined, { type: 'Ready', status: 'True', reason: 'R' }, 1, T0);
    assert.equal(getCondition(list, 'Ready')?.reason, 'R');
    assert.equal(isTrue(list, 'Ready'), true);
    assert.equal(isTrue(list, 'Synced'), false);
    assert.equal(isTrue(undefined, 'Ready'), false);
  });
});

describe('deepEqual', () => {
  const cases: Array<[unknown, unknown, boolean]> = [
    [{ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1 }, true],
    [{ a: 1 }, { a: 1, b: undefined }, true],
    [{ a: [1, 2] }, { a: [2, 1] }, false],
    [undefined, {}, false],
    [{ a: null }, { a: undefined }, false],
  ];
  for (const [a, b, want] of cases) test(`${JSON.stringify(a)} vs ${JSON.stringify(b)} → ${want}`, () => assert.equal(deepEqual(a, b), want));
});

const widgetsRef = { group: 'test.stratus.dev', version: 'v1', plural: 'widgets', namespaced: true, kind: 'Widget' };
type Widget = KubeObject & { spec?: { size?: number }; status?: { conditions?: Condition[]; observed?: number } };

describe('helpers against a fake API server', () => {
  const api = new FakeApiServer();
  let client: KubeClient;
  let rc: ResourceClient<Widget>;
  before(async () => {
    await api.start();
    client = KubeClient.fromKubeConfig(api.kubeConfig());
    rc = client.resource<Widget>(widgetsRef);
  });
  after(async () => {
    client.close();
    await api.stop();
  });
  const writes = (path: string): number => api.requests.filter((r) => /^(PUT|PATCH) /.test(r) && r.includes(path)).length;

  test('updateStatus writes /status once, then skips the write when nothing changed', async () => {
    await rc.create({ metadata: { name: 's1', namespace: 'n' }, spec: { size: 1 } });
    const mutate = (o: Widget): void => {
      o.status = { ...o.status, observed: o.spec?.size, conditions: setCondition(o.status?.conditions, { type: 'Ready', status: 'True', reason: 'Ok' }, o.metadata?.generation ?? 0) };
    };
    const first = await updateStatus(rc, 'n', 's1', mutate);
    assert.equal(first?.status?.observed, 1);
    assert.equal(writes('/widgets/s1/status'), 1);
    await updateStatus(rc, 'n', 's1', mutate);
    assert.equal(writes('/widgets/s1/status'), 1, 'a steady state writes nothing');
    assert.deepEqual(await updateStatus(rc, 'n', 's1', () => false), first, 'mutate returning false writes nothing');
    assert.equal(writes('/widgets/s1/status'), 1);
    assert.equal(await updateStatus(rc, 'n', 'missing', mutate), undefined);
  });

  test('updateStatus re-reads and re-applies on a 409', async () => {
    await rc.create({ metadata: { name: 's2', namespace: 'n' }, spec: { size: 1 } });
    api.conflictNext('/widgets/s2/status');
    const reads = (): number => api.requests.filter((r) => r.startsWith('GET') && r.endsWith('/widgets/s2')).length;
    let calls = 0;
    const res = await updateStatus(rc, 'n', 's2', (o) => {
      calls++;
      o.status = { observed: o.spec?.size };
    });
    assert.equal(calls, 2, 'mutate ran again on a fresh read after the conflict');
    assert.equal(reads(), 2);
    assert.equal(res?.status?.observed, 1);
    assert.equal((await rc.get('n', 's2'))?.status?.observed, 1);
  });

  test('finalizer flow: add before acting, keep while cleanup fails or is pending, remove only after the external resource is gone', async () => {
    const log: string[] = [];
    const fin = 'test.stratus.dev/cleanup';
    let cleanup: () => Promise<CleanupResult> = async () => ({ done: true });
    const handlers = {
      apply: async (o: Widget) => {
        log.push(`apply finalizers=${(o.metadata?.finalizers ?? []).join(',')}`);
        const onServer = await rc.get('n', 'f1');
        log.push(`server finalizers=${(onServer?.metadata?.finalizers ?? []).join(',')}`);
      },
      cleanup: (o: Widget) => {
        log.push(`cleanup deleting=${Boolean(o.metadata?.deletionTimestamp)}`);
        return cleanup();
      },
    };
    await rc.create({ metadata: { name: 'f1', namespace: 'n' } });
    const fresh = async (): Promise<Widget> => (await rc.get('n', 'f1')) as Widget;
    await reconcileWithFinalizer(rc, await fresh(), fin, handlers);
    assert.deepEqual(log, [`apply finalizers=${fin}`, `server finalizers=${fin}`], 'the finalizer is on the server before apply runs');
    log.length = 0;

    await rc.delete('n', 'f1');
    const deleting = await fresh();
    assert.ok(deleting.metadata?.deletionTimestamp, 'the finalizer holds the object');

    const steps: Array<{ name: string; cleanup: () => Promise<CleanupResult>; expectThrow: boolean; expectResult?: unknown; expectExists: boolean }> = [
      { name: 'cleanup fails', cleanup: async () => Promise.reject(new Error('provider down')), expectThrow: true, expectExists: true },
      { name: 'cleanup in progress', cleanup: async () => ({ done: false, requeueAfterMs: 250 }), expectThrow: false, expectResult: { requeueAfterMs: 250 }, expectExists: true },
      { name: 'cleanup done', cleanup: async () => ({ done: true }), expectThrow: false, expectResult: undefined, expectExists: false },
    ];
    for (const s of steps) {
      cleanup = s.cleanup;
      const obj = await rc.get('n', 'f1');
      assert.ok(obj, `${s.name}: object still there before the step`);
      if (s.expectThrow) await assert.rejects(reconcileWithFinalizer(rc, obj, fin, handlers));
      else assert.deepEqual(await reconcileWithFinalizer(rc, obj, fin, handlers), s.expectResult);
      assert.equal((await rc.get('n', 'f1')) !== undefined, s.expectExists, s.name);
    }
    assert.deepEqual(log, ['cleanup deleting=true', 'cleanup deleting=true', 'cleanup deleting=true']);
  });

  test('ensureFinalizer and removeFinalizer survive a concurrent writer (409) without losing its finalizer', async () => {
    const created = await rc.create({ metadata: { name: 'f2', namespace: 'n', finalizers: ['other/one'] } });
    await rc.mergePatch('n', 'f2', { metadata: { finalizers: ['other/one', 'other/two'] } });
    // `created` is now stale: the patch must hit 409, re-read and keep other/two.
    const after = await ensureFinalizer(rc, created, 'mine');
    assert.deepEqual(after.metadata?.finalizers, ['other/one', 'other/two', 'mine']);
    const again = await ensureFinalizer(rc, after, 'mine');
    assert.equal(again.metadata?.resourceVersion, after.metadata?.resourceVersion, 'present finalizer: no write');
    const removed = await removeFinalizer(rc, created, 'other/one');
    assert.deepEqual(removed?.metadata?.finalizers, ['other/two', 'mine']);
  });

  test('EventRecorder aggregates repeats into one Event with a count, and rate-limits floods', async () => {
    const TE = new Date(T0.getTime() + 60_000);
    let now = T0;
    const rec = new EventRecorder<'Created' | 'Failed'>(client, 'test-controller', { now: () => now, burst: 5 });
    const obj: Widget = { apiVersion: 'test.stratus.dev/v1', kind: 'Widget', metadata: { name: 'e1', namespace: 'ev', uid: 'u1' } };
    const cases: Array<{ reason: 'Created' | 'Failed'; message: string; at: Date }> = [
      { reason: 'Created', message: 'made it', at: T0 },
      { reason: 'Failed', message: 'disk full', at: T0 },
      { reason: 'Failed', message: 'disk full', at: TE },
      { reason: 'Failed', message: 'disk full', at: TE },
      { reason: 'Failed', message: 'other', at: TE },
      { reason: 'Failed', message: 'over the limit', at: TE },
    ];
    for (const c of cases) {
      now = c.at;
      if (c.reason === 'Created') rec.normal(obj, c.reason, c.message);
      else rec.warning(obj, c.reason, c.message);
    }
    await rec.flush();
    const events = await client.resource<CoreEvent>(CoreResources.events).list('ev');
    const byMsg = new Map(events.map((e) => [e.message, e]));
    assert.equal(events.length, 3, 'three distinct (reason, message) pairs within the burst of 5');
    assert.equal(byMsg.get('disk full')?.count, 3);
    assert.equal(byMsg.get('disk full')?.firstTimestamp, '2026-01-01T00:00:00Z');
    assert.equal(byMsg.get('disk full')?.lastTimestamp, '2026-01-01T00:01:00Z');
    assert.equal(byMsg.get('disk full')?.type, 'Warning');
    assert.equal(byMsg.get('made it')?.type, 'Normal');
    assert.equal(byMsg.get('made it')?.involvedObject.uid, 'u1');
    assert.equal(byMsg.get('made it')?.source.component, 'test-controller');
    assert.equal(rec.dropped, 1, 'the sixth event exceeds the burst of 5');
    now = new Date(T0.getTime() + 300_000);
    rec.warning(obj, 'Failed', 'over the limit');
    await rec.flush();
    assert.equal(rec.dropped, 1, 'a token refills after the refill period');
  });

  test('EventRecorder drops events beyond maxPending while the API does not answer', async () => {
    // A server that accepts connections and never answers.
    const sockets: Socket[] = [];
    const hang = createServer((sock) => sockets.push(sock));
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
    const kc = api.kubeConfig();
    kc.clusters[0] = { ...kc.clusters[0], name: 'fake', server: `http://127.0.0.1:${(hang.address() as AddressInfo).port}`, skipTLSVerify: true };
    const slow = KubeClient.fromKubeConfig(kc, { requestTimeoutMs: 200 });
    const rec = new EventRecorder(slow, 'hung', { maxPending: 2 });
    const obj: Widget = { apiVersion: 'v1', kind: 'Widget', metadata: { name: 'h', namespace: 'ev', uid: 'u2' } };
    for (let i = 0; i < 5; i++) rec.normal(obj, 'Tick', `tick ${i}`);
    assert.equal(rec.dropped, 3, 'two wait for the API, three are dropped at once');
    await rec.flush();
    slow.close();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => hang.close(() => r()));
  });
});
