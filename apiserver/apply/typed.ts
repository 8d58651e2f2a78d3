/**
 * Structured operations on JSON objects, driven by the list types of the schema: the field set an
 * object sets, the comparison of two objects, the merge of an applied configuration into a live
 * object, and the removal of a set of fields. They follow structured-merge-diff's typed package:
 *
 * - lists are atomic unless the schema says `x-kubernetes-list-type: set | map`; atomic lists,
 *   scalars, nulls and empty maps are leaves; set items are keyed by value, map items by their
 *   key fields; an item is in the field set itself as well as its fields;
 * - maps are granular (each field separately) unless `x-kubernetes-map-type: atomic`.
 *
 * Unlike structured-merge-diff, which tells struct fields from map keys, every map key is treated
 * as a named field: this only changes whether a map-of-maps entry shows `.: {}` in managedFields.
 */

import { type Path, type PathElement, FieldSet, pathString, peKey } from './fieldpath.js';

/** The list type of the schema node at `path` (field names, list items as '[]'). */
export type ListTypeResolver = (path: string[]) => { type: 'atomic' | 'set' | 'map'; keys?: string[] } | undefined;

/** A request the client got wrong (shown in a 400 Bad Request). */
export class ApplyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ApplyError';
  }
}

type ListInfo = { type: 'atomic' | 'set' | 'map'; keys?: string[] };

/** ObjectMeta's list types, which CRD schemas do not spell out. */
const objectMetaLists: Record<string, ListInfo> = {
  finalizers: { type: 'set' },
  ownerReferences: { type: 'map', keys: ['uid'] },
  managedFields: { type: 'atomic' },
};

export class TypedSchema {
  private readonly cache = new Map<string, ListInfo | undefined>();
  constructor(private readonly resolver?: ListTypeResolver) {}

  info(sp: string[]): ListInfo | undefined {
    const key = sp.join('\u0000');
    if (this.cache.has(key)) return this.cache.get(key);
    let info: ListInfo | undefined;
    if (sp.length === 2 && sp[0] === 'metadata' && Object.prototype.hasOwnProperty.call(objectMetaLists, sp[1])) {
      info = objectMetaLists[sp[1]];
    } else {
      info = this.resolver?.(sp);
    }
    this.cache.set(key, info);
    return info;
  }

  listIsAtomic(sp: string[]): boolean {
    const t = this.info(sp)?.type;
    return t !== 'set' && t !== 'map';
  }

  mapIsAtomic(sp: string[]): boolean {
    return sp.length > 0 && this.info(sp)?.type === 'atomic';
  }
}

export const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `m[k]` when `k` is m's own key ("constructor" and the like are data here, not inherited). */
const own = (m: Record<string, unknown> | undefined, k: string): unknown =>
  m && Object.prototype.hasOwnProperty.call(m, k) ? m[k] : undefined;

/** Sets a key even when it is "__proto__", which plain assignment would treat as the prototype. */
function setOwn(o: Record<string, unknown>, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

type Kind = 'none' | 'map' | 'list' | 'scalar';

function kindOf(v: unknown): Kind {
  if (v === undefined) return 'none';
  if (Array.isArray(v)) return 'list';
  if (isMap(v)) return 'map';
  return 'scalar';
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  }
  if (isMap(a)) {
    if (!isMap(b)) return false;
    const ka = Object.keys(a).filter((k) => a[k] !== undefined);
    const kb = Object.keys(b).filter((k) => b[k] !== undefined);
    return ka.length === kb.length && ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && deepEqual(a[k], b[k]));
  }
  return false;
}

const field = (name: string): PathElement => ({ kind: 'field', name });

/**
 * The path element of a list item. With `strict` (an applied configuration) an item of a map-list
 * that lacks a key field is an error; otherwise it is keyed by the key fields it has.
 */
