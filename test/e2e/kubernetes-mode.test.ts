/**
 * Kubernetes mode, proven without a cluster: `manifests/` renders with kustomize into valid
 * documents, and the controllers — run exactly as in a cluster, as `stratus controller
 * --kubeconfig` against an API server that runs none itself (`stratus serve
 * --no-controllers`) — drive an Instance to running with nothing but the ClusterRole, Role
 * and bindings of `manifests/base`: they authenticate with their own client certificate as
 * the manifests' ServiceAccount, stratus serve enforces RBAC, and any request it refuses
 * (a 403, logged with the user) fails the test. libvirt, Docker (TLS from a Secret) and GCE
 * (credentials from a Secret) nodes make them read Secrets too.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { ComputeNode, Instance, SSHKey } from '../../crds/types.js';
import type { CustomResourceDefinition } from '../../apiserver/schema/types.js';
import { crdErrors } from '../../apiserver/schema/structural.js';
import { KubeClient, type KubeObject } from '../../runtime/client.js';
import { Resources } from '../../controllers/resources.js';
import { simNodeUri } from '../../providers/libvirt/index.js';
import { startStratusServe, kubectl, type StratusServe } from '../harness/apiserver.js';
import { execFileP, removeDir, requireBinary, startDaemon, tempDir, waitFor, type Daemon } from '../harness/process.js';
import { kubeconfigCredentials } from '../harness/kubefetch.js';
import { makeCerts, registerDockerNode, startDockerd, type Dockerd } from '../harness/dockerd.js';
import { startFakeGce, type FakeGce } from '../fakes/gce/index.js';
import { CoreResources } from '../../runtime/client.js';
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
let engine: Dockerd | undefined;
let gce: FakeGce | undefined;
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
  await engine?.stop();
  await gce?.close();
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
  assert.equal(crds.length, 15); // one per kind, DNSZone, InstanceGroup, AddressPool and Bucket included
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

/** A kubeconfig for `user` in `groups`, with a client certificate signed by the server's CA. */
async function certificateKubeconfig(name: string, user: string, groups: string[]): Promise<string> {
  const pki = join(serve.dataDir, 'pki');
  const key = join(work, `${name}.key`);
  const crt = join(work, `${name}.crt`);
  await execFileP(requireBinary('openssl'), [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', `/CN=${user}${groups.map((g) => `/O=${g}`).join('')}`, '-CA', join(pki, 'ca.crt'), '-CAkey', join(pki, 'ca.key'),
    '-addext', 'basicConstraints=critical,CA:FALSE', '-addext', 'extendedKeyUsage=clientAuth', '-keyout', key, '-out', crt,
  ]);
  const { server, ca } = kubeconfigCredentials(serve.kubeconfig);
  const b64 = (t: string): string => Buffer.from(t).toString('base64');
  const path = join(work, `${name}.kubeconfig`);
  writeFileSync(
    path,
    `apiVersion: v1\nkind: Config\nclusters:\n- name: s\n  cluster:\n    server: ${server}\n    certificate-authority-data: ${b64(ca ?? '')}\nusers:\n- name: u\n  user:\n    client-certificate-data: ${b64(readFileSync(crt, 'utf8'))}\n    client-key-data: ${b64(readFileSync(key, 'utf8'))}\ncontexts:\n- name: c\n  context: {cluster: s, user: u}\ncurrent-context: c\n`,
    { mode: 0o600 },
  );
  return path;
}

