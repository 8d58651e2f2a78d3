/**
 * The replay suite's machinery: exchanges copied from the seed documents (one JSON file per
 * request/response pair under `test/fixtures/legacy/<system>/`), a way to bind the document's
 * literal values to the test's (a Docker id the engine generated, the port a test engine
 * listens on), and one comparer.
 *
 * The comparer's contract, the issue's: the actual response has the same keys and the same
 * JSON types as the document's, and equal values — except at the paths the fixture lists as
 * `generated` (ids, hashes, timestamps, addresses), where only the value's format is checked.
 * Arrays must have the same length (the replay builds the document's state first).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { repoRoot } from '../../harness/paths.js';
import { http, type HttpResult } from './helpers.js';

/** Formats a generated value may be checked against. */
export const FORMATS = {
  /** A Cloud Brain instance id (a Kubernetes uid). */
  uuid: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
  /** A full Docker container id. */
  'docker-id': /^[0-9a-f]{64}$/,
  /** The short Docker id a container gets as its default hostname. */
  'docker-short-id': /^[0-9a-f]{12}$/,
  /** A Docker container name as the engine API returns it. */
  'docker-name': /^\/[a-zA-Z0-9][a-zA-Z0-9_.-]+$/,
  /** An absolute http(s) URL. */
  'absolute-url': /^https?:\/\/[^\s/]+\/\S*$/,
  ipv4: /^(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])){3}$/,
} as const;

/** A format name, or `type`: any value of the document's JSON type (a list or object of any content). */
export type Format = keyof typeof FORMATS | 'type';

export interface Exchange {
  /** The seed document and section it is copied from. */
  document: string;
  section: string;
  /** Why the fixture differs from the document's text, if it does. */
  note?: string;
  request: { method: string; path: string; headers?: Record<string, string>; body?: unknown; rawBody?: string };
  /** A response without `body` is compared on status (and headers) only; `body: null` means an empty body. */
  response: { status: number; headers?: Record<string, string>; body?: unknown };
  /** Paths (`body.data[*].id`, `headers.location`) whose values are generated. */
  generated?: Record<string, Format>;
}

export interface LoadedExchange extends Exchange {
  file: string;
}

export function fixtureDir(system: string): string {
  return join(repoRoot(), 'test', 'fixtures', 'legacy', system);
}

/** The exchanges of one system, in file-name order (`NN-name.json`). */
export async function loadExchanges(system: string): Promise<LoadedExchange[]> {
  const dir = fixtureDir(system);
  const files = (await readdir(dir)).filter((f) => f.endsWith('.json')).sort();
  const out: LoadedExchange[] = [];
  for (const f of files) out.push({ ...(JSON.parse(await readFile(join(dir, f), 'utf8')) as Exchange), file: f });
  return out;
}

export async function loadExchange(system: string, file: string): Promise<LoadedExchange> {
  const all = await loadExchanges(system);
  const found = all.find((e) => e.file === file || e.file === `${file}.json`);
  if (!found) throw new Error(`no fixture ${system}/${file}`);
  return found;
}

/**
 * Replaces the document's literal values by the test's: every string equal to a key, or
 * containing it, gets the key replaced; every number equal to a numeric key (written `#6379`)
 * becomes the bound number.
 */
export function bind<T>(value: T, bindings: Record<string, string | number>): T {
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') {
      let s = v;
      for (const [from, to] of Object.entries(bindings)) if (!from.startsWith('#')) s = s.split(from).join(String(to));
      return s;
    }
    if (typeof v === 'number') {
      const to = bindings[`#${v}`];
      return to === undefined ? v : Number(to);
    }
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return walk(value) as T;
}

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/** `body.data[3].id` → `body.data[*].id`, the form `generated` is written in. */
function pattern(path: string): string {
  return path.replace(/\[[0-9]+\]/g, '[*]');
}