function itemPe(item: unknown, info: ListInfo | undefined, path: Path, index: number, strict: boolean): PathElement {
  if (info?.type === 'map' && info.keys && info.keys.length > 0 && isMap(item)) {
    const fields: [string, unknown][] = [];
    for (const k of [...info.keys].sort()) {
      if (Object.prototype.hasOwnProperty.call(item, k) && item[k] !== undefined) fields.push([k, item[k]]);
      else if (strict) {
        throw new ApplyError(
          `${pathString(path)}: element ${index}: associative list with keys has an element that omits key field ${JSON.stringify(k)} (and doesn't have default value)`,
        );
      }
    }
    if (fields.length > 0) return { kind: 'key', fields };
  } else if (info?.type === 'map' && strict) {
    throw new ApplyError(`${pathString(path)}: element ${index}: associative list with keys has an element that is not a map`);
  }
  return { kind: 'value', value: item };
}

interface Group {
  pe: PathElement;
  items: unknown[];
}

function groupItems(list: unknown[], info: ListInfo | undefined, path: Path, strict: boolean): Map<string, Group> {
  const groups = new Map<string, Group>();
  list.forEach((item, i) => {
    const pe = itemPe(item, info, path, i, strict);
    const id = peKey(pe);
    const g = groups.get(id);
    if (g) {
      if (strict) throw new ApplyError(`${pathString(path)}: duplicate entries for key ${pathString([pe])}`);
      g.items.push(item);
    } else groups.set(id, { pe, items: [item] });
  });
  return groups;
}

/**
 * The set of fields an object sets (structured-merge-diff's ToFieldSet). `strict` rejects what an
 * applied configuration may not contain: duplicate list items and map-list items without keys.
 */
export function toFieldSet(obj: unknown, schema: TypedSchema, strict = false): FieldSet {
  const set = new FieldSet();
  const walk = (v: unknown, sp: string[], path: Path): void => {
    if (isMap(v)) {
      if (schema.mapIsAtomic(sp)) {
        set.insert(path);
        return;
      }
      for (const [k, c] of Object.entries(v)) {
        if (c === undefined) continue;
        const p = [...path, field(k)];
        walk(c, [...sp, k], p);
        if (c === null || (isMap(c) && Object.keys(c).length === 0)) set.insert(p);
      }
      return;
    }
    if (Array.isArray(v)) {
      if (schema.listIsAtomic(sp)) {
        set.insert(path);
        return;
      }
      const info = schema.info(sp);
      for (const g of groupItems(v, info, path, strict).values()) {
        const p = [...path, g.pe];
        // Duplicated items are owned as a whole, never field by field.
        if (g.items.length === 1) walk(g.items[0], [...sp, '[]'], p);
        set.insert(p);
      }
      return;
    }
    set.insert(path);
  };
  walk(obj, [], []);
  return set;
}

export interface Comparison {
  added: FieldSet;
  removed: FieldSet;
  modified: FieldSet;
}

