/**
 * The Compute API's list `filter` expressions, as far as clients of stratus use them:
 * `field = value`, `field != value`, `field : value` (`:*` = has the field), `<`, `>`, `<=`,
 * `>=` on numbers, dotted paths (`labels.stratus-uid`), quoted or bare values, parentheses,
 * `AND` / `OR` / `NOT` (juxtaposed terms are ANDed). `=` and `!=` compare whole strings and
 * accept a trailing `*` as a prefix wildcard, like the real API's string matching for names.
 *
 * Anything else is a syntax error, which the fake answers with `400 invalid` on `filter`.
 */

export type FilterValue = unknown;
export type Predicate = (resource: Record<string, unknown>) => boolean;

export class FilterSyntaxError extends Error {}

type Token = { kind: 'word' | 'string' | 'op' | 'lparen' | 'rparen'; text: string };

function tokenize(input: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < input.length) {
    const c = input[i] as string;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '(') {
      out.push({ kind: 'lparen', text: c });
      i++;
    } else if (c === ')') {
      out.push({ kind: 'rparen', text: c });
      i++;
    } else if (c === '"' || c === "'") {
      const end = input.indexOf(c, i + 1);
      if (end < 0) throw new FilterSyntaxError(`unterminated string at ${i}`);
      out.push({ kind: 'string', text: input.slice(i + 1, end) });
      i = end + 1;
    } else {
      const op = /^(!=|<=|>=|=|:|<|>)/.exec(input.slice(i));
      if (op) {
        out.push({ kind: 'op', text: op[1] as string });
        i += (op[1] as string).length;
        continue;
      }
      const word = /^[^\s()"'=!<>:]+/.exec(input.slice(i));
      if (!word) throw new FilterSyntaxError(`unexpected ${JSON.stringify(c)} at ${i}`);
      out.push({ kind: 'word', text: word[0] });
      i += word[0].length;
    }
  }
  return out;
}

function lookup(resource: Record<string, unknown>, path: string): unknown {
  let cur: unknown = resource;
  for (const part of path.split('.')) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

function matchString(actual: unknown, pattern: string): boolean {
  if (actual === undefined || actual === null) return false;
  const s = String(actual);
  if (pattern.endsWith('*')) return s.startsWith(pattern.slice(0, -1));
  return s === pattern;
}

/** Compiles a filter expression; an empty one matches everything. */
export function compileFilter(expression: string | undefined): Predicate {
  if (!expression || expression.trim() === '') return () => true;
  const tokens = tokenize(expression);
  let pos = 0;
  const peek = (): Token | undefined => tokens[pos];
  const isWord = (t: Token | undefined, w: string): boolean => t?.kind === 'word' && t.text.toUpperCase() === w;

  function parseOr(): Predicate {
    let left = parseAnd();
    while (isWord(peek(), 'OR')) {
      pos++;
      const l = left;
      const r = parseAnd();
      left = (x) => l(x) || r(x);
    }
    return left;
  }

  function parseAnd(): Predicate {
    let left = parseUnary();
    for (;;) {
      const t = peek();
      if (!t || t.kind === 'rparen' || isWord(t, 'OR')) return left;
      if (isWord(t, 'AND')) pos++;
      const l = left;
      const r = parseUnary();
      left = (x) => l(x) && r(x);
    }
  }

  function parseUnary(): Predicate {
    const t = peek();
    if (isWord(t, 'NOT')) {
      pos++;
      const inner = parseUnary();
      return (x) => !inner(x);
    }
    if (t?.kind === 'word' && t.text.startsWith('-') && t.text.length > 1) {
      tokens[pos] = { kind: 'word', text: t.text.slice(1) };
      const inner = parseUnary();
      return (x) => !inner(x);
    }
    if (t?.kind === 'lparen') {
      pos++;
      const inner = parseOr();
      if (peek()?.kind !== 'rparen') throw new FilterSyntaxError('missing )');
      pos++;
      return inner;
    }
    return parseComparison();
  }

  function parseComparison(): Predicate {
    const field = tokens[pos++];
    const op = tokens[pos++];
    const value = tokens[pos++];
    if (field?.kind !== 'word' || op?.kind !== 'op' || !value || (value.kind !== 'word' && value.kind !== 'string')) {
      throw new FilterSyntaxError(`expected <field> <operator> <value> near token ${pos - 2}`);
    }
    if (!/^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_-]+)*$/.test(field.text)) throw new FilterSyntaxError(`bad field ${field.text}`);
    const path = field.text;
    const v = value.text;
    switch (op.text) {
      case '=':
        return (x) => matchString(lookup(x, path), v);
      case '!=':
        return (x) => !matchString(lookup(x, path), v);
      case ':':
        if (v === '*') return (x) => lookup(x, path) !== undefined;
        return (x) => {
          const a = lookup(x, path);
          return a !== undefined && a !== null && String(a).toLowerCase().includes(v.toLowerCase());
        };
      default: {
        const n = Number(v);
        if (!Number.isFinite(n)) throw new FilterSyntaxError(`${op.text} needs a number, got ${v}`);
        return (x) => {
          const a = Number(lookup(x, path));
          if (!Number.isFinite(a)) return false;
          return op.text === '<' ? a < n : op.text === '>' ? a > n : op.text === '<=' ? a <= n : a >= n;
        };
      }
    }
  }

  const predicate = parseOr();
  if (pos !== tokens.length) throw new FilterSyntaxError(`unexpected ${tokens[pos]?.text ?? 'end'}`);
  return predicate;
}
