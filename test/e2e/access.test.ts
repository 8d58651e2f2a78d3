/**
 * Access to `stratus serve`, through the real kubectl: anonymous requests get 401 except the
 * probes; a client certificate signed by the server's CA and an AccessToken both
 * authenticate (`kubectl auth whoami`); two tenants bound to `stratus:tenant` in their own
 * namespaces cannot get, list, watch or delete each other's Instances (kube's exact 403);
 * `kubectl auth can-i` answers; privilege escalation is refused; ClusterRole aggregation
 * fills `view`; the audit log records mutating requests without secrets; and the CA, the
 * certificates it issued and the tokens survive a restart.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AccessToken } from '../../crds/types.js';
import { KubeClient } from '../../runtime/client.js';
import { Resources } from '../../controllers/resources.js';
import { DEFAULT_SCRYPT, scryptHash } from '../../apiserver/auth/access-tokens.js';
import { kubectl, kubectlBackground, startStratusServe, type KubectlResult, type StratusServe } from '../harness/apiserver.js';
import { kubeconfigCredentials, kubeFetch } from '../harness/kubefetch.js';
import { execFileP, removeDir, requireBinary, tempDir, waitFor } from '../harness/process.js';

let serve: StratusServe;
let work: string;
let admin: KubeClient;
let aliceKubeconfig: string;
let bobKubeconfig: string;
let bobToken: string;

const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** A kubeconfig for the server with either a client certificate or a token. */
function writeKubeconfig(path: string, user: { cert: string; key: string } | { token: string }, namespace: string): string {
  const { server, ca } = kubeconfigCredentials(serve.kubeconfig);
  const u = 'token' in user ? `    token: ${user.token}` : `    client-certificate-data: ${b64(user.cert)}\n    client-key-data: ${b64(user.key)}`;
  writeFileSync(
    path,
    `apiVersion: v1\nkind: Config\nclusters:\n- name: s\n  cluster:\n    server: ${server}\n    certificate-authority-data: ${b64(ca ?? '')}\nusers:\n- name: u\n  user:\n${u}\ncontexts:\n- name: c\n  context: {cluster: s, user: u, namespace: ${namespace}}\ncurrent-context: c\n`,
    { mode: 0o600 },
  );
  return path;
}

/** A client certificate signed by `caDir`'s ca.crt/ca.key (CN user, O groups). */
async function issueCert(caDir: string, name: string, user: string, groups: string[]): Promise<{ cert: string; key: string }> {
  const key = join(work, `${name}.key`);
  const crt = join(work, `${name}.crt`);
  await execFileP(requireBinary('openssl'), [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', `/CN=${user}${groups.map((g) => `/O=${g}`).join('')}`, '-CA', join(caDir, 'ca.crt'), '-CAkey', join(caDir, 'ca.key'),
    '-addext', 'basicConstraints=critical,CA:FALSE', '-addext', 'extendedKeyUsage=clientAuth', '-keyout', key, '-out', crt,
  ]);
  return { cert: readFileSync(crt, 'utf8'), key: readFileSync(key, 'utf8') };
}

/** An AccessToken acting as `user`, created as the admin; returns `ID-SECRET`. */
async function createToken(namespace: string, id: string, user: string, extra: Partial<AccessToken['spec']> = {}): Promise<string> {
  const secret = randomBytes(16).toString('hex');
  const salt = randomBytes(16);
  const hash = await scryptHash(secret, salt, DEFAULT_SCRYPT);
  await admin.resource<AccessToken>(Resources.accessTokens).create({
    apiVersion: 'iam.stratus.dev/v1alpha1',
    kind: 'AccessToken',
    metadata: { name: `token-${id}`, namespace },
    spec: { tokenID: id, user, salt: salt.toString('base64'), hash: hash.toString('base64'), ...extra },
  });
  return `${id}-${secret}`;
}

const instance = (name: string): string =>
  JSON.stringify({ apiVersion: 'compute.stratus.dev/v1alpha1', kind: 'Instance', metadata: { name }, spec: { provider: 'docker', image: 'busybox', cpus: 1, memoryMiB: 64 } });

