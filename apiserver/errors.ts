/**
 * The one HTTP error shape of the API server: a `meta.k8s.io/v1` `Status`. Every failure a
 * handler raises is an `ApiError`; anything else that escapes a handler is a bug and becomes a
 * 500 InternalError (logged), never a crash.
 */

export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export interface Status {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure' | 'Success';
  message?: string;
  reason?: string;
  details?: StatusDetails;
  code: number;
}

export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: StatusDetails,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  toStatus(): Status {
    const s: Status = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: this.message, reason: this.reason, code: this.code };
    if (this.details) s.details = this.details;
    return s;
  }
}

/** What a resource is called in messages: `instances.compute.stratus.dev` or `configmaps`. */
export interface ResourceRef {
  group: string;
  plural: string;
  kind?: string;
}

function qualified(r: ResourceRef): string {
  return r.group ? `${r.plural}.${r.group}` : r.plural;
}

export function notFound(r: ResourceRef, name: string): ApiError {
  return new ApiError(404, 'NotFound', `${qualified(r)} "${name}" not found`, { name, group: r.group, kind: r.plural });
}

export function alreadyExists(r: ResourceRef, name: string): ApiError {
  return new ApiError(409, 'AlreadyExists', `${qualified(r)} "${name}" already exists`, { name, group: r.group, kind: r.plural });
}

export function conflict(r: ResourceRef, name: string, why: string): ApiError {
  return new ApiError(409, 'Conflict', `Operation cannot be fulfilled on ${qualified(r)} "${name}": ${why}`, {
    name,
    group: r.group,
    kind: r.plural,
  });
}

export function staleConflict(r: ResourceRef, name: string): ApiError {
  return conflict(r, name, 'the object has been modified; please apply your changes to the latest version and try again');
}

export function invalid(r: ResourceRef & { kind: string }, name: string, causes: StatusCause[]): ApiError {
  const summary = causes.map((c) => (c.field ? `${c.field}: ${c.message ?? ''}` : (c.message ?? ''))).join(', ');
  const label = r.group ? `${r.kind}.${r.group}` : r.kind;
  return new ApiError(422, 'Invalid', `${label} "${name}" is invalid: ${causes.length > 1 ? `[${summary}]` : summary}`, {
    name,
    group: r.group,
    kind: r.kind,
    causes,
  });
}

export function badRequest(message: string, causes?: StatusCause[]): ApiError {
  return new ApiError(400, 'BadRequest', message, causes ? { causes } : undefined);
}

export function methodNotAllowed(message = 'the server does not allow this method on the requested resource'): ApiError {
  return new ApiError(405, 'MethodNotAllowed', message);
}

export function gone(message: string): ApiError {
  return new ApiError(410, 'Expired', message);
}

export function unsupportedMediaType(contentType: string): ApiError {
  return new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/merge-patch+json, application/json-patch+json, application/apply-patch+yaml (got ${JSON.stringify(contentType)})`);
}

export function notAcceptable(accept: string): ApiError {
  return new ApiError(406, 'NotAcceptable', `only the following media types are accepted: application/json, application/yaml (got ${JSON.stringify(accept)})`);
}

export function tooLarge(): ApiError {
  return new ApiError(413, 'RequestEntityTooLarge', 'Request entity too large: limit is 3145728');
}

export function forbidden(r: ResourceRef, name: string, why: string): ApiError {
  return new ApiError(403, 'Forbidden', `${qualified(r)} "${name}" is forbidden: ${why}`, { name, group: r.group, kind: r.plural });
}

export function internalError(message: string): ApiError {
  return new ApiError(500, 'InternalError', `Internal error occurred: ${message}`);
}

/** 503 with `retryAfterSeconds` (the HTTP layer sends it as `Retry-After`). */
export function serviceUnavailable(message: string, retryAfterSeconds = 1): ApiError {
  return new ApiError(503, 'ServiceUnavailable', message, { retryAfterSeconds });
}

/** 504 for a read at a resourceVersion the store has not reached, as kube-apiserver answers it. */
export function tooLargeResourceVersion(asked: number, current: number): ApiError {
  return new ApiError(504, 'Timeout', `Too large resource version: ${asked}, current: ${current}`, {
    causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }],
    retryAfterSeconds: 1,
  });
}
