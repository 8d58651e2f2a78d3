/**
 * Finalizers: the external resource is gone before the object is (DESIGN.md).
 *
 * `ensureFinalizer` / `removeFinalizer` write `metadata.finalizers` with a merge patch that
 * carries the read `resourceVersion`, so a concurrent writer makes the patch fail with 409
 * instead of one of the two lists being lost; on 409 they read fresh and try again.
 *
 * `reconcileWithFinalizer` is the whole flow (kube-rs `finalizer`):
 * - live object without the finalizer → add it, *then* call `apply` (a create never starts
 *   before the object is protected);
 * - live object with it → `apply`;
 * - deleting object with it → `cleanup`; only when it reports `{done: true}` (the external
 *   resource is gone) is the finalizer removed; a throw or `{done: false}` keeps it;
 * - deleting object without it → nothing to do.
 */
import { isNotFound, type KubeObject, type ResourceClient } from './client.js';
import { retryOnConflict } from './basics.js';
import type { ReconcileResult } from './controller.js';

const MAX_ATTEMPTS = 8;

export function hasFinalizer(obj: KubeObject, finalizer: string): boolean {
  return obj.metadata?.finalizers?.includes(finalizer) ?? false;
}

export function isDeleting(obj: KubeObject): boolean {
  return Boolean(obj.metadata?.deletionTimestamp);
}

/** Adds `finalizer` if missing; returns the object as written (or as read when present). */
export async function ensureFinalizer<T extends KubeObject>(resource: ResourceClient<T>, obj: T, finalizer: string): Promise<T> {
  const res = await editFinalizers(resource, obj, (list) => (list.includes(finalizer) ? undefined : [...list, finalizer]));
  if (!res) throw new Error(`cannot add finalizer ${finalizer}: ${obj.metadata?.name} no longer exists`);
  return res;
}

/** Removes `finalizer` if present; returns the object as written, or `undefined` once it is gone. */
export async function removeFinalizer<T extends KubeObject>(resource: ResourceClient<T>, obj: T, finalizer: string): Promise<T | undefined> {
  return editFinalizers(resource, obj, (list) => (list.includes(finalizer) ? list.filter((f) => f !== finalizer) : undefined));
}

async function editFinalizers<T extends KubeObject>(
  resource: ResourceClient<T>,
  obj: T,
  edit: (list: string[]) => string[] | undefined,
): Promise<T | undefined> {
  const ns = obj.metadata?.namespace;
  const name = obj.metadata?.name ?? '';
  return retryOnConflict(
    async (attempt) => {
      // The first attempt edits what the caller read; after a 409, a fresh read.
      const current = attempt === 1 ? obj : await resource.get(ns, name);
      if (!current) return undefined;
      const next = edit(current.metadata?.finalizers ?? []);
      if (!next) return current;
      try {
        return await resource.mergePatch(ns, name, {
          metadata: { resourceVersion: current.metadata?.resourceVersion, finalizers: next },
        });
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },
    { maxAttempts: MAX_ATTEMPTS },
  );
}

export type CleanupResult = { done: true } | { done: false; requeueAfterMs?: number };

export interface FinalizerHandlers<T> {
  /** The object is live and protected by the finalizer: move it towards its spec. */
  apply(obj: T): Promise<ReconcileResult | void>;
  /**
   * The object is being deleted: delete the external resource (idempotently). Return
   * `{done: true}` once it is gone, `{done: false, requeueAfterMs}` while it is going.
   */
  cleanup(obj: T): Promise<CleanupResult>;
}

export async function reconcileWithFinalizer<T extends KubeObject>(
  resource: ResourceClient<T>,
  obj: T,
  finalizer: string,
  handlers: FinalizerHandlers<T>,
): Promise<ReconcileResult | void> {
  if (isDeleting(obj)) {
    if (!hasFinalizer(obj, finalizer)) return;
    const res = await handlers.cleanup(obj);
    if (!res.done) return { requeueAfterMs: res.requeueAfterMs ?? 1000 };
    await removeFinalizer(resource, obj, finalizer);
    return;
  }
  const protectedObj = hasFinalizer(obj, finalizer) ? obj : await ensureFinalizer(resource, obj, finalizer);
  return handlers.apply(protectedObj);
}
