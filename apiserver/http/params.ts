/**
 * Query parameters, parsed as kube-apiserver parses them.
 *
 * - Booleans follow Go's `strconv.ParseBool`: `1 t T TRUE true True` and `0 f F FALSE false
 *   False`. A bare flag (`?watch`, an empty value) is true, as kube's query conversion makes
 *   it. Anything else is a 400 naming the parameter (so `?watch=True` from the official
 *   Python client works, and `?watch=maybe` is refused).
 * - Integers follow Go's `strconv.ParseInt(s, 10, 64)`: an optional sign and decimal digits
 *   within int64; anything else is a 400 naming the parameter.
 * - `limit` and `timeoutSeconds` are checked on every resource request, whatever the verb
 *   (deletecollection included), before anything is read or written.
 */
import { ApiError, badRequest } from '../errors.js';
import { managerFromUserAgent, validateFieldManager } from '../apply/index.js';
import type { FieldValidation, ListOptions, WriteOptions } from '../registry.js';
import { requestUser, type UserInfo } from '../auth/user.js';
import type { Exchange } from './exchange.js';

const trueValues = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const falseValues = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

/** Go's strconv.ParseBool, plus the empty value of a bare flag; undefined when not a boolean. */
export function parseGoBool(text: string): boolean | undefined {
  if (text === '' || trueValues.has(text)) return true;
  if (falseValues.has(text)) return false;
  return undefined;
}

const int64Max = 2n ** 63n - 1n;
const int64Min = -(2n ** 63n);

/** Go's strconv.ParseInt(text, 10, 64); undefined when not an int64. */
export function parseGoInt64(text: string): number | undefined {
  if (!/^[+-]?[0-9]+$/.test(text)) return undefined;
  const n = BigInt(text);
  if (n > int64Max || n < int64Min) return undefined;
  return Number(n);
}

/** A boolean query parameter; undefined when absent. */
export function boolParam(ex: Exchange, name: string): boolean | undefined {
  const v = ex.query(name);
  if (v === undefined) return undefined;
  const b = parseGoBool(v);
  if (b === undefined) throw badRequest(`invalid boolean value for ${name}: "${v}": must be one of 1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False`);
  return b;
}

/** An integer query parameter; undefined when absent or empty. */
export function intParam(ex: Exchange, name: string): number | undefined {
  const v = ex.query(name);
  if (v === undefined || v === '') return undefined;
  const n = parseGoInt64(v);
  if (n === undefined) throw badRequest(`invalid value for ${name}: "${v}": must be an integer`);
  return n;
}

/** Parameters every resource request may carry, refused when malformed whatever the verb. */
export interface CommonParams {
  limit?: number;
  timeoutSeconds?: number;
}

export function commonParams(ex: Exchange): CommonParams {
  const limit = intParam(ex, 'limit');
  const timeoutSeconds = intParam(ex, 'timeoutSeconds');
  return { ...(limit !== undefined ? { limit } : {}), ...(timeoutSeconds !== undefined ? { timeoutSeconds } : {}) };
}

export function writeOptions(ex: Exchange): WriteOptions {
  const dry = ex.url.searchParams.getAll('dryRun');
  for (const d of dry) if (d !== 'All') throw badRequest(`Invalid dryRun value: "${d}": valid values are "All"`);
  const fv = ex.query('fieldValidation');
  let fieldValidation: FieldValidation | undefined;
  if (fv !== undefined && fv !== '') {
    const norm = fv.charAt(0).toUpperCase() + fv.slice(1).toLowerCase();
    if (norm !== 'Strict' && norm !== 'Warn' && norm !== 'Ignore') {
      throw badRequest(`Invalid fieldValidation: "${fv}": valid values are "Ignore", "Warn" and "Strict"`);
    }
    fieldValidation = norm;
  }
  let fieldManager = ex.query('fieldManager');
  if (fieldManager !== undefined && fieldManager !== '') {
    const why = validateFieldManager(fieldManager);
    if (why) throw new ApiError(422, 'Invalid', why, { causes: [{ reason: 'FieldValueInvalid', field: 'fieldManager', message: why }] });
  } else {
    fieldManager = managerFromUserAgent(ex.req.headers['user-agent']) || 'unknown';
  }
  return {
    dryRun: dry.length > 0,
    ...(fieldManager ? { fieldManager } : {}),
    ...(fieldValidation ? { fieldValidation } : {}),
    warnings: ex.warnings,
    ...withUser(ex),
  };
}

export function listOptions(ex: Exchange): ListOptions {
  const o: ListOptions = {};
  const set = (k: 'labelSelector' | 'fieldSelector' | 'continue' | 'resourceVersion' | 'resourceVersionMatch'): void => {
    const v = ex.query(k);
    if (v !== undefined && v !== '') o[k] = v;
  };
  set('labelSelector');
  set('fieldSelector');
  set('continue');
  set('resourceVersion');
  set('resourceVersionMatch');
  const limit = intParam(ex, 'limit');
  if (limit !== undefined && limit > 0) o.limit = limit;
  if (o.resourceVersionMatch && !['Exact', 'NotOlderThan'].includes(o.resourceVersionMatch)) {
    throw badRequest(`invalid resourceVersionMatch "${o.resourceVersionMatch}"`);
  }
  return o;
}

/** The identity the authentication step recorded, for admission (absent: the request carries none). */
export function withUser(ex: Exchange): { user?: UserInfo } {
  const user = requestUser(ex.req);
  return user ? { user } : {};
}

export type IncludeObject = 'None' | 'Metadata' | 'Object';

export function includeObject(ex: Exchange): IncludeObject {
  const v = ex.query('includeObject');
  if (v === undefined || v === '') return 'Metadata';
  if (v === 'None' || v === 'Metadata' || v === 'Object') return v;
  throw badRequest(`invalid includeObject "${v}": must be None, Metadata or Object`);
}
