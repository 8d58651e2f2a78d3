/**
 * Server-side apply and `metadata.managedFields`, following Kubernetes (structured-merge-diff and
 * the apiserver's fieldmanager):
 *
 * - every write records which manager set which fields: an `Update` entry per manager, operation,
 *   apiVersion and subresource for create/update/patch, an `Apply` entry per manager and
 *   subresource for server-side apply;
 * - apply merges the applied configuration into the live object; fields the manager applied last
 *   time and omits now are removed unless another manager owns them; changing a field another
 *   manager owns is a conflict unless `force`, which takes the field over;
 * - an apply or update that changes nothing leaves the object and the entry's time as they were;
 * - `apiVersion`, `kind`, `metadata.name/namespace/uid/resourceVersion/generation/
 *   creationTimestamp/managedFields` are never owned;
 * - `status` is owned separately: writes to the main resource ignore it and writes to the
 *   `status` subresource ignore everything else (when the kind has a status subresource).
 *
 * Pure functions: callers pass the time (RFC 3339, seconds) and persist the result.
 */

import { FieldSet, FieldsV1Error, pathString, type Path } from './fieldpath.js';
import {
  ApplyError,
  type Comparison,
  type ListTypeResolver,
  TypedSchema,
  compare,
  deepEqual,
  isMap,
  merge,
  removeItems,
  toFieldSet,
} from './typed.js';

export { ApplyError, type ListTypeResolver } from './typed.js';
export { FieldSet, pathString, type Path, type PathElement } from './fieldpath.js';
export { listTypesFromSchema } from './schema.js';

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; managedFields?: ManagedFieldsEntry[]; [k: string]: unknown };
  [k: string]: unknown;
}

export interface ManagedFieldsEntry {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  time: string;
  fieldsType: 'FieldsV1';
  fieldsV1: object;
  subresource?: string;
}

/** One field another manager owns, which an apply would change. */
export interface ApplyConflict {
  manager: string;
  /** The field, as kube prints it: `.spec.cpus`, `.spec.disks[name="root"].sizeGiB`. */
  field: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  subresource?: string;
}

export interface ApplyOptions {
  manager: string;
  force: boolean;
  time: string;
  listTypes?: ListTypeResolver;
  subresource?: string;
  /** Whether the kind has a status subresource (default true: every stratus kind has one). */
  statusSubresource?: boolean;
}

export interface UpdateOptions {
  manager: string;
  operation: 'Update';
  time: string;
  subresource?: string;
  listTypes?: ListTypeResolver;
  statusSubresource?: boolean;
}

/** Deeper objects are refused (400) rather than risk the stack in the recursive walks. */
export const maxNestingDepth = 1000;

/** Throws ApplyError when `v` nests maps and lists deeper than maxNestingDepth (checked without recursion). */
function checkDepth(v: unknown): void {
  if (tooDeep(v, maxNestingDepth)) throw new ApplyError(`the object is nested more than ${maxNestingDepth} levels deep`);
}

function tooDeep(v: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[v, 0]];
  while (stack.length > 0) {
    const [x, d] = stack.pop()!;
    if (d > limit) return true;
    if (Array.isArray(x)) for (const c of x) stack.push([c, d + 1]);
    else if (isMap(x)) for (const c of Object.values(x)) stack.push([c, d + 1]);
  }
  return false;
}

/** The longest field manager name kube accepts. */
export const fieldManagerMaxLength = 128;

/**
 * Why a `fieldManager` query parameter is invalid (as kube's ValidateFieldManager), or undefined.
 */
export function validateFieldManager(name: string): string | undefined {
  if (name.length > fieldManagerMaxLength) {
    return `fieldManager: Too long: may not be more than ${fieldManagerMaxLength} bytes`;
  }
  let i = 0;
  for (const ch of name) {
    if (!isPrintable(ch)) {
      const cp = ch.codePointAt(0) ?? 0;
      return `fieldManager: Invalid value: ${JSON.stringify(name)}: invalid character U+${cp.toString(16).toUpperCase().padStart(4, '0')} (at position ${i})`;
    }
    i += Buffer.byteLength(ch);
  }
  return undefined;
}

const isPrintable = (ch: string): boolean => !/^[\p{C}\p{Z}]$/u.test(ch) || ch === ' ';

/**
 * The manager kube records when a write names none: the User-Agent up to its first "/" without
 * unprintable characters ("kubectl/v1.32.4 (linux/amd64)" → "kubectl"), at most 128 bytes.
 */
