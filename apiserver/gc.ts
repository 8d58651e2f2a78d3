/**
 * Garbage collection of `ownerReferences` and namespace deletion, inside the API server.
 *
 * A sweep looks at every stored object and moves each pending deletion one step:
 * - a dependent whose owners are all gone is deleted (background propagation);
 * - an owner marked with the `foregroundDeletion` finalizer gets its dependents deleted, and
 *   loses the finalizer once none is left;
 * - an owner marked with the `orphan` finalizer has its uid removed from its dependents'
 *   ownerReferences, then loses the finalizer;
 * - a terminating namespace gets everything in it deleted, then loses its `kubernetes`
 *   finalizer (and so goes).
 * Sweeps run shortly after any deletion-related change and every `resyncMs`. Every step is
 * idempotent, so a sweep interrupted by a crash is finished by the next one. An owner is only
 * taken as gone after a direct read confirms it, so a sweep racing a create cannot delete a
 * fresh dependent.
 */
import { log } from '../runtime/log.js';
import { ApiError } from './errors.js';
import { isPlainObject } from './objects.js';
import type { Registry, Target } from './registry.js';
import { isAlias, storageVersion, type KubeObject, type ObjectMeta, type OwnerReference, type Resource, type ResourceCatalog } from './resources.js';
import { strategyFor } from './strategies/index.js';
import { decodeObject, type Subscription, type WatchCaches } from './watchcache.js';

interface Entry {
  resource: Resource;
  obj: KubeObject;
  meta: ObjectMeta;
}

const gcManager = { fieldManager: 'stratus-garbage-collector' };

export class GarbageCollector {
  private subs = new Map<string, Subscription>();
  private timer: NodeJS.Timeout | undefined;
  private resync: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(
    private readonly registry: Registry,
    private readonly catalog: ResourceCatalog,
    private readonly caches: WatchCaches,
    private readonly debounceMs = 20,
    private readonly resyncMs = 30_000,
  ) {}

