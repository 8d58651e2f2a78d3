import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { WorkQueue, ExponentialBackoff } from '../../../runtime/queue.js';
import { FakeClock } from './clock.js';

/** Takes every key that is ready now, without blocking. */
async function drainReady(q: WorkQueue): Promise<string[]> {
  const out: string[] = [];
  while (q.length > 0) {
    const k = await q.get();
    if (k === undefined) break;
    out.push(k);
  }
  return out;
}

describe('WorkQueue dedupe', () => {
  const cases: Array<{ name: string; adds: string[]; want: string[] }> = [
    { name: 'one key added once is handed out once', adds: ['a'], want: ['a'] },
    { name: 'a waiting key added again is not duplicated', adds: ['a', 'a', 'a'], want: ['a'] },
    { name: 'distinct keys keep FIFO order', adds: ['a', 'b', 'c'], want: ['a', 'b', 'c'] },
    { name: 'a repeat keeps its first position', adds: ['a', 'b', 'a', 'c', 'b'], want: ['a', 'b', 'c'] },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const q = new WorkQueue({ clock: new FakeClock() });
      for (const k of c.adds) q.add(k);
      const got = await drainReady(q);
      for (const k of got) q.done(k);
      assert.deepEqual(got, c.want);
      assert.equal(q.length, 0);
    });
  }
});

describe('WorkQueue processing', () => {
  test('a key added while processing is not handed to another worker, and runs once more after done', async () => {
    const q = new WorkQueue({ clock: new FakeClock() });
    q.add('a');
    const k = await q.get();
    assert.equal(k, 'a');
    q.add('a');
    q.add('a');
    q.add('b');
    assert.deepEqual(await drainReady(q), ['b'], 'only b is ready while a is processing');
    q.done('b');
    q.done('a');
    assert.equal(q.length, 1);
    assert.equal(await q.get(), 'a');
    q.done('a');
    assert.equal(q.length, 0, 'three adds during processing re-queue the key exactly once');
  });

  test('a key not re-added while processing is not re-queued', async () => {
    const q = new WorkQueue({ clock: new FakeClock() });
    q.add('a');
    const k = await q.get();
    q.done(k as string);
    assert.equal(q.length, 0);
  });

  test('concurrent workers never hold the same key and lose no add', async () => {
    const q = new WorkQueue();
    const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
    const holding = new Set<string>();
    const lastAdd = new Map<string, number>();
    const lastStart = new Map<string, number>();
    let tick = 0;
    let violations = 0;
    const workers = Array.from({ length: 8 }, async () => {
      for (;;) {
        const k = await q.get();
        if (k === undefined) return;
        if (holding.has(k)) violations++;
        holding.add(k);
        lastStart.set(k, ++tick);
        await new Promise((r) => setImmediate(r));
        holding.delete(k);
        q.done(k);
      }
    });
    for (let round = 0; round < 50; round++) {
      for (const k of keys) {
        if ((round * 7 + k.length * 3 + Number(k.slice(1))) % 3 === 0) continue;
        lastAdd.set(k, ++tick);
        q.add(k);
      }
      await new Promise((r) => setImmediate(r));
    }
    // Wait until nothing is waiting or processing.
    while (q.length > 0 || q.processingKeys().length > 0) await new Promise((r) => setImmediate(r));
    await q.shutDown();
    await Promise.all(workers);
    assert.equal(violations, 0, 'a key was processed by two workers at once');
    for (const [k, added] of lastAdd) {
      assert.ok((lastStart.get(k) ?? 0) > added, `${k}: its last add (tick ${added}) was never processed`);
    }
  });
});

describe('ExponentialBackoff', () => {
  const cases: Array<{ name: string; base?: number; max?: number; failures: number; want: number[] }> = [
    { name: 'starts at 5 ms and doubles', failures: 5, want: [5, 10, 20, 40, 80] },
    { name: 'is capped at 5 minutes by default', failures: 20, want: [5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 5120, 10240, 20480, 40960, 81920, 163840, 300000, 300000, 300000, 300000] },
    { name: 'honours a custom base and cap', base: 100, max: 1000, failures: 6, want: [100, 200, 400, 800, 1000, 1000] },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const b = new ExponentialBackoff(c.base, c.max);
      const got = Array.from({ length: c.failures }, () => b.when('k'));
      assert.deepEqual(got, c.want);
      assert.equal(b.retries('k'), c.failures);
    });
  }

  test('forget resets one key and leaves others alone', () => {
    const b = new ExponentialBackoff();
    b.when('a');
    b.when('a');
    b.when('b');
    b.forget('a');
    assert.equal(b.when('a'), 5);
    assert.equal(b.when('b'), 10);
  });

  test('does not overflow after very many failures', () => {
    const b = new ExponentialBackoff();
    let last = 0;
    for (let i = 0; i < 5000; i++) last = b.when('k');
    assert.equal(last, 300_000);
  });
});

describe('WorkQueue delays', () => {
  test('addRateLimited waits the growing backoff; forget resets it', async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock });
    const readyAfter = async (): Promise<number> => {
      q.addRateLimited('a');
      let waited = 0;
      while (q.length === 0) {
        clock.advance(1);
        waited++;
      }
      const k = await q.get();
      q.done(k as string);
      return waited;
    };
    assert.deepEqual([await readyAfter(), await readyAfter(), await readyAfter(), await readyAfter()], [5, 10, 20, 40]);
    assert.equal(q.numRequeues('a'), 4);
    q.forget('a');
    assert.equal(await readyAfter(), 5);
  });

  const afterCases: Array<{ name: string; delays: number[]; readyAt: number }> = [
    { name: 'addAfter fires after its delay', delays: [100], readyAt: 100 },
    { name: 'the earliest of several delays wins', delays: [500, 100, 300], readyAt: 100 },
    { name: 'a zero delay adds at once', delays: [0], readyAt: 0 },
  ];
  for (const c of afterCases) {
    test(c.name, async () => {
      const clock = new FakeClock();
      const q = new WorkQueue({ clock });
      for (const d of c.delays) q.addAfter('k', d);
      if (c.readyAt > 0) {
        clock.advance(c.readyAt - 1);
        assert.equal(q.length, 0, 'not ready before its time');
        clock.advance(1);
      }
      assert.equal(q.length, 1);
      assert.equal(await q.get(), 'k');
      q.done('k');
      clock.advance(1000);
      assert.equal(q.length, 0, 'later delays of the same key were folded into the first');
    });
  }

  test('an addAfter of a key that is already waiting adds nothing extra', async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock });
    q.add('k');
    q.addAfter('k', 10);
    clock.advance(10);
    assert.equal(q.length, 1);
  });
});

describe('WorkQueue shutdown', () => {
  test('wakes idle getters with undefined, drops waiting keys, and waits for keys in flight', async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock });
    const idle = q.get();
    q.add('a');
    assert.equal(await idle, 'a');
    const idle2 = q.get();
    q.add('b');
    q.addAfter('c', 100);
    assert.equal(await idle2, 'b');
    q.add('d');
    const idle3 = q.get();
    assert.equal(await idle3, 'd');
    q.done('d');
    let drained = false;
    const shut = q.shutDown().then(() => (drained = true));
    assert.equal(await q.get(), undefined);
    await new Promise((r) => setImmediate(r));
    assert.equal(drained, false, 'shutDown resolved while a and b were in flight');
    q.done('a');
    q.add('a');
    q.done('b');
    await shut;
    assert.equal(drained, true);
    assert.equal(q.length, 0, 'no key is re-queued after shutdown');
    clock.advance(1000);
    assert.equal(q.length, 0, 'delayed keys are dropped');
  });
});
