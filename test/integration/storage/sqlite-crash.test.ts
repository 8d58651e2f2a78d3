/**
 * Crash safety of the SQLite store: a child process writing to it is SIGKILLed
 * mid-stream; on reopen every write it acknowledged is there and the revision sequence
 * has no holes. While the child holds the file, a second open fails naming the holder.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SqliteStore } from '../../../apiserver/storage/sqlite.js';
import { StoreError, type WatchEvent } from '../../../apiserver/storage/store.js';
import { pidAlive, removeDir, tempDir, waitFor } from '../../harness/process.js';
import { repoRoot } from '../../harness/paths.js';

const here = fileURLToPath(import.meta.url);
/** The writer next to this file: `.ts` under tsx, `.js` when running from dist/. */
const writerScript = join(dirname(here), `crash-writer${extname(here)}`);

interface Ack {
  revision: number;
  key: string;
  value: string;
}

describe('SQLite store crash safety', () => {
  const cleanups: Array<() => Promise<void>> = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('keeps every acknowledged write and a hole-free revision sequence after SIGKILL, and refuses a second opener', async () => {
    const dir = await tempDir('sqlite-crash');
    cleanups.push(() => removeDir(dir));
    const file = join(dir, 'stratus.db');
    const args = extname(here) === '.ts' ? ['--import', 'tsx', writerScript, file] : [writerScript, file];
    const child = spawn(process.execPath, args, { cwd: repoRoot(), stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const acks = (): Ack[] =>
      out
        .split('\n')
        .slice(0, -1) // the last piece may be a partial line
        .filter((l) => l.startsWith('ACK '))
        .map((l) => {
          const [, revision, key, value] = l.split(' ');
          return { revision: Number(revision), key: key!, value: value! };
        });

    await waitFor('the writer to start', () => {
      if (child.exitCode !== null) throw new Error(`writer exited: ${err}`);
      return out.includes('READY');
    }, 30_000);
    await waitFor('2,000 acknowledged writes', () => {
      if (child.exitCode !== null) throw new Error(`writer exited: ${err}`);
      return acks().length >= 2000;
    }, 60_000);

    // The child holds the file: a second opener must fail, naming the file and the holder.
    assert.throws(() => SqliteStore.open(file), (e: unknown) => {
      assert.ok(e instanceof StoreError);
      assert.match(e.message, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*PID ${child.pid}`));
      return true;
    });

    child.kill('SIGKILL');
    await exited;
    assert.equal(child.signalCode, 'SIGKILL');
    assert.ok(!pidAlive(child.pid!));
    // The dead holder's PID file is left behind; it must not block the restart.
    assert.ok(existsSync(`${file}.pid`));

    const acked = acks();
    const store = SqliteStore.open(file, { compactEveryMs: 0 });
    cleanups.push(() => store.close());
    const current = await store.currentRevision();
    const maxAcked = Math.max(...acked.map((a) => a.revision));
    assert.ok(current >= maxAcked, `current revision ${current} < last acknowledged ${maxAcked}`);

    for (const a of acked) {
      const { items } = await store.list(a.key, { revision: a.revision });
      assert.deepEqual(
        items.map((kv) => [kv.key, kv.value, kv.modRevision]),
        [[a.key, a.value, a.revision]],
        `acknowledged write lost: ${a.key}=${a.value}@${a.revision}`,
      );
    }

    // Replaying the whole history must give revisions 1..current with no hole.
    const events: WatchEvent[] = [];
    const w = store.watch('/', 0, { onEvent: (e) => events.push(e), onError: (e) => assert.fail(e) });
    await waitFor('the history replay', () => events.length >= current, 30_000);
    await w.close();
    assert.deepEqual(
      events.map((e) => e.revision),
      Array.from({ length: current }, (_, i) => i + 1),
    );
    // And the store keeps working from where it stopped.
    const next = await store.create('/crash/after-restart', 'x');
    assert.equal(next.modRevision, current + 1);
  });
});
