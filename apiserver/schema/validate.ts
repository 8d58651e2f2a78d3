/**
 * Validation, defaulting and pruning of custom resources against a CRD's structural
 * openAPIV3Schema, with kube-apiserver's semantics and its error wording, so a client sees the
 * same `422 Invalid` causes from stratus as from a real cluster.
 *
 * Value validations run on ajv (draft-07) over a translation of the Kubernetes dialect:
 * `nullable`, `x-kubernetes-int-or-string`, OpenAPI v3.0 boolean `exclusiveMinimum`, the
 * formats of kube-openapi. The parts of the dialect that are not JSON Schema (list-type
 * uniqueness, defaulting, pruning) walk the structural skeleton directly.
 *
 * Not evaluated: `x-kubernetes-validations` (CEL). Metadata beyond the schema's own
 * restrictions on `metadata.name`/`generateName` is the API server's job.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { KUBE_FORMATS } from './formats.js';
import type { JSONSchemaProps } from './types.js';

export { loadCrdDir } from './load.js';

export type CauseReason =
  | 'FieldValueRequired'
  | 'FieldValueInvalid'
  | 'FieldValueNotSupported'
  | 'FieldValueTypeInvalid'
  | 'FieldValueTooLong'
  | 'FieldValueTooMany'
  | 'FieldValueDuplicate'
  | 'FieldValueForbidden';

/** One cause of a `422 Invalid`, as in the Kubernetes Status `details.causes`. */
export interface FieldCause {
  reason: CauseReason;
  /** Path of the offending field, e.g. `spec.disks[0].sizeGiB`; empty for the whole object. */
  field: string;
  /** Kube-style, e.g. `Invalid value: 0: spec.memoryMiB in body should be greater than or equal to 4`. */
  message: string;
}

export interface CompiledSchema {
  /** Structural defaulting in place: a default is set where its field is absent (or null and not nullable), never inside an absent parent. */
  applyDefaults(obj: unknown): void;
  /** Drops unknown fields in place and returns their paths (`spec.foo`); keeps apiVersion/kind/metadata at the root and in embedded resources. */
  prune(obj: unknown): string[];
  /** Every failure, not only the first. */
  validate(obj: unknown): FieldCause[];
}

type Json = unknown;
type JsonObject = Record<string, Json>;

function isObject(v: Json): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The schema of a named property, own properties only: a field called "constructor" or
 * "__proto__" is unknown like any other, not Object.prototype's.
 */
export function propertySchema(s: JSONSchemaProps, key: string): JSONSchemaProps | undefined {
  return s.properties && Object.hasOwn(s.properties, key) ? s.properties[key] : undefined;
}

/** obj[key] = value, as an own data property even for "__proto__". */
function setOwn(obj: JsonObject, key: string, value: Json): void {
  Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
}

const simpleKey = /^[A-Za-z_$][A-Za-z0-9_$-]*$/;

/** `spec` + `disks` → `spec.disks`; keys that are not identifiers use brackets: `labels[a.b/c]`. */
export function childPath(path: string, key: string): string {
  if (!simpleKey.test(key)) return `${path}[${key}]`;
  return path === '' ? key : `${path}.${key}`;
}

function indexPath(path: string, i: number): string {
  return `${path}[${i}]`;
}

// ---------------------------------------------------------------------------------------------
// Translation of the Kubernetes dialect to plain JSON Schema for ajv.

const PASSTHROUGH = [
  'required', 'enum', 'multipleOf', 'minLength', 'maxLength', 'pattern', 'minItems', 'maxItems',
  'uniqueItems', 'minProperties', 'maxProperties',
] as const;

function toAjvSchema(s: JSONSchemaProps): JsonObject {
  const out: JsonObject = {};
  for (const k of PASSTHROUGH) if (s[k] !== undefined) out[k] = s[k];
  let types: string[] | undefined = s.type ? [s.type] : undefined;
  if (s['x-kubernetes-int-or-string'] && !types) types = ['integer', 'string'];
  if (s.nullable) {
    if (types) types = [...types, 'null'];
    if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
  }
  if (types) out.type = types.length === 1 ? types[0] : types;
  if (s.format !== undefined && Object.hasOwn(KUBE_FORMATS, s.format)) out.format = s.format;
  if (s.minimum !== undefined) out[s.exclusiveMinimum ? 'exclusiveMinimum' : 'minimum'] = s.minimum;
  if (s.maximum !== undefined) out[s.exclusiveMaximum ? 'exclusiveMaximum' : 'maximum'] = s.maximum;
  if (s.properties) {
    out.properties = Object.fromEntries(Object.entries(s.properties).map(([k, v]) => [k, toAjvSchema(v)]));
  }
  if (s.items && !Array.isArray(s.items)) out.items = toAjvSchema(s.items);
  if (isObject(s.additionalProperties)) out.additionalProperties = toAjvSchema(s.additionalProperties as JSONSchemaProps);
  for (const k of ['allOf', 'oneOf', 'anyOf'] as const) {
    const list = s[k];
    if (list) out[k] = list.map(toAjvSchema);
  }
  if (s.not) out.not = toAjvSchema(s.not);
  if (s['x-kubernetes-embedded-resource']) {
    const props = (out.properties ?? {}) as JsonObject;
    props.apiVersion ??= { type: 'string', minLength: 1 };
    props.kind ??= { type: 'string', minLength: 1 };
    props.metadata ??= { type: 'object' };
    out.properties = props;
    out.required = [...new Set([...((out.required as string[] | undefined) ?? []), 'apiVersion', 'kind'])];
  }
  return out;
}

