/**
 * Kubernetes label and field selectors: the `?labelSelector=` / `?fieldSelector=` syntax of list
 * and watch requests, and `metav1.LabelSelector` objects (`matchLabels` / `matchExpressions`).
 *
 * Parsing follows k8s.io/apimachinery (labels.Parse, fields.ParseSelector) closely enough that the
 * same strings are accepted and rejected, with the same error texts, because kubectl users see
 * those texts verbatim in a 400 response.
 */

/** A selector the client wrote wrong. The message is shown to the user in a 400 Bad Request. */
export class SelectorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SelectorError';
  }
}

export type LabelOperator = 'in' | 'notin' | '=' | '==' | '!=' | 'exists' | '!' | 'gt' | 'lt';

/** One term of a label selector; `values` is sorted and de-duplicated, as kube does. */
export interface LabelRequirement {
  key: string;
  operator: LabelOperator;
  values: string[];
}

/** A parsed label selector: every requirement must hold (logical AND). Empty matches everything. */
export type LabelSelector = LabelRequirement[];

// ---------------------------------------------------------------------------------------------
// Validation of keys and values, with apimachinery's messages (util/validation).

const qualifiedNameFmt = '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]';
const qualifiedNameRe = new RegExp(`^${qualifiedNameFmt}$`);
const qualifiedNameErrMsg =
  "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const labelValueFmt = `(${qualifiedNameFmt})?`;
const labelValueRe = new RegExp(`^${labelValueFmt}$`);
const labelValueErrMsg =
  "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const dns1123LabelFmt = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const dns1123SubdomainFmt = `${dns1123LabelFmt}(\\.${dns1123LabelFmt})*`;
const dns1123SubdomainRe = new RegExp(`^${dns1123SubdomainFmt}$`);
const dns1123SubdomainErrMsg =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";

function regexError(msg: string, fmt: string, ...examples: string[]): string {
  if (examples.length === 0) return `${msg} (regex used for validation is '${fmt}')`;
  return `${msg} (e.g. ${examples.map((e) => `'${e}', `).join('or ')}regex used for validation is '${fmt}')`;
}

const maxLenError = (n: number): string => `must be no more than ${n} characters`;

/** Errors of a qualified name (`prefix/name`), as apimachinery's IsQualifiedName reports them. */
export function qualifiedNameErrors(value: string): string[] {
  const errs: string[] = [];
  const parts = value.split('/');
  let name: string;
  if (parts.length === 1) {
    name = parts[0];
  } else if (parts.length === 2) {
    const prefix = parts[0];
    name = parts[1];
    if (prefix.length === 0) {
      errs.push('prefix part must be non-empty');
    } else {
      if (prefix.length > 253) errs.push(`prefix part ${maxLenError(253)}`);
      if (!dns1123SubdomainRe.test(prefix)) {
        errs.push(`prefix part ${regexError(dns1123SubdomainErrMsg, dns1123SubdomainFmt, 'example.com')}`);
      }
    }
  } else {
    return [
      `a qualified name ${regexError(qualifiedNameErrMsg, qualifiedNameFmt, 'MyName', 'my.name', '123-abc')} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`,
    ];
  }
  if (name.length === 0) errs.push('name part must be non-empty');
  else if (name.length > 63) errs.push(`name part ${maxLenError(63)}`);
  if (!qualifiedNameRe.test(name)) {
    errs.push(`name part ${regexError(qualifiedNameErrMsg, qualifiedNameFmt, 'MyName', 'my.name', '123-abc')}`);
  }
  return errs;
}

/** Errors of a label value (at most 63 characters, empty allowed). */
export function labelValueErrors(value: string): string[] {
  const errs: string[] = [];
  if (value.length > 63) errs.push(maxLenError(63));
  if (!labelValueRe.test(value)) errs.push(regexError(labelValueErrMsg, labelValueFmt, 'MyValue', 'my_value', '12345'));
  return errs;
}

function invalid(field: string, value: unknown, detail: string): string {
  const shown = typeof value === 'string' ? JSON.stringify(value) : goSliceString(value);
  return `${field}: Invalid value: ${shown}: ${detail}`;
}

function goSliceString(value: unknown): string {
  return Array.isArray(value) ? `[]string{${value.map((v) => JSON.stringify(v)).join(', ')}}` : String(value);
}

function aggregate(errs: string[]): string | undefined {
  if (errs.length === 0) return undefined;
  return errs.length === 1 ? errs[0] : `[${errs.join(', ')}]`;
}

function keyError(key: string, field = '<nil>'): string | undefined {
  const errs = qualifiedNameErrors(key);
  return errs.length ? invalid(field, key, errs.join('; ')) : undefined;
}