function binding(namespace: string, name: string, role: string, subject: { kind: string; name: string }, roleKind = 'ClusterRole'): string {
  return JSON.stringify({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name, namespace },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: roleKind, name: role },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', ...subject }],
  });
}

async function as(kubeconfig: string, args: string[], stdin?: string): Promise<KubectlResult> {
  return kubectl(kubeconfig, join(work, 'cache', kubeconfig.replace(/\W/g, '_')), args, stdin);
}

async function ok(kubeconfig: string, args: string[], stdin?: string): Promise<string> {
  const r = await as(kubeconfig, args, stdin);
  assert.equal(r.code, 0, `kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

before(async () => {
  work = await tempDir('access');
  serve = await startStratusServe();
  admin = KubeClient.fromFile(serve.kubeconfig);
  await ok(serve.kubeconfig, ['create', 'namespace', 'team-a']);
  await ok(serve.kubeconfig, ['create', 'namespace', 'team-b']);
  aliceKubeconfig = writeKubeconfig(join(work, 'alice.kubeconfig'), await issueCert(join(serve.dataDir, 'pki'), 'alice', 'alice', ['tenants']), 'team-a');
  // bob authenticates with a token; his groups come from the Group objects that list him.
  await ok(serve.kubeconfig, ['apply', '-f', '-'], JSON.stringify({ apiVersion: 'iam.stratus.dev/v1alpha1', kind: 'Group', metadata: { name: 'developers', namespace: 'team-b' }, spec: { members: ['bob'] } }));
  bobToken = await createToken('team-b', '7001', 'bob');
  bobKubeconfig = writeKubeconfig(join(work, 'bob.kubeconfig'), { token: bobToken }, 'team-b');
  await ok(serve.kubeconfig, ['apply', '-f', '-'], binding('team-a', 'alice-tenant', 'stratus:tenant', { kind: 'User', name: 'alice' }));
  await ok(serve.kubeconfig, ['apply', '-f', '-'], binding('team-b', 'developers-tenant', 'stratus:tenant', { kind: 'Group', name: 'developers' }));
});

after(async () => {
  admin?.close();
  await serve?.stop();
  if (work) await removeDir(work);
});

describe('authentication', () => {
  it('anonymous requests get a 401 Unauthorized Status; the probes stay open', async () => {
    const anon = kubeFetch(serve.kubeconfig, { anonymous: true });
    for (const path of ['/api/v1/namespaces', '/apis', '/metrics', '/apis/compute.stratus.dev/v1alpha1/namespaces/team-a/instances']) {
      const r = await anon(serve.url + path);
      assert.equal(r.status, 401, path);
      assert.deepEqual(await r.json(), { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 });
    }
    const post = await anon(`${serve.url}/api/v1/namespaces/team-a/configmaps`, { method: 'POST', body: '{}' });
    assert.equal(post.status, 401);
    for (const path of ['/healthz', '/livez', '/readyz', '/version']) assert.equal((await anon(serve.url + path)).status, 200, path);
  });

  it('a bad, revoked, expired or unknown token and a certificate from another CA are the same 401', async () => {
    const revoked = await createToken('team-b', '7002', 'bob', { revoked: true });
    const expired = await createToken('team-b', '7003', 'bob', { expiresAt: '2020-01-01T00:00:00Z' });
    const [id, secret] = bobToken.split('-') as [string, string];
    const tokens = { malformed: 'nope', unknown: `9999-${secret}`, wrongSecret: `${id}-${'0'.repeat(32)}`, revoked, expired };
    for (const [why, token] of Object.entries(tokens)) {
      const r = await kubeFetch(serve.kubeconfig, { token })(`${serve.url}/api/v1/namespaces`);
      assert.equal(r.status, 401, why);
      assert.equal(((await r.json()) as { reason: string }).reason, 'Unauthorized', why);
    }
    const otherCa = join(work, 'other-ca');
    await execFileP('mkdir', ['-p', otherCa]);
    await execFileP(requireBinary('openssl'), ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=evil-ca', '-addext', 'basicConstraints=critical,CA:TRUE', '-keyout', join(otherCa, 'ca.key'), '-out', join(otherCa, 'ca.crt')]);
    const forged = writeKubeconfig(join(work, 'forged.kubeconfig'), await issueCert(otherCa, 'forged', 'admin', ['system:masters']), 'default');
    const r = await as(forged, ['get', 'namespaces']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Unauthorized|must be logged in/);
  });

  it('kubectl auth whoami: a certificate is CN/O, a token is its User with its Groups', async () => {
    const alice = await ok(aliceKubeconfig, ['auth', 'whoami', '-o', 'json']);
    assert.deepEqual((JSON.parse(alice) as { status: { userInfo: { username: string; groups: string[] } } }).status.userInfo, { username: 'alice', groups: ['tenants', 'system:authenticated'] });
    const bob = JSON.parse(await ok(bobKubeconfig, ['auth', 'whoami', '-o', 'json'])) as { status: { userInfo: { username: string; groups: string[] } } };
    assert.equal(bob.status.userInfo.username, 'bob');
    assert.deepEqual(bob.status.userInfo.groups, ['developers', 'system:authenticated']);
    const adm = await ok(serve.kubeconfig, ['auth', 'whoami']);
    assert.match(adm, /admin/);
    assert.match(adm, /system:masters/);
  });

  it('a used token gets status.lastUsedTime', async () => {
    await waitFor('lastUsedTime on token-7001', async () => Boolean((await admin.resource<AccessToken>(Resources.accessTokens).get('team-b', 'token-7001'))?.status?.lastUsedTime), 10_000);
  });
});

describe('RBAC between two tenants', () => {
  it('each tenant manages its own Instances with kubectl', async () => {
    await ok(aliceKubeconfig, ['apply', '-f', '-'], instance('a1'));
    await ok(bobKubeconfig, ['apply', '-f', '-'], instance('b1'));
    assert.match(await ok(aliceKubeconfig, ['get', 'instances', '-o', 'name']), /instance.compute.stratus.dev\/a1/);
    assert.match(await ok(bobKubeconfig, ['get', 'instances', '-o', 'name']), /instance.compute.stratus.dev\/b1/);
  });

  it("cannot get, list, watch or delete the other's Instances: kube's 403 message", async () => {
    const cases: [string, string[], string][] = [
      [aliceKubeconfig, ['get', 'instance', 'b1', '-n', 'team-b'], 'instances.compute.stratus.dev "b1" is forbidden: User "alice" cannot get resource "instances" in API group "compute.stratus.dev" in the namespace "team-b"'],
      [aliceKubeconfig, ['get', 'instances', '-n', 'team-b'], 'instances.compute.stratus.dev is forbidden: User "alice" cannot list resource "instances" in API group "compute.stratus.dev" in the namespace "team-b"'],
      [aliceKubeconfig, ['delete', 'instance', 'b1', '-n', 'team-b'], 'instances.compute.stratus.dev "b1" is forbidden: User "alice" cannot delete resource "instances" in API group "compute.stratus.dev" in the namespace "team-b"'],
      [bobKubeconfig, ['delete', 'instance', 'a1', '-n', 'team-a'], 'instances.compute.stratus.dev "a1" is forbidden: User "bob" cannot delete resource "instances" in API group "compute.stratus.dev" in the namespace "team-a"'],
      [bobKubeconfig, ['get', 'instances', '-A'], 'instances.compute.stratus.dev is forbidden: User "bob" cannot list resource "instances" in API group "compute.stratus.dev" at the cluster scope'],
    ];
    for (const [kc, args, message] of cases) {
      const r = await as(kc, args);
      assert.notEqual(r.code, 0, args.join(' '));
      assert.equal(r.stderr.trim(), `Error from server (Forbidden): ${message}`, args.join(' '));
    }
    const w = kubectlBackground(aliceKubeconfig, join(work, 'cache', 'watch'), ['get', 'instances', '-n', 'team-b', '--watch']);
    const code = await w.exited;
    assert.notEqual(code, 0);
    assert.match(w.output(), /User "alice" cannot watch resource "instances" in API group "compute.stratus.dev" in the namespace "team-b"|User "alice" cannot list resource "instances"/);
    // Nothing was deleted.
    assert.match(await ok(serve.kubeconfig, ['get', 'instances', '-A', '-o', 'name']), /a1[\s\S]*b1|b1[\s\S]*a1/);
  });

  it('kubectl auth can-i answers from the same rules', async () => {
    const canI = async (kc: string, args: string[]): Promise<string> => (await as(kc, ['auth', 'can-i', ...args])).stdout.trim();
    assert.equal(await canI(aliceKubeconfig, ['create', 'instances', '-n', 'team-a']), 'yes');
    assert.equal(await canI(aliceKubeconfig, ['delete', 'instances', '-n', 'team-b']), 'no');
    assert.equal(await canI(aliceKubeconfig, ['get', 'instances', '--subresource=status', '-n', 'team-a']), 'yes');
    assert.equal(await canI(aliceKubeconfig, ['update', 'instances', '--subresource=status', '-n', 'team-a']), 'no');
    assert.equal(await canI(aliceKubeconfig, ['delete', 'instances/a1', '-n', 'team-a']), 'yes');
    assert.equal(await canI(aliceKubeconfig, ['list', 'secrets', '-n', 'team-a']), 'no');
    assert.equal(await canI(bobKubeconfig, ['watch', 'instances', '-n', 'team-b']), 'yes');
    assert.equal(await canI(serve.kubeconfig, ['delete', 'computenodes']), 'yes');
    const list = await ok(aliceKubeconfig, ['auth', 'can-i', '--list', '-n', 'team-a']);
    assert.match(list, /instances\.compute\.stratus\.dev\s+\[\]\s+\[\]\s+\[get list watch create update patch delete deletecollection\]/);
  });

  it('privilege escalation is refused: no role or binding grants more than the caller holds', async () => {
    // alice may manage Roles and RoleBindings in team-a, nothing more.
    await ok(serve.kubeconfig, ['apply', '-f', '-'], JSON.stringify({
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'rbac-manager', namespace: 'team-a' },
      rules: [{ apiGroups: ['rbac.authorization.k8s.io'], resources: ['roles', 'rolebindings'], verbs: ['create', 'get', 'list', 'update', 'patch', 'delete'] }],
    }));
    await ok(serve.kubeconfig, ['apply', '-f', '-'], binding('team-a', 'alice-rbac', 'rbac-manager', { kind: 'User', name: 'alice' }, 'Role'));
    const wider = JSON.stringify({
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'secrets', namespace: 'team-a' },
      rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['get'] }],
    });
    const r1 = await as(aliceKubeconfig, ['create', '-f', '-'], wider);
    assert.notEqual(r1.code, 0);
    assert.match(r1.stderr, /roles\.rbac\.authorization\.k8s\.io "secrets" is forbidden: user "alice" \(groups=\["tenants" "system:authenticated"\]\) is attempting to grant RBAC permissions not currently held:\n\{APIGroups:\[""\], Resources:\["secrets"\], Verbs:\["get"\]\}/);
    const r2 = await as(aliceKubeconfig, ['create', '-f', '-'], binding('team-a', 'alice-admin', 'cluster-admin', { kind: 'User', name: 'alice' }));
    assert.notEqual(r2.code, 0);
    assert.match(r2.stderr, /rolebindings\.rbac\.authorization\.k8s\.io "alice-admin" is forbidden: user "alice" .* is attempting to grant RBAC permissions not currently held/);
    // What she holds she may hand on.
    const narrower = JSON.stringify({
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'instance-reader', namespace: 'team-a' },
      rules: [{ apiGroups: ['compute.stratus.dev'], resources: ['instances'], verbs: ['get', 'list'] }],
    });
    await ok(aliceKubeconfig, ['create', '-f', '-'], narrower);
    await ok(aliceKubeconfig, ['create', '-f', '-'], binding('team-a', 'bob-reads', 'instance-reader', { kind: 'User', name: 'bob' }, 'Role'));
    assert.match(await ok(bobKubeconfig, ['get', 'instances', '-n', 'team-a', '-o', 'name']), /a1/);
  });

  it("RBAC objects get kube's validation", async () => {
    const bad = JSON.stringify({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'bad', namespace: 'team-a' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Pod', name: 'x' }, subjects: [{ kind: 'User', name: 'x' }] });
    const r = await as(serve.kubeconfig, ['create', '-f', '-'], bad);
    assert.notEqual(r.code, 0);
    // kubectl prints the causes of kube's 422 one per line.
    assert.equal(
      r.stderr.trim(),
      'The RoleBinding "bad" is invalid: \n* roleRef.kind: Unsupported value: "Pod": supported values: "Role", "ClusterRole"\n* subjects[0].apiGroup: Unsupported value: "": supported values: "rbac.authorization.k8s.io"',
    );
  });

  it('admin, edit and view aggregate the stratus kinds', async () => {
    await waitFor('view aggregated', async () => /instances/.test(await ok(serve.kubeconfig, ['get', 'clusterrole', 'view', '-o', 'jsonpath={.rules}'])), 10_000, 200);
    const edit = await ok(serve.kubeconfig, ['get', 'clusterrole', 'edit', '-o', 'json']);
    const rules = (JSON.parse(edit) as { rules: { resources?: string[]; verbs: string[] }[] }).rules;
    assert.ok(rules.some((r) => r.resources?.includes('instances') && r.verbs.includes('create')), 'edit creates Instances');
    assert.ok(rules.some((r) => r.resources?.includes('instances') && r.verbs.includes('watch')), 'edit includes view');
  });
});

describe('audit log and restarts', () => {
  it('records every mutating request (refused ones too) as a JSON line, without secrets', async () => {
    const lines = readFileSync(join(serve.dataDir, 'audit.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const refused = lines.find((l) => l.user === 'alice' && l.verb === 'delete' && l.name === 'b1');
    assert.deepEqual(
      { ...refused, time: undefined },
      { time: undefined, user: 'alice', groups: ['tenants', 'system:authenticated'], verb: 'delete', apiGroup: 'compute.stratus.dev', resource: 'instances', namespace: 'team-b', name: 'b1', path: '/apis/compute.stratus.dev/v1alpha1/namespaces/team-b/instances/b1', code: 403 },
    );
    assert.ok(lines.some((l) => l.user === 'bob' && l.verb === 'create' && l.resource === 'instances' && l.code === 201));
    assert.ok(lines.every((l) => ['create', 'update', 'patch', 'delete', 'deletecollection', 'post', 'put'].includes(l.verb as string)), 'reads are not audited');
    const text = readFileSync(join(serve.dataDir, 'audit.log'), 'utf8');
    assert.ok(!text.includes(bobToken.split('-')[1]!), 'no token secret in the audit log');
  });

  it('keeps its CA, serving certificate and issued credentials across a restart', async () => {
    const before = readFileSync(join(serve.dataDir, 'pki', 'ca.crt'), 'utf8');
    const serving = readFileSync(join(serve.dataDir, 'pki', 'serving.crt'), 'utf8');
    await serve.restart();
    assert.equal(readFileSync(join(serve.dataDir, 'pki', 'ca.crt'), 'utf8'), before);
    assert.equal(readFileSync(join(serve.dataDir, 'pki', 'serving.crt'), 'utf8'), serving);
    assert.match(await ok(aliceKubeconfig, ['get', 'instances', '-o', 'name']), /a1/);
    assert.match(await ok(bobKubeconfig, ['get', 'instances', '-o', 'name']), /b1/);
  });
});
