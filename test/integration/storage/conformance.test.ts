/**
 * One table of behaviours the `Store` contract promises, run against every backend: the
 * embedded SQLite file and a real etcd started by the test. Each case works under its own
 * key prefix, so the cases share one store per backend.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  ConflictError,
  KeyExistsError,
  NotFoundError,
  TooOldError,
  SqliteStore,
  EtcdStore,
  type KeyValue,
  type Store,
  type WatchEvent,
} from '../../../apiserver/storage/index.js';
import { startEtcd, type EtcdInstance } from '../../harness/etcd.js';
import { removeDir, tempDir, waitFor } from '../../harness/process.js';

interface Context {
  store: Store;
  /** A key prefix no other case uses. */
  prefix: string;
  /** Restarts the backend's server under a running store (etcd only). */
  restartServer?: () => Promise<void>;
}

interface Backend {
  name: string;
  start(): Promise<{ store: Store; restartServer?: () => Promise<void>; cleanup(): Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: 'sqlite',
    async start() {
      const dir = await tempDir('store-sqlite');
      const store = SqliteStore.open(join(dir, 'stratus.db'), { compactEveryMs: 0 });
      return {
        store,
        async cleanup() {
          await store.close();
          await removeDir(dir);
        },
      };
    },
  },
  {
    name: 'etcd',
    async start() {
      let etcd: EtcdInstance | undefined;
      let store: EtcdStore | undefined;
      try {
        etcd = await startEtcd();
        store = new EtcdStore({ endpoints: [etcd.endpoint], prefix: '/conformance' });
        const running = etcd;
        return {
          store,
          restartServer: () => running.restart(),
          async cleanup() {
            await store?.close();
            await running.stop();
          },
        };
      } catch (err) {
        await store?.close();
        await etcd?.stop();
        throw err;
      }
    },
  },
];

/** Collects a watch's events and its error; `until` waits for a number of events. */
function collect(store: Store, prefix: string, afterRevision: number) {
  const events: WatchEvent[] = [];
  let error: Error | undefined;
  const handle = store.watch(prefix, afterRevision, {
    onEvent: (e) => events.push(e),
    onError: (e) => {
      error = e;
    },
  });
  return {
    events,
    get error() {
      return error;
    },
    handle,
    async until(n: number, what = `${n} watch events`) {
      await waitFor(what, () => {
        if (error) throw error;
        return events.length >= n;
      }, 30_000);
    },
    async untilError() {
      return waitFor('a watch error', () => error, 10_000);
    },
  };
}

/** The event a write is expected to produce. */
function expectEvent(type: WatchEvent['type'], kv: KeyValue, prevValue?: string): Pick<WatchEvent, 'type' | 'key' | 'value' | 'revision' | 'prevValue'> {
  const e: Pick<WatchEvent, 'type' | 'key' | 'value' | 'revision' | 'prevValue'> = { type, key: kv.key, value: kv.value, revision: kv.modRevision };
  if (prevValue !== undefined) e.prevValue = prevValue;
  return e;
}

function strip(e: WatchEvent): Pick<WatchEvent, 'type' | 'key' | 'value' | 'revision' | 'prevValue'> {
  const out: Pick<WatchEvent, 'type' | 'key' | 'value' | 'revision' | 'prevValue'> = { type: e.type, key: e.key, value: e.value, revision: e.revision };
  if (e.prevValue !== undefined) out.prevValue = e.prevValue;
  return out;
}

async function rejectsWith<E extends Error>(p: Promise<unknown>, cls: new (...args: never[]) => E): Promise<E> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof cls, `expected ${cls.name}, got ${String(err)}`);
    return err;
  }
  assert.fail(`expected ${cls.name}, but the call succeeded`);
}

