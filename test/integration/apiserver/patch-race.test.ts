/**
 * Concurrent patches: a patch without a resourceVersion is applied to the fresh object (the
 * server queues the read-modify-writes of one key, and retries a write another process won),
 * so every one lands; a patch that carries a stale resourceVersion is a 409.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startApiServer, type ApiServer } from '../../../apiserver/server.js';
import { repoRoot } from '../../harness/paths.js';
import { removeDir, tempDir } from '../../harness/process.js';
import { kubeFetch, type KubeFetch } from '../../harness/kubefetch.js';

let server: ApiServer;
let dir: string;
/** As the admin of the kubeconfig the server wrote. */
let adminFetch: KubeFetch;
const path = '/api/v1/namespaces/default/configmaps';

before(async () => {
  dir = await tempDir('patchrace');
  server = await startApiServer({ dataDir: dir, listen: '127.0.0.1:0', crdDir: join(repoRoot(), 'crds') });
  adminFetch = kubeFetch(server.kubeconfigPath);
  const r = await adminFetch(server.url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'race' }, data: {} }) });
  assert.equal(r.status, 201);
});

after(async () => {
  await server?.close();
  if (dir) await removeDir(dir);
});

const patch = (body: unknown): Promise<Response> =>
  adminFetch(`${server.url}${path}/race`, { method: 'PATCH', headers: { 'content-type': 'application/merge-patch+json' }, body: JSON.stringify(body) });

/** `stratus_storage_requests_total{operation="update",result="ConflictError"}` from /metrics. */
async function updateConflicts(): Promise<number> {
  const text = await (await adminFetch(`${server.url}/metrics`)).text();
  const m = /^stratus_storage_requests_total\{[^}]*operation="update"[^}]*result="ConflictError"[^}]*\} (\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

test('64 concurrent merge patches without a resourceVersion all land, one after the other (no conflicting attempts, so no retry budget to run out of)', async () => {
  const conflictsBefore = await updateConflicts();
  const results = await Promise.all(Array.from({ length: 64 }, (_, i) => patch({ data: { [`k${i}`]: String(i) } })));
  assert.deepEqual([...new Set(results.map((r) => r.status))], [200]);
  const cm = (await (await adminFetch(`${server.url}${path}/race`)).json()) as { data: Record<string, string> };
  assert.equal(Object.keys(cm.data).length, 64);
  assert.equal(await updateConflicts(), conflictsBefore, 'the patches of one key are queued in the server, not raced in the store');
});

test('a merge patch with a stale resourceVersion is a 409 Conflict', async () => {
  const cm = (await (await adminFetch(`${server.url}${path}/race`)).json()) as { metadata: { resourceVersion: string } };
  assert.equal((await patch({ data: { a: '1' } })).status, 200);
  const stale = await patch({ metadata: { resourceVersion: cm.metadata.resourceVersion }, data: { b: '2' } });
  assert.equal(stale.status, 409);
  assert.equal(((await stale.json()) as { reason: string }).reason, 'Conflict');
});