  async start(): Promise<void> {
    await this.subscribeAll();
    this.catalog.onChange(() => {
      void this.subscribeAll().catch((err: unknown) => log.error({ component: 'gc', err: String(err) }, 'cannot watch new resources'));
    });
    const tick = (): void => {
      this.trigger();
      this.resync = setTimeout(tick, this.resyncMs);
    };
    this.resync = setTimeout(tick, this.resyncMs);
    this.trigger();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.resync) clearTimeout(this.resync);
    for (const s of this.subs.values()) s.close();
    this.subs.clear();
    await this.running?.catch(() => undefined);
  }

  /** Resolves when a sweep that started after this call has finished (tests, shutdown). */
  async settle(): Promise<void> {
    this.trigger();
    while (this.running || this.timer) {
      await (this.running ?? new Promise((r) => setTimeout(r, this.debounceMs)));
    }
  }

  private async subscribeAll(): Promise<void> {
    for (const r of this.catalog.stored()) {
      if (this.subs.has(r.keyPrefix) || this.stopped) continue;
      const cache = this.caches.for(r.keyPrefix);
      await cache.start();
      const sub = await cache.subscribe(cache.latestRevision, {
        onEvent: (ev) => {
          const m = isPlainObject(ev.object.metadata) ? (ev.object.metadata as ObjectMeta) : {};
          if (ev.type === 'DELETED' || m.deletionTimestamp || (ev.type === 'ADDED' && m.ownerReferences)) this.trigger();
        },
        onEnd: () => {
          this.subs.delete(r.keyPrefix);
          if (!this.stopped) setTimeout(() => void this.subscribeAll().catch(() => undefined), 200);
        },
      });
      this.subs.set(r.keyPrefix, sub);
    }
  }

  private trigger(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.sweep()
        .catch((err: unknown) => log.warn({ component: 'gc', err: err instanceof Error ? err.message : String(err) }, 'sweep failed; retrying'))
        .finally(() => {
          this.running = undefined;
          if (this.again) {
            this.again = false;
            this.trigger();
          }
        });
    }, this.debounceMs);
  }

  private target(e: { resource: Resource; meta: ObjectMeta }): Target {
    return { resource: e.resource, version: storageVersion(e.resource), ...(e.meta.namespace ? { namespace: e.meta.namespace } : {}) };
  }

  private async snapshot(): Promise<Entry[]> {
    const out: Entry[] = [];
    for (const r of this.catalog.stored()) {
      let startAfter: string | undefined;
      for (;;) {
        const page = await this.registry.store.list(r.keyPrefix, { limit: 1000, ...(startAfter ? { startAfter } : {}) });
        for (const kv of page.items) {
          const obj = decodeObject(kv.value, kv.modRevision);
          out.push({ resource: r, obj, meta: (isPlainObject(obj.metadata) ? obj.metadata : {}) as ObjectMeta });
          startAfter = kv.key;
        }
        if (!page.more || page.items.length === 0) break;
      }
    }
    return out;
  }

  private async sweep(): Promise<void> {
    if (this.stopped) return;
    const all = await this.snapshot();
    const byUid = new Map<string, Entry>();
    for (const e of all) if (e.meta.uid) byUid.set(e.meta.uid, e);
    const dependents = new Map<string, Entry[]>();
    for (const e of all) {
      for (const ref of refs(e.meta)) {
        const list = dependents.get(ref.uid) ?? [];
        list.push(e);
        dependents.set(ref.uid, list);
      }
    }
    let retrigger = false;

    // Dependents whose owners are all gone.
    for (const e of all) {
      const rs = refs(e.meta);
      if (rs.length === 0 || e.meta.deletionTimestamp) continue;
      if (rs.some((r) => byUid.has(r.uid))) continue;
      let anyAlive = false;
      for (const r of rs) if (await this.ownerExists(r, e.meta.namespace)) anyAlive = true;
      if (anyAlive) continue;
      await this.quietly(() => this.registry.delete(this.target(e), e.meta.name ?? '', { propagationPolicy: 'Background' }));
    }

    for (const e of all) {
      const m = e.meta;
      if (!m.deletionTimestamp || !m.uid) continue;
      const fins = m.finalizers ?? [];
      const deps = (dependents.get(m.uid) ?? []).filter((d) => byUid.has(d.meta.uid ?? ''));
      if (fins.includes('orphan')) {
        for (const d of deps) {
          await this.quietly(() =>
            this.registry.guaranteedUpdate(this.target(d), d.meta.name ?? '', gcManager, undefined, (cur) => {
              const cm = cur.metadata as ObjectMeta;
              cm.ownerReferences = refs(cm).filter((r) => r.uid !== m.uid);
              delete cm.resourceVersion;
              return cur;
            }),
          );
        }
        await this.removeFinalizer(e, 'orphan');
        continue;
      }
      if (fins.includes('foregroundDeletion')) {
        for (const d of deps) {
          if (d.meta.deletionTimestamp) continue;
          await this.quietly(() => this.registry.delete(this.target(d), d.meta.name ?? '', { propagationPolicy: 'Foreground' }));
        }
        const blocking = deps.filter((d) => refs(d.meta).some((r) => r.uid === m.uid && r.blockOwnerDeletion !== false));
        if (blocking.length === 0) await this.removeFinalizer(e, 'foregroundDeletion');
        else retrigger = true;
        continue;
      }
      if (strategyFor(e.resource).holdsNamespacedContent) {
        const ns = m.name ?? '';
        const inside = all.filter((x) => x.resource.namespaced && x.meta.namespace === ns && !isAlias(x.resource));
        for (const x of inside) {
          if (x.meta.deletionTimestamp) continue;
          await this.quietly(() => this.registry.delete(this.target(x), x.meta.name ?? '', { propagationPolicy: 'Background' }));
        }
        if (inside.length === 0) {
          await this.quietly(() =>
            this.registry.guaranteedUpdate(this.target(e), ns, gcManager, 'finalize', (cur) => {
              const spec = isPlainObject(cur.spec) ? cur.spec : {};
              spec.finalizers = (Array.isArray(spec.finalizers) ? spec.finalizers : []).filter((f) => f !== 'kubernetes');
              cur.spec = spec;
              delete (cur.metadata as ObjectMeta).resourceVersion;
              return cur;
            }),
          );
        } else retrigger = true;
      }
    }
    if (retrigger) this.again = true;
  }

  private async removeFinalizer(e: Entry, finalizer: string): Promise<void> {
    await this.quietly(() =>
      this.registry.guaranteedUpdate(this.target(e), e.meta.name ?? '', gcManager, undefined, (cur) => {
        const cm = cur.metadata as ObjectMeta;
        cm.finalizers = (cm.finalizers ?? []).filter((f) => f !== finalizer);
        delete cm.resourceVersion;
        return cur;
      }),
    );
  }

  private async ownerExists(ref: OwnerReference, namespace: string | undefined): Promise<boolean> {
    const group = ref.apiVersion.includes('/') ? (ref.apiVersion.split('/')[0] ?? '') : '';
    const r = this.catalog.byKind(group, ref.kind);
    // An owner of a kind this server does not serve cannot be checked: never collect on a guess.
    if (!r) return true;
    try {
      const obj = await this.registry.get({ resource: r, version: storageVersion(r), ...(r.namespaced ? { namespace } : {}) }, ref.name);
      return (obj.metadata as ObjectMeta | undefined)?.uid === ref.uid;
    } catch (err) {
      if (err instanceof ApiError && err.code === 404) return false;
      throw err;
    }
  }

  /** A step that lost a race (404, 409) is retried by the next sweep. */
  private async quietly(step: () => Promise<unknown>): Promise<void> {
    try {
      await step();
    } catch (err) {
      if (err instanceof ApiError && (err.code === 404 || err.code === 409)) {
        if (err.code === 409) this.again = true;
        return;
      }
      if (err instanceof ApiError) {
        log.warn({ component: 'gc', err: err.message }, 'garbage collection step rejected');
        return;
      }
      throw err;
    }
  }
}

function refs(m: ObjectMeta): OwnerReference[] {
  return Array.isArray(m.ownerReferences) ? m.ownerReferences.filter((r) => isPlainObject(r) && typeof r.uid === 'string') : [];
}
