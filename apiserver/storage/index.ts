/**
 * The storage layer's entry point: picks the backend from the server's flags and
 * re-exports the `Store` contract.
 */
import { join } from 'node:path';
import { EtcdStore, type EtcdStoreOptions } from './etcd.js';
import { SqliteStore, type SqliteStoreOptions } from './sqlite.js';
import type { Store } from './store.js';

export * from './store.js';
export { SqliteStore, type SqliteStoreOptions } from './sqlite.js';
export { EtcdStore, type EtcdStoreOptions } from './etcd.js';
export { instrumentStore } from './metrics.js';

export interface OpenStoreOptions {
  /** Where the embedded SQLite file `stratus.db` lives. */
  dataDir: string;
  /** etcd client URLs; when given (non-empty), etcd is used instead of SQLite. */
  etcdServers?: string[];
  /** SQLite tuning (periodic compaction); ignored with etcd. */
  sqlite?: SqliteStoreOptions;
  /** etcd tuning (key prefix, timeouts); ignored with SQLite. */
  etcd?: Omit<EtcdStoreOptions, 'endpoints'>;
}

/** SQLite in `<dataDir>/stratus.db`, unless etcd servers are given. */
export function openStore(options: OpenStoreOptions): Store {
  if (options.etcdServers && options.etcdServers.length > 0) {
    return new EtcdStore({ ...options.etcd, endpoints: options.etcdServers });
  }
  return SqliteStore.open(join(options.dataDir, 'stratus.db'), options.sqlite);
}
