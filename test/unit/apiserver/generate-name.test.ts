/**
 * generateName: a drawn name that is already taken is drawn again (as kube-apiserver's
 * RetryGenerateName), a bounded number of times; an explicit name that is taken is a 409
 * at once.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { SqliteStore } from '../../../apiserver/storage/index.js';
import { Registry, type Target } from '../../../apiserver/registry.js';
import { ResourceCatalog } from '../../../apiserver/resources.js';
import { ApiError } from '../../../apiserver/errors.js';
import { removeDir, tempDir } from '../../harness/process.js';

describe('generateName', () => {
  let dir = '';
  let store: SqliteStore;
  let registry: Registry;
  let target: Target;
  before(async () => {
    dir = await tempDir('generate-name');
    store = SqliteStore.open(join(dir, 'stratus.db'), { compactEveryMs: 0 });
    const catalog = new ResourceCatalog();
    registry = new Registry(store, catalog);
    const ns = catalog.lookup('', 'v1', 'namespaces');
    const cm = catalog.lookup('', 'v1', 'configmaps');
    assert.ok(ns && cm);
    await registry.create(ns, { metadata: { name: 'default' } });
    target = { ...cm, namespace: 'default' };
  });
  after(async () => {
    await store?.close();
    if (dir) await removeDir(dir);
  });

  it('a generated name that collides is drawn again and the create succeeds', async () => {
    await registry.create(target, { metadata: { name: 'web-aaaaa' } });
    await registry.create(target, { metadata: { name: 'web-bbbbb' } });
    const draws = ['web-aaaaa', 'web-bbbbb', 'web-ccccc'];
    const asked: string[] = [];
    registry.generateName = (base) => {
      asked.push(base);
      return draws[asked.length - 1] ?? 'web-zzzzz';
    };
    const created = await registry.create(target, { metadata: { generateName: 'web-' }, data: { k: 'v' } });
    assert.equal(created.metadata?.name, 'web-ccccc');
    assert.deepEqual(asked, ['web-', 'web-', 'web-']);
    const stored = await registry.get(target, 'web-ccccc');
    assert.deepEqual(stored.data, { k: 'v' });
    // the objects that held the drawn names are untouched
    assert.equal((await registry.get(target, 'web-aaaaa')).data, undefined);
  });

  it('gives up with 409 AlreadyExists after 8 draws that all collide', async () => {
    await registry.create(target, { metadata: { name: 'db-xxxxx' } });
    let draws = 0;
    registry.generateName = () => {
      draws++;
      return 'db-xxxxx';
    };
    await assert.rejects(
      registry.create(target, { metadata: { generateName: 'db-' } }),
      (err: unknown) => err instanceof ApiError && err.code === 409 && err.reason === 'AlreadyExists',
    );
    assert.equal(draws, 8);
  });

  it('an explicit name that is taken is a 409 without any draw', async () => {
    let draws = 0;
    registry.generateName = (base) => {
      draws++;
      return `${base}qqqqq`;
    };
    await assert.rejects(
      registry.create(target, { metadata: { name: 'web-aaaaa', generateName: 'web-' } }),
      (err: unknown) => err instanceof ApiError && err.code === 409 && err.reason === 'AlreadyExists',
    );
    assert.equal(draws, 0);
  });
});
