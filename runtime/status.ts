/**
 * Status writes through the `/status` subresource with optimistic concurrency.
 *
 * `updateStatus` reads the object fresh from the API server (never the informer cache,
 * which may lag), applies `mutate` to a copy, and PUTs `/status` carrying the read
 * resourceVersion. A 409 means someone wrote in between: read again and re-apply `mutate`
 * (so `mutate` must be a pure function of the object it is given). When `mutate` returns
 * `false` or leaves `status` deep-equal to what was read, nothing is written — a steady
 * state costs one GET and no write, and does not wake watchers.
 */
import { objectKey, splitKey, type KubeObject, type ResourceClient } from './client.js';
import { setCondition, type ConditionInput, type ConditionLike } from './conditions.js';
import { deepEqual, retryOnConflict } from './basics.js';

export { deepEqual };

export interface UpdateStatusOptions {
  /** Attempts before the last 409 is thrown. Default 8. */
  maxAttempts?: number;
}

export type WithStatus = KubeObject & { status?: unknown };

/**
 * Returns the written object, the unchanged object when there was nothing to write, or
 * `undefined` when the object does not exist.
 */
export async function updateStatus<T extends WithStatus>(
  resource: ResourceClient<T>,
  ns: string | undefined,
  name: string,
  mutate: (obj: T) => void | false,
  opts: UpdateStatusOptions = {},
): Promise<T | undefined> {
  return retryOnConflict(
    async () => {
      const current = await resource.get(ns, name);
      if (!current) return undefined;
      const next = structuredClone(current);
      if (mutate(next) === false) return current;
      if (deepEqual(current.status, next.status)) return current;
      return resource.replaceStatus(next);
    },
    // jitter, so writers that collided do not collide again
    { maxAttempts: opts.maxAttempts ?? 8, pauseMs: (attempt) => Math.random() * 10 * attempt },
  );
}

/** The status every stratus kind has: `observedGeneration` and Kubernetes conditions. */
export interface ReportedStatus {
  observedGeneration?: number;
  conditions?: ConditionLike[];
}

/**
 * What every reconcile branch ends with (crossplane's "set a condition, write status"):
 * `mutate` the status fields, set `conditions`, and stamp `observedGeneration` (on the
 * object and on each condition) with the generation `reconciled` had — the one this
 * reconcile acted on; a newer generation triggers its own reconcile. Built on
 * `updateStatus` (fresh read, conflict retry, no write when nothing changed); does nothing
 * when the object was deleted and re-created meanwhile (its uid differs).
 */
export async function reportStatus<S extends ReportedStatus, T extends KubeObject & { status?: S }>(
  resource: ResourceClient<T>,
  reconciled: T,
  conditions: ConditionInput[],
  mutate?: (status: S) => void,
): Promise<T | undefined> {
  const { namespace, name } = splitKey(objectKey(reconciled));
  const generation = reconciled.metadata?.generation ?? 0;
  return updateStatus(resource, namespace, name, (fresh) => {
    if (fresh.metadata?.uid !== reconciled.metadata?.uid) return false;
    const status = { ...(fresh.status ?? {}) } as S;
    mutate?.(status);
    let conds = status.conditions;
    for (const c of conditions) conds = setCondition(conds, c, generation);
    status.conditions = conds ?? [];
    status.observedGeneration = generation;
    fresh.status = status;
  });
}
