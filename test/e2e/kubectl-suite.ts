/**
 * The end-to-end suite of the standalone API server: the real `/usr/bin/kubectl` against
 * `bin/stratus serve`. `kubectl-sqlite.test.ts` and `kubectl-etcd.test.ts` run it against
 * each storage backend.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { kubectl, kubectlBackground, type KubectlResult, type StratusServe } from '../harness/apiserver.js';
import { repoRoot } from '../harness/paths.js';
import { removeDir, tempDir, waitFor } from '../harness/process.js';

export interface SuiteBackend {
  start(): Promise<StratusServe>;
  cleanup(): Promise<void>;
}

function instance(name: string, extra: { cpus?: number; labels?: Record<string, string>; namespace?: string; finalizers?: string[] } = {}): string {
  const labels = extra.labels ? `\n  labels:\n${Object.entries(extra.labels).map(([k, v]) => `    ${k}: "${v}"`).join('\n')}` : '';
  const finalizers = extra.finalizers ? `\n  finalizers:\n${extra.finalizers.map((f) => `  - ${f}`).join('\n')}` : '';
  return `apiVersion: compute.stratus.dev/v1alpha1
kind: Instance
metadata:
  name: ${name}
  namespace: ${extra.namespace ?? 'default'}${labels}${finalizers}
spec:
  provider: docker
  image: busybox
  cpus: ${extra.cpus ?? 1}
  memoryMiB: 256
  disks:
  - name: root
    sizeGiB: 10
`;
}

export function kubectlSuite(name: string, backend: SuiteBackend): void {
  describe(`kubectl against stratus serve (${name})`, () => {
    let serve: StratusServe;
    let cache: string;
    const k = async (args: string[], stdin?: string): Promise<KubectlResult> => kubectl(serve.kubeconfig, cache, args, stdin);
    const ok = async (args: string[], stdin?: string): Promise<string> => {
      const r = await k(args, stdin);
      assert.equal(r.code, 0, `kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr}${r.stdout}`);
      return r.stdout;
    };
    const json = async (args: string[]): Promise<Record<string, unknown>> => JSON.parse(await ok([...args, '-o', 'json'])) as Record<string, unknown>;
    const meta = (o: Record<string, unknown>): Record<string, unknown> => o.metadata as Record<string, unknown>;

    before(async () => {
      cache = await tempDir('kubectl-cache');
      serve = await backend.start();
    });
    after(async () => {
      await serve?.stop();
      await removeDir(cache);
      await backend.cleanup();
    });

    it('serves discovery in 2 requests and lists every kind in api-resources', async () => {
      const fresh = await tempDir('kubectl-cache');
      try {
        const r = await kubectl(serve.kubeconfig, fresh, ['get', 'instances', '-v=6']);
        assert.equal(r.code, 0, r.stderr);
        const discovery = r.stderr.split('\n').filter((l) => / GET \S+\/(api|apis)(\?|\s)/.test(l) || /\/apis\/[^/]+\/[^/]+\?timeout/.test(l) || /\/api\/v1\?timeout/.test(l));
        assert.equal(discovery.length, 2, `discovery requests:\n${discovery.join('\n')}`);
      } finally {
        await removeDir(fresh);
      }
      const out = await ok(['api-resources']);
      for (const kind of ['Instance', 'ComputeNode', 'Namespace', 'Secret', 'ConfigMap', 'Lease', 'CustomResourceDefinition', 'Event']) {
        assert.match(out, new RegExp(`\\b${kind}\\b`), `api-resources lacks ${kind}:\n${out}`);
      }
      assert.match(out, /instances\s+inst,vm\s+compute\.stratus\.dev\/v1alpha1\s+true\s+Instance/);
    });

    it('re-applying an unchanged manifest does not bump generation; a changed one does', async () => {
      assert.match(await ok(['apply', '-f', '-'], instance('gen-1')), /created/);
      const first = await json(['get', 'instance', 'gen-1']);
      assert.equal(meta(first).generation, 1);
      assert.match(await ok(['apply', '-f', '-'], instance('gen-1')), /unchanged/);
      const again = await json(['get', 'instance', 'gen-1']);
      assert.equal(meta(again).generation, 1);
      assert.equal(meta(again).resourceVersion, meta(first).resourceVersion);
      assert.match(await ok(['apply', '-f', '-'], instance('gen-1', { cpus: 2 })), /configured/);
      const changed = await json(['get', 'instance', 'gen-1']);
      assert.equal(meta(changed).generation, 2);
      assert.equal((changed.spec as Record<string, unknown>).cpus, 2);
      assert.ok(Number(meta(changed).resourceVersion) > Number(meta(first).resourceVersion));
    });

    it('server-side apply records field managers and reports a conflict between two managers', async () => {
      assert.match(await ok(['apply', '--server-side', '--field-manager=alice', '-f', '-'], instance('ssa-1')), /serverside-applied/);
      const conflict = await k(['apply', '--server-side', '--field-manager=bob', '-f', '-'], instance('ssa-1', { cpus: 4 }));
      assert.notEqual(conflict.code, 0);
      assert.match(conflict.stderr, /conflict/i);
      assert.match(conflict.stderr, /alice/);
      assert.match(conflict.stderr, /spec\.cpus/);
      await ok(['apply', '--server-side', '--field-manager=bob', '--force-conflicts', '-f', '-'], instance('ssa-1', { cpus: 4 }));
      const obj = await json(['get', 'instance', 'ssa-1', '--show-managed-fields']);
      assert.equal((obj.spec as Record<string, unknown>).cpus, 4);
      const managers = (meta(obj).managedFields as { manager: string }[]).map((m) => m.manager);
      assert.ok(managers.includes('alice') && managers.includes('bob'), `managers: ${managers.join(',')}`);
    });

    it('get supports -o yaml|json|wide, -l, -A and --chunk-size', async () => {
      await ok(['create', 'namespace', 'chunks']);
      for (let i = 0; i < 5; i++) await ok(['apply', '-f', '-'], instance(`c-${i}`, { namespace: 'chunks', labels: { tier: i % 2 ? 'odd' : 'even' } }));
      const yaml = await ok(['get', 'instance', 'c-0', '-n', 'chunks', '-o', 'yaml']);
      assert.match(yaml, /kind: Instance/);
      assert.match(yaml, /name: c-0/);
      const wide = await ok(['get', 'instances', '-n', 'chunks', '-o', 'wide']);
      assert.match(wide.split('\n')[0] ?? '', /NAME\s+STATE\s+NODE\s+IP\s+PROVIDER\s+AGE\s+DNS\s+CPUS\s+MEMORY\s+IMAGE\s+POWER/);
      const narrow = await ok(['get', 'instances', '-n', 'chunks']);
      assert.doesNotMatch(narrow.split('\n')[0] ?? '', /IMAGE/);
      const odd = await ok(['get', 'instances', '-n', 'chunks', '-l', 'tier=odd', '-o', 'name']);
      assert.deepEqual(odd.trim().split('\n').sort(), ['instance.compute.stratus.dev/c-1', 'instance.compute.stratus.dev/c-3']);
      const notIn = await ok(['get', 'instances', '-n', 'chunks', '-l', 'tier notin (odd)', '-o', 'name']);
      assert.equal(notIn.trim().split('\n').length, 3);
      const all = await ok(['get', 'instances', '-A']);
      assert.match(all, /^NAMESPACE\s+NAME/);
      assert.match(all, /chunks\s+c-4/);
      const chunked = await k(['get', 'instances', '-n', 'chunks', '--chunk-size=2', '-o', 'name', '-v=6']);
      assert.equal(chunked.code, 0, chunked.stderr);
      assert.equal(chunked.stdout.trim().split('\n').length, 5);
      const pages = chunked.stderr.split('\n').filter((l) => /instances\?.*limit=2/.test(l));
      assert.equal(pages.length, 3, `expected 3 pages:\n${pages.join('\n')}`);
      assert.ok(pages.some((l) => /continue=/.test(l)));
      const all2 = await json(['get', 'instances', '-n', 'chunks', '--field-selector', 'metadata.name=c-2']);
      assert.equal((all2.items as unknown[]).length, 1);
    });

    it('get -w streams changes in table form', async () => {
      await ok(['apply', '-f', '-'], instance('watched'));
      const w = kubectlBackground(serve.kubeconfig, cache, ['get', 'instances', '-w', '--output-watch-events']);
      try {
        await waitFor('initial watch row', () => /ADDED\s+watched/.test(w.output()), 20_000);
        await ok(['patch', 'instance', 'watched', '--type=merge', '-p', '{"spec":{"cpus":3}}']);
        await ok(['apply', '-f', '-'], instance('watched-2'));
        await ok(['delete', 'instance', 'watched-2']);
        await waitFor('MODIFIED, ADDED and DELETED rows', () => /MODIFIED\s+watched/.test(w.output()) && /ADDED\s+watched-2/.test(w.output()) && /DELETED\s+watched-2/.test(w.output()), 20_000);
      } finally {
        await w.stop();
      }
    });

    it('kubectl wait sees conditions and jsonpath written through the status subresource', async () => {
      await ok(['apply', '-f', '-'], instance('waiter'));
      const cond = kubectlBackground(serve.kubeconfig, cache, ['wait', '--for=condition=Ready', 'instance/waiter', '--timeout=60s']);
      const jp = kubectlBackground(serve.kubeconfig, cache, ['wait', '--for=jsonpath={.status.state}=running', 'instance/waiter', '--timeout=60s']);
      await waitFor('kubectl wait to start watching', async () => {
        const r = await serve.fetch(`${serve.url}/metrics`);
        return /apiserver_registered_watchers [1-9]/.test(await r.text());
      }, 20_000);
      const status = {
        status: {
          state: 'running',
          observedGeneration: 1,
          conditions: [{ type: 'Ready', status: 'True', reason: 'Running', message: 'up', lastTransitionTime: '2026-01-01T00:00:00Z', observedGeneration: 1 }],
        },
      };
      await ok(['patch', 'instance', 'waiter', '--subresource=status', '--type=merge', '-p', JSON.stringify(status)]);
      assert.equal(await cond.exited, 0, cond.output());
      assert.equal(await jp.exited, 0, jp.output());
      // A main-resource write cannot touch status; a status write cannot touch spec.
      await ok(['patch', 'instance', 'waiter', '--type=merge', '-p', '{"spec":{"cpus":5},"status":{"state":"failed"}}']);
      await ok(['patch', 'instance', 'waiter', '--subresource=status', '--type=merge', '-p', '{"spec":{"cpus":7}}']);
      const obj = await json(['get', 'instance', 'waiter']);
      assert.equal((obj.status as Record<string, unknown>).state, 'running');
      assert.equal((obj.spec as Record<string, unknown>).cpus, 5);
      assert.equal(meta(obj).generation, 2);
    });

    it('delete removes an object at once without finalizers, and only marks it with them', async () => {
      await ok(['apply', '-f', '-'], instance('plain'));
      assert.match(await ok(['delete', 'instance', 'plain']), /deleted/);
      assert.match((await k(['get', 'instance', 'plain'])).stderr, /NotFound/);
      await ok(['apply', '-f', '-'], instance('held', { finalizers: ['example.com/hold'] }));
      await ok(['delete', 'instance', 'held', '--wait=false']);
      const marked = await json(['get', 'instance', 'held']);
      assert.ok(meta(marked).deletionTimestamp, 'deletionTimestamp is set');
      await ok(['patch', 'instance', 'held', '--type=json', '-p', '[{"op":"remove","path":"/metadata/finalizers"}]']);
      assert.match((await k(['get', 'instance', 'held'])).stderr, /NotFound/);
    });

    it('diff shows what apply would change, through a server-side dry run', async () => {
      await ok(['apply', '-f', '-'], instance('differ'));
      assert.equal((await k(['diff', '-f', '-'], instance('differ'))).code, 0);
      const d = await k(['diff', '-f', '-'], instance('differ', { cpus: 6 }));
      assert.equal(d.code, 1, d.stderr);
      assert.match(d.stdout, /-\s+cpus: 1/);
      assert.match(d.stdout, /\+\s+cpus: 6/);
      const dry = await ok(['apply', '--dry-run=server', '-f', '-'], instance('differ', { cpus: 6 }));
      assert.match(dry, /server dry run/);
      assert.equal(((await json(['get', 'instance', 'differ'])).spec as Record<string, unknown>).cpus, 1);
    });

    it('explain reads the CRD schema from OpenAPI v3', async () => {
      const out = await ok(['explain', 'instance.spec.disks']);
      assert.match(out, /KIND:\s+Instance/);
      assert.match(out, /sizeGiB\s+<integer> -required-/);
    });

    it('invalid manifests are rejected with errors naming every bad field', async () => {
      const bad = instance('bad-1').replace('cpus: 1', 'cpus: -1').replace('sizeGiB: 10', 'sizeGiB: 0');
      const r = await k(['apply', '-f', '-'], bad);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /is invalid/);
      assert.match(r.stderr, /spec\.cpus/);
      assert.match(r.stderr, /spec\.disks\[0\]\.sizeGiB/);
      const unknown = await k(['apply', '-f', '-'], instance('bad-2').replace('spec:\n', 'spec:\n  bogusField: 1\n'));
      assert.notEqual(unknown.code, 0);
      assert.match(unknown.stderr, /unknown field "spec\.bogusField"/);
      const strategic = await k(['patch', 'instance', 'gen-1', '--type=strategic', '-p', '{"spec":{"cpus":3}}']);
      assert.notEqual(strategic.code, 0);
      assert.match(strategic.stderr, /UnsupportedMediaType|unknown format|415/);
    });

    it('apply -f crds/ is idempotent and a new CRD is served at once', async () => {
      // Every CRD manifest of crds/ (a kustomization.yaml there is for `-k`, not a resource).
      const dir = join(repoRoot(), 'crds');
      const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f) && !/^kustomization\.ya?ml$/.test(f));
      const out = await ok(['apply', ...files.flatMap((f) => ['-f', join(dir, f)])]);
      assert.match(out, /instances\.compute\.stratus\.dev (unchanged|configured)/);
      const crd = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wdg]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer, minimum: 1, default: 3}
          status: {type: object, x-kubernetes-preserve-unknown-fields: true}
`;
      await ok(['apply', '-f', '-'], crd);
      await ok(['wait', '--for=condition=Established', 'crd/widgets.example.com', '--timeout=30s']);
      await ok(['apply', '-f', '-'], 'apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {}\n');
      const w = await ok(['get', 'wdg']);
      assert.match(w, /NAME\s+SIZE/);
      assert.match(w, /w1\s+3/);
      assert.match(await ok(['api-resources', '--api-group=example.com']), /widgets/);
      await ok(['delete', 'crd', 'widgets.example.com']);
      const gone = await k(['get', 'widgets.example.com']);
      assert.notEqual(gone.code, 0);
    });

    it('imperative create, label and annotate work for built-in kinds (protobuf request bodies)', async () => {
      await ok(['create', 'namespace', 'imperative']);
      await ok(['create', 'configmap', 'settings', '-n', 'imperative', '--from-literal=a=1', '--from-literal=b=2']);
      await ok(['create', 'secret', 'generic', 'creds', '-n', 'imperative', '--from-literal=user=admin']);
      await ok(['label', 'configmap', 'settings', '-n', 'imperative', 'tier=gold']);
      await ok(['annotate', 'namespace', 'imperative', 'owner=ops']);
      const cm = await json(['get', 'configmap', 'settings', '-n', 'imperative']);
      assert.deepEqual(cm.data, { a: '1', b: '2' });
      assert.equal((meta(cm).labels as Record<string, string>).tier, 'gold');
      const secret = await json(['get', 'secret', 'creds', '-n', 'imperative']);
      assert.deepEqual(secret.data, { user: Buffer.from('admin').toString('base64') });
      assert.equal(secret.type, 'Opaque');
      assert.match(await ok(['get', 'secrets', '-n', 'imperative']), /creds\s+Opaque/);
      assert.equal((meta(await json(['get', 'namespace', 'imperative'])).annotations as Record<string, string>).owner, 'ops');
    });

    it('deleting a namespace deletes what is in it', async () => {
      await ok(['apply', '-f', '-'], 'apiVersion: v1\nkind: Namespace\nmetadata: {name: doomed}\n');
      await ok(['apply', '-f', '-'], instance('inside', { namespace: 'doomed' }));
      await ok(['apply', '-f', '-'], 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, namespace: doomed}\ndata: {a: b}\n');
      await ok(['delete', 'namespace', 'doomed', '--timeout=60s']);
      assert.match((await k(['get', 'namespace', 'doomed'])).stderr, /NotFound/);
      const left = await ok(['get', 'instances,configmaps', '-n', 'doomed', '-o', 'name']);
      assert.equal(left.trim(), '');
    });

    it('ownerReferences are garbage collected in background, foreground and orphan modes', async () => {
      const owner = async (n: string): Promise<string> => {
        await ok(['apply', '-f', '-'], `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${n}}\n`);
        return String(meta(await json(['get', 'configmap', n])).uid);
      };
      const dependent = async (n: string, ownerName: string, uid: string): Promise<void> => {
        const manifest = instance(n).replace(
          'namespace: default',
          `namespace: default\n  ownerReferences:\n  - {apiVersion: v1, kind: ConfigMap, name: ${ownerName}, uid: ${uid}, blockOwnerDeletion: true}`,
        );
        await ok(['apply', '-f', '-'], manifest);
      };
      const absent = async (n: string): Promise<boolean> => /NotFound/.test((await k(['get', 'instance', n])).stderr);

      await dependent('dep-bg', 'owner-bg', await owner('owner-bg'));
      await ok(['delete', 'configmap', 'owner-bg', '--cascade=background']);
      await waitFor('background GC of dep-bg', () => absent('dep-bg'), 20_000);

      await dependent('dep-fg', 'owner-fg', await owner('owner-fg'));
      await ok(['delete', 'configmap', 'owner-fg', '--cascade=foreground', '--timeout=60s']);
      assert.ok(await absent('dep-fg'), 'foreground deletion removed the dependent before the owner');

      await dependent('dep-or', 'owner-or', await owner('owner-or'));
      await ok(['delete', 'configmap', 'owner-or', '--cascade=orphan', '--timeout=60s']);
      const orphan = await json(['get', 'instance', 'dep-or']);
      assert.equal(meta(orphan).ownerReferences, undefined);
    });
  });
}
