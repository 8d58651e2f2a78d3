import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileP, requireBinary } from '../../harness/process.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeClient, ApiError, CoreResources, isConflict, isNotFound, objectKey, splitKey, type KubeObject } from '../../../runtime/client.js';
import { FakeApiServer } from './fakeapi.js';

const widgets = { group: 'test.stratus.dev', version: 'v1', plural: 'widgets', namespaced: true, kind: 'Widget' };
const clusterThings = { group: 'test.stratus.dev', version: 'v1', plural: 'things', namespaced: false, kind: 'Thing' };
type Widget = KubeObject & { spec?: { size?: number }; status?: { seen?: number } };

describe('KubeClient against a fake API server', () => {
  const api = new FakeApiServer();
  let client: KubeClient;
  let dir: string;
  before(async () => {
    await api.start();
    dir = mkdtempSync(join(tmpdir(), 'stratus-client-'));
    client = KubeClient.fromFile(api.writeKubeconfig(dir));
  });
  after(async () => {
    client.close();
    await api.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const pathCases = [
    { name: 'core namespaced item', ref: CoreResources.secrets, ns: 'a', obj: 's', want: '/api/v1/namespaces/a/secrets/s' },
    { name: 'core collection across namespaces', ref: CoreResources.secrets, ns: undefined, obj: undefined, want: '/api/v1/secrets' },
    { name: 'group namespaced item', ref: widgets, ns: 'a', obj: 'w', want: '/apis/test.stratus.dev/v1/namespaces/a/widgets/w' },
    { name: 'cluster-scoped item ignores the namespace', ref: clusterThings, ns: 'a', obj: 't', want: '/apis/test.stratus.dev/v1/things/t' },
    { name: 'lease', ref: CoreResources.leases, ns: 'kube-system', obj: 'l', want: '/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/l' },
  ];
  for (const c of pathCases) {
    test(`addresses a ${c.name}`, () => {
      assert.equal(client.resource(c.ref).path(c.ns, c.obj), c.want);
    });
  }

  test('create, get, list, merge patch, status, replace and delete round-trip a CRD object', async () => {
    const rc = client.resource<Widget>(widgets);
    const created = await rc.create({ metadata: { name: 'w1', namespace: 'ns1' }, spec: { size: 1 } });
    assert.equal(created.kind, 'Widget', 'kind filled from the resource ref');
    assert.equal((await rc.get('ns1', 'w1'))?.spec?.size, 1);
    assert.equal(await rc.get('ns1', 'missing'), undefined, 'get of a missing object is undefined');
    const patched: Widget = await rc.mergePatch('ns1', 'w1', { spec: { size: 2 } });
    assert.equal(patched.spec?.size, 2);
    const st = await rc.mergePatchStatus('ns1', 'w1', { status: { seen: 2 } });
    assert.equal(st.status?.seen, 2);
    assert.equal(st.spec?.size, 2);
    const listed = await rc.listWithVersion('ns1');
    assert.equal(listed.items.length, 1);
    assert.ok(listed.resourceVersion);
    assert.equal(listed.items[0]?.kind, 'Widget');
    const replaced = await rc.replace({ ...st, spec: { size: 3 } });
    assert.equal(replaced.spec?.size, 3);
    assert.equal(await rc.delete('ns1', 'w1'), true);
    assert.equal(await rc.delete('ns1', 'w1'), false, 'deleting a missing object reports false');
  });

  test('a stale resourceVersion surfaces as a 409 ApiError', async () => {
    const rc = client.resource<Widget>(widgets);
    const a = await rc.create({ metadata: { name: 'w2', namespace: 'ns1' }, spec: { size: 1 } });
    await rc.mergePatch('ns1', 'w2', { spec: { size: 5 } });
    await assert.rejects(rc.replace({ ...a, spec: { size: 9 } }), (err: unknown) => {
      assert.ok(err instanceof ApiError);
      assert.equal(err.code, 409);
      assert.equal(err.reason, 'Conflict');
      assert.ok(isConflict(err));
      assert.match(err.message, /modified/);
      return true;
    });
    await assert.rejects(rc.mergePatch('ns1', 'nope', {}), (err: unknown) => isNotFound(err));
    await assert.rejects(rc.create({ metadata: { name: 'w2', namespace: 'ns1' } }), (err: unknown) => err instanceof ApiError && err.reason === 'AlreadyExists');
  });

  test('merge patches go out as application/merge-patch+json, JSON patches as json-patch', async () => {
    const rc = client.resource(CoreResources.configMaps);
    await rc.create({ metadata: { name: 'c', namespace: 'ns1' } });
    // The fake answers 415 to any other content type.
    await rc.mergePatch('ns1', 'c', { metadata: { labels: { a: 'b' } } });
    const after = await rc.jsonPatch('ns1', 'c', [{ op: 'add', path: '/metadata/labels/c', value: 'd' }]);
    assert.deepEqual(after.metadata?.labels, { a: 'b', c: 'd' });
  });

  test('objectKey and splitKey are inverse for namespaced and cluster-scoped keys', () => {
    assert.equal(objectKey({ metadata: { name: 'n', namespace: 'ns' } }), 'ns/n');
    assert.equal(objectKey({ metadata: { name: 'n' } }), 'n');
    assert.deepEqual(splitKey('ns/n'), { namespace: 'ns', name: 'n' });
    assert.deepEqual(splitKey('n'), { namespace: undefined, name: 'n' });
  });

  test('a plain http:// server works without insecure-skip-tls-verify, as with kubectl', async () => {
    const path = join(dir, 'kubeconfig-plain');
    writeFileSync(path, `apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: '${api.url}'}\nusers:\n- name: u\n  user: {token: plain}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n`);
    const plain = KubeClient.fromFile(path);
    assert.deepEqual(await plain.resource(CoreResources.secrets).list('nothing-here'), []);
    assert.equal(api.lastAuth.authorization, 'Bearer plain', 'the token is still sent');
    plain.close();
  });

  test('a refused connection rejects with the network error', async () => {
    const kc = api.kubeConfig();
    kc.clusters[0] = { ...kc.clusters[0], name: 'fake', server: 'http://127.0.0.1:1', skipTLSVerify: true };
    const dead = KubeClient.fromKubeConfig(kc);
    await assert.rejects(dead.resource(widgets).get('a', 'b'), (err: unknown) => (err as NodeJS.ErrnoException).code === 'ECONNREFUSED');
  });
});

describe('KubeClient over TLS with a client certificate (as against a real cluster)', () => {
  const api = new FakeApiServer();
  let dir: string;
  const b64 = (f: string): string => readFileSync(join(dir, f)).toString('base64');
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'stratus-tls-'));
    const openssl = requireBinary('openssl');
    const run = (...args: string[]): Promise<unknown> => execFileP(openssl, args, { cwd: dir });
    await run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=test-ca');
    writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    for (const [name, cn] of [['server', '127.0.0.1'], ['client', 'stratus-admin']] as const) {
      await run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
      await run('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '1', ...(name === 'server' ? ['-extfile', 'san.ext'] : []));
    }
    await api.start({ key: readFileSync(join(dir, 'server.key'), 'utf8'), cert: readFileSync(join(dir, 'server.crt'), 'utf8'), ca: readFileSync(join(dir, 'ca.crt'), 'utf8') });
  });
  after(async () => {
    await api.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('verifies the server against certificate-authority-data and presents the client certificate', async () => {
    const path = join(dir, 'kubeconfig');
    writeFileSync(
      path,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        `- name: c\n  cluster:\n    server: ${api.url}\n    certificate-authority-data: ${b64('ca.crt')}`,
        'users:',
        `- name: u\n  user:\n    client-certificate-data: ${b64('client.crt')}\n    client-key-data: ${b64('client.key')}`,
        'contexts:',
        '- name: x\n  context: {cluster: c, user: u}',
        'current-context: x',
        '',
      ].join('\n'),
    );
    const client = KubeClient.fromFile(path);
    const cms = client.resource(CoreResources.configMaps);
    await cms.create({ metadata: { name: 'tls', namespace: 'a' } });
    assert.equal((await cms.get('a', 'tls'))?.metadata?.name, 'tls');
    assert.equal(api.lastAuth.clientCN, 'stratus-admin');
    client.close();
  });

  test('sends a bearer token from the kubeconfig', async () => {
    const path = join(dir, 'kubeconfig-token');
    writeFileSync(
      path,
      `apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: ${api.url}\n    certificate-authority-data: ${b64('ca.crt')}\nusers:\n- name: u\n  user:\n    token: s3cret\n    client-certificate-data: ${b64('client.crt')}\n    client-key-data: ${b64('client.key')}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n`,
    );
    const client = KubeClient.fromFile(path);
    await client.resource(CoreResources.configMaps).list('a');
    assert.equal(api.lastAuth.authorization, 'Bearer s3cret');
    client.close();
  });

  test('reads certificate-authority, client-certificate and client-key files relative to the kubeconfig, as kubectl does', async () => {
    const path = join(dir, 'kubeconfig-files');
    writeFileSync(
      path,
      `apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: ${api.url}\n    certificate-authority: ca.crt\nusers:\n- name: u\n  user:\n    client-certificate: client.crt\n    client-key: ${join(dir, 'client.key')}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n`,
    );
    const client = KubeClient.fromFile(path);
    await client.resource(CoreResources.configMaps).list('a');
    assert.equal(api.lastAuth.clientCN, 'stratus-admin');
    client.close();
  });

  test('an exec credential plugin (a form only client-node knows) supplies the token', async () => {
    const plugin = join(dir, 'exec-plugin.sh');
    // This server also asks for a client certificate: the plugin hands out both.
    const credential = { apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: 'from-exec', clientCertificateData: readFileSync(join(dir, 'client.crt'), 'utf8'), clientKeyData: readFileSync(join(dir, 'client.key'), 'utf8') } };
    writeFileSync(join(dir, 'exec-credential.json'), JSON.stringify(credential));
    writeFileSync(plugin, `#!/bin/sh\nexec cat ${join(dir, 'exec-credential.json')}\n`, { mode: 0o755 });
    const path = join(dir, 'kubeconfig-exec');
    writeFileSync(
      path,
      `apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: ${api.url}\n    certificate-authority-data: ${b64('ca.crt')}\nusers:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: ${plugin}\n      interactiveMode: Never\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n`,
    );
    const client = KubeClient.fromFile(path);
    await client.resource(CoreResources.configMaps).list('a');
    assert.equal(api.lastAuth.authorization, 'Bearer from-exec');
    client.close();
  });

  test('a kubeconfig whose current context names no cluster is refused with a clear error', () => {
    const path = join(dir, 'kubeconfig-nocontext');
    writeFileSync(path, `apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: '${api.url}'}\ncontexts: []\ncurrent-context: missing\n`);
    assert.throws(() => KubeClient.fromFile(path), /kubeconfig has no current cluster/);
  });

  test('refuses a server whose certificate the kubeconfig CA did not sign', async () => {
    const path = join(dir, 'kubeconfig-wrong-ca');
    writeFileSync(
      path,
      `apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: ${api.url}\n    certificate-authority-data: ${b64('client.crt')}\nusers:\n- name: u\n  user: {token: t}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n`,
    );
    const client = KubeClient.fromFile(path);
    await assert.rejects(client.resource(CoreResources.configMaps).list('a'), /certificate|self.signed|issuer/i);
    client.close();
  });
});
