/**
 * `meta.k8s.io/v1` Table output (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`) built the
 * way kube-apiserver builds it for custom resources (apiextensions' tableconvertor):
 *
 * - columns: `Name` (format `name`), then the CRD's `additionalPrinterColumns` with their
 *   priority (kubectl shows priority > 0 only with `-o wide`); a CRD without columns gets `Age`.
 * - cells are typed per column: `integer` and `number` are JSON numbers, `boolean` a boolean,
 *   `string` the printed value (maps and lists as compact JSON), `date` is humanized on the server
 *   ("5m", "3d4h") exactly as kube-apiserver does; kubectl prints cells as received. A missing
 *   value, or one of the wrong type, is `null`, which kubectl prints as `<none>`.
 * - only the first value a column's JSONPath selects is shown.
 * - `rows[].object` per `includeObject`: `Metadata` (the default, and what kubectl asks for) is a
 *   `PartialObjectMetadata`; `Object` is the whole object; `None` is null.
 */

import { evalJsonPath } from './jsonpath.js';
import type { PrinterColumn } from './schema/types.js';

export type { PrinterColumn } from './schema/types.js';

export type IncludeObject = 'None' | 'Metadata' | 'Object';

export interface TableListMeta {
  resourceVersion?: string;
  continue?: string;
  remainingItemCount?: number;
}

export interface TableColumnDefinition {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

export type TableCell = string | number | boolean | null | Record<string, unknown> | unknown[];

export interface TableRow {
  cells: TableCell[];
  object: Record<string, unknown> | null;
}

export interface Table {
  kind: 'Table';
  apiVersion: 'meta.k8s.io/v1';
  metadata: TableListMeta;
  columnDefinitions: TableColumnDefinition[];
  rows: TableRow[];
}

export interface TableOptions {
  includeObject?: IncludeObject;
  listMeta?: TableListMeta;
  /** Omit columnDefinitions (kube does so on every watch event after the first). */
  noHeaders?: boolean;
  /** The time ages are computed against; defaults to now. */
  now?: Date;
}

/** ObjectMeta's documentation of `name`, which kube uses as the Name column's description. */
const nameDescription =
  'Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names';

/** ObjectMeta's documentation of `creationTimestamp`, the default Age column's description. */
const creationTimestampDescription =
  'CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata';

/** The columns kube-apiserver serves for a CRD version that declares none. */
export const defaultPrinterColumns: readonly PrinterColumn[] = [
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp', description: creationTimestampDescription },
];

/** Column definitions: Name, then the CRD's columns (or the default Age column when it has none). */
export function columnDefinitions(columns: PrinterColumn[]): TableColumnDefinition[] {
  const effective = columns.length > 0 ? columns : defaultPrinterColumns;
  return [
    { name: 'Name', type: 'string', format: 'name', description: nameDescription, priority: 0 },
    ...effective.map((c) => ({
      name: c.name,
      type: c.type,
      format: c.format ?? '',
      description: c.description ? c.description : `Custom resource definition column (in JSONPath format): ${c.jsonPath}`,
      priority: c.priority ?? 0,
    })),
  ];
}

/**
 * A Table of `objects` (one row each, in order). Pass `listMeta` for a list; without it a Table of
 * one object carries that object's resourceVersion, as kube-apiserver's does for a GET.
 */
export function toTable(columns: PrinterColumn[], objects: object[], options: TableOptions = {}): Table {
  const effective = columns.length > 0 ? columns : [...defaultPrinterColumns];
  const now = options.now ?? new Date();
  let listMeta = options.listMeta;
  if (listMeta === undefined && objects.length === 1) {
    const rv = metadataOf(objects[0] as Record<string, unknown>).resourceVersion;
    if (typeof rv === 'string') listMeta = { resourceVersion: rv };
  }
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: listMetaOf(listMeta),
    columnDefinitions: options.noHeaders ? [] : columnDefinitions(columns),
    rows: objects.map((o) => row(effective, o as Record<string, unknown>, options.includeObject ?? 'Metadata', now)),
  };
}

/**
 * The Table one watch event carries when a client watches in Table form: one row, the object's
 * resourceVersion as the table's. Pass `noHeaders: true` for every event after the first, as
 * kube-apiserver does.
 */
export function toTableRowForWatch(
  columns: PrinterColumn[],
  obj: object,
  options: Omit<TableOptions, 'listMeta'> = {},
): Table {
  return toTable(columns, [obj], options);
}

