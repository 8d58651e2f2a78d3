/**
 * `manifests/gitops/` is what the example Argo CD Application syncs: every object must be
 * valid against its CRD, and sync waves must order nodes and networks before Instances and
 * Instances before Projects.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { compileSchema, loadCrdDir } from '../../../apiserver/schema/validate.js';
import { repoRoot } from '../../harness/paths.js';
import { kubectl } from '../../harness/apiserver.js';
import { removeDir, tempDir } from '../../harness/process.js';

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; annotations?: Record<string, string> };
}

test('the GitOps example renders, validates against the CRDs, and orders its sync waves', async () => {
  const cache = await tempDir('kustomize');
  try {
    // `kubectl kustomize` needs no server; the kubeconfig argument is never contacted.
    const out = await kubectl('/dev/null', cache, ['kustomize', join(repoRoot(), 'manifests', 'gitops')]);
    assert.equal(out.code, 0, out.stderr);
    const docs = parseAllDocuments(out.stdout).map((d) => d.toJS() as Obj);
    const crds = loadCrdDir(join(repoRoot(), 'crds'));
    const wave = (o: Obj): number => Number(o.metadata.annotations?.['argocd.argoproj.io/sync-wave'] ?? '0');
    for (const o of docs) {
      const crd = crds.find((c) => c.spec.names.kind === o.kind && o.apiVersion.startsWith(`${c.spec.group}/`));
      assert.ok(crd, `${o.kind} is a stratus kind`);
      const schema = compileSchema(crd.spec.versions[0]!.schema!.openAPIV3Schema);
      const copy = structuredClone(o);
      schema.applyDefaults(copy);
      assert.deepEqual(schema.prune(copy), [], `${o.kind}/${o.metadata.name}: unknown fields`);
      assert.deepEqual(schema.validate(copy), [], `${o.kind}/${o.metadata.name}`);
    }
    const maxWave = (kinds: string[]): number => Math.max(...docs.filter((d) => kinds.includes(d.kind)).map(wave));
    const minWave = (kinds: string[]): number => Math.min(...docs.filter((d) => kinds.includes(d.kind)).map(wave));
    assert.ok(maxWave(['ComputeNode', 'Network']) < minWave(['Instance']), 'nodes and networks sync before Instances');
    assert.ok(maxWave(['Instance']) < minWave(['Project']), 'Instances sync before Projects');
  } finally {
    await removeDir(cache);
  }
});
