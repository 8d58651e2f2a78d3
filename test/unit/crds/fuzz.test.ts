/**
 * Seeded random mutations of every example: whatever a client sends, pruning, defaulting and
 * validation return causes and never throw (a throw would be a 500 from the API server).
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { compileSchema, loadCrdDir } from '../../../apiserver/schema/validate.js';
import { repoRoot } from '../../harness/paths.js';

type Rand = () => number;

function mulberry32(seed: number): Rand {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ODD_VALUES: unknown[] = [null, true, 0, -1, 1.5, 1e308, '', 'x'.repeat(70000), '<script>', [], [null], {}, { constructor: 1 }, Array.from({ length: 300 }, (_, i) => i), '\u0000', 'constructor'];
const ODD_KEYS = ['constructor', '__proto__', 'toString', 'hasOwnProperty', '', 'a.b/c', 'x-kubernetes-list-type'];

function mutate(r: Rand, v: unknown, depth = 0): unknown {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  if (r() < 0.15 || depth > 6) return pick(ODD_VALUES);
  if (Array.isArray(v)) {
    const out = v.map((x) => (r() < 0.3 ? mutate(r, x, depth + 1) : x));
    if (r() < 0.2) out.push(out[0] ?? pick(ODD_VALUES));
    return out;
  }
  if (typeof v === 'object' && v !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      if (r() < 0.1) continue;
      Object.defineProperty(out, k, { value: r() < 0.3 ? mutate(r, x, depth + 1) : x, enumerable: true, writable: true, configurable: true });
    }
    if (r() < 0.2) Object.defineProperty(out, pick(ODD_KEYS), { value: pick(ODD_VALUES), enumerable: true, writable: true, configurable: true });
    return out;
  }
  return r() < 0.5 ? pick(ODD_VALUES) : v;
}

test('2,000 mutated manifests per kind get causes, never an exception, and nothing leaks into Object.prototype', () => {
  const crds = loadCrdDir(join(repoRoot(), 'crds'));
  const dir = join(repoRoot(), 'manifests', 'examples');
  const examples = readdirSync(dir).flatMap((f) => parseAllDocuments(readFileSync(join(dir, f), 'utf8')).map((d) => d.toJS() as { kind: string }));
  const r = mulberry32(20261122);
  let rejected = 0;
  for (const crd of crds) {
    const schema = compileSchema(crd.spec.versions[0]?.schema?.openAPIV3Schema ?? {});
    const bases = examples.filter((e) => e.kind === crd.spec.names.kind);
    assert.ok(bases.length > 0, crd.spec.names.kind);
    for (let i = 0; i < 2000; i++) {
      const obj = mutate(r, bases[i % bases.length]);
      try {
        schema.prune(obj);
        schema.applyDefaults(obj);
        const causes = schema.validate(obj);
        for (const c of causes) assert.ok(typeof c.field === 'string' && c.message.length > 0);
        if (causes.length > 0) rejected++;
      } catch (err) {
        assert.fail(`${crd.spec.names.kind} #${i} threw ${String(err)} on ${JSON.stringify(obj).slice(0, 500)}`);
      }
    }
  }
  assert.equal(Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted'), false);
  assert.ok(rejected > 1000, `the mutations are mostly invalid (${rejected} rejected)`);
});