function listMetaOf(m: TableListMeta | undefined): TableListMeta {
  const out: TableListMeta = {};
  if (m?.resourceVersion) out.resourceVersion = m.resourceVersion;
  if (m?.continue) out.continue = m.continue;
  if (m?.remainingItemCount !== undefined && m.remainingItemCount !== null) out.remainingItemCount = m.remainingItemCount;
  return out;
}

function metadataOf(obj: Record<string, unknown>): Record<string, unknown> {
  const m = obj.metadata;
  return typeof m === 'object' && m !== null && !Array.isArray(m) ? (m as Record<string, unknown>) : {};
}

function row(columns: PrinterColumn[], obj: Record<string, unknown>, include: IncludeObject, now: Date): TableRow {
  const name = metadataOf(obj).name;
  const cells: TableCell[] = [typeof name === 'string' ? name : ''];
  for (const c of columns) cells.push(cell(c, obj, now));
  return { cells, object: rowObject(obj, include) };
}

function rowObject(obj: Record<string, unknown>, include: IncludeObject): Record<string, unknown> | null {
  switch (include) {
    case 'None':
      return null;
    case 'Object':
      return obj;
    case 'Metadata':
      return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: metadataOf(obj) };
  }
}

function cell(column: PrinterColumn, obj: Record<string, unknown>, now: Date): TableCell {
  let results: unknown[];
  try {
    results = evalJsonPath(column.jsonPath, obj);
  } catch {
    return null;
  }
  if (results.length === 0) return null;
  const value = results[0];
  if (value === null || value === undefined) return null;
  switch (column.type) {
    case 'string':
      return printValue(value);
    case 'integer':
      return typeof value === 'number' ? Math.trunc(value) : null;
    case 'number':
      return typeof value === 'number' ? value : null;
    case 'boolean':
      return typeof value === 'boolean' ? value : null;
    case 'date':
      return typeof value === 'string' ? humanDate(value, now) : null;
    default:
      return null;
  }
}

/** How kube's JSONPath printer renders one value: strings as is, maps and lists as JSON. */
function printValue(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return value;
    case 'number':
      return goFloat(value);
    case 'boolean':
      return String(value);
    default:
      return goJson(value);
  }
}

/** Go's `%v` of a decoded JSON number: integers plainly, others in %g form ("1.5e-07"). */
function goFloat(n: number): string {
  if (Number.isInteger(n) && Math.abs(n) < 2 ** 63) return BigInt(n).toString();
  if (!Number.isFinite(n)) return n > 0 ? '+Inf' : n < 0 ? '-Inf' : 'NaN';
  const exp = Math.floor(Math.log10(Math.abs(n)));
  if (exp < -4 || exp >= 21) {
    const [mant, e] = n.toExponential().split('e');
    const sign = e.startsWith('-') ? '-' : '+';
    const digits = e.replace(/^[-+]/, '').padStart(2, '0');
    return `${mant}e${sign}${digits}`;
  }
  return String(n);
}

/** encoding/json's output: map keys sorted, <, > and & escaped. */
function goJson(value: unknown): string {
  const sortKeys = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sortKeys);
    if (typeof v === 'object' && v !== null) {
      const o = v as Record<string, unknown>;
      return Object.fromEntries(
        Object.keys(o)
          .sort()
          .map((k) => [k, sortKeys(o[k])]),
      );
    }
    return v;
  };
  return JSON.stringify(sortKeys(value))
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026');
}

const rfc3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** A `date` cell: the age of the timestamp, or `<invalid>` / `<unknown>` as kube prints them. */
function humanDate(value: string, now: Date): string {
  if (value === '' || value === 'null') return '<unknown>';
  if (!rfc3339.test(value)) return '<invalid>';
  const t = Date.parse(value);
  if (Number.isNaN(t)) return '<invalid>';
  if (/^0001-01-01T00:00:00(\.0+)?Z$/.test(value)) return '<unknown>';
  return humanDuration(now.getTime() - t);
}

/**
 * apimachinery's duration.HumanDuration: the short ages kubectl shows ("45s", "2m30s", "5h3m",
 * "3d4h", "2y10d").
 */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 60 * 2) return `${seconds}s`;
  const minutes = Math.trunc(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 60 * 3) return `${minutes}m`;
  const hours = Math.trunc(minutes / 60);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${Math.trunc(hours / 24)}d` : `${Math.trunc(hours / 24)}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const dy = Math.trunc(hours / 24) % 365;
    const y = Math.trunc(hours / 24 / 365);
    return dy === 0 ? `${y}y` : `${y}y${dy}d`;
  }
  return `${Math.trunc(hours / 24 / 365)}y`;
}
