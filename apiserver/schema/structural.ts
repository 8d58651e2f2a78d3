/**
 * What kube-apiserver refuses when a CustomResourceDefinition is created: invalid names, not
 * exactly one storage version, schemas that are not structural
 * (https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema),
 * defaults that do not validate or would be pruned, unparsable printer columns.
 *
 * Two checks go further than Kubernetes, because both hide real bugs of a CRD: a `required`
 * field that is not among `properties` (it would always be pruned, so every object would be
 * refused), and a printer column whose jsonPath names a field the schema does not have.
 */
import { compileSchema, propertySchema, type CauseReason, type FieldCause } from './validate.js';
import type { CustomResourceDefinition, CustomResourceDefinitionVersion, JSONSchemaProps, PrinterColumn } from './types.js';

const SCHEMA_KEYS = new Set([
  'type', 'format', 'title', 'description', 'properties', 'required', 'items', 'additionalProperties', 'enum',
  'default', 'example', 'externalDocs', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf',
  'minLength', 'maxLength', 'pattern', 'minItems', 'maxItems', 'uniqueItems', 'minProperties', 'maxProperties',
  'nullable', 'allOf', 'oneOf', 'anyOf', 'not', 'x-kubernetes-preserve-unknown-fields', 'x-kubernetes-int-or-string',
  'x-kubernetes-embedded-resource', 'x-kubernetes-list-type', 'x-kubernetes-list-map-keys', 'x-kubernetes-map-type',
  'x-kubernetes-validations',
]);
const UNSUPPORTED_KEYS = new Set(['$ref', '$schema', 'id', 'definitions', 'patternProperties', 'dependencies', 'additionalItems']);
const TYPES = new Set(['object', 'array', 'string', 'integer', 'number', 'boolean']);
/** Not allowed inside allOf/anyOf/oneOf/not: they would make the skeleton ambiguous. */
const SKELETON_ONLY = [
  'type', 'description', 'default', 'additionalProperties', 'nullable', 'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-embedded-resource', 'x-kubernetes-int-or-string', 'x-kubernetes-list-type', 'x-kubernetes-list-map-keys',
  'x-kubernetes-map-type',
] as const;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const KIND = /^[A-Za-z]([-A-Za-z0-9]*[A-Za-z0-9])?$/;

type Raw = Record<string, unknown>;