export function managerFromUserAgent(userAgent: string | undefined): string {
  let out = '';
  for (const ch of (userAgent ?? '').split('/')[0]) {
    if (!isPrintable(ch)) continue;
    if (Buffer.byteLength(out + ch) > fieldManagerMaxLength) break;
    out += ch;
  }
  return out;
}

/** Kube caps Update entries at 10; older ones are merged into this manager. */
export const ancientChangesManager = 'ancient-changes';
const maxUpdateManagers = 10;
/** The manager kube credits with an object's fields when it is first applied to without managedFields. */
export const beforeFirstApplyManager = 'before-first-apply';
const lastAppliedAnnotation = 'kubectl.kubernetes.io/last-applied-configuration';

interface ManagerState {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  subresource?: string;
  time?: string;
  set: FieldSet;
}

type Managers = Map<string, ManagerState>;

/** Apply entries are one per manager and subresource; Update entries also per apiVersion. */
function managerKey(m: { manager: string; operation: string; apiVersion: string; subresource?: string }): string {
  return JSON.stringify([m.manager, m.operation, m.operation === 'Apply' ? '' : m.apiVersion, m.subresource ?? '']);
}

const f = (name: string): { kind: 'field'; name: string } => ({ kind: 'field', name });

/** Fields no manager owns. */
const stripSet = FieldSet.of(
  [f('apiVersion')],
  [f('kind')],
  [f('metadata')],
  ...['name', 'namespace', 'creationTimestamp', 'selfLink', 'uid', 'clusterName', 'generation', 'managedFields', 'resourceVersion'].map(
    (n): Path => [f('metadata'), f(n)],
  ),
);

/** Keeps only the top-level fields a write to this (sub)resource may own. */
function ownedPart(set: FieldSet, subresource: string | undefined, statusSubresource: boolean): FieldSet {
  if (!statusSubresource) return set;
  const keep = (name: string): boolean => (subresource === 'status' ? name === 'status' : name !== 'status');
  const out = new FieldSet();
  for (const [k, pe] of set.members) if (pe.kind === 'field' && keep(pe.name)) out.members.set(k, pe);
  for (const [k, node] of set.children) if (node.pe.kind === 'field' && keep(node.pe.name)) out.children.set(k, node);
  return out;
}

function filterComparison(c: Comparison, subresource: string | undefined, statusSubresource: boolean): Comparison {
  return {
    added: ownedPart(c.added, subresource, statusSubresource),
    removed: ownedPart(c.removed, subresource, statusSubresource),
    modified: ownedPart(c.modified, subresource, statusSubresource),
  };
}

/** Decodes managedFields; throws FieldsV1Error or ApplyError on a malformed entry. */
export function decodeManagedFields(entries: unknown): Managers {
  const out: Managers = new Map();
  if (entries === undefined || entries === null) return out;
  if (!Array.isArray(entries)) throw new FieldsV1Error('managedFields must be a list');
  // FieldsV1 mirrors the object's shape (a few levels deeper); anything deeper is not ours.
  if (tooDeep(entries, maxNestingDepth + 8)) throw new FieldsV1Error('managedFields are nested too deep');
  for (const e of entries) {
    if (!isMap(e)) throw new FieldsV1Error('a managedFields entry must be an object');
    const operation = e.operation;
    if (operation !== 'Apply' && operation !== 'Update') throw new FieldsV1Error(`invalid operation ${JSON.stringify(operation)}`);
    if (e.fieldsType !== undefined && e.fieldsType !== 'FieldsV1') throw new FieldsV1Error(`invalid fieldsType ${JSON.stringify(e.fieldsType)}`);
    const set = FieldSet.fromFieldsV1(e.fieldsV1 ?? {});
    const state: ManagerState = {
      manager: typeof e.manager === 'string' ? e.manager : '',
      operation,
      apiVersion: typeof e.apiVersion === 'string' ? e.apiVersion : '',
      set,
    };
    if (typeof e.subresource === 'string' && e.subresource !== '') state.subresource = e.subresource;
    if (typeof e.time === 'string') state.time = e.time;
    const key = managerKey(state);
    const prev = out.get(key);
    if (prev) prev.set = prev.set.union(set);
    else out.set(key, state);
  }
  return out;
}

function decodeOrEmpty(entries: unknown): Managers {
  try {
    return decodeManagedFields(entries);
  } catch (e) {
    if (e instanceof FieldsV1Error) return new Map();
    throw e;
  }
}

