/**
 * Field paths and field sets in the shape of sigs.k8s.io/structured-merge-diff, and their
 * `FieldsV1` encoding as stored in `metadata.managedFields`:
 *
 *   f:<name>        a field of a map
 *   k:<json>        an item of a map-list (`x-kubernetes-list-type: map`), by its key fields
 *   v:<json>        an item of a set-list (`x-kubernetes-list-type: set`), by its value
 *   i:<n>           an item by index (only read, never produced: lists without a type are atomic)
 *   .               inside an item's object: the item itself is in the set, not only its children
 */

export type PathElement =
  | { kind: 'field'; name: string }
  | { kind: 'key'; fields: [string, unknown][] }
  | { kind: 'value'; value: unknown }
  | { kind: 'index'; index: number };

export type Path = PathElement[];

/** JSON with object keys sorted, so equal values always encode the same way. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/** The FieldsV1 key of a path element; also its identity inside a FieldSet. */
export function peKey(pe: PathElement): string {
  switch (pe.kind) {
    case 'field':
      return `f:${pe.name}`;
    case 'key':
      return `k:${canonicalJson(Object.fromEntries(pe.fields))}`;
    case 'value':
      return `v:${canonicalJson(pe.value)}`;
    case 'index':
      return `i:${pe.index}`;
  }
}

export class FieldsV1Error extends Error {}