function isObject(v: unknown): v is Raw {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

class Causes {
  readonly list: FieldCause[] = [];
  add(reason: CauseReason, field: string, message: string): void {
    this.list.push({ reason, field, message });
  }
  required(field: string, detail: string): void {
    this.add('FieldValueRequired', field, `Required value: ${detail}`);
  }
  invalid(field: string, value: unknown, detail: string): void {
    this.add('FieldValueInvalid', field, `Invalid value: ${JSON.stringify(value) ?? 'null'}: ${detail}`);
  }
  forbidden(field: string, detail: string): void {
    this.add('FieldValueForbidden', field, `Forbidden: ${detail}`);
  }
}

function matchesType(v: unknown, type: string | undefined): boolean {
  switch (type) {
    case undefined:
      return true;
    case 'object':
      return isObject(v);
    case 'array':
      return Array.isArray(v);
    case 'integer':
      return typeof v === 'number' && Number.isInteger(v);
    case 'number':
      return typeof v === 'number';
    default:
      return typeof v === type;
  }
}

/** Checks every schema node has, in the skeleton or inside a logical junctor. */
function checkNode(s: Raw, path: string, c: Causes): void {
  for (const k of Object.keys(s)) {
    if (UNSUPPORTED_KEYS.has(k)) c.forbidden(`${path}.${k}`, `${k} is not supported in CustomResourceDefinition schemas`);
    else if (!SCHEMA_KEYS.has(k)) c.forbidden(`${path}.${k}`, `unknown field "${k}" of JSONSchemaProps`);
  }
  for (const k of ['description', 'title', 'format', 'pattern']) if (s[k] !== undefined && typeof s[k] !== 'string') c.invalid(`${path}.${k}`, s[k], 'must be a string');
  const type = s.type;
  if (type !== undefined && (typeof type !== 'string' || !TYPES.has(type))) {
    c.add('FieldValueNotSupported', `${path}.type`, `Unsupported value: ${JSON.stringify(type)}: supported values: ${[...TYPES].map((t) => `"${t}"`).join(', ')}`);
  }
  if (s.pattern !== undefined) {
    try {
      new RegExp(String(s.pattern), 'u');
    } catch {
      c.invalid(`${path}.pattern`, s.pattern, 'must be a valid regular expression');
    }
  }
  if (Array.isArray(s.enum)) {
    s.enum.forEach((v, i) => {
      if (!(v === null && s.nullable === true) && !matchesType(v, type as string | undefined)) c.invalid(`${path}.enum[${i}]`, v, `must be of type ${String(type)}`);
    });
  } else if (s.enum !== undefined) c.invalid(`${path}.enum`, s.enum, 'must be a list');
  for (const k of ['exclusiveMinimum', 'exclusiveMaximum', 'nullable', 'uniqueItems']) {
    if (s[k] !== undefined && typeof s[k] !== 'boolean') c.invalid(`${path}.${k}`, s[k], 'must be a boolean (OpenAPI v3.0: it qualifies minimum/maximum)');
  }
  for (const k of ['minimum', 'maximum', 'multipleOf']) if (s[k] !== undefined && typeof s[k] !== 'number') c.invalid(`${path}.${k}`, s[k], 'must be a number');
  for (const k of ['minLength', 'maxLength', 'minItems', 'maxItems', 'minProperties', 'maxProperties']) {
    const v = s[k];
    if (v !== undefined && !(typeof v === 'number' && Number.isInteger(v) && v >= 0)) c.invalid(`${path}.${k}`, v, 'must be a non-negative integer');
  }
  if (s.uniqueItems === true) c.forbidden(`${path}.uniqueItems`, 'uniqueItems cannot be set to true since the runtime complexity becomes quadratic');
  if (s.additionalProperties === false) c.forbidden(`${path}.additionalProperties`, 'additionalProperties cannot be set to false');
  if (s.additionalProperties !== undefined && s.properties !== undefined) c.forbidden(`${path}.additionalProperties`, 'additionalProperties and properties are mutual exclusive');
  if (Array.isArray(s.items)) c.forbidden(`${path}.items`, 'items must be a schema object and not an array');
  else if (s.items !== undefined && !isObject(s.items)) c.invalid(`${path}.items`, s.items, 'must be a schema object');
  if (s.additionalProperties !== undefined && typeof s.additionalProperties !== 'boolean' && !isObject(s.additionalProperties)) {
    c.invalid(`${path}.additionalProperties`, s.additionalProperties, 'must be a schema object or a boolean');
  }
  if (s.not !== undefined && !isObject(s.not)) c.invalid(`${path}.not`, s.not, 'must be a schema object');
  if (s.properties !== undefined && !isObject(s.properties)) c.invalid(`${path}.properties`, s.properties, 'must be a map of schemas');
  if (s.required !== undefined) {
    if (!Array.isArray(s.required) || s.required.some((r) => typeof r !== 'string')) c.invalid(`${path}.required`, s.required, 'must be a list of field names');
    else {
      const dup = s.required.find((r, i) => (s.required as string[]).indexOf(r) !== i);
      if (dup !== undefined) c.add('FieldValueDuplicate', `${path}.required`, `Duplicate value: ${JSON.stringify(dup)}`);
    }
  }
  if (s['x-kubernetes-preserve-unknown-fields'] === false) c.invalid(`${path}.x-kubernetes-preserve-unknown-fields`, false, 'must be true or undefined');
  if (s['x-kubernetes-validations'] !== undefined) {
    const rules = s['x-kubernetes-validations'];
    if (!Array.isArray(rules) || rules.some((r) => !isObject(r) || typeof r.rule !== 'string' || r.rule === '')) {
      c.invalid(`${path}.x-kubernetes-validations`, rules, 'must be a list of {rule, message?}');
    }
  }
  for (const j of ['allOf', 'anyOf', 'oneOf'] as const) {
    if (s[j] !== undefined && (!Array.isArray(s[j]) || (s[j] as unknown[]).some((b) => !isObject(b)))) c.invalid(`${path}.${j}`, s[j], 'must be a list of schemas');
  }
}

/** Checks that only mean something in the skeleton (where the node is reached by properties/items). */
function checkSkeletonExtensions(s: Raw, path: string, c: Causes): void {
  const type = s.type as string | undefined;
  const listType = s['x-kubernetes-list-type'];
  const mapKeys = s['x-kubernetes-list-map-keys'];
  const items = isObject(s.items) ? s.items : undefined;
  if (type === 'array' && !s.items) c.required(`${path}.items`, 'must be specified for type array');
  if (listType !== undefined) {
    if (type !== 'array') c.invalid(`${path}.x-kubernetes-list-type`, listType, 'must only be used if type is array');
    if (listType !== 'atomic' && listType !== 'set' && listType !== 'map') {
      c.add('FieldValueNotSupported', `${path}.x-kubernetes-list-type`, `Unsupported value: ${JSON.stringify(listType)}: supported values: "atomic", "set", "map"`);
    }
    if (listType === 'set' && items && (items.type === 'object' ? items['x-kubernetes-map-type'] !== 'atomic' : items.type === 'array' && items['x-kubernetes-list-type'] !== 'atomic')) {
      c.invalid(`${path}.items`, items.type, 'x-kubernetes-list-type set requires scalar items, or atomic maps/lists');
    }
  }
  if (listType === 'map') {
    if (!items || items.type !== 'object') c.invalid(`${path}.items.type`, items?.type, 'must be object if x-kubernetes-list-type is map');
    if (!Array.isArray(mapKeys) || mapKeys.length === 0) c.required(`${path}.x-kubernetes-list-map-keys`, 'must not be empty if x-kubernetes-list-type is map');
    else if (items) {
      const props = isObject(items.properties) ? items.properties : {};
      const req = Array.isArray(items.required) ? items.required : [];
      mapKeys.forEach((key, i) => {
        const keyPath = `${path}.x-kubernetes-list-map-keys[${i}]`;
        const ks = Object.hasOwn(props, String(key)) ? props[String(key)] : undefined;
        if (!isObject(ks)) return c.invalid(keyPath, key, 'entries must all be names of item properties');
        if (ks.type === 'object' || ks.type === 'array') c.invalid(keyPath, key, 'map keys must be scalars');
        if (!req.includes(key) && ks.default === undefined) c.required(keyPath, `map key "${String(key)}" must be required or have a default`);
      });
      if (new Set(mapKeys).size !== mapKeys.length) c.add('FieldValueDuplicate', `${path}.x-kubernetes-list-map-keys`, 'Duplicate value: map keys must be unique');
    }
  } else if (mapKeys !== undefined) {
    c.forbidden(`${path}.x-kubernetes-list-map-keys`, 'must only be used if x-kubernetes-list-type is map');
  }
  const mapType = s['x-kubernetes-map-type'];
  if (mapType !== undefined) {
    if (mapType !== 'atomic' && mapType !== 'granular') c.add('FieldValueNotSupported', `${path}.x-kubernetes-map-type`, `Unsupported value: ${JSON.stringify(mapType)}: supported values: "atomic", "granular"`);
    if (type !== 'object') c.invalid(`${path}.x-kubernetes-map-type`, mapType, 'must only be used if type is object');
  }
  if (s['x-kubernetes-int-or-string'] === true && type !== undefined) c.invalid(`${path}.type`, type, 'must be empty if x-kubernetes-int-or-string is true');
  if (s['x-kubernetes-embedded-resource'] === true) {
    if (type !== 'object') c.invalid(`${path}.type`, type, 'must be object if x-kubernetes-embedded-resource is true');
    if (!s.properties && s['x-kubernetes-preserve-unknown-fields'] !== true) c.required(`${path}.properties`, 'must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields');
  }
  // Stricter than Kubernetes: a required field that is not specified would always be pruned.
  if (Array.isArray(s.required) && isObject(s.properties) && s['x-kubernetes-preserve-unknown-fields'] !== true) {
    for (const r of s.required) if (typeof r === 'string' && !Object.hasOwn(s.properties, r)) c.invalid(`${path}.required`, r, 'must be specified in properties (it would always be pruned)');
  }
}

function checkDefault(s: Raw, path: string, c: Causes, inMetadata: boolean): void {
  if (!('default' in s)) return;
  if (inMetadata) return c.forbidden(`${path}.default`, 'must not be set inside metadata');
  const value = s.default;
  if (value === null) {
    if (s.nullable !== true) c.invalid(`${path}.default`, null, 'must not be null for a field that is not nullable');
    return;
  }
  let compiled;
  try {
    compiled = compileSchema(s as JSONSchemaProps);
  } catch {
    return; // the node's own problems (e.g. its pattern) are reported already
  }
  const copy = structuredClone(value);
  compiled.applyDefaults(copy);
  const dropped = compiled.prune(copy);
  if (dropped.length > 0) c.invalid(`${path}.default`, value, `must not have unknown fields: ${dropped.join(', ')}`);
  for (const cause of compiled.validate(copy)) c.add(cause.reason, `${path}.default${cause.field ? '.' + cause.field : ''}`, cause.message);
}

/** metadata in the root or an embedded resource: only name/generateName may be restricted. */
function checkMetadata(s: Raw, path: string, c: Causes): void {
  for (const k of Object.keys(s)) {
    if (k !== 'type' && k !== 'description' && k !== 'properties') c.forbidden(`${path}.${k}`, 'must not specify anything other than name and generateName, but metadata is implicitly specified');
  }
  if (s.type !== 'object') c.invalid(`${path}.type`, s.type, 'must be object');
  const props = isObject(s.properties) ? s.properties : {};
  for (const [k, v] of Object.entries(props)) {
    const p = `${path}.properties[${k}]`;
    if (k !== 'name' && k !== 'generateName') c.forbidden(p, 'must not specify anything other than name and generateName, but metadata is implicitly specified');
    else if (!isObject(v) || v.type !== 'string') c.invalid(`${p}.type`, isObject(v) ? v.type : v, 'must be string');
    else if ('default' in v) c.forbidden(`${p}.default`, 'must not be set inside metadata');
  }
}

function skeleton(s: unknown, path: string, c: Causes, where: 'root' | 'field' | 'item', envelope: boolean): void {
  if (!isObject(s)) return c.invalid(path, s, 'must be a schema object');
  checkNode(s, path, c);
  checkSkeletonExtensions(s, path, c);
  const typeless = s['x-kubernetes-int-or-string'] === true || s['x-kubernetes-preserve-unknown-fields'] === true;
  if (where === 'root' && s.type !== 'object') c.invalid(`${path}.type`, s.type ?? '', 'must be object at the root');
  else if (!s.type && !typeless) c.required(`${path}.type`, where === 'item' ? 'must not be empty for specified array items' : 'must not be empty for specified object fields');
  checkDefault(s, path, c, false);
  const embedded = envelope || s['x-kubernetes-embedded-resource'] === true;
  if (isObject(s.properties)) {
    for (const [k, v] of Object.entries(s.properties)) {
      const p = `${path}.properties[${k}]`;
      if (embedded && k === 'metadata' && isObject(v)) checkMetadata(v, p, c);
      else if (embedded && (k === 'apiVersion' || k === 'kind') && isObject(v) && v.type !== 'string') c.invalid(`${p}.type`, v.type, 'must be string');
      else skeleton(v, p, c, 'field', false);
    }
  }
  if (isObject(s.items)) skeleton(s.items, `${path}.items`, c, 'item', false);
  if (isObject(s.additionalProperties)) skeleton(s.additionalProperties, `${path}.additionalProperties`, c, 'field', false);
  junctors(s, path, s, c);
}

function junctors(s: Raw, path: string, skel: Raw, c: Causes): void {
  for (const j of ['allOf', 'anyOf', 'oneOf'] as const) {
    const list = s[j];
    if (Array.isArray(list)) list.forEach((b, i) => valueValidation(b, `${path}.${j}[${i}]`, skel, c));
  }
  if (s.not !== undefined) valueValidation(s.not, `${path}.not`, skel, c);
}

/** A schema inside allOf/anyOf/oneOf/not: value validations only, on fields the skeleton specifies. */
function valueValidation(s: unknown, path: string, skel: Raw, c: Causes): void {
  if (!isObject(s)) return c.invalid(path, s, 'must be a schema object');
  checkNode(s, path, c);
  const intOrString = skel['x-kubernetes-int-or-string'] === true && (s.type === 'integer' || s.type === 'string') && Object.keys(s).length === 1;
  for (const k of SKELETON_ONLY) {
    if (s[k] !== undefined && !(k === 'type' && intOrString)) c.forbidden(`${path}.${k}`, `must not be used inside allOf, anyOf, oneOf or not`);
  }
  if (isObject(s.properties)) {
    const skelProps = isObject(skel.properties) ? skel.properties : {};
    const skelAdditional = isObject(skel.additionalProperties) ? skel.additionalProperties : undefined;
    for (const [k, v] of Object.entries(s.properties)) {
      const target = (Object.hasOwn(skelProps, k) ? skelProps[k] : undefined) ?? skelAdditional;
      const p = `${path}.properties[${k}]`;
      if (!isObject(target)) c.required(p, 'must be specified in the structural part of the schema too');
      else valueValidation(v, p, target, c);
    }
  }
  if (isObject(s.items)) {
    if (!isObject(skel.items)) c.required(`${path}.items`, 'must be specified in the structural part of the schema too');
    else valueValidation(s.items, `${path}.items`, skel.items, c);
  }
  if (Array.isArray(s.required) && isObject(skel.properties) && skel['x-kubernetes-preserve-unknown-fields'] !== true) {
    for (const r of s.required) if (typeof r === 'string' && !Object.hasOwn(skel.properties, r)) c.invalid(`${path}.required`, r, 'must be specified in properties (it would always be pruned)');
  }
  junctors(s, path, skel, c);
}

function structuralCauses(schema: JSONSchemaProps, base: string): FieldCause[] {
  const c = new Causes();
  skeleton(schema, base, c, 'root', true);
  return c.list;
}

/** Violations of Kubernetes' structural-schema rules, each naming its path (empty = structural). */
export function structuralErrors(schema: JSONSchemaProps): string[] {
  return structuralCauses(schema, 'openAPIV3Schema').map((e) => `${e.field}: ${e.message}`);
}

// ---------------------------------------------------------------------------------------------
// Printer columns: kube's simple JSONPath subset, resolved against the schema.

type PathSegment = { field: string } | { index: true; filter?: string[] };

function parseJsonPath(p: string): PathSegment[] | string {
  if (!p.startsWith('.')) return 'must be a simple json path starting with .';
  const segs: PathSegment[] = [];
  let i = 0;
  while (i < p.length) {
    const rest = p.slice(i);
    let m: RegExpExecArray | null;
    if ((m = /^\.([A-Za-z0-9_$-]+)/.exec(rest))) segs.push({ field: m[1] as string });
    else if ((m = /^\[(?:'([^']+)'|"([^"]+)")\]/.exec(rest))) segs.push({ field: (m[1] ?? m[2]) as string });
    else if ((m = /^\[(\*|-?\d+(:-?\d*)?)\]/.exec(rest))) segs.push({ index: true });
    else if ((m = /^\[\?\(@((?:\.[A-Za-z0-9_$-]+)+)(\s*(==|!=|<=|>=|<|>)\s*("[^"]*"|'[^']*'|-?\d+(\.\d+)?|true|false))?\)\]/.exec(rest))) {
      segs.push({ index: true, filter: (m[1] as string).slice(1).split('.') });
    } else return `cannot parse "${rest}"`;
    i += (m[0] as string).length;
  }
  return segs;
}

/** undefined when every named field exists in the schema (or below a field that keeps unknown fields). */
function resolveJsonPath(root: JSONSchemaProps, segs: PathSegment[]): string | undefined {
  const first = segs[0];
  if (first && 'field' in first && first.field === 'metadata') return undefined;
  let node: JSONSchemaProps | undefined = root;
  let at = '';
  const field = (n: JSONSchemaProps, name: string): JSONSchemaProps | 'open' | undefined => {
    if (n['x-kubernetes-preserve-unknown-fields'] === true && !propertySchema(n, name)) return 'open';
    return propertySchema(n, name) ?? (typeof n.additionalProperties === 'object' ? n.additionalProperties : undefined);
  };
  for (const seg of segs) {
    if (!node) return undefined;
    if ('field' in seg) {
      const next = field(node, seg.field);
      if (next === 'open') return undefined;
      if (!next) return `field "${seg.field}" is not in the schema${at ? ` at ${at}` : ''}`;
      node = next;
      at += `.${seg.field}`;
    } else {
      if (node.type !== 'array' || !node.items) return `${at} is not a list`;
      node = node.items;
      let n: JSONSchemaProps | 'open' | undefined = node;
      for (const part of seg.filter ?? []) {
        if (n === 'open') break;
        n = field(n, part);
        if (n === undefined) return `filter field "@.${(seg.filter ?? []).join('.')}" is not in the items of ${at}`;
      }
      at += '[]';
    }
  }
  return undefined;
}

const COLUMN_TYPES = ['integer', 'number', 'string', 'boolean', 'date'];
const COLUMN_FORMATS = ['int32', 'int64', 'float', 'double', 'byte', 'date', 'date-time', 'password'];

function checkColumns(cols: PrinterColumn[], schema: JSONSchemaProps | undefined, path: string, c: Causes): void {
  const names = new Set<string>();
  cols.forEach((col, i) => {
    const p = `${path}[${i}]`;
    if (!isObject(col)) return c.invalid(p, col, 'must be an object');
    if (!col.name) c.required(`${p}.name`, 'must not be empty');
    else if (names.has(col.name.toLowerCase())) c.add('FieldValueDuplicate', `${p}.name`, `Duplicate value: ${JSON.stringify(col.name)}`);
    names.add(col.name?.toLowerCase());
    if (!COLUMN_TYPES.includes(col.type)) c.add('FieldValueNotSupported', `${p}.type`, `Unsupported value: ${JSON.stringify(col.type)}: supported values: ${COLUMN_TYPES.map((t) => `"${t}"`).join(', ')}`);
    if (col.format !== undefined && !COLUMN_FORMATS.includes(col.format)) c.add('FieldValueNotSupported', `${p}.format`, `Unsupported value: ${JSON.stringify(col.format)}: supported values: ${COLUMN_FORMATS.map((t) => `"${t}"`).join(', ')}`);
    if (col.priority !== undefined && !(Number.isInteger(col.priority) && col.priority >= 0)) c.invalid(`${p}.priority`, col.priority, 'must be a non-negative integer');
    if (!col.jsonPath || typeof col.jsonPath !== 'string') return c.required(`${p}.jsonPath`, 'must not be empty');
    const segs = parseJsonPath(col.jsonPath);
    if (typeof segs === 'string') return c.invalid(`${p}.jsonPath`, col.jsonPath, segs);
    const unresolved = schema ? resolveJsonPath(schema, segs) : undefined;
    if (unresolved) c.invalid(`${p}.jsonPath`, col.jsonPath, unresolved);
  });
}

/** Every problem of a CRD object as kube-apiserver would report it on create: names, versions (exactly one storage), structural schemas, printer column jsonPaths. */
export function crdErrors(crd: CustomResourceDefinition): FieldCause[] {
  const c = new Causes();
  if (crd.apiVersion !== 'apiextensions.k8s.io/v1') c.add('FieldValueNotSupported', 'apiVersion', `Unsupported value: ${JSON.stringify(crd.apiVersion)}: supported values: "apiextensions.k8s.io/v1"`);
  if (crd.kind !== 'CustomResourceDefinition') c.add('FieldValueNotSupported', 'kind', `Unsupported value: ${JSON.stringify(crd.kind)}: supported values: "CustomResourceDefinition"`);
  const spec = isObject(crd.spec) ? crd.spec : undefined;
  if (!spec) {
    c.required('spec', 'must be specified');
    return c.list;
  }
  const names = isObject(spec.names) ? spec.names : undefined;
  const group = spec.group;
  if (typeof group !== 'string' || !group) c.required('spec.group', 'must not be empty');
  else if (!DNS_SUBDOMAIN.test(group) || group.length > 253) c.invalid('spec.group', group, 'a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, \'-\' or \'.\'');
  else if (!group.includes('.')) c.invalid('spec.group', group, 'should be a domain with at least one dot');
  if (!names) c.required('spec.names', 'must be specified');
  else {
    const label = (field: string, v: unknown, required: boolean): void => {
      if (v === undefined || v === '') {
        if (required) c.required(field, 'must not be empty');
      } else if (typeof v !== 'string' || !DNS_LABEL.test(v) || v.length > 63) c.invalid(field, v, 'a lowercase RFC 1123 label must consist of lower case alphanumeric characters or \'-\'');
    };
    label('spec.names.plural', names.plural, true);
    label('spec.names.singular', names.singular, false);
    if (!names.kind) c.required('spec.names.kind', 'must not be empty');
    else if (typeof names.kind !== 'string' || !KIND.test(names.kind)) c.invalid('spec.names.kind', names.kind, 'may have mixed case, but should otherwise match: [a-z]([-a-z0-9]*[a-z0-9])?');
    if (names.listKind !== undefined) {
      if (typeof names.listKind !== 'string' || !KIND.test(names.listKind)) c.invalid('spec.names.listKind', names.listKind, 'may have mixed case, but should otherwise match: [a-z]([-a-z0-9]*[a-z0-9])?');
      else if (names.listKind === names.kind) c.invalid('spec.names.listKind', names.listKind, 'kind and listKind may not be the same');
    }
    for (const k of ['shortNames', 'categories'] as const) {
      const list: unknown = names[k];
      if (list === undefined) continue;
      if (!Array.isArray(list)) c.invalid(`spec.names.${k}`, list, 'must be a list of names');
      else list.forEach((s, i) => label(`spec.names.${k}[${i}]`, s, true));
    }
    if (crd.metadata?.name !== `${String(names.plural)}.${String(group)}`) {
      c.invalid('metadata.name', crd.metadata?.name, 'must be spec.names.plural+"."+spec.group');
    }
  }
  if (spec.scope !== 'Namespaced' && spec.scope !== 'Cluster') c.add('FieldValueNotSupported', 'spec.scope', `Unsupported value: ${JSON.stringify(spec.scope)}: supported values: "Cluster", "Namespaced"`);
  if (spec.preserveUnknownFields === true) c.invalid('spec.preserveUnknownFields', true, 'must be false in apiextensions.k8s.io/v1');
  const versions: CustomResourceDefinitionVersion[] = Array.isArray(spec.versions) ? spec.versions : [];
  if (spec.versions !== undefined && !Array.isArray(spec.versions)) c.invalid('spec.versions', spec.versions, 'must be a list');
  if (versions.length === 0) c.required('spec.versions', 'must have exactly one version marked as storage version');
  const seen = new Set<string>();
  versions.forEach((v, i) => {
    const p = `spec.versions[${i}]`;
    if (!isObject(v)) return c.invalid(p, v, 'must be an object');
    if (!v.name) c.required(`${p}.name`, 'must not be empty');
    else if (typeof v.name !== 'string' || !DNS_LABEL.test(v.name)) c.invalid(`${p}.name`, v.name, 'a DNS-1035 label must consist of lower case alphanumeric characters or \'-\'');
    else if (seen.has(v.name)) c.add('FieldValueDuplicate', `${p}.name`, `Duplicate value: ${JSON.stringify(v.name)}`);
    seen.add(v.name);
    if (typeof v.served !== 'boolean') c.required(`${p}.served`, 'must be true or false');
    if (typeof v.storage !== 'boolean') c.required(`${p}.storage`, 'must be true or false');
    const schema = isObject(v.schema) ? v.schema.openAPIV3Schema : undefined;
    if (!schema) c.required(`${p}.schema.openAPIV3Schema`, 'schemas are required');
    else c.list.push(...structuralCauses(schema, `${p}.schema.openAPIV3Schema`));
    const sub = v.subresources;
    if (sub?.status !== undefined && !isObject(sub.status)) c.invalid(`${p}.subresources.status`, sub.status, 'must be an object');
    if (sub?.scale !== undefined && !isObject(sub.scale)) c.invalid(`${p}.subresources.scale`, sub.scale, 'must be an object');
    else if (sub?.scale) {
      if (!/^\.spec\.[A-Za-z0-9_.]+$/.test(sub.scale.specReplicasPath ?? '')) c.invalid(`${p}.subresources.scale.specReplicasPath`, sub.scale.specReplicasPath, 'should be a json path under .spec');
      if (!/^\.status\.[A-Za-z0-9_.]+$/.test(sub.scale.statusReplicasPath ?? '')) c.invalid(`${p}.subresources.scale.statusReplicasPath`, sub.scale.statusReplicasPath, 'should be a json path under .status');
    }
    if (v.additionalPrinterColumns !== undefined) {
      if (!Array.isArray(v.additionalPrinterColumns)) c.invalid(`${p}.additionalPrinterColumns`, v.additionalPrinterColumns, 'must be a list');
      else checkColumns(v.additionalPrinterColumns, schema, `${p}.additionalPrinterColumns`, c);
    }
  });
  const valid = versions.filter((v) => isObject(v));
  const versionNames = valid.map((v) => v.name);
  if (versions.length > 0 && valid.filter((v) => v.storage === true).length !== 1) {
    c.invalid('spec.versions', versionNames, 'must have exactly one version marked as storage version');
  }
  if (versions.length > 0 && !valid.some((v) => v.served === true)) c.invalid('spec.versions', versionNames, 'must have at least one served version');
  return c.list;
}

