/**
 * The JSONPath dialect of kubectl and of CRD `additionalPrinterColumns` (k8s.io/client-go/util/jsonpath),
 * for one path expression: `.status.state`, `.spec.disks[0].name`, `.items[*].metadata.name`,
 * `.status.conditions[?(@.type=="Ready")].status`, `..name`, `['a.b']`, `[1:3]`, `[0,2]`, and
 * backslash escapes in field names (`.metadata.annotations.example\.com/x`). An optional `$`
 * root and optional surrounding braces (`{.spec}`) are accepted.
 *
 * Evaluation is lenient as kube's printer columns are (AllowMissingKeys): a missing key, an
 * out-of-range index or a type mismatch yields no result rather than an error.
 */

type Literal = string | number | boolean | null;

type Operand = { kind: 'path'; segments: Segment[] } | { kind: 'literal'; value: Literal };

type FilterOp = '==' | '!=' | '<' | '>' | '<=' | '>=';

type Segment =
  | { t: 'field'; names: string[] }
  | { t: 'wildcard' }
  | { t: 'index'; indices: number[] }
  | { t: 'slice'; start?: number; end?: number; step?: number }
  | { t: 'recursive' }
  | { t: 'filter'; left: Segment[]; op?: FilterOp; right?: Operand };

class JsonPathError extends Error {}

const terminators = new Set(['.', ',', '[', ']', '$', '@', '{', '}', ' ', '\t', '\n', '\r']);

class Parser {
  private pos = 0;
  constructor(private readonly s: string) {}

  parsePath(): Segment[] {
    const segs: Segment[] = [];
    const s = this.s;
    if (s[this.pos] === '$' || s[this.pos] === '@') this.pos++;
    while (this.pos < s.length) {
      const c = s[this.pos];
      if (c === ' ' || c === '\t') {
        // Spaces between segments are ignored, as kube's parser does.
        this.pos++;
        continue;
      }
      if (c === '.') {
        if (s[this.pos + 1] === '.') {
          this.pos += 2;
          segs.push({ t: 'recursive' });
          if (s[this.pos] === '[') continue;
          segs.push(this.field());
          continue;
        }
        this.pos++;
        if (this.pos >= s.length) {
          // A lone "." is the current object.
          if (segs.length === 0) return segs;
          throw new JsonPathError('unterminated field name: path ends with "."');
        }
        segs.push(this.field());
        continue;
      }
      if (c === '[') {
        segs.push(this.bracket());
        continue;
      }
      throw new JsonPathError(`unrecognized character in action: ${JSON.stringify(c)}`);
    }
    return segs;
  }

  private field(): Segment {
    const s = this.s;
    let name = '';
    while (this.pos < s.length && !terminators.has(s[this.pos])) {
      if (s[this.pos] === '\\') {
        if (this.pos + 1 < s.length) name += s[this.pos + 1];
        this.pos += 2;
        continue;
      }
      name += s[this.pos++];
    }
    if (name === '') throw new JsonPathError(`unexpected ${JSON.stringify(s[this.pos] ?? 'end of path')} after "."`);
    return name === '*' ? { t: 'wildcard' } : { t: 'field', names: [name] };
  }

  private bracket(): Segment {
    const s = this.s;
    if (s.startsWith('[?(', this.pos)) return this.filter();
    const close = this.findClose(this.pos + 1);
    const inner = s.slice(this.pos + 1, close).trim();
    this.pos = close + 1;
    if (inner === '*') return { t: 'wildcard' };
    if (inner.startsWith("'") || inner.startsWith('"')) {
      return { t: 'field', names: splitUnion(inner).map((p) => unquote(p.trim())) };
    }
    if (inner.includes(':')) {
      const parts = inner.split(':');
      if (parts.length > 3) throw new JsonPathError(`invalid array index ${inner}`);
      const [start, end, step] = parts.map((p) => (p.trim() === '' ? undefined : toInt(p.trim(), inner)));
      if (step === 0) throw new JsonPathError(`step must be > 0 in ${inner}`);
      return { t: 'slice', start, end, step };
    }
    if (inner === '') throw new JsonPathError('empty array index []');
    return { t: 'index', indices: inner.split(',').map((p) => toInt(p.trim(), inner)) };
  }

