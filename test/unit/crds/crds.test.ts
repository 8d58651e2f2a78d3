import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { crdErrors, structuralErrors } from '../../../apiserver/schema/structural.js';
import type { CustomResourceDefinition, JSONSchemaProps } from '../../../apiserver/schema/types.js';
import { loadCrdDir } from '../../../apiserver/schema/validate.js';
import { repoRoot } from '../../harness/paths.js';

const crdDir = join(repoRoot(), 'crds');
const crds = loadCrdDir(crdDir);
const byKind = new Map(crds.map((c) => [c.spec.names.kind, c]));

function schemaOf(crd: CustomResourceDefinition): JSONSchemaProps {
  const s = crd.spec.versions[0]?.schema?.openAPIV3Schema;
  assert.ok(s, `${crd.metadata.name} has a schema`);
  return s;
}

/** Calls fn for every schema node reachable through properties/items/additionalProperties. */
function walk(s: JSONSchemaProps, path: string, fn: (s: JSONSchemaProps, path: string) => void): void {
  fn(s, path);
  for (const [k, v] of Object.entries(s.properties ?? {})) walk(v, `${path}.${k}`, fn);
  if (s.items) walk(s.items, `${path}[]`, fn);
  if (typeof s.additionalProperties === 'object') walk(s.additionalProperties, `${path}{}`, fn);
}

const EXPECTED: Record<string, { group: string; plural: string; namespaced: boolean }> = {
  ComputeNode: { group: 'compute.stratus.dev', plural: 'computenodes', namespaced: false },
  Instance: { group: 'compute.stratus.dev', plural: 'instances', namespaced: true },
  InstanceGroup: { group: 'compute.stratus.dev', plural: 'instancegroups', namespaced: true },
  Network: { group: 'compute.stratus.dev', plural: 'networks', namespaced: true },
  SSHKey: { group: 'compute.stratus.dev', plural: 'sshkeys', namespaced: true },
  ElasticIP: { group: 'compute.stratus.dev', plural: 'elasticips', namespaced: true },
  DNSZone: { group: 'compute.stratus.dev', plural: 'dnszones', namespaced: false },
  Bucket: { group: 'storage.stratus.dev', plural: 'buckets', namespaced: true },
  AddressPool: { group: 'compute.stratus.dev', plural: 'addresspools', namespaced: false },
  Project: { group: 'apps.stratus.dev', plural: 'projects', namespaced: true },
  Deployment: { group: 'apps.stratus.dev', plural: 'deployments', namespaced: true },
  AccessToken: { group: 'iam.stratus.dev', plural: 'accesstokens', namespaced: true },
  User: { group: 'iam.stratus.dev', plural: 'users', namespaced: false },
  Group: { group: 'iam.stratus.dev', plural: 'groups', namespaced: false },
  Quota: { group: 'iam.stratus.dev', plural: 'quotas', namespaced: true },
};

