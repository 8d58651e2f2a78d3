/**
 * An in-memory copy of every object of one resource, kept current from the watch cache: the
 * authenticator (AccessTokens, Users, Groups) and the RBAC authorizer read it on every request
 * instead of the store. After `start()` it holds everything up to the revision it listed at,
 * then every change in order; a broken watch (compaction, store outage) relists, so a missed
 * event can delay a change but never loses it. `onChange` listeners run after each change
 * (decision caches clear themselves there).
 */
import { log } from '../../runtime/log.js';
import type { Registry, Target } from '../registry.js';
import { storageVersion, type KubeObject, type Resource } from '../resources.js';
import type { Subscription, WatchCaches } from '../watchcache.js';

/** What readers of an index need (tests hand in a plain map). */
export interface ObjectIndex<T extends object = KubeObject> {
  get(namespace: string | undefined, name: string): T | undefined;
  /** Every object, or those of one namespace. */
  list(namespace?: string): T[];
  onChange(listener: () => void): void;
}

export class LiveIndex<T extends object = KubeObject> implements ObjectIndex<T> {
  private objects = new Map<string, T>();
  private sub: Subscription | undefined;
  private closed = false;
  private listeners: (() => void)[] = [];
  private relisting: Promise<void> | undefined;

  constructor(
    private readonly registry: Registry,
    private readonly caches: WatchCaches,
    readonly resource: Resource,
  ) {}

  private get target(): Target {
    return { resource: this.resource, version: storageVersion(this.resource) };
  }

  /** Resolves once the first list is in memory. */
  async start(): Promise<void> {
    await this.caches.for(this.resource.keyPrefix).start();
    await this.load();
  }

  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.objects.get(keyOf(namespace, name));
  }

  /** Every object, or those of one namespace. */
  list(namespace?: string): T[] {
    const all = [...this.objects.values()];
    return namespace === undefined ? all : all.filter((o) => (o as KubeObject).metadata?.namespace === namespace);
  }

  close(): void {
    this.closed = true;
    this.sub?.close();
  }

  private changed(): void {
    for (const l of this.listeners) l();
  }

  /** Relists in the background, retrying until it succeeds or the index is closed. */
  private relist(): Promise<void> {
    return this.load().catch((err: unknown) => {
      if (this.closed) return;
      log.warn({ component: 'apiserver', resource: this.resource.plural, err: String(err) }, 'index relist failed; retrying');
      setTimeout(() => void this.relist(), 1000).unref();
    });
  }

  private load(): Promise<void> {
    this.relisting ??= (async () => {
      try {
        this.sub?.close();
        const listed = await this.registry.list(this.target);
        const next = new Map<string, T>();
        for (const o of listed.items) next.set(keyOf(o.metadata?.namespace, o.metadata?.name ?? ''), o as unknown as T);
        this.objects = next;
        this.changed();
        if (this.closed) return;
        this.sub = await this.caches.for(this.resource.keyPrefix).subscribe(Number(listed.resourceVersion), {
          onEvent: (ev) => {
            const key = keyOf(ev.object.metadata?.namespace, ev.object.metadata?.name ?? '');
            if (ev.type === 'DELETED') this.objects.delete(key);
            else this.objects.set(key, ev.object as unknown as T);
            this.changed();
          },
          onEnd: (err) => {
            if (this.closed) return;
            log.warn({ component: 'apiserver', resource: this.resource.plural, err: String(err) }, 'index watch ended; relisting');
            setTimeout(() => void this.relist(), 200).unref();
          },
        });
      } finally {
        this.relisting = undefined;
      }
    })();
    return this.relisting;
  }
}

function keyOf(namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${name}`;
}