/** Parses a FieldsV1 key back into a path element. */
export function peFromKey(key: string): PathElement {
  const body = key.slice(2);
  switch (key.slice(0, 2)) {
    case 'f:':
      return { kind: 'field', name: body };
    case 'k:': {
      let parsed: unknown;
      try {
        parsed = JSON.parse(body);
      } catch {
        throw new FieldsV1Error(`invalid key ${JSON.stringify(key)}`);
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        throw new FieldsV1Error(`invalid key ${JSON.stringify(key)}: not an object`);
      }
      const fields = Object.entries(parsed as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return { kind: 'key', fields };
    }
    case 'v:':
      try {
        return { kind: 'value', value: JSON.parse(body) as unknown };
      } catch {
        throw new FieldsV1Error(`invalid value ${JSON.stringify(key)}`);
      }
    case 'i:': {
      if (!/^\d+$/.test(body)) throw new FieldsV1Error(`invalid index ${JSON.stringify(key)}`);
      return { kind: 'index', index: Number(body) };
    }
    default:
      throw new FieldsV1Error(`unknown path element ${JSON.stringify(key)}`);
  }
}

function scalarString(v: unknown): string {
  return typeof v === 'object' && v !== null ? canonicalJson(v) : (JSON.stringify(v) ?? 'null');
}

/** A path as structured-merge-diff prints it in conflicts: `.spec.disks[name="root"].sizeGiB`. */
export function pathString(path: Path): string {
  return path
    .map((pe) => {
      switch (pe.kind) {
        case 'field':
          return `.${pe.name}`;
        case 'key':
          return `[${pe.fields.map(([k, v]) => `${k}=${scalarString(v)}`).join(',')}]`;
        case 'value':
          return `[=${scalarString(pe.value)}]`;
        case 'index':
          return `[${pe.index}]`;
      }
    })
    .join('');
}

const kindRank: Record<PathElement['kind'], number> = { field: 0, key: 1, value: 2, index: 3 };

function comparePe(a: PathElement, b: PathElement): number {
  if (a.kind !== b.kind) return kindRank[a.kind] - kindRank[b.kind];
  const ka = peKey(a);
  const kb = peKey(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/**
 * A set of field paths. A path is a *member* when it is itself in the set; a node may also have
 * children (a list item owned as a whole and some of its fields, for instance).
 */
export class FieldSet {
  readonly members = new Map<string, PathElement>();
  readonly children = new Map<string, { pe: PathElement; set: FieldSet }>();

  static of(...paths: Path[]): FieldSet {
    const s = new FieldSet();
    for (const p of paths) s.insert(p);
    return s;
  }

  insert(path: Path): void {
    if (path.length === 0) return;
    if (path.length === 1) {
      this.members.set(peKey(path[0]), path[0]);
      return;
    }
    this.child(path[0]).insert(path.slice(1));
  }

  /** The subset below `pe`, created when absent. */
  child(pe: PathElement): FieldSet {
    const k = peKey(pe);
    let node = this.children.get(k);
    if (!node) {
      node = { pe, set: new FieldSet() };
      this.children.set(k, node);
    }
    return node.set;
  }

  has(path: Path): boolean {
    if (path.length === 0) return false;
    if (path.length === 1) return this.members.has(peKey(path[0]));
    return this.children.get(peKey(path[0]))?.set.has(path.slice(1)) ?? false;
  }

  /** The subset of paths below `pe` (relative to it), or undefined. */
  withPrefix(pe: PathElement): FieldSet | undefined {
    const s = this.children.get(peKey(pe))?.set;
    return s && !s.empty() ? s : undefined;
  }

  hasMember(pe: PathElement): boolean {
    return this.members.has(peKey(pe));
  }

  empty(): boolean {
    if (this.members.size > 0) return false;
    for (const { set } of this.children.values()) if (!set.empty()) return false;
    return true;
  }

  clone(): FieldSet {
    return this.union(new FieldSet());
  }

  union(o: FieldSet): FieldSet {
    const out = new FieldSet();
    for (const [k, pe] of this.members) out.members.set(k, pe);
    for (const [k, pe] of o.members) out.members.set(k, pe);
    const keys = new Set([...this.children.keys(), ...o.children.keys()]);
    for (const k of keys) {
      const a = this.children.get(k);
      const b = o.children.get(k);
      const set = a && b ? a.set.union(b.set) : (a ?? b)!.set.clone();
      if (!set.empty()) out.children.set(k, { pe: (a ?? b)!.pe, set });
    }
    return out;
  }

  intersection(o: FieldSet): FieldSet {
    const out = new FieldSet();
    for (const [k, pe] of this.members) if (o.members.has(k)) out.members.set(k, pe);
    for (const [k, a] of this.children) {
      const b = o.children.get(k);
      if (!b) continue;
      const set = a.set.intersection(b.set);
      if (!set.empty()) out.children.set(k, { pe: a.pe, set });
    }
    return out;
  }

  /** Paths of this set that are not in `o` (membership only: children are compared separately). */
  difference(o: FieldSet): FieldSet {
    const out = new FieldSet();
    for (const [k, pe] of this.members) if (!o.members.has(k)) out.members.set(k, pe);
    for (const [k, a] of this.children) {
      const b = o.children.get(k);
      const set = b ? a.set.difference(b.set) : a.set.clone();
      if (!set.empty()) out.children.set(k, { pe: a.pe, set });
    }
    return out;
  }

  /** Paths of this set that neither are in `o` nor lie below a member of `o`. */
  recursiveDifference(o: FieldSet): FieldSet {
    const out = new FieldSet();
    for (const [k, pe] of this.members) if (!o.members.has(k)) out.members.set(k, pe);
    for (const [k, a] of this.children) {
      if (o.members.has(k)) continue;
      const b = o.children.get(k);
      const set = b ? a.set.recursiveDifference(b.set) : a.set.clone();
      if (!set.empty()) out.children.set(k, { pe: a.pe, set });
    }
    return out;
  }

  /** Every field-name element on the way to a member becomes a member too (SMD's EnsureNamedFieldsAreMembers). */
  ensureNamedFieldsAreMembers(): FieldSet {
    const out = new FieldSet();
    for (const [k, pe] of this.members) out.members.set(k, pe);
    for (const [k, node] of this.children) {
      const set = node.set.ensureNamedFieldsAreMembers();
      if (set.empty()) continue;
      if (node.pe.kind === 'field') out.members.set(k, node.pe);
      out.children.set(k, { pe: node.pe, set });
    }
    return out;
  }

  /** Every member path, in sorted order. */
  paths(prefix: Path = []): Path[] {
    const out: Path[] = [];
    const entries = new Map<string, PathElement>();
    for (const [k, pe] of this.members) entries.set(k, pe);
    for (const [k, n] of this.children) entries.set(k, n.pe);
    for (const pe of [...entries.values()].sort(comparePe)) {
      const k = peKey(pe);
      if (this.members.has(k)) out.push([...prefix, pe]);
      const child = this.children.get(k);
      if (child) out.push(...child.set.paths([...prefix, pe]));
    }
    return out;
  }

  /** The FieldsV1 object (`{"f:spec": {"f:cpus": {}}}`), keys sorted as kube writes them. */
  toFieldsV1(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    const entries = new Map<string, PathElement>();
    for (const [k, pe] of this.members) entries.set(k, pe);
    for (const [k, n] of this.children) if (!n.set.empty()) entries.set(k, n.pe);
    for (const pe of [...entries.values()].sort(comparePe)) {
      const k = peKey(pe);
      const child = this.children.get(k);
      const inner: Record<string, unknown> = {};
      if (child && !child.set.empty()) {
        if (this.members.has(k)) inner['.'] = {};
        Object.assign(inner, child.set.toFieldsV1());
      }
      out[k] = inner;
    }
    return out;
  }

  static fromFieldsV1(v: unknown): FieldSet {
    const out = new FieldSet();
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new FieldsV1Error('FieldsV1 must be an object');
    for (const [k, inner] of Object.entries(v as Record<string, unknown>)) {
      if (k === '.') continue;
      const pe = peFromKey(k);
      if (typeof inner !== 'object' || inner === null || Array.isArray(inner)) {
        throw new FieldsV1Error(`value of ${JSON.stringify(k)} must be an object`);
      }
      const innerObj = inner as Record<string, unknown>;
      const keys = Object.keys(innerObj);
      if (keys.length === 0 || keys.includes('.')) out.members.set(peKey(pe), pe);
      const childSet = FieldSet.fromFieldsV1(innerObj);
      if (!childSet.empty()) out.children.set(peKey(pe), { pe, set: childSet });
    }
    return out;
  }
}