/** Validates a requirement as apimachinery's NewRequirement does; returns the aggregate message. */
function requirementError(r: LabelRequirement): string | undefined {
  const errs: string[] = [];
  const ke = keyError(r.key, 'key');
  if (ke) errs.push(ke);
  switch (r.operator) {
    case 'in':
    case 'notin':
      if (r.values.length === 0) errs.push(invalid('values', r.values, "for 'in', 'notin' operators, values set can't be empty"));
      break;
    case '=':
    case '==':
    case '!=':
      if (r.values.length !== 1) errs.push(invalid('values', r.values, 'exact-match compatibility requires one single value'));
      break;
    case 'exists':
    case '!':
      if (r.values.length !== 0) errs.push(invalid('values', r.values, 'values set must be empty for exists and does not exist'));
      break;
    case 'gt':
    case 'lt':
      if (r.values.length !== 1) errs.push(invalid('values', r.values, "for 'Gt', 'Lt' operators, exactly one value is required"));
      r.values.forEach((v, i) => {
        if (!/^[-+]?\d+$/.test(v)) errs.push(invalid(`values[${i}]`, v, "for 'Gt', 'Lt' operators, the value must be an integer"));
      });
      break;
  }
  r.values.forEach((v, i) => {
    const ve = labelValueErrors(v);
    if (ve.length) errs.push(invalid(`values[${i}][${r.key}]`, v, ve.join('; ')));
  });
  return aggregate(errs);
}

// ---------------------------------------------------------------------------------------------
// Lexer and parser of the label selector language.

type Tok =
  | 'error'
  | 'eos'
  | ')'
  | ','
  | '!'
  | '=='
  | '='
  | '>'
  | 'ident'
  | 'in'
  | '<'
  | '!='
  | 'notin'
  | '(';

interface Token {
  tok: Tok;
  lit: string;
}

const specialSymbols: ReadonlyArray<[string, Tok]> = [
  ['!=', '!='],
  ['==', '=='],
  ['!', '!'],
  ['=', '='],
  ['(', '('],
  [')', ')'],
  [',', ','],
  ['>', '>'],
  ['<', '<'],
];

const isWhitespace = (c: string): boolean => c === ' ' || c === '\t' || c === '\r' || c === '\n';
const isSpecial = (c: string): boolean => '=!(),><'.includes(c);

function lex(s: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (true) {
    while (i < s.length && isWhitespace(s[i])) i++;
    if (i >= s.length) {
      out.push({ tok: 'eos', lit: '' });
      return out;
    }
    if (isSpecial(s[i])) {
      // Longest run of special characters that still forms a known operator.
      let j = i;
      while (j < s.length && isSpecial(s[j])) j++;
      let matched: [string, Tok] | undefined;
      for (let end = j; end > i && !matched; end--) {
        const cand = s.slice(i, end);
        matched = specialSymbols.find(([sym]) => sym === cand);
      }
      if (!matched) {
        out.push({ tok: 'error', lit: s.slice(i, j) });
        i = j;
        continue;
      }
      out.push({ tok: matched[1], lit: matched[0] });
      i += matched[0].length;
      continue;
    }
    let j = i;
    while (j < s.length && !isWhitespace(s[j]) && !isSpecial(s[j])) j++;
    const word = s.slice(i, j);
    out.push({ tok: word === 'in' ? 'in' : word === 'notin' ? 'notin' : 'ident', lit: word });
    i = j;
  }
}

const binaryOperators = 'in, notin, =, ==, !=, gt, lt';

class LabelParser {
  private pos = 0;
  constructor(private readonly tokens: Token[]) {}

  /** In value position the keywords `in` / `notin` are plain identifiers. */
  private peek(values: boolean): Token {
    const t = this.tokens[Math.min(this.pos, this.tokens.length - 1)];
    return values && (t.tok === 'in' || t.tok === 'notin') ? { tok: 'ident', lit: t.lit } : t;
  }

  private next(values: boolean): Token {
    const t = this.peek(values);
    if (this.pos < this.tokens.length - 1) this.pos++;
    return t;
  }

  parse(): LabelSelector {
    const reqs: LabelSelector = [];
    while (true) {
      const { tok, lit } = this.peek(true);
      if (tok === 'ident' || tok === '!') {
        reqs.push(this.requirement());
        const after = this.next(true);
        if (after.tok === 'eos') return reqs;
        if (after.tok === ',') {
          const t2 = this.peek(true);
          if (t2.tok !== 'ident' && t2.tok !== '!') throw new SelectorError(`found '${t2.lit}', expected: identifier after ','`);
          continue;
        }
        throw new SelectorError(`found '${after.lit}', expected: ',' or 'end of string'`);
      }
      if (tok === 'eos') return reqs;
      throw new SelectorError(`found '${lit}', expected: !, identifier, or 'end of string'`);
    }
  }