/** What changed from `lhs` to `rhs` (structured-merge-diff's Compare). */
export function compare(lhs: unknown, rhs: unknown, schema: TypedSchema): Comparison {
  const c: Comparison = { added: new FieldSet(), removed: new FieldSet(), modified: new FieldSet() };

  const leaf = (l: unknown, r: unknown, path: Path): void => {
    if (l === undefined) c.added.insert(path);
    else if (r === undefined) c.removed.insert(path);
    else if (!deepEqual(l, r)) c.modified.insert(path);
  };

  const node = (l: unknown, r: unknown, sp: string[], path: Path): void => {
    const inLeaf = inner(l, r, sp, path);
    if (!inLeaf) {
      if (l === undefined) c.added.insert(path);
      else if (r === undefined) c.removed.insert(path);
    }
  };

  const mapItems = (l: Record<string, unknown> | undefined, r: Record<string, unknown> | undefined, sp: string[], path: Path): void => {
    const keys = new Set([...Object.keys(l ?? {}), ...Object.keys(r ?? {})]);
    for (const k of keys) {
      const lv = own(l, k);
      const rv = own(r, k);
      if (lv === undefined && rv === undefined) continue;
      node(lv, rv, [...sp, k], [...path, field(k)]);
    }
  };

  const listItems = (l: unknown[], r: unknown[], sp: string[], path: Path): void => {
    const info = schema.info(sp);
    const lg = groupItems(l, info, path, false);
    const rg = groupItems(r, info, path, false);
    const ids = new Set([...lg.keys(), ...rg.keys()]);
    for (const id of ids) {
      const L = lg.get(id)?.items ?? [];
      const R = rg.get(id)?.items ?? [];
      const pe = (lg.get(id) ?? rg.get(id))!.pe;
      const p = [...path, pe];
      const isp = [...sp, '[]'];
      if (L.length <= 1 && R.length <= 1) node(L[0], R[0], isp, p);
      else if (L.length >= 2 && R.length >= 2) {
        if (!deepEqual(L, R)) c.modified.insert(p);
      } else if (L.length >= 2) {
        if (R.length > 0) node(undefined, R[0], isp, p);
        c.removed.insert(p);
      } else {
        if (L.length > 0) node(L[0], undefined, isp, p);
        c.added.insert(p);
      }
    }
  };

  /** Returns true when the node was compared as a leaf. */
  const inner = (l: unknown, r: unknown, sp: string[], path: Path): boolean => {
    const lk = kindOf(l);
    const rk = kindOf(r);
    if (lk !== 'none' && rk !== 'none' && lk !== rk) {
      // The type changed: the node is modified, and the compound side's fields come or go.
      if (lk === 'map' && !schema.mapIsAtomic(sp)) mapItems(l as Record<string, unknown>, undefined, sp, path);
      if (lk === 'list' && !schema.listIsAtomic(sp)) listItems(l as unknown[], [], sp, path);
      c.modified.insert(path);
      if (rk === 'map' && !schema.mapIsAtomic(sp)) mapItems(undefined, r as Record<string, unknown>, sp, path);
      if (rk === 'list' && !schema.listIsAtomic(sp)) listItems([], r as unknown[], sp, path);
      return true;
    }
    const k = lk === 'none' ? rk : lk;
    if (k === 'map') {
      const lm = l as Record<string, unknown> | undefined;
      const rm = r as Record<string, unknown> | undefined;
      const empty = (m: Record<string, unknown> | undefined): boolean => !m || Object.keys(m).length === 0;
      if (schema.mapIsAtomic(sp) || (empty(lm) && empty(rm))) {
        leaf(l, r, path);
        return true;
      }
      mapItems(lm, rm, sp, path);
      return false;
    }
    if (k === 'list') {
      const ll = (l as unknown[] | undefined) ?? [];
      const rl = (r as unknown[] | undefined) ?? [];
      if (schema.listIsAtomic(sp) || (ll.length === 0 && rl.length === 0)) {
        leaf(l, r, path);
        return true;
      }
      listItems(ll, rl, sp, path);
      return false;
    }
    leaf(l, r, path);
    return true;
  };

  inner(lhs, rhs, [], []);
  return c;
}

/**
 * The applied configuration `rhs` merged into `lhs` (structured-merge-diff's Merge): leaves and
 * atomic lists from `rhs` win, maps merge field by field, set- and map-lists merge item by item.
 * Items only in `lhs` keep their place; items in `rhs` come in `rhs`'s order.
 */