test('stratus controller against stratus serve --no-controllers drives an Instance to running with only the RBAC of manifests/base', async () => {
  const manifestsDir = join(repoRoot(), 'manifests', 'base');
  // The leader-election namespace of the manifests, then exactly the manifests' RBAC.
  // `stratus serve` makes stratus-system itself (the object store's key ConfigMap lives there); a cluster may not have it yet.
  if (!(await client.resource(Resources.namespaces).get(undefined, 'stratus-system'))) {
    await client.resource(Resources.namespaces).create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'stratus-system' } });
  }
  for (const f of ['clusterrole.yaml', 'role-leader-election.yaml', 'clusterrolebinding.yaml']) {
    const r = await kubectl(serve.kubeconfig, join(work, 'cache'), ['apply', '-f', join(manifestsDir, f)]);
    assert.equal(r.code, 0, r.stderr);
  }
  // The ServiceAccount the bindings name, as kube-apiserver would authenticate it.
  const sa = 'system:serviceaccount:stratus-system:stratus-controller';
  const controllerKubeconfig = await certificateKubeconfig('controller', sa, ['system:serviceaccounts', 'system:serviceaccounts:stratus-system']);

  await client.resource<ComputeNode>(Resources.computeNodes).create({
    apiVersion: 'compute.stratus.dev/v1alpha1',
    kind: 'ComputeNode',
    metadata: { name: 'sim' },
    spec: { provider: 'libvirt', libvirt: { uri: simNodeUri(join(work, 'sim')), imagePool: 'default' } },
  });
  // A Docker engine whose TLS material is a Secret, and a GCE zone whose credentials are one.
  const certs = await makeCerts(join(work, 'certs'));
  engine = await startDockerd({ certs });
  gce = await startFakeGce({ project: 'acme-prod', stepMs: 50 });
  const secrets = client.resource<KubeObject & { stringData: Record<string, string> }>(CoreResources.secrets);
  await secrets.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'gce-key', namespace: 'default' }, stringData: { 'not-a-key': 'x' } });
  await registerDockerNode(client, engine, certs, { name: 'engine', heartbeatSeconds: 1 });
  await client.resource<ComputeNode>(Resources.computeNodes).create({
    apiVersion: 'compute.stratus.dev/v1alpha1',
    kind: 'ComputeNode',
    metadata: { name: 'gce' },
    spec: { provider: 'gce', gce: { project: 'acme-prod', zone: 'us-central1-a', endpoint: gce.endpoint, credentialsSecretRef: { name: 'gce-key', namespace: 'default' } }, heartbeatSeconds: 1 },
  });
  const { stdout: pub } = await execFileP('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(work, 'key')]).then(() => execFileP('cat', [join(work, 'key.pub')]));
  await client.resource<SSHKey>(Resources.sshKeys).create({
    apiVersion: 'compute.stratus.dev/v1alpha1',
    kind: 'SSHKey',
    metadata: { name: 'alice', namespace: 'default' },
    spec: { publicKey: pub.trim() },
  });

  controller = startDaemon(process.execPath, [stratusBin(), 'controller', '--kubeconfig', controllerKubeconfig, '--leader-elect', '--lease-namespace', 'stratus-system', '--metrics-listen', '127.0.0.1:0'], {
    env: { ...process.env, STRATUS_LOG_LEVEL: 'warn' },
  });
  const nodes = client.resource<ComputeNode>(Resources.computeNodes);
  const ready = (n: ComputeNode | undefined): boolean => Boolean(n?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
  await waitFor('the Docker node Ready (its TLS Secret was read)', async () => ready(await nodes.get(undefined, 'engine')), 60_000, 100);
  await waitFor('the GCE node reports its credentials Secret lacks a key (it was read)', async () => JSON.stringify((await nodes.get(undefined, 'gce'))?.status?.conditions ?? []).includes('has no key.json'), 60_000, 100);
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
  const lines = serverLog.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg?: string; user?: string; code?: number; verb?: string; uri?: string });
  const requests = lines
    .filter((l) => l.msg === 'request' && (l as { userAgent?: string }).userAgent === 'stratus-controller' && l.verb && l.uri)
    .map((l) => rbacRequest(l.verb!, l.uri!))
    .filter((r): r is Request => r !== undefined);
  assert.ok(requests.length > 20, `the controller's writes were recorded (${requests.length})`);
  const seen = new Set(requests.map((r) => `${r.verb} ${r.group}/${r.resource}`));
  for (const must of ['watch compute.stratus.dev/instances', 'patch compute.stratus.dev/instances', 'update compute.stratus.dev/instances/status', 'create /events', 'update coordination.k8s.io/leases']) {
    assert.ok(seen.has(must), `expected the controllers to ${must}; saw ${[...seen].sort().join(', ')}`);
  }
  // What RBAC actually refused: every 401/403 the server answered the controller's identity.
  const refused = lines.filter((l) => l.msg === 'request' && (l.code === 403 || l.code === 401) && (l.user === sa || l.user === 'system:anonymous'));
  assert.deepEqual(refused.map((l) => `${l.code} ${l.verb} ${l.uri}`), [], 'requests RBAC refused the controllers');
  // ...and the check is real: the same identity is refused what manifests/base does not grant.
  const denied = await kubectl(controllerKubeconfig, join(work, 'cache-ctl'), ['get', 'secrets', '-n', 'default']);
  assert.notEqual(denied.code, 0);
  assert.match(denied.stderr, /User "system:serviceaccount:stratus-system:stratus-controller" cannot list resource "secrets"/);
});