  private requirement(): LabelRequirement {
    try {
      return this.requirementInner();
    } catch (e) {
      if (e instanceof SelectorError) throw new SelectorError(`unable to parse requirement: ${e.message}`);
      throw e;
    }
  }

  private requirementInner(): LabelRequirement {
    let t = this.next(true);
    let notExists = false;
    if (t.tok === '!') {
      notExists = true;
      t = this.next(true);
    }
    if (t.tok !== 'ident') throw new SelectorError(`found '${t.lit}', expected: identifier`);
    const key = t.lit;
    const ke = keyError(key);
    if (ke) throw new SelectorError(ke);
    const ahead = this.peek(true).tok;
    // "!key" is complete by itself: in "!key=value" the parse fails on the "=" that follows.
    if (notExists) return { key, operator: '!', values: [] };
    if (ahead === 'eos' || ahead === ',') return { key, operator: 'exists', values: [] };
    const op = this.operator();
    let values: string[];
    if (op === 'in' || op === 'notin') values = this.valueSet();
    else values = this.exactValue();
    const r: LabelRequirement = { key, operator: op, values: [...new Set(values)].sort() };
    const err = requirementError(r);
    if (err) throw new SelectorError(err);
    return r;
  }

  private operator(): LabelOperator {
    const { tok, lit } = this.next(false);
    switch (tok) {
      case 'in':
        return 'in';
      case 'notin':
        return 'notin';
      case '=':
        return '=';
      case '==':
        return '==';
      case '!=':
        return '!=';
      case '>':
        return 'gt';
      case '<':
        return 'lt';
      default:
        throw new SelectorError(`found '${lit}', expected: ${binaryOperators}`);
    }
  }

  private valueSet(): string[] {
    const open = this.next(true);
    if (open.tok !== '(') throw new SelectorError(`found '${open.lit}' expected: '('`);
    const { tok, lit } = this.peek(true);
    if (tok === ')') {
      this.next(true);
      return [''];
    }
    if (tok !== 'ident' && tok !== ',') throw new SelectorError(`found '${lit}', expected: ',', ')' or identifier`);
    const values = this.identifierList();
    if (this.next(true).tok !== ')') throw new SelectorError(`found '${lit}', expected: ')'`);
    return values;
  }

  private identifierList(): string[] {
    const out: string[] = [];
    while (true) {
      const { tok, lit } = this.next(true);
      if (tok === 'ident') {
        out.push(lit);
        const t2 = this.peek(true);
        if (t2.tok === ',') continue;
        if (t2.tok === ')') return out;
        throw new SelectorError(`found '${t2.lit}', expected: ',' or ')'`);
      }
      if (tok === ',') {
        // "(,a", "a,,b" and "a,)" each stand for an empty value.
        if (out.length === 0) out.push('');
        const t2 = this.peek(true);
        if (t2.tok === ')') {
          out.push('');
          return out;
        }
        if (t2.tok === ',') {
          this.next(true);
          out.push('');
        }
        continue;
      }
      throw new SelectorError(`found '${lit}', expected: ',', or identifier`);
    }
  }

  private exactValue(): string[] {
    const ahead = this.peek(true).tok;
    if (ahead === 'eos' || ahead === ',') return [''];
    const { tok, lit } = this.next(true);
    if (tok === 'ident') return [lit];
    throw new SelectorError(`found '${lit}', expected: identifier`);
  }
}

/**
 * Parses a label selector string (`a=b,c!=d,e in (f,g),!h,i`). Throws SelectorError with
 * apimachinery's message on a syntax error or an invalid key or value.
 */
export function parseLabelSelector(s: string): LabelSelector {
  return new LabelParser(lex(s)).parse();
}

/** True when every requirement holds for the labels (an absent label map is empty). */
export function matchesLabels(sel: LabelSelector, labels: Record<string, string> | undefined): boolean {
  const ls = labels ?? {};
  return sel.every((r) => requirementMatches(r, ls));
}

function requirementMatches(r: LabelRequirement, labels: Record<string, string>): boolean {
  const has = Object.prototype.hasOwnProperty.call(labels, r.key);
  const value = has ? labels[r.key] : undefined;
  switch (r.operator) {
    case 'in':
    case '=':
    case '==':
      return has && r.values.includes(value as string);
    case 'notin':
    case '!=':
      return !has || !r.values.includes(value as string);
    case 'exists':
      return has;
    case '!':
      return !has;
    case 'gt':
    case 'lt': {
      if (!has || !/^[-+]?\d+$/.test(value as string)) return false;
      const lv = BigInt(value as string);
      const rv = BigInt(r.values[0]);
      return r.operator === 'gt' ? lv > rv : lv < rv;
    }
  }
}

