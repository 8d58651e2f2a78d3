/**
 * Kubernetes mode, proven without a cluster: `manifests/` renders with kustomize into valid
 * documents, and the controllers — run exactly as in a cluster, as `stratus controller
 * --kubeconfig` against an API server that runs none itself (`stratus serve
 * --no-controllers`) — drive an Instance to running while every request they make is one
 * the ClusterRole (and the leader-election Role) in `manifests/` allows.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { ComputeNode, Instance, SSHKey } from '../../crds/types.js';
import type { CustomResourceDefinition } from '../../apiserver/schema/types.js';
import { crdErrors } from '../../apiserver/schema/structural.js';
import { KubeClient, type KubeObject } from '../../runtime/client.js';
import { Resources } from '../../controllers/resources.js';
import { simNodeUri } from '../../providers/libvirt/index.js';
import { startStratusServe, kubectl, type StratusServe } from '../harness/apiserver.js';
import { execFileP, removeDir, startDaemon, tempDir, waitFor, type Daemon } from '../harness/process.js';
import { repoRoot, stratusBin } from '../harness/paths.js';

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}
interface RoleDoc extends KubeObject {
  rules: Rule[];
}
interface Request {
  verb: string;
  group: string;
  resource: string;
  namespace?: string;
}

let serve: StratusServe;
let controller: Daemon | undefined;
let client: KubeClient;
let work: string;
const serverLog: string[] = [];

before(async () => {
  work = await tempDir('k8smode');
  let pending = '';
  serve = await startStratusServe({
    env: { STRATUS_LOG_LEVEL: 'info' },
    onOutput: (chunk) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      serverLog.push(...lines);
    },
  });
  client = KubeClient.fromFile(serve.kubeconfig, { userAgent: 'stratus-e2e' });
});

after(async () => {
  client?.close();
  await controller?.stop();
  await serve?.stop();
  if (work) await removeDir(work);
});

/** `(verb, group, resource[/subresource])` of one API request path, as RBAC sees it. */
export function rbacRequest(verb: string, uri: string): Request | undefined {
  const path = uri.split('?')[0]!.split('/').filter((s) => s !== '');
  let rest: string[];
  let group: string;
  if (path[0] === 'api' && path[1] === 'v1') {
    group = '';
    rest = path.slice(2);
  } else if (path[0] === 'apis' && path.length >= 3) {
    group = path[1]!;
    rest = path.slice(3);
  } else {
    return undefined; // discovery, /version, /healthz: non-resource URLs
  }
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const [resource, , sub] = rest;
  if (!resource) return undefined;
  return { verb, group, resource: sub ? `${resource}/${sub}` : resource, ...(namespace ? { namespace } : {}) };
}

function allowedBy(rules: Rule[], r: Request): boolean {
  return rules.some(
    (rule) =>
      (rule.apiGroups.includes(r.group) || rule.apiGroups.includes('*')) &&
      (rule.resources.includes(r.resource) || rule.resources.includes('*')) &&
      (rule.verbs.includes(r.verb) || rule.verbs.includes('*')),
  );
}

test('kubectl kustomize manifests/ renders documents valid against the Kubernetes schemas: structural CRDs, a least-privilege role', async () => {
  const out = await kubectl(serve.kubeconfig, join(work, 'cache'), ['kustomize', join(repoRoot(), 'manifests')]);
  assert.equal(out.code, 0, out.stderr);
  const docs = parseAllDocuments(out.stdout).map((d) => d.toJS() as KubeObject & Record<string, unknown>);
  const kinds = docs.map((d) => d.kind).sort();
  assert.deepEqual(kinds.filter((k) => k !== 'CustomResourceDefinition'), [
    'ClusterRole',
    'ClusterRoleBinding',
    'Deployment',
    'Namespace',
    'Role',
    'RoleBinding',
    'Service',
    'ServiceAccount',
  ]);
  // Every document against the Kubernetes schemas of kubernetes-models (CRDs included).
  for (const d of docs) {
    const mod = (await import(`kubernetes-models/${d.apiVersion}`)) as Record<string, new (data: unknown) => { validate(): void }>;
    const Model = mod[d.kind!];
    assert.ok(Model, `kubernetes-models knows ${d.apiVersion} ${d.kind}`);
    assert.doesNotThrow(() => new Model(d).validate(), `${d.kind} ${d.metadata?.name} is valid`);
  }
  // ...and the check is real: a broken Deployment is caught.
  const { Deployment } = await import('kubernetes-models/apps/v1');
  assert.throws(() => new Deployment({ metadata: { name: 'x' }, spec: { replicas: 'two' } } as unknown as ConstructorParameters<typeof Deployment>[0]).validate());
  const crds = docs.filter((d) => d.kind === 'CustomResourceDefinition') as unknown as CustomResourceDefinition[];
  assert.equal(crds.length, 12); // one per kind, DNSZone included
  for (const crd of crds) assert.deepEqual(crdErrors(crd), [], crd.metadata.name);
  for (const d of docs) {
    for (const rule of (d as unknown as Partial<RoleDoc>).rules ?? []) {
      for (const field of [rule.apiGroups, rule.resources, rule.verbs]) assert.ok(!field.includes('*'), `${d.kind} ${d.metadata?.name} grants "*"`);
    }
  }
  const deployment = docs.find((d) => d.kind === 'Deployment') as unknown as {
    spec: { replicas: number; template: { spec: { securityContext: { runAsNonRoot: boolean }; containers: { args: string[]; livenessProbe?: object; readinessProbe?: object; resources?: { requests?: object } }[] } } };
  };
  assert.equal(deployment.spec.replicas, 2);
  assert.equal(deployment.spec.template.spec.securityContext.runAsNonRoot, true);
  const c = deployment.spec.template.spec.containers[0]!;
  assert.ok(c.args.includes('--leader-elect') && c.args.includes('controller'));
  assert.ok(c.livenessProbe && c.readinessProbe && c.resources?.requests);
});

