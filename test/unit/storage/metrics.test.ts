/**
 * The metrics decorator counts calls by operation and result, times them, tracks watches
 * and reads the revisions at scrape time — over a real SQLite store.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { SqliteStore, instrumentStore, ConflictError } from '../../../apiserver/storage/index.js';
import { removeDir, tempDir, waitFor } from '../../harness/process.js';

describe('instrumentStore', () => {
  let dir = '';
  after(async () => {
    if (dir) await removeDir(dir);
  });

  it('exposes call counts by result, latencies, open watches, events and revisions', async () => {
    dir = await tempDir('store-metrics');
    const registry = new Registry();
    const store = instrumentStore(SqliteStore.open(join(dir, 'stratus.db'), { compactEveryMs: 0 }), registry, 'sqlite');
    try {
      let events = 0;
      const w = store.watch('/m/', 0, { onEvent: () => events++, onError: (e) => assert.fail(e) });
      const kv = await store.create('/m/a', '1');
      await store.update('/m/a', '2', kv.modRevision);
      await assert.rejects(store.update('/m/a', '3', kv.modRevision), ConflictError);
      await waitFor('two watch events', () => events === 2);
      let text = await registry.metrics();
      assert.match(text, /stratus_storage_requests_total\{backend="sqlite",operation="create",result="ok"\} 1/);
      assert.match(text, /stratus_storage_requests_total\{backend="sqlite",operation="update",result="ok"\} 1/);
      assert.match(text, /stratus_storage_requests_total\{backend="sqlite",operation="update",result="ConflictError"\} 1/);
      assert.match(text, /stratus_storage_request_duration_seconds_count\{backend="sqlite",operation="update"\} 2/);
      assert.match(text, /stratus_storage_watches\{backend="sqlite"\} 1/);
      assert.match(text, /stratus_storage_watch_events_total\{backend="sqlite"\} 2/);
      assert.match(text, /stratus_storage_revision\{backend="sqlite"\} 2/);
      await w.close();
      text = await registry.metrics();
      assert.match(text, /stratus_storage_watches\{backend="sqlite"\} 0/);
    } finally {
      await store.close();
    }
  });
});