/** Renders a parsed selector back to its canonical string form (sorted like kube's String()). */
export function formatLabelSelector(sel: LabelSelector): string {
  return sel
    .map((r) => {
      switch (r.operator) {
        case 'exists':
          return r.key;
        case '!':
          return `!${r.key}`;
        case 'in':
        case 'notin':
          return `${r.key} ${r.operator} (${r.values.join(',')})`;
        case 'gt':
          return `${r.key}>${r.values[0]}`;
        case 'lt':
          return `${r.key}<${r.values[0]}`;
        default:
          return `${r.key}${r.operator}${r.values[0]}`;
      }
    })
    .join(',');
}

// ---------------------------------------------------------------------------------------------
// metav1.LabelSelector objects.

export interface LabelSelectorObject {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

/**
 * Converts a `metav1.LabelSelector` object (as in a Deployment's `spec.selector`) to the parsed form,
 * as metav1.LabelSelectorAsSelector does. An empty object selects everything. Operators are
 * `In`, `NotIn`, `Exists`, `DoesNotExist`.
 */
export function labelSelectorFromObject(obj: LabelSelectorObject): LabelSelector {
  const out: LabelSelector = [];
  for (const [key, value] of Object.entries(obj.matchLabels ?? {})) {
    const r: LabelRequirement = { key, operator: '=', values: [value] };
    const err = requirementError(r);
    if (err) throw new SelectorError(err);
    out.push(r);
  }
  for (const expr of obj.matchExpressions ?? []) {
    const ops: Record<string, LabelOperator> = { In: 'in', NotIn: 'notin', Exists: 'exists', DoesNotExist: '!' };
    const op = ops[expr.operator];
    if (!op) throw new SelectorError(`"${expr.operator}" is not a valid label selector operator`);
    const r: LabelRequirement = { key: expr.key, operator: op, values: [...new Set(expr.values ?? [])].sort() };
    const err = requirementError(r);
    if (err) throw new SelectorError(err);
    out.push(r);
  }
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

// ---------------------------------------------------------------------------------------------
// Field selectors.

export interface FieldRequirement {
  field: string;
  operator: '=' | '!=';
  value: string;
}

/** A parsed field selector: every term must hold. */
export type FieldSelector = FieldRequirement[];

/** Splits on commas that are not escaped with a backslash. */
function splitTerms(s: string): string[] {
  if (s === '') return [];
  const terms: string[] = [];
  let start = 0;
  let escaped = false;
  for (let i = 0; i < s.length; i++) {
    if (escaped) {
      escaped = false;
    } else if (s[i] === '\\') {
      escaped = true;
    } else if (s[i] === ',') {
      terms.push(s.slice(start, i));
      start = i + 1;
    }
  }
  terms.push(s.slice(start));
  return terms;
}

function splitTerm(term: string): [string, string, string] | undefined {
  for (let i = 0; i < term.length; i++) {
    for (const op of ['!=', '==', '=']) {
      if (term.startsWith(op, i)) return [term.slice(0, i), op, term.slice(i + op.length)];
    }
  }
  return undefined;
}

function unescapeValue(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\') {
      const n = s[i + 1];
      if (n === '\\' || n === ',' || n === '=') {
        out += n;
        i++;
        continue;
      }
      throw new SelectorError(`invalid field selector: invalid escape sequence: \\${n ?? ''}`);
    }
    if (c === ',' || c === '=') throw new SelectorError(`invalid field selector: unescaped character in value: ${c}`);
    out += c;
  }
  return out;
}

/**
 * Parses a field selector (`metadata.name=x,metadata.namespace!=y`). Only `allowedFields` may be
 * used; any other field is rejected with the message kube-apiserver gives for custom resources.
 */
export function parseFieldSelector(s: string, allowedFields: string[]): FieldSelector {
  const out: FieldSelector = [];
  for (const part of splitTerms(s).sort()) {
    if (part === '') continue;
    const t = splitTerm(part);
    if (!t) throw new SelectorError(`invalid selector: '${s}'; can't understand '${part}'`);
    const [field, op, rhs] = t;
    const value = unescapeValue(rhs);
    if (!allowedFields.includes(field)) {
      throw new SelectorError(
        `"${field}" is not a known field selector: only ${allowedFields.map((f) => `"${f}"`).join(', ')}`,
      );
    }
    out.push({ field, operator: op === '!=' ? '!=' : '=', value });
  }
  return out;
}

/** True when every term holds; a field absent from `fieldValues` has the value "". */
export function matchesFields(sel: FieldSelector, fieldValues: Record<string, string>): boolean {
  return sel.every((r) => {
    const v = Object.prototype.hasOwnProperty.call(fieldValues, r.field) ? fieldValues[r.field] : '';
    return r.operator === '=' ? v === r.value : v !== r.value;
  });
}
