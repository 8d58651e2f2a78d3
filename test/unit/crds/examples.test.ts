import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import type { CustomResourceDefinition } from '../../../apiserver/schema/types.js';
import { compileSchema, loadCrdDir } from '../../../apiserver/schema/validate.js';
import { repoRoot } from '../../harness/paths.js';

const crds = loadCrdDir(join(repoRoot(), 'crds'));
const exampleDir = join(repoRoot(), 'manifests', 'examples');

interface Doc {
  file: string;
  obj: { apiVersion: string; kind: string; metadata: { name: string }; [k: string]: unknown };
}

function crdFor(apiVersion: string, kind: string): CustomResourceDefinition | undefined {
  return crds.find((c) => c.spec.names.kind === kind && c.spec.versions.some((v) => `${c.spec.group}/${v.name}` === apiVersion));
}

const docs: Doc[] = readdirSync(exampleDir)
  .filter((f) => f.endsWith('.yaml'))
  .sort()
  .flatMap((file) => parseAllDocuments(readFileSync(join(exampleDir, file), 'utf8')).map((d) => ({ file, obj: d.toJS() as Doc['obj'] })));
const stratusDocs = docs.filter((d) => /\.stratus\.dev\//.test(d.obj.apiVersion));

describe('manifests/examples', () => {
  test('has a manifest for every kind', () => {
    const kinds = new Set(stratusDocs.map((d) => d.obj.kind));
    assert.deepEqual([...kinds].sort(), crds.map((c) => c.spec.names.kind).sort());
  });

  test('only other documents are core Kubernetes objects the examples reference (Secrets)', () => {
    for (const d of docs.filter((x) => !stratusDocs.includes(x))) assert.deepEqual([d.obj.apiVersion, d.obj.kind], ['v1', 'Secret'], d.file);
  });

  for (const d of stratusDocs) {
    test(`${d.file} (${d.obj.kind} ${d.obj.metadata.name}) validates against its CRD with nothing pruned`, () => {
      const crd = crdFor(d.obj.apiVersion, d.obj.kind);
      assert.ok(crd, `no CRD serves ${d.obj.apiVersion} ${d.obj.kind}`);
      const schema = compileSchema(crd.spec.versions[0]?.schema?.openAPIV3Schema ?? {});
      const obj = structuredClone(d.obj);
      assert.deepEqual(schema.prune(obj), []);
      schema.applyDefaults(obj);
      assert.deepEqual(schema.validate(obj), []);
      assert.deepEqual(schema.prune(obj), [], 'defaults add no unknown field');
    });
  }
});
