/**
 * The etcd watch survives a dropped connection in the worst place: in the middle of
 * catching up a backlog, where etcd's response header revision is far ahead of the events
 * delivered so far (etcd3 on its own would resume from the header and silently skip the
 * rest of the backlog). The connection is cut with a TCP proxy the test controls, so etcd
 * itself keeps running and the cut lands at a known point.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { EtcdStore } from '../../../apiserver/storage/etcd.js';
import type { WatchEvent } from '../../../apiserver/storage/store.js';
import { startEtcd, type EtcdInstance } from '../../harness/etcd.js';
import { waitFor } from '../../harness/process.js';

/** A loopback TCP proxy whose connections the test can cut and refuse for a while. */
async function cuttableProxy(targetPort: number): Promise<{ endpoint: string; cut(): void; heal(): void; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let open = true;
  const server: Server = createServer((down) => {
    if (!open) {
      down.destroy();
      return;
    }
    const up = connect(targetPort, '127.0.0.1');
    for (const s of [down, up]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        down.destroy();
        up.destroy();
      });
    }
    down.pipe(up).pipe(down);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    cut() {
      open = false;
      for (const s of sockets) s.destroy();
    },
    heal() {
      open = true;
    },
    async close() {
      open = false;
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('etcd watch resume', () => {
  const cleanups: Array<() => Promise<void>> = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('a connection cut mid-backlog loses and repeats nothing: the watch resumes after the last delivered event', async () => {
    const etcd: EtcdInstance = await startEtcd();
    cleanups.push(() => etcd.stop());
    const writer = new EtcdStore({ endpoints: [etcd.endpoint], prefix: '/resume' });
    cleanups.push(() => writer.close());
    const proxy = await cuttableProxy(Number(new URL(etcd.endpoint).port));
    cleanups.push(() => proxy.close());
    const watcherStore = new EtcdStore({ endpoints: [proxy.endpoint], prefix: '/resume' });
    cleanups.push(() => watcherStore.close());

    const start = await writer.currentRevision();
    // A backlog longer than one etcd catch-up batch (1,000 revisions).
    const backlog = 2500;
    for (let i = 0; i < backlog; i += 100) {
      await Promise.all(Array.from({ length: 100 }, (_, j) => writer.create(`/k/${String(i + j).padStart(5, '0')}`, 'v')));
    }

    const events: WatchEvent[] = [];
    let cutAt = 0;
    let failure: Error | undefined;
    const handle = watcherStore.watch('/k/', start, {
      onEvent(e) {
        events.push(e);
        if (cutAt === 0) {
          cutAt = e.revision;
          proxy.cut();
          setTimeout(() => proxy.heal(), 300);
        }
      },
      onError(e) {
        failure = e;
      },
    });
    cleanups.push(() => handle.close());

    await waitFor('the whole backlog through the resumed watch', () => {
      if (failure) throw failure;
      return events.length >= backlog;
    }, 60_000);
    const sentinel = await writer.create('/k/sentinel', 's');
    await waitFor('the sentinel', () => events.some((e) => e.key === '/k/sentinel'), 30_000);

    assert.ok(cutAt > 0);
    assert.equal(failure, undefined);
    const revisions = events.map((e) => e.revision);
    const expected = Array.from({ length: backlog }, (_, i) => start + 1 + i).concat(sentinel.modRevision);
    assert.deepEqual(revisions, expected);
  });
});
