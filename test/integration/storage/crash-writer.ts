/**
 * Child process for the crash-safety test: opens the SQLite store at argv[2] and writes
 * until killed, printing `ACK <revision> <key> <value>` for every write the store has
 * acknowledged (after the promise resolved), synchronously so a line is out before the
 * next write is issued. Runs under tsx (`.ts`) and compiled (`dist/…/crash-writer.js`).
 */
import { writeSync } from 'node:fs';
import { SqliteStore } from '../../../apiserver/storage/sqlite.js';
import type { KeyValue } from '../../../apiserver/storage/store.js';

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: crash-writer <db file>\n');
  process.exit(2);
}
const store = SqliteStore.open(file, { compactEveryMs: 0 });
writeSync(1, `READY ${process.pid}\n`);

const writers = 8;
const keysPerWriter = 20;

async function writer(w: number): Promise<void> {
  const kvs = new Map<string, KeyValue>();
  for (let i = 0; ; i++) {
    const key = `/crash/w${w}-k${String(i % keysPerWriter).padStart(3, '0')}`;
    const value = `w${w}-i${i}`;
    const cur = kvs.get(key);
    const kv = cur ? await store.update(key, value, cur.modRevision) : await store.create(key, value);
    kvs.set(key, kv);
    writeSync(1, `ACK ${kv.modRevision} ${kv.key} ${kv.value}\n`);
  }
}

await Promise.all(Array.from({ length: writers }, (_, w) => writer(w)));