test('stratus controller against stratus serve --no-controllers drives an Instance to running using only what the ClusterRole allows', async () => {
  const manifestsDir = join(repoRoot(), 'manifests', 'base');
  const roles = ['clusterrole.yaml', 'role-leader-election.yaml'].flatMap((f) =>
    parseAllDocuments(readFileSync(join(manifestsDir, f), 'utf8')).map((d) => d.toJS() as RoleDoc),
  );
  const clusterRules = roles.filter((r) => r.kind === 'ClusterRole').flatMap((r) => r.rules);
  const leaseRole = roles.find((r) => r.kind === 'Role')!;

  // The leader-election namespace of the manifests.
  await client.resource(Resources.namespaces).create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'stratus-system' } });
  await client.resource<ComputeNode>(Resources.computeNodes).create({
    apiVersion: 'compute.stratus.dev/v1alpha1',
    kind: 'ComputeNode',
    metadata: { name: 'sim' },
    spec: { provider: 'libvirt', libvirt: { uri: simNodeUri(join(work, 'sim')), imagePool: 'default' } },
  });
  const { stdout: pub } = await execFileP('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(work, 'key')]).then(() => execFileP('cat', [join(work, 'key.pub')]));
  await client.resource<SSHKey>(Resources.sshKeys).create({
    apiVersion: 'compute.stratus.dev/v1alpha1',
    kind: 'SSHKey',
    metadata: { name: 'alice', namespace: 'default' },
    spec: { publicKey: pub.trim() },
  });

  controller = startDaemon(process.execPath, [stratusBin(), 'controller', '--kubeconfig', serve.kubeconfig, '--leader-elect', '--lease-namespace', 'stratus-system', '--metrics-listen', '127.0.0.1:0'], {
    env: { ...process.env, STRATUS_LOG_LEVEL: 'warn' },
  });
  const instances = client.resource<Instance>(Resources.instances);
  await instances.create({
    apiVersion: 'compute.stratus.dev/v1alpha1',
    kind: 'Instance',
    metadata: { name: 'web', namespace: 'default' },
    spec: { provider: 'libvirt', image: 'debian-12', sshKeys: ['alice'], memoryMiB: 1024 },
  });
  await waitFor('web running', async () => (await instances.get('default', 'web'))?.status?.state === 'running', 60_000, 100);
  await instances.mergePatch('default', 'web', { spec: { powerState: 'Stopped' } });
  await waitFor('web stopped', async () => (await instances.get('default', 'web'))?.status?.state === 'stopped', 60_000, 100);
  await instances.delete('default', 'web');
  await waitFor('web deleted', async () => (await instances.get('default', 'web')) === undefined, 60_000, 100);
  await waitFor('sshkey reconciled', async () => Boolean((await client.resource<SSHKey>(Resources.sshKeys).get('default', 'alice'))?.status?.fingerprint), 10_000);

  // Stop the controller: releasing its Lease is a request too.
  await controller.stop();
  const requests = serverLog
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { msg?: string; userAgent?: string; verb?: string; uri?: string })
    .filter((l) => l.msg === 'request' && l.userAgent === 'stratus-controller' && l.verb && l.uri)
    .map((l) => rbacRequest(l.verb!, l.uri!))
    .filter((r): r is Request => r !== undefined);
  assert.ok(requests.length > 20, `the controller's requests were recorded (${requests.length})`);
  const seen = new Set(requests.map((r) => `${r.verb} ${r.group}/${r.resource}`));
  for (const must of ['watch compute.stratus.dev/instances', 'patch compute.stratus.dev/instances', 'update compute.stratus.dev/instances/status', 'create /events', 'update coordination.k8s.io/leases']) {
    assert.ok(seen.has(must), `expected the controllers to ${must}; saw ${[...seen].sort().join(', ')}`);
  }
  const denied = requests.filter((r) => {
    if (r.group === 'coordination.k8s.io' && r.resource === 'leases') return !(r.namespace === 'stratus-system' && allowedBy(leaseRole.rules, r));
    return !allowedBy(clusterRules, r);
  });
  assert.deepEqual([...new Set(denied.map((r) => `${r.verb} ${r.group}/${r.resource}`))], [], 'requests the RBAC manifests do not allow');
});