const seconds = (t: string | undefined): number => {
  const ms = t ? Date.parse(t) : NaN;
  return Number.isNaN(ms) ? 0 : Math.floor(ms / 1000);
};

const cmpStr = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** managedFields as kube writes them: Apply entries first, then by time, manager, version, subresource. */
export function encodeManagedFields(managers: Managers, fallbackTime: string): ManagedFieldsEntry[] {
  const entries: ManagedFieldsEntry[] = [];
  for (const m of managers.values()) {
    if (m.set.empty()) continue;
    const e: ManagedFieldsEntry = {
      manager: m.manager,
      operation: m.operation,
      apiVersion: m.apiVersion,
      time: m.time ?? fallbackTime,
      fieldsType: 'FieldsV1',
      fieldsV1: m.set.toFieldsV1(),
    };
    if (m.subresource) e.subresource = m.subresource;
    entries.push(e);
  }
  return entries.sort(
    (a, b) =>
      cmpStr(a.operation, b.operation) ||
      seconds(a.time) - seconds(b.time) ||
      cmpStr(a.manager, b.manager) ||
      cmpStr(a.apiVersion, b.apiVersion) ||
      cmpStr(a.subresource ?? '', b.subresource ?? ''),
  );
}

/** Merges the oldest Update entries into `ancient-changes` (one per apiVersion) beyond the cap. */
function capUpdateManagers(managers: Managers): void {
  const updaters = [...managers.entries()].filter(([, m]) => m.operation === 'Update');
  if (updaters.length <= maxUpdateManagers) return;
  updaters.sort(([ka, a], [kb, b]) => seconds(a.time) - seconds(b.time) || cmpStr(ka, kb));
  let length = updaters.length;
  const firstByVersion = new Map<string, string>();
  for (const [key, m] of updaters) {
    if (length <= maxUpdateManagers) break;
    const bucketKey = managerKey({ manager: ancientChangesManager, operation: 'Update', apiVersion: m.apiVersion });
    const first = firstByVersion.get(m.apiVersion);
    if (first === undefined) {
      firstByVersion.set(m.apiVersion, key);
      continue;
    }
    let bucket = managers.get(bucketKey);
    if (!bucket) {
      const firstState = managers.get(first)!;
      managers.delete(first);
      bucket = { manager: ancientChangesManager, operation: 'Update', apiVersion: m.apiVersion, time: firstState.time, set: firstState.set };
      managers.set(bucketKey, bucket);
    }
    bucket.set = bucket.set.union(m.set);
    bucket.time = m.time;
    managers.delete(key);
    length--;
  }
}

/**
 * A shallow view of `obj` without metadata.managedFields (which a client may fill with anything),
 * so its depth can be checked before anything recursive touches it.
 */
function withoutManagedFieldsView(obj: KubeObject): Record<string, unknown> {
  const view: Record<string, unknown> = { ...obj };
  if (isMap(view.metadata)) {
    const { managedFields: _mf, ...md } = view.metadata;
    view.metadata = md;
  }
  return view;
}

/** A deep copy of `obj` without metadata.managedFields; ApplyError when it nests too deep. */
function withoutManagedFields(obj: KubeObject): Record<string, unknown> {
  const view = withoutManagedFieldsView(obj);
  checkDepth(view);
  return structuredClone(view);
}

/** The result of the ownership bookkeeping kube does on every write (SMD's Updater.update). */
function updateOwnership(
  oldObj: unknown,
  newObj: unknown,
  managers: Managers,
  workflowKey: string,
  force: boolean,
  schema: TypedSchema,
  subresource: string | undefined,
  statusSubresource: boolean,
): { comparison: Comparison } | { conflicts: [string, FieldSet][] } {
  const cmp = filterComparison(compare(oldObj, newObj, schema), subresource, statusSubresource);
  const changed = cmp.modified.union(cmp.added);
  const conflicts: [string, FieldSet][] = [];
  for (const [key, m] of managers) {
    if (key === workflowKey) continue;
    const c = m.set.intersection(changed);
    if (!c.empty()) conflicts.push([key, c]);
  }
  if (!force && conflicts.length > 0) return { conflicts };
  for (const [key, c] of conflicts) {
    const m = managers.get(key)!;
    m.set = m.set.difference(c);
  }
  if (!cmp.removed.empty()) {
    for (const [key, m] of managers) if (key !== workflowKey) m.set = m.set.difference(cmp.removed);
  }
  for (const [key, m] of managers) if (m.set.empty()) managers.delete(key);
  return { comparison: cmp };
}

