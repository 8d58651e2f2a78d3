/**
 * Bucket objects ↔ the embedded store: the object store is the controller of the embedded
 * backend's Buckets, because only it holds their bytes.
 *
 * For each Bucket (from an informer over all namespaces), level-triggered and idempotent:
 * - being deleted → its objects are removed from disk, then the finalizer
 *   `storage.stratus.dev/objects` (the bytes are gone before the object is);
 * - otherwise → the finalizer is ensured, the name is claimed in the store (S3 bucket names
 *   are global: the first Bucket of a name keeps it, a later one in another namespace is
 *   `Ready=False` reason `NameTaken`), and `status` (`endpoint`, `usedBytes`,
 *   `objectCount`, `Ready`) written when it changed.
 * Writes through S3 `touch` their bucket, so `usedBytes` follows within about a second.
 * Store rows whose Bucket no longer exists (deleted while stratus was down without its
 * finalizer) are dropped once the informer has synced.
 */
import type { Bucket } from '../crds/types.js';
import { Resources } from '../controllers/resources.js';
import { objectKey, isNotFound, isConflict, type KubeClient } from '../runtime/client.js';
import { Informer } from '../runtime/informer.js';
import { setCondition } from '../runtime/conditions.js';
import { log } from '../runtime/log.js';
import type { ObjectStore } from './store.js';

export const BUCKET_FINALIZER = 'storage.stratus.dev/objects';

const logger = log.child({ component: 'objectstore' });

export class BucketSync {
  readonly informer: Informer<Bucket>;
  private readonly dirty = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly client: KubeClient,
    private readonly store: ObjectStore,
    /** The S3 endpoint URL written to `status.endpoint` (path-style: `URL/NAME`). */
    private readonly endpoint: string,
  ) {
    this.informer = new Informer<Bucket>(client.resource<Bucket>(Resources.buckets));
    this.informer.on('add', (b) => this.enqueue(objectKey(b), 0));
    this.informer.on('update', (_o, b) => this.enqueue(objectKey(b), 0));
  }

  async start(): Promise<void> {
    this.informer.start();
    await this.informer.waitForSync();
    const live = new Set(this.informer.list().map((b) => b.metadata?.uid));
    for (const row of this.store.buckets()) {
      if (!live.has(row.uid)) {
        logger.info({ bucket: row.name }, 'dropping the objects of a Bucket that no longer exists');
        await this.store.dropBucket(row.name);
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.informer.stop();
    await this.running;
  }

  /** The Bucket named `name` (any namespace) that holds the name in the store. */
  byName(name: string): Bucket | undefined {
    const row = this.store.bucket(name);
    if (!row) return undefined;
    return this.informer.get(`${row.namespace}/${name}`);
  }

  /** A write changed `bucket`'s usage: refresh its status soon. */
  touch(namespace: string, name: string): void {
    this.enqueue(`${namespace}/${name}`, 1000);
  }

  /** Claims the name for a Bucket just created through S3, so objects can be written at once. */
  claim(b: Bucket): boolean {
    return this.store.claimBucket({ name: b.metadata!.name!, uid: b.metadata!.uid!, namespace: b.metadata!.namespace!, created: b.metadata!.creationTimestamp ?? new Date().toISOString() });
  }

  /** Removes a deleted Bucket's objects and its finalizer now (S3 DeleteBucket waits for it). */
  async finalize(b: Bucket): Promise<void> {
    const name = b.metadata!.name!;
    if (this.store.bucket(name)?.uid === b.metadata!.uid) await this.store.dropBucket(name);
    const finalizers = b.metadata?.finalizers ?? [];
    const i = finalizers.indexOf(BUCKET_FINALIZER);
    if (i < 0) return;
    await this.client
      .resource<Bucket>(Resources.buckets)
      .jsonPatch(b.metadata!.namespace!, name, [
        { op: 'test', path: `/metadata/finalizers/${i}`, value: BUCKET_FINALIZER },
        { op: 'remove', path: `/metadata/finalizers/${i}` },
      ])
      .catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      });
  }

  private enqueue(key: string, delayMs: number): void {
    this.dirty.add(key);
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.drain();
    }, delayMs);
  }

  private async drain(): Promise<void> {
    await this.running?.catch(() => undefined);
    const keys = [...this.dirty];
    this.dirty.clear();
    for (const key of keys) {
      if (this.stopped) return;
      try {
        await this.reconcile(key);
      } catch (err) {
        if (!isConflict(err)) logger.warn({ bucket: key, err: err instanceof Error ? err.message : String(err) }, 'cannot reconcile bucket');
        this.enqueue(key, 1000);
      }
    }
  }

  private async reconcile(key: string): Promise<void> {
    const b = this.informer.get(key);
    if (!b) return;
    const meta = b.metadata!;
    const buckets = this.client.resource<Bucket>(Resources.buckets);
    if (meta.deletionTimestamp) {
      await this.finalize(b);
      return;
    }
    if (!(meta.finalizers ?? []).includes(BUCKET_FINALIZER)) {
      await buckets.mergePatch(meta.namespace!, meta.name!, { metadata: { resourceVersion: meta.resourceVersion, finalizers: [...(meta.finalizers ?? []), BUCKET_FINALIZER] } });
      return; // the update comes back through the informer
    }
    const claimed = this.claim(b);
    const usage = claimed ? this.store.bucketUsage(meta.name!) : { bytes: 0, objects: 0 };
    const generation = meta.generation ?? 0;
    const conditions = setCondition(
      b.status?.conditions,
      claimed
        ? { type: 'Ready', status: 'True', reason: 'Serving', message: `served at ${this.endpoint}/${meta.name!}` }
        : { type: 'Ready', status: 'False', reason: 'NameTaken', message: `the bucket name ${meta.name!} is held by a Bucket in another namespace` },
      generation,
    );
    const status: NonNullable<Bucket['status']> = {
      ...(claimed ? { endpoint: `${this.endpoint}/${meta.name!}` } : {}),
      usedBytes: usage.bytes,
      objectCount: usage.objects,
      observedGeneration: generation,
      conditions,
    };
    const cur = b.status ?? {};
    if (
      cur.endpoint === status.endpoint &&
      cur.usedBytes === status.usedBytes &&
      cur.objectCount === status.objectCount &&
      cur.observedGeneration === status.observedGeneration &&
      JSON.stringify(cur.conditions) === JSON.stringify(status.conditions)
    ) {
      return;
    }
    await buckets.mergePatchStatus(meta.namespace!, meta.name!, { metadata: { resourceVersion: meta.resourceVersion }, status: { ...status, endpoint: status.endpoint ?? null } });
  }
}