export function merge(lhs: unknown, rhs: unknown, schema: TypedSchema): unknown {
  const node = (l: unknown, r: unknown, sp: string[]): unknown => {
    if (r === undefined) return structuredClone(l);
    if (l === undefined) return structuredClone(r);
    const lk = kindOf(l);
    const rk = kindOf(r);
    if (lk !== rk) return structuredClone(r);
    if (lk === 'map') {
      const lm = l as Record<string, unknown>;
      const rm = r as Record<string, unknown>;
      if (schema.mapIsAtomic(sp) || (Object.keys(lm).length === 0 && Object.keys(rm).length === 0)) return structuredClone(r);
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(lm)) {
        const rv = own(rm, k);
        setOwn(out, k, rv !== undefined ? node(v, rv, [...sp, k]) : structuredClone(v));
      }
      for (const [k, v] of Object.entries(rm)) if (own(lm, k) === undefined) setOwn(out, k, structuredClone(v));
      return out;
    }
    if (lk === 'list') {
      const ll = l as unknown[];
      const rl = r as unknown[];
      if (schema.listIsAtomic(sp) || (ll.length === 0 && rl.length === 0)) return structuredClone(r);
      return mergeList(ll, rl, sp);
    }
    return r;
  };

  const mergeList = (l: unknown[], r: unknown[], sp: string[]): unknown[] => {
    const info = schema.info(sp);
    const isp = [...sp, '[]'];
    const lIds: string[] = [];
    const lItems = new Map<string, unknown>();
    for (const item of l) {
      const id = peKey(itemPe(item, info, [], 0, false));
      if (lItems.has(id)) continue;
      lItems.set(id, item);
      lIds.push(id);
    }
    const rIds: string[] = [];
    const rItems = new Map<string, unknown>();
    for (const item of r) {
      const id = peKey(itemPe(item, info, [], 0, false));
      if (rItems.has(id)) continue;
      rItems.set(id, item);
      rIds.push(id);
    }
    // Items both sides have are emitted in rhs order; `shared` is that order still to come.
    const shared = rIds.filter((id) => lItems.has(id));
    let nextShared = 0;
    const advanceIf = (id: string): void => {
      if (shared[nextShared] === id) nextShared++;
    };
    const emitted = new Set<string>();
    const out: unknown[] = [];
    let li = 0;
    let ri = 0;
    while (li < lIds.length || ri < rIds.length) {
      if (li < lIds.length && ri < rIds.length) {
        const lid = lIds[li];
        if (lid === rIds[ri]) {
          out.push(node(lItems.get(lid), rItems.get(lid), isp));
          emitted.add(lid);
          li++;
          ri++;
          advanceIf(lid);
          continue;
        }
        if (rItems.has(lid) && nextShared < shared.length && shared[nextShared] !== lid) {
          // A shared item whose turn (in rhs order) has not come yet.
          li++;
          continue;
        }
      }
      if (li < lIds.length) {
        const lid = lIds[li];
        if (!rItems.has(lid)) {
          out.push(structuredClone(lItems.get(lid)));
          li++;
          continue;
        }
        if (emitted.has(lid)) li++;
      }
      if (ri < rIds.length) {
        const rid = rIds[ri];
        if (!emitted.has(rid)) {
          out.push(node(lItems.get(rid), rItems.get(rid), isp));
          emitted.add(rid);
        }
        ri++;
        advanceIf(rid);
      }
    }
    return out;
  };

  return node(lhs, rhs, []);
}

/** `obj` without the fields of `set`: a member goes with everything below it. */
export function removeItems(obj: unknown, set: FieldSet, schema: TypedSchema): unknown {
  const walk = (v: unknown, s: FieldSet, sp: string[], path: Path): unknown => {
    if (s.empty()) return v;
    if (isMap(v)) {
      if (schema.mapIsAtomic(sp)) return v;
      const out: Record<string, unknown> = {};
      for (const [k, c] of Object.entries(v)) {
        const pe = field(k);
        if (s.hasMember(pe)) continue;
        const sub = s.withPrefix(pe);
        setOwn(out, k, sub ? walk(c, sub, [...sp, k], [...path, pe]) : c);
      }
      return out;
    }
    if (Array.isArray(v)) {
      if (schema.listIsAtomic(sp)) return v;
      const info = schema.info(sp);
      const out: unknown[] = [];
      v.forEach((item, i) => {
        const pe = itemPe(item, info, path, i, false);
        if (s.hasMember(pe)) return;
        const sub = s.withPrefix(pe);
        out.push(sub ? walk(item, sub, [...sp, '[]'], [...path, pe]) : item);
      });
      return out;
    }
    return v;
  };
  return walk(obj, set, [], []);
}
