/**
 * GET and LIST served from the watch cache, with kube-apiserver's resourceVersion semantics:
 *
 * | request                                   | served from | at least                         |
 * |-------------------------------------------|-------------|----------------------------------|
 * | `resourceVersion` unset or `""`           | cache       | the store's current revision (consistent read) |
 * | `resourceVersion=0`                       | cache       | whatever the cache holds (any)   |
 * | `resourceVersion=X` (NotOlderThan)        | cache       | X                                |
 * | `resourceVersionMatch=Exact`, `continue`  | store       | exactly that revision            |
 *
 * A read waits (up to `waitMs`) for the cache to reach the revision it needs; when it does
 * not, the read goes to the store — unless X is ahead of the store itself, which is a 504
 * "Too large resource version" as in kube. A LIST from the cache is one revision's state
 * (it is collected synchronously), and a limited one continues from the store at that
 * revision. Each object's JSON in a given apiVersion is built once and kept with the cached
 * object, so repeated reads of an unchanged object cost no serialization.
 */
import { tooLargeResourceVersion } from './errors.js';
import { encodeContinue, parseRv, type ListOptions, type Registry, type Target } from './registry.js';
import { groupVersion, resourceListPrefix, resourceKey, type KubeObject } from './resources.js';
import type { CachedObject, WatchCache, WatchCaches } from './watchcache.js';

export interface CachedList {
  resourceVersion: string;
  items: CachedObject[];
  continue?: string;
  remainingItemCount?: number;
}

export class CachedReads {
  constructor(
    private readonly registry: Registry,
    private readonly caches: WatchCaches,
    private readonly waitMs = 3000,
  ) {}

  /** The cache of `t`'s resource, once it is current enough for `resourceVersion`; undefined: read the store. */
  private async fresh(t: Target, resourceVersion: string | undefined): Promise<WatchCache | undefined> {
    const cache = this.caches.for(t.resource.keyPrefix);
    if (resourceVersion === '0') {
      await cache.start();
      return cache.ready ? cache : undefined;
    }
    const store = this.registry.store;
    const asked = resourceVersion === undefined || resourceVersion === '' ? undefined : parseRv(resourceVersion);
    const min = asked ?? (await store.currentRevision());
    if (await cache.waitFor(min, this.waitMs)) return cache;
    if (asked !== undefined) {
      const current = await store.currentRevision();
      if (asked > current) throw tooLargeResourceVersion(asked, current);
    }
    return undefined;
  }

  /** One object, or undefined when the store must answer (the caller then uses `Registry.get`). */
  async get(t: Target, name: string, resourceVersion: string | undefined): Promise<CachedObject | null | undefined> {
    const cache = await this.fresh(t, resourceVersion);
    if (!cache) return undefined;
    return cache.entry(resourceKey(t.resource, t.namespace, name)) ?? null;
  }

  /** A list, or undefined when the store must answer (the caller then uses `Registry.list`). */
  async list(t: Target, opts: ListOptions): Promise<CachedList | undefined> {
    if (opts.continue || opts.resourceVersionMatch === 'Exact') return undefined;
    const filter = this.registry.filter(t, opts.labelSelector, opts.fieldSelector);
    const filtered = Boolean(opts.labelSelector || opts.fieldSelector);
    const cache = await this.fresh(t, opts.resourceVersion);
    if (!cache) return undefined;
    // From here on everything is synchronous: one revision's state.
    const revision = cache.latestRevision;
    const limit = opts.limit && opts.limit > 0 ? opts.limit : 0;
    const items: CachedObject[] = [];
    let more = false;
    let remaining = 0;
    cache.scan(resourceListPrefix(t.resource, t.namespace), undefined, (o) => {
      if (limit && items.length >= limit) {
        more = true;
        remaining++;
        return !filtered;
      }
      if (filter.matches(o.object)) items.push(o);
      return true;
    });
    const out: CachedList = { resourceVersion: String(revision), items };
    const last = items[items.length - 1];
    if (more && last) {
      out.continue = encodeContinue({ rv: revision, start: last.key });
      if (!filtered) out.remainingItemCount = remaining;
    }
    return out;
  }

  /** The object as the client addressed it (shared: do not mutate). */
  present(t: Target, o: CachedObject): KubeObject {
    return this.registry.decode(t, o.object);
  }

  /** The object's JSON in the addressed version, built once per version. */
  json(t: Target, o: CachedObject): string {
    const gv = groupVersion(t.resource.group, t.version.name);
    o.encoded ??= new Map();
    let text = o.encoded.get(gv);
    if (text === undefined) {
      text = JSON.stringify(this.present(t, o));
      o.encoded.set(gv, text);
    }
    return text;
  }
}
