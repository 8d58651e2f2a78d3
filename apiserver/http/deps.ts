/** What the HTTP layer is given by the server that assembles it. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CachedReads } from '../cachedreads.js';
import type { ApiMetrics } from '../metrics.js';
import type { Registry } from '../registry.js';
import type { ResourceCatalog } from '../resources.js';
import type { WatchRegistry } from '../watch.js';
import type { WatchCaches } from '../watchcache.js';

export interface HttpDeps {
  registry: Registry;
  /** GET and LIST from the watch cache (falling back to the registry's store reads). */
  reads: CachedReads;
  catalog: ResourceCatalog;
  caches: WatchCaches;
  metrics: ApiMetrics;
  /** host:port clients reach this server at (discovery's serverAddressByClientCIDRs). */
  serverAddress(): string;
  ready(): boolean;
  openWatches: WatchRegistry;
  heartbeatMs: number;
  /**
   * Paths served by other components without credentials (e.g. `/login`), matched exactly
   * before anything else; each handler answers for itself (and rate-limits itself).
   */
  openRoutes?: ReadonlyMap<string, (req: IncomingMessage, res: ServerResponse) => void>;
}
