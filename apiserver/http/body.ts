/**
 * Request bodies: the 3 MiB limit, and decoding by Content-Type — objects as JSON, YAML or
 * (built-in kinds) protobuf, patches by their patch media type, and DELETE bodies as
 * `DeleteOptions`. A body that does not decode is a 400 (415 for an unknown media type);
 * nothing is read or written before a body decodes.
 */
import type { IncomingMessage } from 'node:http';
import { parse as parseYaml } from 'yaml';
import { ApiError, badRequest, tooLarge, unsupportedMediaType } from '../errors.js';
import { isPlainObject } from '../objects.js';
import { decodeKubeProtobuf, ProtobufError } from '../protobuf.js';
import type { DeleteOptions, PatchType } from '../registry.js';

export const maxBodyBytes = 3 * 1024 * 1024;

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > maxBodyBytes) {
    req.resume();
    throw tooLarge();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > maxBodyBytes) {
      req.resume();
      throw tooLarge();
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

/** Reads and drops a body we refuse, so the connection stays usable. */
export async function drain(req: IncomingMessage): Promise<void> {
  try {
    await readBody(req);
  } catch {
    // the error response already says what went wrong
  }
}

export function mediaTypeOf(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

export function parseJson(buf: Buffer): unknown {
  try {
    return JSON.parse(buf.toString('utf8')) as unknown;
  } catch (err) {
    throw badRequest(`the body of the request could not be decoded as JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
}

export function parseYamlBody(buf: Buffer): unknown {
  try {
    return parseYaml(buf.toString('utf8'), { uniqueKeys: true, maxAliasCount: 100 }) as unknown;
  } catch (err) {
    throw badRequest(`the body of the request could not be decoded as YAML: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
  }
}

/** A POST, PUT or DELETE body: JSON, YAML, or protobuf for the built-in kinds. */
export function decodeObjectBody(req: IncomingMessage, buf: Buffer): unknown {
  const type = mediaTypeOf(req);
  if (type === '' || type === 'application/json' || type === '*/*') return parseJson(buf);
  if (type === 'application/yaml' || type === 'application/x-yaml' || type === 'text/yaml') return parseYamlBody(buf);
  if (type === 'application/vnd.kubernetes.protobuf') {
    try {
      return decodeKubeProtobuf(buf);
    } catch (err) {
      if (err instanceof ProtobufError) throw new ApiError(415, 'UnsupportedMediaType', `cannot decode the protobuf body: ${err.message}`);
      throw err;
    }
  }
  throw unsupportedMediaType(type);
}

export const patchTypes: Record<string, PatchType> = {
  'application/merge-patch+json': 'merge',
  'application/json-patch+json': 'json',
  'application/strategic-merge-patch+json': 'strategic',
  'application/apply-patch+yaml': 'apply',
};

/** The fields of a `DeleteOptions` body, as sent (query parameters are merged by the caller). */
export interface DeleteOptionsBody {
  propagationPolicy?: string;
  orphanDependents?: boolean;
  gracePeriodSeconds?: number;
  preconditions?: DeleteOptions['preconditions'];
  dryRun?: string[];
}

/**
 * A DELETE body decoded as `meta.k8s.io/v1` `DeleteOptions` (kube registers the kind in every
 * group version, so any `apiVersion` is accepted). An object of another kind, or a field of
 * the wrong type, is a 400 — never silently ignored.
 */
export function decodeDeleteOptions(body: unknown): DeleteOptionsBody {
  if (body === undefined || body === null) return {};
  if (!isPlainObject(body)) throw badRequest('the body of a DELETE request must be a DeleteOptions object');
  if (body.kind !== undefined && body.kind !== 'DeleteOptions') {
    throw badRequest(`the body of a DELETE request must be a DeleteOptions object, not ${JSON.stringify(body.kind)}`);
  }
  if (body.apiVersion !== undefined && typeof body.apiVersion !== 'string') throw badRequest('DeleteOptions: apiVersion must be a string');
  const out: DeleteOptionsBody = {};
  const wrong = (field: string, what: string): ApiError => badRequest(`DeleteOptions: ${field} must be ${what}`);
  const present = (v: unknown): boolean => v !== undefined && v !== null;
  if (present(body.propagationPolicy)) {
    if (typeof body.propagationPolicy !== 'string') throw wrong('propagationPolicy', 'a string');
    out.propagationPolicy = body.propagationPolicy;
  }
  if (present(body.orphanDependents)) {
    if (typeof body.orphanDependents !== 'boolean') throw wrong('orphanDependents', 'a boolean');
    out.orphanDependents = body.orphanDependents;
  }
  if (present(body.gracePeriodSeconds)) {
    if (typeof body.gracePeriodSeconds !== 'number' || !Number.isInteger(body.gracePeriodSeconds)) throw wrong('gracePeriodSeconds', 'an integer');
    out.gracePeriodSeconds = body.gracePeriodSeconds;
  }
  if (present(body.preconditions)) {
    const p = body.preconditions;
    if (!isPlainObject(p)) throw wrong('preconditions', 'an object');
    if (present(p.uid) && typeof p.uid !== 'string') throw wrong('preconditions.uid', 'a string');
    if (present(p.resourceVersion) && typeof p.resourceVersion !== 'string') throw wrong('preconditions.resourceVersion', 'a string');
    out.preconditions = {
      ...(typeof p.uid === 'string' ? { uid: p.uid } : {}),
      ...(typeof p.resourceVersion === 'string' ? { resourceVersion: p.resourceVersion } : {}),
    };
  }
  if (present(body.dryRun)) {
    if (!Array.isArray(body.dryRun) || body.dryRun.some((d) => typeof d !== 'string')) throw wrong('dryRun', 'a list of strings');
    out.dryRun = body.dryRun as string[];
  }
  return out;
}
