/**
 * The admission seam: plugins see every create, update and delete with the caller's
 * identity after validation and before the write, and a plugin that throws refuses the
 * request without anything being stored.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { SqliteStore } from '../../../apiserver/storage/index.js';
import { Registry, type Target } from '../../../apiserver/registry.js';
import { ResourceCatalog } from '../../../apiserver/resources.js';
import { ApiError } from '../../../apiserver/errors.js';
import type { AdmissionAttributes } from '../../../apiserver/admission.js';
import { removeDir, tempDir } from '../../harness/process.js';

describe('registry admission', () => {
  let dir = '';
  after(async () => {
    if (dir) await removeDir(dir);
  });

  it('runs plugins with the caller for create, update and delete; a refusal writes nothing', async () => {
    dir = await tempDir('admission');
    const store = SqliteStore.open(join(dir, 'stratus.db'), { compactEveryMs: 0 });
    try {
      const catalog = new ResourceCatalog();
      const registry = new Registry(store, catalog);
      const found = catalog.lookup('', 'v1', 'configmaps');
      assert.ok(found);
      const target: Target = { ...found, namespace: 'default' };
      const ns = catalog.lookup('', 'v1', 'namespaces');
      assert.ok(ns);
      await registry.create(ns, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } });
      const seen: AdmissionAttributes[] = [];
      registry.admission.push({
        name: 'recorder',
        admit: (a) => {
          seen.push(a);
          if (a.object?.data && (a.object.data as Record<string, string>).refuse) {
            return Promise.reject(new ApiError(403, 'Forbidden', 'refused by test'));
          }
          return Promise.resolve();
        },
      });
      const user = { username: 'alice', groups: ['team-a', 'system:authenticated'] };
      await registry.create(target, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a' }, data: { k: '1' } }, { user });
      await registry.patch(target, 'a', 'merge', { data: { k: '2' } }, { user });
      await assert.rejects(
        registry.create(target, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'b' }, data: { refuse: 'yes' } }, { user }),
        (err: unknown) => err instanceof ApiError && err.code === 403,
      );
      await assert.rejects(registry.get(target, 'b'), (err: unknown) => err instanceof ApiError && err.code === 404);
      await registry.delete(target, 'a', { user });
      assert.deepEqual(
        seen.map((a) => [a.operation, a.name, a.user?.username]),
        [
          ['CREATE', 'a', 'alice'],
          ['UPDATE', 'a', 'alice'],
          ['CREATE', 'b', 'alice'],
          ['DELETE', 'a', 'alice'],
        ],
      );
      assert.equal((seen[1]?.oldObject?.data as Record<string, string>).k, '1');
      assert.equal((seen[1]?.object?.data as Record<string, string>).k, '2');
    } finally {
      await store.close();
    }
  });
});
