/**
 * Prometheus metrics for any `Store`, as a decorator: wrap the store the server opened and
 * register into the server's registry.
 *
 * - `stratus_storage_request_duration_seconds{backend, operation}` — latency of each call
 *   (kube-apiserver's `etcd_request_duration_seconds`, for either backend);
 * - `stratus_storage_requests_total{backend, operation, result}` — `result` is `ok` or the
 *   store error's class (`ConflictError`, `TooOldError`, ...), so conflicts and 410s show;
 * - `stratus_storage_watch_events_total{backend}` and `stratus_storage_watches{backend}`;
 * - `stratus_storage_revision{backend}` and `stratus_storage_compacted_revision{backend}`,
 *   read from the store at scrape time.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { KeyValue, ListOptions, ListResult, Store, WatchCallbacks, WatchHandle } from './store.js';

type Operation = 'get' | 'list' | 'count' | 'create' | 'update' | 'delete' | 'currentRevision' | 'compactedRevision' | 'compact';

export function instrumentStore(store: Store, registry: Registry, backend: string): Store {
  return new InstrumentedStore(store, registry, backend);
}

class InstrumentedStore implements Store {
  private readonly duration: Histogram<'backend' | 'operation'>;
  private readonly requests: Counter<'backend' | 'operation' | 'result'>;
  private readonly events: Counter<'backend'>;
  private readonly watches: Gauge<'backend'>;

  constructor(
    private readonly inner: Store,
    registry: Registry,
    private readonly backend: string,
  ) {
    const registers = [registry];
    this.duration = new Histogram({
      name: 'stratus_storage_request_duration_seconds',
      help: 'Latency of storage calls in seconds, by backend and operation.',
      labelNames: ['backend', 'operation'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.requests = new Counter({
      name: 'stratus_storage_requests_total',
      help: 'Storage calls by backend, operation and result (ok or the error class).',
      labelNames: ['backend', 'operation', 'result'],
      registers,
    });
    this.events = new Counter({
      name: 'stratus_storage_watch_events_total',
      help: 'Watch events delivered by the store.',
      labelNames: ['backend'],
      registers,
    });
    this.watches = new Gauge({
      name: 'stratus_storage_watches',
      help: 'Open store watches.',
      labelNames: ['backend'],
      registers,
    });
    const store = this.inner;
    new Gauge({
      name: 'stratus_storage_revision',
      help: 'The store revision at scrape time.',
      labelNames: ['backend'],
      registers,
      async collect() {
        this.set({ backend }, await store.currentRevision());
      },
    });
    new Gauge({
      name: 'stratus_storage_compacted_revision',
      help: 'The oldest readable revision at scrape time.',
      labelNames: ['backend'],
      registers,
      async collect() {
        this.set({ backend }, await store.compactedRevision());
      },
    });
  }

  private async timed<T>(operation: Operation, call: () => Promise<T>): Promise<T> {
    const end = this.duration.startTimer({ backend: this.backend, operation });
    try {
      const result = await call();
      this.requests.inc({ backend: this.backend, operation, result: 'ok' });
      return result;
    } catch (err) {
      this.requests.inc({ backend: this.backend, operation, result: err instanceof Error ? err.name : 'Error' });
      throw err;
    } finally {
      end();
    }
  }

  get(key: string): Promise<KeyValue | undefined> {
    return this.timed('get', () => this.inner.get(key));
  }
  list(prefix: string, options?: ListOptions): Promise<ListResult> {
    return this.timed('list', () => this.inner.list(prefix, options));
  }
  count(prefix: string): Promise<number> {
    return this.timed('count', () => this.inner.count(prefix));
  }
  create(key: string, value: string): Promise<KeyValue> {
    return this.timed('create', () => this.inner.create(key, value));
  }
  update(key: string, value: string, expectedModRevision: number): Promise<KeyValue> {
    return this.timed('update', () => this.inner.update(key, value, expectedModRevision));
  }
  delete(key: string, expectedModRevision?: number): Promise<KeyValue> {
    return this.timed('delete', () => this.inner.delete(key, expectedModRevision));
  }
  currentRevision(): Promise<number> {
    return this.timed('currentRevision', () => this.inner.currentRevision());
  }
  compactedRevision(): Promise<number> {
    return this.timed('compactedRevision', () => this.inner.compactedRevision());
  }
  compact(revision: number): Promise<void> {
    return this.timed('compact', () => this.inner.compact(revision));
  }
  close(): Promise<void> {
    return this.inner.close();
  }

  watch(prefix: string, afterRevision: number, callbacks: WatchCallbacks): WatchHandle {
    const labels = { backend: this.backend };
    let open = true;
    const done = (): void => {
      if (open) {
        open = false;
        this.watches.dec(labels);
      }
    };
    this.watches.inc(labels);
    const handle = this.inner.watch(prefix, afterRevision, {
      onEvent: (event) => {
        this.events.inc(labels);
        callbacks.onEvent(event);
      },
      onError: (error) => {
        done();
        callbacks.onError(error);
      },
    });
    return {
      close: async () => {
        done();
        await handle.close();
      },
    };
  }
}
