/**
 * SQLite-specific behaviour the conformance suite does not cover: the in-process lock,
 * group commit isolating failed writes, long history replay, periodic compaction, and
 * what a closed store does. No external process: each test uses a private temp dir.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { SqliteStore } from '../../../apiserver/storage/sqlite.js';
import { ConflictError, KeyExistsError, StoreError, TooOldError, type WatchEvent } from '../../../apiserver/storage/store.js';
import { prefixEnd } from '../../../apiserver/storage/keys.js';
import { removeDir, tempDir, waitFor } from '../../harness/process.js';

const dirs: string[] = [];
const stores: SqliteStore[] = [];
after(async () => {
  for (const s of stores) await s.close();
  for (const d of dirs) await removeDir(d);
});

async function fresh(options?: Parameters<typeof SqliteStore.open>[1]): Promise<{ store: SqliteStore; file: string }> {
  const dir = await tempDir('sqlite-unit');
  dirs.push(dir);
  const file = join(dir, 'nested', 'stratus.db');
  const store = SqliteStore.open(file, { compactEveryMs: 0, ...options });
  stores.push(store);
  return { store, file };
}

describe('prefixEnd', () => {
  const cases: Array<[string, string | undefined]> = [
    ['/a/', '/a0'],
    ['abc', 'abd'],
    ['', undefined],
    ['a\u{10ffff}', 'b'],
    ['\ud7ff', '\ue000'],
  ];
  for (const [prefix, end] of cases) {
    it(`bounds every key under ${JSON.stringify(prefix)} by ${JSON.stringify(end)}`, () => {
      assert.equal(prefixEnd(prefix), end);
      if (end !== undefined) {
        assert.ok(`${prefix}\u{10ffff}zz` < end);
        assert.ok(prefix < end);
      }
    });
  }
});

describe('SqliteStore', () => {
  it('creates the parent directory and refuses a second open of the same file, naming it and the holder PID', async () => {
    const { store, file } = await fresh();
    assert.throws(
      () => SqliteStore.open(file),
      (e: unknown) => e instanceof StoreError && e.message.includes(file) && e.message.includes(`PID ${process.pid}`),
    );
    await store.create('/k', 'v');
    await store.close();
    const again = SqliteStore.open(file, { compactEveryMs: 0 });
    stores.push(again);
    assert.equal((await again.get('/k'))?.value, 'v');
    assert.equal(await again.currentRevision(), 1);
  });

  it('a failed write in a group-committed batch takes no revision and does not affect the others', async () => {
    const { store } = await fresh();
    const a = await store.create('/a', '1');
    const results = await Promise.allSettled([
      store.create('/b', '1'),
      store.create('/a', 'dup'),
      store.update('/a', '2', a.modRevision + 100),
      store.update('/a', '2', a.modRevision),
      store.create('/c', '1'),
    ]);
    assert.deepEqual(
      results.map((r) => (r.status === 'fulfilled' ? r.value.modRevision : (r.reason as Error).constructor.name)),
      [2, KeyExistsError.name, ConflictError.name, 3, 4],
    );
    assert.equal(await store.currentRevision(), 4);
  });

  it('replays a long history to a new watcher in order and then continues live without repeats', async () => {
    const { store } = await fresh();
    const n = 2500;
    await Promise.all(Array.from({ length: n }, (_, i) => store.create(`/w/${String(i).padStart(4, '0')}`, String(i))));
    const events: WatchEvent[] = [];
    const h = store.watch('/w/', 0, { onEvent: (e) => events.push(e), onError: (e) => assert.fail(e) });
    const live = await store.update('/w/0000', 'live', 1);
    await waitFor(`${n + 1} events`, () => events.length >= n + 1);
    await store.create('/w/sentinel', 's');
    await waitFor('the sentinel', () => events.length >= n + 2);
    await h.close();
    assert.deepEqual(events.map((e) => e.revision), Array.from({ length: n + 2 }, (_, i) => i + 1));
    assert.ok(events.slice(0, n).every((e, i) => e.type === 'ADDED' && e.value === String(i)));
    assert.deepEqual(
      { type: events[n]!.type, value: events[n]!.value, prevValue: events[n]!.prevValue, revision: events[n]!.revision },
      { type: 'MODIFIED', value: 'live', prevValue: '0', revision: live.modRevision },
    );
  });

  it('a closed watch gets no more events', async () => {
    const { store } = await fresh();
    const events: WatchEvent[] = [];
    const h = store.watch('/', 0, { onEvent: (e) => events.push(e), onError: (e) => assert.fail(e) });
    await store.create('/one', '1');
    await waitFor('one event', () => events.length === 1);
    await h.close();
    await store.create('/two', '2');
    await store.create('/three', '3');
    assert.equal(events.length, 1);
  });

  it('periodic compaction keeps the last retainRevisions readable and drops older history', async () => {
    const { store } = await fresh({ compactEveryMs: 20, retainRevisions: 10 });
    let kv = await store.create('/p/k', '0');
    for (let i = 1; i < 50; i++) kv = await store.update('/p/k', String(i), kv.modRevision);
    await waitFor('a periodic compaction', async () => (await store.compactedRevision()) === 40);
    await assert.rejects(store.list('/p/', { revision: 39 }), TooOldError);
    assert.equal((await store.list('/p/', { revision: 40 })).items[0]?.value, '39');
  });

  it('a closed store rejects every call', async () => {
    const { store } = await fresh();
    await store.close();
    await assert.rejects(store.get('/x'), StoreError);
    await assert.rejects(store.create('/x', 'v'), StoreError);
    const err = await new Promise<Error>((resolve) => store.watch('/', 0, { onEvent: () => undefined, onError: resolve }));
    assert.ok(err instanceof StoreError);
  });
});
