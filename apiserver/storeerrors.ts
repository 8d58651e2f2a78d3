/**
 * The one place storage failures become API errors. Every registry path that touches the
 * store lets its error through `apiErrorFrom` (after deciding on its own retries), so a given
 * storage condition always reaches clients as the same `Status`:
 *
 * | store error        | HTTP                                                     |
 * |--------------------|----------------------------------------------------------|
 * | `KeyExistsError`   | 409 AlreadyExists                                        |
 * | `ConflictError`    | 409 Conflict ("the object has been modified")            |
 * | `NotFoundError`    | 404 NotFound                                             |
 * | `TooOldError`      | 410 Expired (resourceVersion or continue token too old)   |
 * | `UnavailableError` | 503 ServiceUnavailable (`Retry-After: 1`)                |
 *
 * Anything else is returned unchanged (a bug: the HTTP layer answers 500 and logs it).
 */
import { ApiError, alreadyExists, gone, notFound, serviceUnavailable, staleConflict, type ResourceRef } from './errors.js';
import { ConflictError, KeyExistsError, NotFoundError, TooOldError, UnavailableError } from './storage/store.js';

/** What the failed operation addressed, for the message. */
export interface StoreErrorContext {
  resource: ResourceRef;
  name?: string;
  /** The resourceVersion the client asked to read or watch from (410 messages). */
  resourceVersion?: string;
  /** The request carried a continue token (410 says to start a new list). */
  continued?: boolean;
}

export function apiErrorFrom(err: unknown, ctx: StoreErrorContext): unknown {
  if (err instanceof ApiError) return err;
  const name = ctx.name ?? '';
  if (err instanceof KeyExistsError) return alreadyExists(ctx.resource, name);
  if (err instanceof ConflictError) return staleConflict(ctx.resource, name);
  if (err instanceof NotFoundError) return notFound(ctx.resource, name);
  if (err instanceof TooOldError) {
    if (ctx.continued) {
      return gone('The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.');
    }
    return gone(`too old resource version: ${ctx.resourceVersion ?? ''} (${err.compactedRevision})`);
  }
  if (err instanceof UnavailableError) return serviceUnavailable(`storage is unavailable: ${err.message}`);
  return err;
}