  /** Index of the `]` closing a bracket, skipping quoted text. */
  private findClose(from: number): number {
    const s = this.s;
    let quote: string | undefined;
    for (let i = from; i < s.length; i++) {
      const c = s[i];
      if (quote) {
        if (c === '\\') i++;
        else if (c === quote) quote = undefined;
      } else if (c === "'" || c === '"') quote = c;
      else if (c === ']') return i;
    }
    throw new JsonPathError('unterminated array');
  }

  private filter(): Segment {
    const s = this.s;
    const start = this.pos + 3;
    let quote: string | undefined;
    let i = start;
    for (; i < s.length; i++) {
      const c = s[i];
      if (quote) {
        if (c === '\\') i++;
        else if (c === quote) quote = undefined;
      } else if (c === "'" || c === '"') quote = c;
      else if (c === ')') break;
    }
    if (i >= s.length) throw new JsonPathError('unterminated filter');
    if (s[i + 1] !== ']') throw new JsonPathError('unclosed array expect ]');
    const text = s.slice(start, i).trim();
    this.pos = i + 2;
    const m = /^([^!<>=]+)([!<>=]+)(.+?)$/s.exec(text);
    if (!m) return { t: 'filter', left: parseOperandPath(text) };
    const op = m[2];
    if (!['==', '!=', '<', '>', '<=', '>='].includes(op)) throw new JsonPathError(`unrecognized filter operator ${op}`);
    return { t: 'filter', left: parseOperandPath(m[1].trim()), op: op as FilterOp, right: parseOperand(m[3].trim()) };
  }
}

function splitUnion(inner: string): string[] {
  const parts: string[] = [];
  let quote: string | undefined;
  let cur = '';
  for (let i = 0; i < inner.length; i++) {
    const c = inner[i];
    if (quote) {
      if (c === '\\' && i + 1 < inner.length) {
        cur += c + inner[++i];
        continue;
      }
      if (c === quote) quote = undefined;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === ',') {
      parts.push(cur);
      cur = '';
      continue;
    }
    cur += c;
  }
  parts.push(cur);
  return parts;
}

function unquote(q: string): string {
  const quote = q[0];
  if ((quote !== "'" && quote !== '"') || q.length < 2 || q[q.length - 1] !== quote) {
    throw new JsonPathError(`unterminated quoted string ${q}`);
  }
  let out = '';
  for (let i = 1; i < q.length - 1; i++) {
    if (q[i] === '\\' && i + 1 < q.length - 1) {
      const n = q[++i];
      out += n === 'n' ? '\n' : n === 't' ? '\t' : n;
    } else out += q[i];
  }
  return out;
}

function toInt(p: string, inner: string): number {
  if (!/^[-+]?\d+$/.test(p)) throw new JsonPathError(`invalid array index ${inner}`);
  return Number(p);
}

function parseOperandPath(text: string): Segment[] {
  if (!/^[@$.[]/.test(text)) throw new JsonPathError(`unrecognized identifier ${text}`);
  return new Parser(text).parsePath();
}

function parseOperand(text: string): Operand {
  if (text.startsWith("'") || text.startsWith('"')) return { kind: 'literal', value: unquote(text) };
  if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) return { kind: 'literal', value: Number(text) };
  if (text === 'true' || text === 'false') return { kind: 'literal', value: text === 'true' };
  if (text === 'null') return { kind: 'literal', value: null };
  return { kind: 'path', segments: parseOperandPath(text) };
}

function stripBraces(path: string): string {
  const p = path.trim();
  if (p.startsWith('{')) {
    if (!p.endsWith('}')) throw new JsonPathError('unclosed action');
    return p.slice(1, -1).trim();
  }
  return p;
}