let sharedAjv: Ajv | undefined;

function ajv(): Ajv {
  if (sharedAjv) return sharedAjv;
  const a = new Ajv({ allErrors: true, strict: false, verbose: true, validateFormats: true, unicodeRegExp: true });
  for (const [name, check] of Object.entries(KUBE_FORMATS)) a.addFormat(name, { type: 'string', validate: check });
  sharedAjv = a;
  return a;
}

// ---------------------------------------------------------------------------------------------
// ajv errors → kube causes.

/** Kubernetes' rendering of a value inside a message: JSON scalars, a type name for the rest. */
function renderValue(v: Json): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(Array.isArray(v) ? 'array' : 'object');
}

function jsonType(v: Json): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

/** JSON pointer from ajv → kube field path, using the data to tell list indexes from keys. */
function pointerToPath(pointer: string, root: Json): string {
  if (pointer === '') return '';
  let path = '';
  let cur: Json = root;
  for (const raw of pointer.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(cur)) {
      path = indexPath(path, Number(seg));
      cur = cur[Number(seg)];
    } else {
      path = childPath(path, seg);
      cur = isObject(cur) ? cur[seg] : undefined;
    }
  }
  return path;
}

/** Errors raised inside a branch of oneOf/anyOf/not are reported once, by the combinator. */
function insideCombinatorBranch(schemaPath: string): boolean {
  const segs = schemaPath.replace(/^#\//, '').split('/');
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i];
    if (s === 'properties' || s === 'patternProperties') {
      i++;
      continue;
    }
    if ((s === 'oneOf' || s === 'anyOf' || s === 'not') && i < segs.length - 1) return true;
  }
  return false;
}

/**
 * What a branch of a combinator asks for, when it only names required fields and fixed enum
 * values: `{required: [libvirt], properties: {libvirt: {required: [location]}}}` → `libvirt.location`,
 * `{properties: {provider: {enum: [gce]}}, required: [gce]}` → `provider=gce with gce`.
 */
function describeBranch(b: JsonObject, prefix = ''): string[] | undefined {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(b)) {
    if (k === 'required' && Array.isArray(v)) {
      for (const r of v) parts.push(prefix + String(r));
    } else if (k === 'properties' && isObject(v)) {
      for (const [name, sub] of Object.entries(v)) {
        if (!isObject(sub)) return undefined;
        if (Array.isArray(sub.enum) && sub.enum.length === 1 && Object.keys(sub).length === 1) {
          parts.unshift(`${prefix}${name}=${String(sub.enum[0])}`);
          continue;
        }
        const inner = describeBranch(sub, `${prefix}${name}.`);
        if (!inner) return undefined;
        parts.push(...inner);
      }
    } else return undefined;
  }
  // "libvirt" is implied by "libvirt.location"
  return parts.filter((p) => !parts.some((q) => q !== p && q.startsWith(p + '.')));
}

/** ": set exactly one of git, artifact" — a hint after kube's combinator message, when the branches allow one. */
function combinatorHint(e: ErrorObject): string {
  const branches = e.schema;
  if (!Array.isArray(branches)) return '';
  const described = (branches as JsonObject[]).map((b) => (isObject(b) ? describeBranch(b) : undefined));
  if (described.some((d) => !d || d.length === 0)) return '';
  const parts = described as string[][];
  const which = e.keyword === 'oneOf' ? 'exactly' : 'at least';
  if (parts.every((d) => d.length === 1)) return `: set ${which} one of ${parts.map((d) => d[0]).join(', ')}`;
  return `: ${which} one of these must hold: ${parts.map((d) => `(${d.join(' with ')})`).join(' | ')}`;
}

