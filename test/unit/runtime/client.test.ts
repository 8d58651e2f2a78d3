import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeClient, ApiError, CoreResources, isConflict, isNotFound, objectKey, splitKey, type KubeObject } from '../../../runtime/client.js';
import { FakeApiServer } from './fakeapi.js';

const widgets = { group: 'test.stratus.dev', version: 'v1', plural: 'widgets', namespaced: true, kind: 'Widget' };
const clusterThings = { group: 'test.stratus.dev', version: 'v1', plural: 'things', namespaced: false, kind: 'Thing' };
type Widget = KubeObject & { spec?: { size?: number }; status?: { seen?: number } };

describe('KubeClient against a fake API server', () => {
  const api = new FakeApiServer();
  let client: KubeClient;
  let dir: string;
  before(async () => {
    await api.start();
    dir = mkdtempSync(join(tmpdir(), 'stratus-client-'));
    client = KubeClient.fromFile(api.writeKubeconfig(dir));
  });
  after(async () => {
    client.close();
    await api.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const pathCases = [
    { name: 'core namespaced item', ref: CoreResources.secrets, ns: 'a', obj: 's', want: '/api/v1/namespaces/a/secrets/s' },
    { name: 'core collection across namespaces', ref: CoreResources.secrets, ns: undefined, obj: undefined, want: '/api/v1/secrets' },
    { name: 'group namespaced item', ref: widgets, ns: 'a', obj: 'w', want: '/apis/test.stratus.dev/v1/namespaces/a/widgets/w' },
    { name: 'cluster-scoped item ignores the namespace', ref: clusterThings, ns: 'a', obj: 't', want: '/apis/test.stratus.dev/v1/things/t' },
    { name: 'lease', ref: CoreResources.leases, ns: 'kube-system', obj: 'l', want: '/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/l' },
  ];
  for (const c of pathCases) {
    test(`addresses a ${c.name}`, () => {
      assert.equal(client.resource(c.ref).path(c.ns, c.obj), c.want);
    });
  }

  test('create, get, list, merge patch, status, replace and delete round-trip a CRD object', async () => {
    const rc = client.resource<Widget>(widgets);
    const created = await rc.create({ metadata: { name: 'w1', namespace: 'ns1' }, spec: { size: 1 } });
    assert.equal(created.kind, 'Widget', 'kind filled from the resource ref');
    assert.equal((await rc.get('ns1', 'w1'))?.spec?.size, 1);
    assert.equal(await rc.get('ns1', 'missing'), undefined, 'get of a missing object is undefined');
    const patched: Widget = await rc.mergePatch('ns1', 'w1', { spec: { size: 2 } });
    assert.equal(patched.spec?.size, 2);
    const st = await rc.mergePatchStatus('ns1', 'w1', { status: { seen: 2 } });
    assert.equal(st.status?.seen, 2);
    assert.equal(st.spec?.size, 2);
    const listed = await rc.listWithVersion('ns1');
    assert.equal(listed.items.length, 1);
    assert.ok(listed.resourceVersion);
    assert.equal(listed.items[0]?.kind, 'Widget');
    const replaced = await rc.replace({ ...st, spec: { size: 3 } });
    assert.equal(replaced.spec?.size, 3);
    assert.equal(await rc.delete('ns1', 'w1'), true);
    assert.equal(await rc.delete('ns1', 'w1'), false, 'deleting a missing object reports false');
  });

  test('a stale resourceVersion surfaces as a 409 ApiError', async () => {
    const rc = client.resource<Widget>(widgets);
    const a = await rc.create({ metadata: { name: 'w2', namespace: 'ns1' }, spec: { size: 1 } });
    await rc.mergePatch('ns1', 'w2', { spec: { size: 5 } });
    await assert.rejects(rc.replace({ ...a, spec: { size: 9 } }), (err: unknown) => {
      assert.ok(err instanceof ApiError);
      assert.equal(err.code, 409);
      assert.equal(err.reason, 'Conflict');
      assert.ok(isConflict(err));
      assert.match(err.message, /modified/);
      return true;
    });
    await assert.rejects(rc.mergePatch('ns1', 'nope', {}), (err: unknown) => isNotFound(err));
    await assert.rejects(rc.create({ metadata: { name: 'w2', namespace: 'ns1' } }), (err: unknown) => err instanceof ApiError && err.reason === 'AlreadyExists');
  });

  test('merge patches go out as application/merge-patch+json, JSON patches as json-patch', async () => {
    const rc = client.resource(CoreResources.configMaps);
    await rc.create({ metadata: { name: 'c', namespace: 'ns1' } });
    // The fake answers 415 to any other content type.
    await rc.mergePatch('ns1', 'c', { metadata: { labels: { a: 'b' } } });
    const after = await rc.jsonPatch('ns1', 'c', [{ op: 'add', path: '/metadata/labels/c', value: 'd' }]);
    assert.deepEqual(after.metadata?.labels, { a: 'b', c: 'd' });
  });

  test('objectKey and splitKey are inverse for namespaced and cluster-scoped keys', () => {
    assert.equal(objectKey({ metadata: { name: 'n', namespace: 'ns' } }), 'ns/n');
    assert.equal(objectKey({ metadata: { name: 'n' } }), 'n');
    assert.deepEqual(splitKey('ns/n'), { namespace: 'ns', name: 'n' });
    assert.deepEqual(splitKey('n'), { namespace: undefined, name: 'n' });
  });

  test('a refused connection rejects with the network error', async () => {
    const kc = api.kubeConfig();
    kc.clusters[0] = { ...kc.clusters[0], name: 'fake', server: 'http://127.0.0.1:1', skipTLSVerify: true };
    const dead = KubeClient.fromKubeConfig(kc);
    await assert.rejects(dead.resource(widgets).get('a', 'b'), (err: unknown) => (err as NodeJS.ErrnoException).code === 'ECONNREFUSED');
  });
});