/**
 * Records an Update by `manager` from `oldObj` to `newObj` (both without managedFields): it takes
 * the fields it changed (from other managers too) and others lose the fields it removed. Nothing
 * is recorded when nothing owned changed.
 */
function applyUpdate(
  oldObj: unknown,
  newObj: unknown,
  managers: Managers,
  entry: { manager: string; apiVersion: string; subresource?: string; time: string },
  schema: TypedSchema,
  statusSubresource: boolean,
): void {
  const self = '\u0000current-operation';
  const r = updateOwnership(oldObj, newObj, managers, self, true, schema, entry.subresource, statusSubresource);
  if (!('comparison' in r)) return;
  const opSet = r.comparison.modified.union(r.comparison.added).difference(stripSet);
  if (opSet.empty()) return;
  const key = managerKey({ ...entry, operation: 'Update' });
  const prev = managers.get(key);
  const state: ManagerState = {
    manager: entry.manager,
    operation: 'Update',
    apiVersion: entry.apiVersion,
    time: entry.time,
    set: prev ? prev.set.union(opSet) : opSet,
  };
  if (entry.subresource) state.subresource = entry.subresource;
  managers.set(key, state);
}

/**
 * Removes from `merged` what the applier set last time (`lastSet`) and no longer sets, unless
 * another manager owns it (structured-merge-diff's prune, addBackOwnedItems, addBackDanglingItems).
 */
function prune(merged: unknown, managers: Managers, lastSet: FieldSet | undefined, schema: TypedSchema): unknown {
  if (!lastSet || lastSet.empty()) return merged;
  const last = lastSet.ensureNamedFieldsAreMembers();
  const pruned = removeItems(merged, last, schema);
  let owned = new FieldSet();
  for (const m of managers.values()) owned = owned.union(m.set);
  owned = owned.ensureNamedFieldsAreMembers();
  const mergedSet = toFieldSet(merged, schema).ensureNamedFieldsAreMembers();
  const prunedSet = toFieldSet(pruned, schema).ensureNamedFieldsAreMembers();
  const withOwned = removeItems(merged, mergedSet.difference(prunedSet.union(owned)), schema);
  const withOwnedSet = toFieldSet(withOwned, schema).ensureNamedFieldsAreMembers();
  return removeItems(merged, mergedSet.difference(withOwnedSet).intersection(last), schema);
}

function conflictList(conflicts: [string, FieldSet][], managers: Managers): { conflict: ApplyConflict; path: Path }[] {
  const out: { conflict: ApplyConflict; path: Path }[] = [];
  for (const [key, set] of [...conflicts].sort(([a], [b]) => cmpStr(a, b))) {
    const m = managers.get(key)!;
    for (const path of set.paths()) {
      const conflict: ApplyConflict = { manager: m.manager, field: pathString(path), operation: m.operation, apiVersion: m.apiVersion };
      if (m.subresource) conflict.subresource = m.subresource;
      out.push({ conflict, path });
    }
  }
  return out;
}

function printManager(c: ApplyConflict): string {
  let s = JSON.stringify(c.manager);
  if (c.subresource) s += ` with subresource ${JSON.stringify(c.subresource)}`;
  if (c.operation === 'Update') s += ` using ${c.apiVersion}`;
  return s;
}

/**
 * The 409 kube-apiserver answers for apply conflicts: its message ("Apply failed with 1 conflict:
 * conflict with "kubectl-client-side-apply" using compute.stratus.dev/v1alpha1: .spec.cpus") and
 * `details.causes` (reason FieldManagerConflict, one per field).
 */
export function applyConflictStatus(conflicts: ApplyConflict[]): {
  message: string;
  causes: { reason: 'FieldManagerConflict'; message: string; field: string }[];
} {
  const causes = conflicts.map((c) => ({ reason: 'FieldManagerConflict' as const, message: `conflict with ${printManager(c)}`, field: c.field }));
  if (conflicts.length === 1) {
    return { message: `Apply failed with 1 conflict: conflict with ${printManager(conflicts[0])}: ${conflicts[0].field}`, causes };
  }
  const byManager = new Map<string, string[]>();
  for (const c of conflicts) {
    const m = printManager(c);
    byManager.set(m, [...(byManager.get(m) ?? []), c.field]);
  }
  const lines: string[] = [];
  for (const m of [...byManager.keys()].sort()) {
    lines.push(`conflicts with ${m}:`);
    for (const field of byManager.get(m)!) lines.push(`- ${field}`);
  }
  return { message: `Apply failed with ${conflicts.length} conflicts: ${lines.join('\n')}`, causes };
}