/** Every difference between the document's value and the actual one; empty when they agree. */
export function compare(expected: unknown, actual: unknown, generated: Record<string, Format> = {}, path = 'body'): string[] {
  const format = generated[pattern(path)];
  const et = jsonType(expected);
  const at = jsonType(actual);
  if (format !== undefined && format !== 'type') {
    if (typeof actual !== 'string' || !FORMATS[format].test(actual)) return [`${path}: ${JSON.stringify(actual)} is not a ${format}`];
    return [];
  }
  if (et !== at) return [`${path}: expected ${et} (${JSON.stringify(expected)}), got ${at} (${JSON.stringify(actual)})`];
  // `type`: the document's JSON type, whatever the value (or the entries of a list or object).
  if (format === 'type') return [];
  if (et === 'array') {
    const e = expected as unknown[];
    const a = actual as unknown[];
    if (e.length !== a.length) return [`${path}: expected ${e.length} entries, got ${a.length}: ${JSON.stringify(a)}`];
    return e.flatMap((x, i) => compare(x, a[i], generated, `${path}[${i}]`));
  }
  if (et === 'object') {
    const e = expected as Record<string, unknown>;
    const a = actual as Record<string, unknown>;
    const ek = Object.keys(e).sort();
    const ak = Object.keys(a).sort();
    const missing = ek.filter((k) => !Object.hasOwn(a, k));
    const extra = ak.filter((k) => !Object.hasOwn(e, k));
    const out: string[] = [];
    if (missing.length) out.push(`${path}: missing keys ${missing.join(', ')}`);
    if (extra.length) out.push(`${path}: unexpected keys ${extra.join(', ')}`);
    for (const k of ek) if (Object.hasOwn(a, k)) out.push(...compare(e[k], a[k], generated, `${path}.${k}`));
    return out;
  }
  return expected === actual ? [] : [`${path}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`];
}

/** Differences between an exchange's documented response and what the server answered. */
export function compareResponse(ex: Exchange, res: HttpResult): string[] {
  const out: string[] = [];
  if (res.status !== ex.response.status) out.push(`status: expected ${ex.response.status}, got ${res.status} (${res.text})`);
  for (const [name, value] of Object.entries(ex.response.headers ?? {})) {
    const got = res.headers.get(name);
    const format = ex.generated?.[`headers.${name.toLowerCase()}`];
    if (got === null) out.push(`headers.${name}: missing`);
    else if (format && format !== 'type') {
      if (!FORMATS[format].test(got)) out.push(`headers.${name}: ${JSON.stringify(got)} is not a ${format}`);
    } else if (!format && got !== value) out.push(`headers.${name}: expected ${JSON.stringify(value)}, got ${JSON.stringify(got)}`);
  }
  if (ex.response.body === null) {
    if (res.text !== '') out.push(`body: expected none, got ${JSON.stringify(res.text)}`);
  } else if (ex.response.body !== undefined) {
    if (res.json === undefined) out.push(`body: expected JSON, got ${JSON.stringify(res.text)}`);
    else out.push(...compare(ex.response.body, res.json, ex.generated ?? {}));
  }
  return out;
}

/** Sends an exchange's request to `base` (the legacy listener) with extra headers. */
export async function send(base: string, ex: Exchange, headers: Record<string, string> = {}): Promise<HttpResult> {
  const body = ex.request.rawBody ?? (ex.request.body === undefined ? undefined : JSON.stringify(ex.request.body));
  return http(ex.request.method, `${base}${ex.request.path}`, { headers: { ...(ex.request.headers ?? {}), ...headers }, ...(body !== undefined ? { body } : {}) });
}

/** Replays one exchange and throws with every difference when the answer is not the document's. */
export async function replay(base: string, ex: LoadedExchange, headers: Record<string, string> = {}): Promise<HttpResult> {
  const res = await send(base, ex, headers);
  const diffs = compareResponse(ex, res);
  if (diffs.length) throw new Error(`${ex.file} (${ex.document} — ${ex.section}) differs from the document:\n  ${diffs.join('\n  ')}`);
  return res;
}
