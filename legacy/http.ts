/**
 * The HTTP plumbing every legacy API shares: a bounded body reader, strict JSON parsing, a
 * tiny path router, and `LegacyError` — a client-visible failure carrying the HTTP status.
 * Each API renders `LegacyError` in its own error style (see `Dialect`); nothing here knows
 * any API's shapes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError } from '../runtime/client.js';

/** Bodies above this are refused with 413 before they are parsed. */
export const MAX_BODY_BYTES = 256 * 1024;

/** A failure the client sees: status code and a message safe to show. */
export class LegacyError extends Error {
  override readonly name = 'LegacyError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export const badRequest = (message: string): LegacyError => new LegacyError(400, message);
export const notFound = (message = 'not found'): LegacyError => new LegacyError(404, message);
export const conflict = (message: string): LegacyError => new LegacyError(409, message);

/**
 * Maps a failure of the Kubernetes API (or of reaching it) onto what the legacy client
 * should see. A rejected object (400/422) is the client's input; 404/409 keep their meaning;
 * the proxy's own credentials being refused (401/403) or the API being down is not the
 * client's fault: 502/503.
 */
export function fromDownstream(err: unknown): LegacyError {
  if (err instanceof LegacyError) return err;
  if (err instanceof ApiError) {
    if (err.code === 400 || err.code === 422) return new LegacyError(400, `rejected: ${err.message}`);
    if (err.code === 404) return new LegacyError(404, 'not found');
    if (err.code === 409) return new LegacyError(409, err.reason === 'AlreadyExists' ? 'already exists' : 'conflict, try again');
    if (err.code === 429) return new LegacyError(503, 'the control plane is busy, try again');
    return new LegacyError(502, `the control plane answered ${err.code} ${err.reason}`);
  }
  return new LegacyError(503, 'the control plane cannot be reached');
}

/** Reads the whole body, refusing (413) more than `limit` bytes. */
export function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? '0');
    if (Number.isFinite(declared) && declared > limit) {
      req.resume();
      reject(new LegacyError(413, `request body larger than ${limit} bytes`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (c: Buffer) => {
      if (failed) return;
      size += c.length;
      if (size > limit) {
        failed = true;
        reject(new LegacyError(413, `request body larger than ${limit} bytes`));
        return;
      }
      chunks.push(c);
    });
    let ended = false;
    req.on('end', () => {
      ended = true;
      if (!failed) resolve(Buffer.concat(chunks));
    });
    req.on('error', () => {
      if (!failed) reject(new LegacyError(400, 'request body incomplete'));
      failed = true;
    });
    // A client that hangs up mid-body ends the wait too.
    req.on('close', () => {
      if (!ended && !failed) reject(new LegacyError(400, 'request body incomplete'));
      failed = true;
    });
  });
}

export type JsonObject = Record<string, unknown>;

/** Parses a body that must be one JSON object. */
export function parseJsonObject(body: Buffer): JsonObject {
  if (body.length === 0) throw badRequest('request body must be a JSON object');
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    throw badRequest('request body is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw badRequest('request body must be a JSON object');
  return value as JsonObject;
}

/** Field readers: each throws a 400 naming the field. */
export const field = {
  string(o: JsonObject, key: string, opts: { required?: boolean; max?: number } = {}): string | undefined {
    const v = Object.hasOwn(o, key) ? o[key] : undefined;
    if (v === undefined || v === null) {
      if (opts.required) throw badRequest(`${key} is required`);
      return undefined;
    }
    if (typeof v !== 'string') throw badRequest(`${key} must be a string`);
    if (opts.required && v === '') throw badRequest(`${key} must not be empty`);
    if (opts.max !== undefined && v.length > opts.max) throw badRequest(`${key} must be at most ${opts.max} characters`);
    return v;
  },
  integer(o: JsonObject, key: string, opts: { required?: boolean; min?: number; max?: number } = {}): number | undefined {
    const v = Object.hasOwn(o, key) ? o[key] : undefined;
    if (v === undefined || v === null) {
      if (opts.required) throw badRequest(`${key} is required`);
      return undefined;
    }
    if (typeof v !== 'number' || !Number.isInteger(v)) throw badRequest(`${key} must be an integer`);
    if (opts.min !== undefined && v < opts.min) throw badRequest(`${key} must be at least ${opts.min}`);
    if (opts.max !== undefined && v > opts.max) throw badRequest(`${key} must be at most ${opts.max}`);
    return v;
  },
  boolean(o: JsonObject, key: string): boolean | undefined {
    const v = Object.hasOwn(o, key) ? o[key] : undefined;
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') throw badRequest(`${key} must be true or false`);
    return v;
  },
};

/** One routed request: the path parameters and the lazily read body. */
export interface LegacyRequest {
  req: IncomingMessage;
  method: string;
  path: string;
  params: Record<string, string>;
  /** The raw body (read once, bounded by `MAX_BODY_BYTES`). */
  body(): Promise<Buffer>;
}

export interface LegacyResponse {
  status: number;
  headers?: Record<string, string>;
  /** JSON-encoded when present; absent means an empty body. */
  json?: unknown;
}

/**
 * Renders a `LegacyError` in an API's own error style, and decides how a request proves
 * who sends it (the namespace its objects live in).
 */
export interface Dialect {
  name: string;
  errorBody(err: LegacyError): unknown;
  /** Extra headers on errors (e.g. `WWW-Authenticate` on 401). */
  errorHeaders?(err: LegacyError): Record<string, string>;
}

/** Compiles a pattern; a trailing `/` in the pattern makes the request's trailing slash optional. */
export function compile(pattern: string): (path: string) => Record<string, string> | undefined {
  const optionalSlash = pattern.endsWith('/') && pattern.length > 1;
  const body = optionalSlash ? pattern.slice(0, -1) : pattern;
  const names: string[] = [];
  const re = new RegExp(
    '^' +
      body
        .split('/')
        .map((seg) => {
          if (seg.startsWith(':')) {
            names.push(seg.slice(1));
            return '([^/]+)';
          }
          return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        })
        .join('/') +
      (optionalSlash ? '/?' : '') +
      '$',
  );
  return (path) => {
    const m = re.exec(path);
    if (!m) return undefined;
    const params: Record<string, string> = {};
    for (let i = 0; i < names.length; i++) {
      try {
        params[names[i]!] = decodeURIComponent(m[i + 1]!);
      } catch {
        return undefined;
      }
    }
    return params;
  };
}

export function send(res: ServerResponse, r: LegacyResponse): void {
  const headers: Record<string, string | number> = { ...(r.headers ?? {}) };
  let payload: Buffer | undefined;
  if (r.json !== undefined) {
    payload = Buffer.from(JSON.stringify(r.json));
    headers['content-type'] = 'application/json';
  }
  headers['content-length'] = payload?.length ?? 0;
  res.writeHead(r.status, headers);
  res.end(payload);
}