/** The applied configuration without what this (sub)resource does not own. */
function configFor(applied: KubeObject, subresource: string | undefined, statusSubresource: boolean): Record<string, unknown> {
  const c = structuredClone(applied) as Record<string, unknown>;
  if (!statusSubresource) return c;
  if (subresource === 'status') {
    const out: Record<string, unknown> = {};
    if (c.apiVersion !== undefined) out.apiVersion = c.apiVersion;
    if (c.kind !== undefined) out.kind = c.kind;
    if (isMap(c.metadata)) {
      const md: Record<string, unknown> = {};
      if (c.metadata.name !== undefined) md.name = c.metadata.name;
      if (c.metadata.namespace !== undefined) md.namespace = c.metadata.namespace;
      out.metadata = md;
    }
    if (c.status !== undefined) out.status = c.status;
    return out;
  }
  delete c.status;
  return c;
}

/** kubectl's last-applied annotation for a configuration: sorted JSON without the annotation, newline-terminated. */
function lastAppliedValue(applied: KubeObject): string {
  const c = structuredClone(applied) as Record<string, unknown>;
  if (isMap(c.metadata) && isMap(c.metadata.annotations)) delete c.metadata.annotations[lastAppliedAnnotation];
  const sorted = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(sorted)
      : isMap(v)
        ? Object.fromEntries(
            Object.keys(v)
              .sort()
              .map((k) => [k, sorted(v[k])]),
          )
        : v;
  return `${JSON.stringify(sorted(c))}\n`;
}

function annotationsOf(obj: Record<string, unknown>): Record<string, unknown> | undefined {
  return isMap(obj.metadata) && isMap(obj.metadata.annotations) ? obj.metadata.annotations : undefined;
}

/**
 * Fields the `kubectl` manager may take over without a conflict because its client-side apply
 * annotation says it set them (kube's lastAppliedManager): those the live object still has as
 * last applied.
 */
