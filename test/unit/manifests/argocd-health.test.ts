/**
 * Runs every Argo CD health check in `manifests/argocd/resource_customizations/` in a real
 * Lua 5.1 interpreter (the dialect Argo CD embeds) over its `health_test.yaml` cases, the
 * way Argo CD's own test harness does: `obj` is a global table, the script returns `hs`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { repoRoot } from '../../harness/paths.js';
import { execFileP, requireBinary, tempDir, removeDir } from '../../harness/process.js';

const root = join(repoRoot(), 'manifests', 'argocd', 'resource_customizations');

function luaString(s: string): string {
  return '"' + s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\0/g, '\\0') + '"';
}

/** A JSON value as a Lua table constructor (arrays 1-indexed, as Argo CD converts them). */
function toLua(v: unknown): string {
  if (v === null || v === undefined) return 'nil';
  if (typeof v === 'string') return luaString(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return '{' + v.map(toLua).join(',') + '}';
  if (v instanceof Date) return luaString(v.toISOString().replace('.000Z', 'Z'));
  return '{' + Object.entries(v as Record<string, unknown>).map(([k, x]) => `[${luaString(k)}]=${toLua(x)}`).join(',') + '}';
}

interface HealthCase {
  healthStatus: { status: string; message: string };
  inputPath: string;
}

function checkDirs(): { group: string; kind: string; dir: string }[] {
  const out: { group: string; kind: string; dir: string }[] = [];
  for (const group of readdirSync(root)) {
    for (const kind of readdirSync(join(root, group))) out.push({ group, kind, dir: join(root, group, kind) });
  }
  return out;
}

test('every stratus kind in crds/ has an Argo CD health check with test cases', () => {
  const crdDir = join(repoRoot(), 'crds');
  const kinds = readdirSync(crdDir)
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => parseAllDocuments(readFileSync(join(crdDir, f), 'utf8')).map((d) => d.toJS() as { spec?: { group?: string; names?: { kind?: string } } }))
    .filter((crd) => crd.spec?.group && crd.spec.names?.kind)
    .map((crd) => `${crd.spec!.group}/${crd.spec!.names!.kind}`);
  assert.ok(kinds.length >= 11, `expected the 11 kinds of DESIGN.md in crds/, found ${kinds.length}`);
  for (const k of kinds) {
    assert.ok(existsSync(join(root, k, 'health.lua')), `missing ${k}/health.lua`);
    assert.ok(existsSync(join(root, k, 'health_test.yaml')), `missing ${k}/health_test.yaml`);
  }
});

test('the health checks of kinds without special rules are one script', () => {
  const special = new Set(['compute.stratus.dev/Instance', 'compute.stratus.dev/InstanceGroup', 'apps.stratus.dev/Deployment']);
  const generic = checkDirs().filter((c) => !special.has(`${c.group}/${c.kind}`));
  const first = readFileSync(join(generic[0]!.dir, 'health.lua'), 'utf8');
  for (const c of generic) {
    assert.equal(readFileSync(join(c.dir, 'health.lua'), 'utf8'), first, `${c.group}/${c.kind}/health.lua drifted from the shared script`);
  }
});

for (const { group, kind, dir } of checkDirs()) {
  test(`${group}/${kind} health.lua gives the expected status for each test case`, async () => {
    const lua = requireBinary('lua5.1');
    const cases = (parse(readFileSync(join(dir, 'health_test.yaml'), 'utf8')) as { tests: HealthCase[] }).tests;
    assert.ok(cases.length >= 4, 'each kind needs at least four cases');
    const work = await tempDir('lua');
    try {
      for (const c of cases) {
        const obj = parse(readFileSync(join(dir, c.inputPath), 'utf8')) as unknown;
        const wrapper = join(work, 'run.lua');
        writeFileSync(
          wrapper,
          `obj = ${toLua(obj)}\nlocal f = assert(loadfile(${luaString(join(dir, 'health.lua'))}))\nlocal hs = f()\nio.write(tostring(hs.status), "\\n", tostring(hs.message), "\\n")\n`,
        );
        const { stdout } = await execFileP(lua, [wrapper]);
        const [status, message] = stdout.split('\n');
        assert.deepEqual({ status, message }, c.healthStatus, `${c.inputPath}`);
      }
    } finally {
      await removeDir(work);
    }
  });
}