function toCause(e: ErrorObject, root: Json): FieldCause | undefined {
  const path = pointerToPath(e.instancePath, root);
  const where = path === '' ? 'body' : `${path} in body`;
  const p = e.params as Record<string, Json>;
  const v = e.data as Json;
  const invalid = (text: string): FieldCause => ({ reason: 'FieldValueInvalid', field: path, message: `Invalid value: ${renderValue(v)}: ${where} ${text}` });
  switch (e.keyword) {
    case 'required':
      return { reason: 'FieldValueRequired', field: childPath(path, String(p.missingProperty)), message: 'Required value' };
    case 'type': {
      const want = String(p.type).split(',').filter((t) => t !== 'null').join(',');
      const got = JSON.stringify(jsonType(v));
      return { reason: 'FieldValueTypeInvalid', field: path, message: `Invalid value: ${got}: ${where} must be of type ${want}: ${got}` };
    }
    case 'enum': {
      const allowed = (p.allowedValues as Json[]).filter((x) => x !== null).map((x) => JSON.stringify(x)).join(', ');
      return { reason: 'FieldValueNotSupported', field: path, message: `Unsupported value: ${JSON.stringify(v)}: supported values: ${allowed}` };
    }
    case 'minimum':
      return invalid(`should be greater than or equal to ${String(p.limit)}`);
    case 'exclusiveMinimum':
      return invalid(`should be greater than ${String(p.limit)}`);
    case 'maximum':
      return invalid(`should be less than or equal to ${String(p.limit)}`);
    case 'exclusiveMaximum':
      return invalid(`should be less than ${String(p.limit)}`);
    case 'multipleOf':
      return invalid(`should be a multiple of ${String(p.multipleOf)}`);
    case 'maxLength':
      return { reason: 'FieldValueTooLong', field: path, message: `Too long: may not be more than ${String(p.limit)} bytes` };
    case 'minLength':
      return invalid(`should be at least ${String(p.limit)} chars long`);
    case 'pattern':
      return invalid(`should match '${String(p.pattern)}'`);
    case 'format':
      return invalid(`must be of type ${String(p.format)}: ${renderValue(v)}`);
    case 'maxItems':
      return { reason: 'FieldValueTooMany', field: path, message: `Too many: ${(v as Json[]).length}: must have at most ${String(p.limit)} items` };
    case 'minItems':
      return { reason: 'FieldValueInvalid', field: path, message: `Invalid value: ${(v as Json[]).length}: ${where} should have at least ${String(p.limit)} items` };
    case 'maxProperties':
      return { reason: 'FieldValueTooMany', field: path, message: `Too many: ${Object.keys(v as JsonObject).length}: must have at most ${String(p.limit)} items` };
    case 'minProperties':
      return { reason: 'FieldValueInvalid', field: path, message: `Invalid value: ${Object.keys(v as JsonObject).length}: ${where} should have at least ${String(p.limit)} properties` };
    case 'uniqueItems': {
      const j = Number(p.i);
      return { reason: 'FieldValueDuplicate', field: indexPath(path, j), message: `Duplicate value: ${JSON.stringify((v as Json[])[j])}` };
    }
    case 'oneOf':
      return invalid(`must validate one and only one schema (oneOf)${combinatorHint(e)}`);
    case 'anyOf':
      return invalid(`must validate at least one schema (anyOf)${combinatorHint(e)}`);
    case 'not':
      return invalid('must not validate the schema (not)');
    case 'if':
    case 'allOf':
      return undefined; // allOf's own failures are reported by its branches
    default:
      return invalid(e.message ?? `failed ${e.keyword}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Walks over the structural skeleton.

function listDuplicates(s: JSONSchemaProps, v: Json, path: string, out: FieldCause[]): void {
  if (Array.isArray(v)) {
    const listType = s['x-kubernetes-list-type'];
    if (listType === 'set' || listType === 'map') {
      const keys = s['x-kubernetes-list-map-keys'] ?? [];
      const seen = new Set<string>();
      v.forEach((item, i) => {
        let key: string;
        let shown: Json = item;
        if (listType === 'map' && isObject(item)) {
          const k: JsonObject = {};
          for (const name of keys) k[name] = item[name];
          key = JSON.stringify(keys.map((name) => item[name] ?? null));
          shown = k;
        } else if (typeof item === 'object' && item !== null) {
          return; // a set holds scalars; anything else is already a type error
        } else {
          key = JSON.stringify(item);
        }
        if (seen.has(key)) out.push({ reason: 'FieldValueDuplicate', field: indexPath(path, i), message: `Duplicate value: ${JSON.stringify(shown)}` });
        seen.add(key);
      });
    }
    if (s.items) v.forEach((item, i) => listDuplicates(s.items as JSONSchemaProps, item, indexPath(path, i), out));
    return;
  }
  if (!isObject(v)) return;
  for (const [k, child] of Object.entries(v)) {
    const cs = propertySchema(s, k) ?? (isObject(s.additionalProperties) ? (s.additionalProperties as JSONSchemaProps) : undefined);
    if (cs) listDuplicates(cs, child, childPath(path, k), out);
  }
}

function defaults(s: JSONSchemaProps, v: Json): void {
  if (Array.isArray(v)) {
    if (s.items) for (const item of v) defaults(s.items, item);
    return;
  }
  if (!isObject(v)) return;
  if (s.properties) {
    for (const [k, ps] of Object.entries(s.properties)) {
      if (ps.default === undefined) continue;
      const has = Object.hasOwn(v, k);
      if (!has || v[k] === undefined || (v[k] === null && !ps.nullable)) setOwn(v, k, structuredClone(ps.default));
    }
    for (const [k, ps] of Object.entries(s.properties)) if (Object.hasOwn(v, k) && v[k] !== undefined) defaults(ps, v[k]);
  }
  if (isObject(s.additionalProperties)) {
    const ap = s.additionalProperties as JSONSchemaProps;
    for (const [k, child] of Object.entries(v)) if (!propertySchema(s, k)) defaults(ap, child);
  }
}

const OBJECT_ENVELOPE = new Set(['apiVersion', 'kind', 'metadata']);

function pruneWalk(s: JSONSchemaProps, v: Json, path: string, keepEnvelope: boolean, dropped: string[]): void {
  if (Array.isArray(v)) {
    if (s.items) v.forEach((item, i) => pruneWalk(s.items as JSONSchemaProps, item, indexPath(path, i), false, dropped));
    return;
  }
  if (!isObject(v)) return;
  const preserve = s['x-kubernetes-preserve-unknown-fields'] === true;
  const embedded = s['x-kubernetes-embedded-resource'] === true;
  const ap = s.additionalProperties;
  for (const k of Object.keys(v)) {
    const known = propertySchema(s, k);
    if ((keepEnvelope || embedded) && OBJECT_ENVELOPE.has(k)) {
      continue; // ObjectMeta is the API server's to check, not the schema's to prune
    } else if (known) {
      pruneWalk(known, v[k], childPath(path, k), false, dropped);
    } else if (isObject(ap)) {
      pruneWalk(ap as JSONSchemaProps, v[k], childPath(path, k), false, dropped);
    } else if (!preserve && ap !== true) {
      delete v[k];
      dropped.push(childPath(path, k));
    }
  }
}

// ---------------------------------------------------------------------------------------------

const cache = new WeakMap<JSONSchemaProps, CompiledSchema>();
/**
 * The same schema arrives as several objects: a CRD written at start-up is applied from the
 * write and again from its watch event, and every update re-validates its defaults. Equal
 * content shares one compiled schema (most recently used first, at most `CONTENT_CACHE_SIZE`,
 * so a server that sees new schemas for months does not keep them all).
 */
const byContent = new Map<string, CompiledSchema>();
const CONTENT_CACHE_SIZE = 256;

/**
 * Compiles once per schema object and once per schema content (while it is among the last
 * `CONTENT_CACHE_SIZE` used); later calls return the cached result.
 * Throws when ajv cannot compile the schema (e.g. a pattern that is not a valid regular
 * expression): run `crdErrors` first.
 */
export function compileSchema(openAPIV3Schema: JSONSchemaProps): CompiledSchema {
  const hit = cache.get(openAPIV3Schema);
  if (hit) return hit;
  const content = JSON.stringify(openAPIV3Schema);
  const same = byContent.get(content);
  if (same) {
    byContent.delete(content);
    byContent.set(content, same);
    cache.set(openAPIV3Schema, same);
    return same;
  }
  const schema = openAPIV3Schema;
  // Compiled eagerly so a schema ajv cannot take fails where it is registered, not on first use.
  const translated = toAjvSchema(schema);
  const check: ValidateFunction = ajv().compile(translated);
  // The compiled function stands alone; dropping ajv's own cache entry keeps a server that
  // re-registers CRDs for months from holding every schema it ever saw (ours is the WeakMap).
  ajv().removeSchema(translated);
  const compiled: CompiledSchema = {
    applyDefaults(obj) {
      defaults(schema, obj);
    },
    prune(obj) {
      const dropped: string[] = [];
      pruneWalk(schema, obj, '', true, dropped);
      return dropped;
    },
    validate(obj) {
      const causes: FieldCause[] = [];
      const seen = new Set<string>();
      if (!check(obj)) {
        for (const e of check.errors ?? []) {
          if (insideCombinatorBranch(e.schemaPath)) continue;
          const c = toCause(e, obj);
          if (!c) continue;
          const key = `${c.field}\u0000${c.message}`;
          if (seen.has(key)) continue;
          seen.add(key);
          causes.push(c);
        }
      }
      listDuplicates(schema, obj, '', causes);
      return causes;
    },
  };
  cache.set(openAPIV3Schema, compiled);
  byContent.set(content, compiled);
  if (byContent.size > CONTENT_CACHE_SIZE) byContent.delete(byContent.keys().next().value as string);
  return compiled;
}