function allowedByLastApplied(liveObj: Record<string, unknown>, schema: TypedSchema): FieldSet | undefined {
  const raw = annotationsOf(liveObj)?.[lastAppliedAnnotation];
  if (typeof raw !== 'string' || raw === '') return undefined;
  let last: unknown;
  try {
    last = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (!isMap(last) || last.apiVersion !== liveObj.apiVersion || tooDeep(last, maxNestingDepth)) return undefined;
  const cmp = compare(last, liveObj, schema);
  return toFieldSet(last, schema).difference(cmp.modified).difference(cmp.added).difference(cmp.removed);
}

/**
 * Server-side apply of `applied` by `options.manager` onto `live` (undefined to create). Returns
 * the object to store, with managedFields, or the conflicts with other managers (409 unless
 * `force`). When nothing changes, the object returned equals `live`. Throws ApplyError for a
 * configuration kube rejects with 400 (managedFields set, duplicate or keyless list items).
 */
export function serverSideApply(
  live: KubeObject | undefined,
  applied: KubeObject,
  options: ApplyOptions,
): { object: KubeObject } | { conflicts: ApplyConflict[] } {
  const result = applyOnce(live, applied, options, options.force);
  if ('object' in result) return result;
  const conflicts = result.conflicts.map((c) => c.conflict);
  if (options.manager !== 'kubectl' || options.force || !live) return { conflicts };
  // kubectl moving from client-side to server-side apply may take the fields its
  // last-applied-configuration annotation says it set.
  const allowed = allowedByLastApplied(withoutManagedFields(live), new TypedSchema(options.listTypes));
  if (!allowed) return { conflicts };
  const remaining = result.conflicts.filter((c) => !allowed.has(c.path)).map((c) => c.conflict);
  if (remaining.length > 0) return { conflicts: remaining };
  const forced = applyOnce(live, applied, options, true);
  return 'object' in forced ? forced : { conflicts: forced.conflicts.map((c) => c.conflict) };
}

type ApplyOnceResult = { object: KubeObject } | { conflicts: { conflict: ApplyConflict; path: Path }[] };

function applyOnce(live: KubeObject | undefined, applied: KubeObject, options: ApplyOptions, force: boolean): ApplyOnceResult {
  const md = applied.metadata as Record<string, unknown> | undefined;
  if (md && md.managedFields !== undefined && md.managedFields !== null) throw new ApplyError('metadata.managedFields must be nil');
  checkDepth(applied);
  const statusSubresource = options.statusSubresource ?? true;
  const subresource = options.subresource || undefined;
  const schema = new TypedSchema(options.listTypes);
  const config = configFor(applied, subresource, statusSubresource);
  const configSet = ownedPart(toFieldSet(config, schema, true), subresource, statusSubresource);

  const liveObj: Record<string, unknown> = live ? withoutManagedFields(live) : {};
  const managers = live ? decodeOrEmpty(live.metadata?.managedFields) : new Map<string, ManagerState>();
  if (live && managers.size === 0) {
    applyUpdate({}, liveObj, managers, { manager: beforeFirstApplyManager, apiVersion: live.apiVersion ?? '', time: options.time }, schema, false);
  }

  const key = managerKey({ manager: options.manager, operation: 'Apply', apiVersion: '', subresource });
  const previous = managers.get(key);
  const merged = merge(liveObj, config, schema);
  const state: ManagerState = {
    manager: options.manager,
    operation: 'Apply',
    apiVersion: applied.apiVersion ?? '',
    time: previous?.time,
    set: configSet,
  };
  if (subresource) state.subresource = subresource;
  managers.set(key, state);
  const pruned = prune(merged, managers, previous?.set, schema) as Record<string, unknown>;

  const r = updateOwnership(liveObj, pruned, managers, key, force, schema, subresource, statusSubresource);
  if ('conflicts' in r) return { conflicts: conflictList(r.conflicts, managers) };

  const mine = managers.get(key);
  if (mine) {
    mine.set = mine.set.difference(stripSet);
    if (mine.set.empty()) managers.delete(key);
  }
  const changed = !deepEqual(liveObj, pruned);
  const object = (changed ? pruned : liveObj) as KubeObject;
  if (mine && (changed || mine.time === undefined)) mine.time = options.time;

  if (options.manager === 'kubectl') {
    const annotations = annotationsOf(object);
    if (annotations && typeof annotations[lastAppliedAnnotation] === 'string') {
      annotations[lastAppliedAnnotation] = lastAppliedValue(applied);
    }
  }
  capUpdateManagers(managers);
  setManagedFields(object, managers, options.time);
  return { object };
}

function setManagedFields(obj: KubeObject, managers: Managers, time: string): void {
  const entries = encodeManagedFields(managers, time);
  if (!isMap(obj.metadata)) {
    if (entries.length === 0) return;
    obj.metadata = {};
  }
  const md = obj.metadata as Record<string, unknown>;
  if (entries.length > 0) md.managedFields = entries;
  else delete md.managedFields;
}

/** `[]` or `[{}]` in a write asks kube to forget all managedFields. */
function isReset(entries: unknown): boolean {
  if (!Array.isArray(entries)) return false;
  return entries.length === 0 || (entries.length === 1 && isMap(entries[0]) && Object.keys(entries[0]).length === 0);
}

/**
 * Sets `updated.metadata.managedFields` for a create (`old` undefined), update or non-apply patch
 * by `options.manager`: it owns the fields it changed, other managers lose ownership of fields it
 * changed or removed. managedFields sent by the client are honoured when valid (that is how kubectl
 * migrates ownership), `[]` clears them, and otherwise the stored ones carry over. Writes to a
 * subresource never change managedFields directly.
 */
export function recordUpdate(old: KubeObject | undefined, updated: KubeObject, options: UpdateOptions): void {
  const statusSubresource = options.statusSubresource ?? true;
  const subresource = options.subresource || undefined;
  const schema = new TypedSchema(options.listTypes);
  const sent = updated.metadata?.managedFields as unknown;
  let managers: Managers;
  if (subresource) managers = decodeOrEmpty(old?.metadata?.managedFields);
  else if (isReset(sent)) managers = new Map();
  else {
    let decoded: Managers | undefined;
    try {
      decoded = decodeManagedFields(sent);
    } catch (e) {
      if (!(e instanceof FieldsV1Error)) throw e;
    }
    managers = decoded && decoded.size > 0 ? decoded : decodeOrEmpty(old?.metadata?.managedFields);
  }
  const oldObj = old ? withoutManagedFields(old) : {};
  const newObj = withoutManagedFields(updated);
  const entry: { manager: string; apiVersion: string; subresource?: string; time: string } = {
    manager: options.manager,
    apiVersion: updated.apiVersion ?? old?.apiVersion ?? '',
    time: options.time,
  };
  if (subresource) entry.subresource = subresource;
  applyUpdate(oldObj, newObj, managers, entry, schema, statusSubresource);
  capUpdateManagers(managers);
  setManagedFields(updated, managers, options.time);
}