const cases: Array<{ name: string; run(ctx: Context): Promise<void> }> = [
  {
    name: 'create fails with KeyExistsError when the key exists and leaves it unchanged',
    async run({ store, prefix }) {
      const first = await store.create(`${prefix}a`, 'one');
      assert.equal(first.createRevision, first.modRevision);
      await rejectsWith(store.create(`${prefix}a`, 'two'), KeyExistsError);
      assert.deepEqual(await store.get(`${prefix}a`), first);
      assert.equal(await store.get(`${prefix}missing`), undefined);
    },
  },
  {
    name: 'update and delete are compare-and-swap on modRevision',
    async run({ store, prefix }) {
      const k = `${prefix}k`;
      const v1 = await store.create(k, 'v1');
      const v2 = await store.update(k, 'v2', v1.modRevision);
      assert.ok(v2.modRevision > v1.modRevision);
      assert.equal(v2.createRevision, v1.createRevision);
      const stale = await rejectsWith(store.update(k, 'v3', v1.modRevision), ConflictError);
      assert.equal(stale.actualModRevision, v2.modRevision);
      await rejectsWith(store.update(`${prefix}none`, 'x', 1), NotFoundError);
      const staleDel = await rejectsWith(store.delete(k, v1.modRevision), ConflictError);
      assert.equal(staleDel.actualModRevision, v2.modRevision);
      assert.deepEqual(await store.get(k), v2);
      const gone = await store.delete(k, v2.modRevision);
      assert.equal(gone.value, 'v2');
      assert.equal(gone.createRevision, v1.createRevision);
      assert.ok(gone.modRevision > v2.modRevision);
      assert.equal(await store.currentRevision(), gone.modRevision);
      assert.equal(await store.get(k), undefined);
      await rejectsWith(store.delete(k), NotFoundError);
      await rejectsWith(store.update(k, 'v4', gone.modRevision), NotFoundError);
      const again = await store.create(k, 'v5');
      assert.equal((await store.delete(k)).modRevision, again.modRevision + 1);
    },
  },
  {
    name: 'concurrent writers on one key: exactly one wins each round, the rest get ConflictError',
    async run({ store, prefix }) {
      const k = `${prefix}contended`;
      let cur = await store.create(k, '0');
      for (let round = 1; round <= 20; round++) {
        const writers = 8;
        const results = await Promise.allSettled(
          Array.from({ length: writers }, (_, w) => store.update(k, `${round}:${w}`, cur.modRevision)),
        );
        const won = results.filter((r): r is PromiseFulfilledResult<KeyValue> => r.status === 'fulfilled');
        assert.equal(won.length, 1, `round ${round}: ${won.length} winners`);
        for (const r of results) {
          if (r.status === 'rejected') {
            assert.ok(r.reason instanceof ConflictError, `round ${round}: ${String(r.reason)}`);
            assert.equal(r.reason.actualModRevision, won[0]!.value.modRevision);
          }
        }
        cur = won[0]!.value;
        assert.deepEqual(await store.get(k), cur);
      }
    },
  },
  {
    name: 'a watch from revision R sees every later change exactly once, in order, with prevValue',
    async run({ store, prefix, restartServer }) {
      const a = await store.create(`${prefix}a`, 'a1');
      const expected: ReturnType<typeof expectEvent>[] = [];
      let b = await store.create(`${prefix}b`, 'b1');
      expected.push(expectEvent('ADDED', b));
      const a2 = await store.update(`${prefix}a`, 'a2', a.modRevision);
      expected.push(expectEvent('MODIFIED', a2, 'a1'));
      await store.create(`${prefix.slice(0, -1)}-outside`, 'not watched');
      const w = collect(store, prefix, a.modRevision);
      const writes = async (n: number, tag: string): Promise<void> => {
        for (let i = 0; i < n; i++) {
          const prev = b.value;
          b = await store.update(b.key, `${tag}${i}`, b.modRevision);
          expected.push(expectEvent('MODIFIED', b, prev));
        }
      };
      await writes(20, 'before-');
      await w.until(expected.length);
      if (restartServer) {
        await writes(5, 'racing-restart-');
        await restartServer();
        await writes(20, 'after-restart-');
      }
      const del = await store.delete(`${prefix}a`);
      expected.push(expectEvent('DELETED', del, 'a2'));
      const c = await store.create(`${prefix}c`, 'c1');
      expected.push(expectEvent('ADDED', c));
      await w.until(expected.length);
      // A last write after a pause: any duplicate or stray event would show up before it.
      const sentinel = await store.create(`${prefix}sentinel`, 's');
      expected.push(expectEvent('ADDED', sentinel));
      await w.until(expected.length);
      await w.handle.close();
      assert.equal(w.error, undefined);
      assert.deepEqual(w.events.map(strip), expected);
      const createdB = w.events.find((e) => e.key === `${prefix}b`);
      assert.equal(createdB?.createRevision, expected[0]!.revision);
    },
  },
  {
    name: 'list + continue pages through 10,000 keys at one revision with no duplicates or gaps while writes continue',
    async run({ store, prefix }) {
      const total = 10_000;
      const keyOf = (i: number): string => `${prefix}${String(i).padStart(5, '0')}`;
      for (let i = 0; i < total; i += 250) {
        await Promise.all(Array.from({ length: Math.min(250, total - i) }, (_, j) => store.create(keyOf(i + j), `v${i + j}`)));
      }
      let stop = false;
      let written = 0;
      const writer = (async () => {
        for (let i = 0; !stop; i++) {
          const k = keyOf((i * 7919) % total);
          const cur = await store.get(k);
          if (i % 3 === 0 && cur) await store.delete(k, cur.modRevision);
          else if (cur) await store.update(k, `changed${i}`, cur.modRevision);
          await store.create(`${prefix}new-${i}`, 'x');
          written++;
        }
      })();
      const seen: KeyValue[] = [];
      let revision = 0;
      let startAfter: string | undefined;
      let pages = 0;
      try {
        for (;;) {
          const page = await store.list(prefix, { limit: 500, startAfter, revision });
          if (revision === 0) revision = page.revision;
          assert.equal(page.revision, revision);
          seen.push(...page.items);
          pages++;
          // let the writer in between pages
          await new Promise((r) => setTimeout(r, 5));
          if (!page.more) break;
          startAfter = page.items[page.items.length - 1]!.key;
        }
      } finally {
        stop = true;
        await writer;
      }
      assert.ok(written > 0, 'the writer made no change while paging');
      assert.ok(pages >= 20);
      assert.equal(seen.length, total);
      seen.forEach((kv, i) => {
        assert.equal(kv.key, keyOf(i));
        assert.equal(kv.value, `v${i}`);
        assert.ok(kv.modRevision <= revision);
      });
      assert.ok((await store.currentRevision()) > revision);
    },
  },
  {
    name: 'list at an older revision answers as of that revision',
    async run({ store, prefix }) {
      const k1 = await store.create(`${prefix}1`, 'one');
      const k1b = await store.update(k1.key, 'uno', k1.modRevision);
      const k2 = await store.create(`${prefix}2`, 'two');
      const del = await store.delete(k1.key);
      const at = async (revision: number) => (await store.list(prefix, { revision })).items;
      assert.deepEqual(await at(k1.modRevision), [k1]);
      assert.deepEqual(await at(k1b.modRevision), [k1b]);
      assert.deepEqual(await at(k2.modRevision), [k1b, k2]);
      assert.deepEqual(await at(del.modRevision), [k2]);
      assert.deepEqual((await store.list(prefix)).items, [k2]);
      const paged = await store.list(prefix, { revision: k2.modRevision, limit: 1 });
      assert.deepEqual(paged.items, [k1b]);
      assert.equal(paged.more, true);
    },
  },
  {
    name: 'count counts the keys under a prefix',
    async run({ store, prefix }) {
      assert.equal(await store.count(prefix), 0);
      const kvs = await Promise.all(Array.from({ length: 25 }, (_, i) => store.create(`${prefix}${i}`, 'x')));
      await store.create(`${prefix.slice(0, -1)}-other`, 'x');
      assert.equal(await store.count(prefix), 25);
      await store.delete(kvs[3]!.key);
      assert.equal(await store.count(prefix), 24);
    },
  },
  {
    name: 'after compaction, list and watch from an older revision fail with TooOldError',
    async run({ store, prefix }) {
      const first = await store.create(`${prefix}a`, '1');
      let cur = first;
      for (let i = 2; i <= 10; i++) cur = await store.update(cur.key, String(i), cur.modRevision);
      const kept = await store.create(`${prefix}b`, 'b');
      const deleted = await store.create(`${prefix}gone`, 'g');
      await store.delete(deleted.key);
      const r = await store.currentRevision();
      await store.compact(r);
      assert.ok((await store.compactedRevision()) >= r);
      const tooOld = await rejectsWith(store.list(prefix, { revision: first.modRevision }), TooOldError);
      assert.ok(tooOld.compactedRevision >= r);
      const w = collect(store, prefix, first.modRevision);
      assert.ok((await w.untilError()) instanceof TooOldError);
      // The compacted revision itself stays readable, and a watch from it works.
      assert.deepEqual((await store.list(prefix, { revision: r })).items, [cur, kept]);
      const live = collect(store, prefix, r);
      const next = await store.update(cur.key, 'after', cur.modRevision);
      await live.until(1);
      assert.deepEqual(live.events.map(strip), [expectEvent('MODIFIED', next, '10')]);
      await live.handle.close();
      // Compacting to an older revision again is harmless.
      await store.compact(first.modRevision);
    },
  },
];

for (const backend of backends) {
  describe(`store conformance: ${backend.name}`, () => {
    let env: Awaited<ReturnType<Backend['start']>> | undefined;
    before(async () => {
      env = await backend.start();
    });
    after(async () => {
      await env?.cleanup();
    });
    cases.forEach((c, i) => {
      it(c.name, async () => {
        assert.ok(env, 'backend did not start');
        const ctx: Context = { store: env.store, prefix: `/case${i}/` };
        if (env.restartServer) ctx.restartServer = env.restartServer;
        await c.run(ctx);
      });
    });
  });
}