describe('crds/', () => {
  test('holds exactly one CRD per kind of the resource model, in <plural>.<group>.yaml', () => {
    assert.deepEqual([...byKind.keys()].sort(), Object.keys(EXPECTED).sort());
    const files = readdirSync(crdDir).filter((f) => f.endsWith('.yaml')).sort();
    assert.deepEqual(files, crds.map((c) => `${c.metadata.name}.yaml`).sort());
    for (const [kind, want] of Object.entries(EXPECTED)) {
      const crd = byKind.get(kind) as CustomResourceDefinition;
      assert.equal(crd.spec.group, want.group, kind);
      assert.equal(crd.spec.names.plural, want.plural, kind);
      assert.equal(crd.spec.scope, want.namespaced ? 'Namespaced' : 'Cluster', kind);
    }
  });

  test('crds/Kustomization lists every CRD file and nothing else (and is not a .yaml, so `kubectl apply -f crds/` keeps working)', () => {
    const path = join(crdDir, 'Kustomization');
    assert.ok(existsSync(path));
    assert.ok(!existsSync(join(crdDir, 'kustomization.yaml')));
    const k = parse(readFileSync(path, 'utf8')) as { resources?: string[] };
    assert.deepEqual([...(k.resources ?? [])].sort(), crds.map((c) => `${c.metadata.name}.yaml`).sort());
  });

  for (const crd of crds) {
    test(`${crd.metadata.name} is accepted as kube-apiserver would accept it (names, versions, structural schema, printer columns)`, () => {
      assert.deepEqual(crdErrors(crd), []);
      assert.deepEqual(structuralErrors(schemaOf(crd)), []);
    });
  }

  test('every CRD serves and stores v1alpha1 with a status subresource, category stratus and short names', () => {
    for (const crd of crds) {
      assert.equal(crd.spec.versions.length, 1, crd.metadata.name);
      const v = crd.spec.versions[0];
      assert.deepEqual({ name: v?.name, served: v?.served, storage: v?.storage }, { name: 'v1alpha1', served: true, storage: true }, crd.metadata.name);
      assert.deepEqual(v?.subresources?.status, {}, crd.metadata.name);
      assert.deepEqual(crd.spec.names.categories, ['stratus'], crd.metadata.name);
      assert.ok((crd.spec.names.shortNames ?? []).length > 0, crd.metadata.name);
    }
  });

  test('short names are unique and do not shadow Kubernetes built-ins (Deployment is sdeploy, not deploy)', () => {
    const builtin = ['po', 'svc', 'deploy', 'ds', 'rs', 'sts', 'no', 'ns', 'cm', 'pv', 'pvc', 'sa', 'ing', 'netpol', 'ep', 'ev', 'quota', 'hpa', 'pdb', 'crd', 'csr', 'cj', 'limits', 'rc', 'sc', 'pc'];
    const all = crds.flatMap((c) => c.spec.names.shortNames ?? []);
    assert.equal(new Set(all).size, all.length, `duplicate short names in ${all.join(',')}`);
    for (const s of all) assert.ok(!builtin.includes(s), `${s} shadows a Kubernetes short name`);
    assert.ok(byKind.get('Deployment')?.spec.names.shortNames?.includes('sdeploy'));
  });

  test('every status has observedGeneration and conditions as a list-map keyed by type, in the Kubernetes shape', () => {
    for (const crd of crds) {
      const status = schemaOf(crd).properties?.status;
      assert.ok(status, crd.metadata.name);
      assert.equal(status.properties?.observedGeneration?.type, 'integer', crd.metadata.name);
      const cond = status.properties?.conditions;
      assert.equal(cond?.['x-kubernetes-list-type'], 'map', crd.metadata.name);
      assert.deepEqual(cond?.['x-kubernetes-list-map-keys'], ['type'], crd.metadata.name);
      const item = cond?.items;
      assert.deepEqual(Object.keys(item?.properties ?? {}).sort(), ['lastTransitionTime', 'message', 'observedGeneration', 'reason', 'status', 'type']);
      assert.deepEqual(item?.properties?.status?.enum, ['True', 'False', 'Unknown']);
      assert.equal(item?.properties?.lastTransitionTime?.format, 'date-time');
    }
  });

  test('every list says how server-side apply merges it, and every list and map a client sends is bounded', () => {
    for (const crd of crds) {
      walk(schemaOf(crd), crd.spec.names.kind, (s, path) => {
        if (s.type === 'array') {
          assert.ok(s['x-kubernetes-list-type'], `${path} has x-kubernetes-list-type`);
          assert.ok(s.maxItems !== undefined, `${path} has maxItems`);
        }
        if (s.type === 'object' && typeof s.additionalProperties === 'object') assert.ok(s.maxProperties !== undefined, `${path} has maxProperties`);
      });
    }
  });

  test('every string in a spec is bounded (maxLength, enum, or a bounded format)', () => {
    const bounded = new Set(['ipv4', 'ipv6', 'date-time', 'cidr', 'mac']);
    for (const crd of crds) {
      const spec = schemaOf(crd).properties?.spec;
      if (!spec) continue;
      walk(spec, `${crd.spec.names.kind}.spec`, (s, path) => {
        if (s.type !== 'string') return;
        const ok = s.maxLength !== undefined || s.enum !== undefined || bounded.has(s.format ?? '') || /^\^[^*+]*\$$/.test(s.pattern ?? '') || /\{\d+,\d+\}\$$/.test(s.pattern ?? '');
        assert.ok(ok, `${path} is unbounded`);
      });
    }
  });

  test('every field of every spec and status has a description (what kubectl explain shows)', () => {
    for (const crd of crds) {
      const root = schemaOf(crd);
      assert.ok((root.description ?? '').length > 20, `${crd.metadata.name} root description`);
      for (const k of ['spec', 'status'] as const) {
        const part = root.properties?.[k];
        assert.equal(part?.type, 'object', `${crd.metadata.name}.${k}`);
        walk(part, `${crd.spec.names.kind}.${k}`, (s, path) => assert.ok(s.description || /(\[\]|\{\})$/.test(path), `${path} has no description`));
      }
    }
  });

  test('Instance and ComputeNode print the columns an operator wants', () => {
    const cols = (kind: string): string[] => (byKind.get(kind)?.spec.versions[0]?.additionalPrinterColumns ?? []).filter((c) => !c.priority).map((c) => `${c.name.toUpperCase()}=${c.jsonPath}`);
    assert.deepEqual(cols('Instance'), ['STATE=.status.state', 'NODE=.spec.nodeName', 'IP=.status.ipAddress', 'PROVIDER=.spec.provider', 'AGE=.metadata.creationTimestamp']);
    assert.deepEqual(cols('ComputeNode'), [
      'PROVIDER=.spec.provider',
      'READY=.status.conditions[?(@.type=="Ready")].status',
      'CPUS=.status.allocatable.cpus',
      'MEMORY=.status.allocatable.memoryMiB',
      'INSTANCES=.status.allocated.instances',
      'AGE=.metadata.creationTimestamp',
    ]);
    assert.deepEqual(cols('Deployment'), ['PROJECT=.spec.project', 'PHASE=.status.phase', 'RELEASE=.status.releaseID', 'AGE=.metadata.creationTimestamp']);
  });

  test('kubectl (YAML 1.1) reads every CRD file exactly as stratus (YAML 1.2) does', () => {
    for (const f of readdirSync(crdDir).filter((x) => x.endsWith('.yaml'))) {
      const text = readFileSync(join(crdDir, f), 'utf8');
      assert.ok(isDeepStrictEqual(parse(text), parse(text, { version: '1.1' })), `${f}: a value such as no/yes/on/n changes meaning in YAML 1.1`);
    }
  });
});