function parse(path: string): Segment[] {
  const inner = stripBraces(path);
  if (inner === '') throw new JsonPathError('empty path');
  if (!/^[@$.[]/.test(inner)) throw new JsonPathError(`unrecognized identifier ${inner.split(/[.[]/)[0]}`);
  return new Parser(inner).parsePath();
}

const cache = new Map<string, Segment[]>();

function compiled(path: string): Segment[] {
  let segs = cache.get(path);
  if (!segs) {
    segs = parse(path);
    if (cache.size > 1000) cache.clear();
    cache.set(path, segs);
  }
  return segs;
}

/** An error message when `path` is not valid JSONPath in kube's dialect, else undefined. */
export function validateJsonPath(path: string): string | undefined {
  try {
    parse(path);
    return undefined;
  } catch (e) {
    if (e instanceof JsonPathError) return e.message;
    throw e;
  }
}

/**
 * Every value `path` selects in `obj`, in document order (an empty list when nothing matches).
 * Throws an Error when the path itself is malformed; check it first with validateJsonPath.
 */
export function evalJsonPath(path: string, obj: unknown): unknown[] {
  let segs: Segment[];
  try {
    segs = compiled(path);
  } catch (e) {
    if (e instanceof JsonPathError) throw new Error(`invalid JSONPath ${JSON.stringify(path)}: ${e.message}`);
    throw e;
  }
  return evalSegments(segs, [obj]);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function evalSegments(segs: Segment[], input: unknown[]): unknown[] {
  let cur = input;
  for (const seg of segs) {
    cur = cur.flatMap((v) => step(seg, v));
  }
  return cur;
}

function step(seg: Segment, v: unknown): unknown[] {
  switch (seg.t) {
    case 'field':
      if (!isObject(v)) return [];
      return seg.names.filter((n) => Object.prototype.hasOwnProperty.call(v, n)).map((n) => v[n]);
    case 'wildcard':
      if (Array.isArray(v)) return v;
      if (isObject(v)) return Object.values(v);
      return [];
    case 'index': {
      if (!Array.isArray(v)) return [];
      const out: unknown[] = [];
      for (const raw of seg.indices) {
        const i = raw < 0 ? raw + v.length : raw;
        if (i >= 0 && i < v.length) out.push(v[i]);
      }
      return out;
    }
    case 'slice': {
      if (!Array.isArray(v)) return [];
      const len = v.length;
      const norm = (x: number | undefined, dflt: number): number => {
        if (x === undefined) return dflt;
        const y = x < 0 ? x + len : x;
        return Math.min(Math.max(y, 0), len);
      };
      const start = norm(seg.start, 0);
      const end = norm(seg.end, len);
      const stepBy = seg.step ?? 1;
      const out: unknown[] = [];
      for (let i = start; i < end; i += stepBy) out.push(v[i]);
      return out;
    }
    case 'recursive':
      return descendants(v);
    case 'filter': {
      if (!Array.isArray(v)) return [];
      return v.filter((item) => filterMatches(seg, item));
    }
  }
}

/** The value itself and everything below it, depth first. */
function descendants(v: unknown): unknown[] {
  const out: unknown[] = [v];
  if (Array.isArray(v)) for (const x of v) out.push(...descendants(x));
  else if (isObject(v)) for (const x of Object.values(v)) out.push(...descendants(x));
  return out;
}

function filterMatches(seg: Extract<Segment, { t: 'filter' }>, item: unknown): boolean {
  const lefts = evalSegments(seg.left, [item]);
  if (!seg.op || !seg.right) return lefts.length > 0;
  if (lefts.length !== 1) return false;
  const rights = seg.right.kind === 'literal' ? [seg.right.value] : evalSegments(seg.right.segments, [item]);
  if (rights.length !== 1) return false;
  return compare(lefts[0], seg.op, rights[0]);
}

/** Comparison of two scalars of the same kind; values of different kinds never match (kube fails the whole path). */
function compare(a: unknown, op: FilterOp, b: unknown): boolean {
  const scalar = (x: unknown): boolean => x === null || ['string', 'number', 'boolean'].includes(typeof x);
  if (!scalar(a) || !scalar(b)) {
    if (op === '==' || op === '!=') {
      const eq = JSON.stringify(a) === JSON.stringify(b);
      return op === '==' ? eq : !eq;
    }
    return false;
  }
  if (typeof a !== typeof b || (a === null) !== (b === null)) return false;
  switch (op) {
    case '==':
      return a === b;
    case '!=':
      return a !== b;
  }
  if (typeof a === 'boolean' || a === null) return false;
  const x = a as string | number;
  const y = b as string | number;
  switch (op) {
    case '<':
      return x < y;
    case '>':
      return x > y;
    case '<=':
      return x <= y;
    case '>=':
      return x >= y;
  }
}
