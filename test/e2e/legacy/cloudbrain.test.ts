import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { open, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AccessToken, Instance } from '../../../crds/types.js';
import { KubeClient } from '../../../runtime/client.js';
import { Resources } from '../../../controllers/resources.js';
import { decodeStored, scryptHash, scryptParamsOf } from '../../../legacy/tokens.js';
import { freePort, pidAlive, removeDir, tempDir, waitFor } from '../../harness/process.js';
import { stratusBin } from '../../harness/paths.js';
import { createToken, http, startLegacyServe, stratus, tokenHeaders, type LegacyServe } from './helpers.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

describe('Cloud Brain API through the legacy proxy (stratus serve --sim-node)', () => {
  let env: LegacyServe;
  let client: KubeClient;
  let token: { token: string; id: string; secret: string; stdout: string };

  before(async () => {
    // debug logging: the secret must not appear even in the most verbose logs.
    env = await startLegacyServe([], { STRATUS_LOG_LEVEL: 'debug' });
    client = KubeClient.fromFile(env.serve.kubeconfig);
    token = await createToken(env.serve.kubeconfig, 'cloud brain e2e');
  });

  after(async () => {
    client?.close();
    await env?.serve.stop();
  });

  const instanceCount = async (): Promise<number> => (await client.resource<Instance>(Resources.instances).list()).length;

  it('token create prints "generated token: ID-SECRET" with a numeric ID and 32 hex characters', () => {
    assert.match(token.stdout, /^generated token: [0-9]+-[0-9a-f]{32}\n$/);
  });

  it('POST /instances creates an Instance that reaches running on the sim node, GET shows it, DELETE terminates it', async () => {
    const created = await http('POST', `${env.legacy}/instances`, {
      headers: tokenHeaders(token.token),
      body: JSON.stringify({ provider: 'libvirt', image: 'debian-12' }),
    });
    assert.equal(created.status, 201, created.text);
    assert.match(created.headers.get('content-type') ?? '', /^application\/json/);
    const body = created.json as { id: string };
    assert.match(body.id, UUID);
    assert.deepEqual(created.json, { id: body.id, provider: 'libvirt', image: 'debian-12', ip_address: null, state: 'creating' });
    // An absolute URL, as the document's `Location: https://cloud-brain/instances/<id>`.
    assert.equal(created.headers.get('location'), `${env.legacy}/instances/${body.id}`);

    // The Instance exists in the token's namespace with that uid.
    const inst = (await client.resource<Instance>(Resources.instances).list('default')).find((i) => i.metadata?.uid === body.id);
    assert.ok(inst, 'an Instance with the returned id exists');
    assert.equal(inst.spec.provider, 'libvirt');
    assert.equal(inst.spec.image, 'debian-12');

    const running = await waitFor(
      'the instance to be running through GET',
      async () => {
        const r = await http('GET', created.headers.get('location')!, { headers: tokenHeaders(token.token) });
        assert.equal(r.status, 200, r.text);
        const v = r.json as { state: string };
        assert.ok(['creating', 'starting', 'running'].includes(v.state), `state ${v.state}`);
        return v.state === 'running' ? r : undefined;
      },
      60_000,
      100,
    );
    const shown = running.json as Record<string, unknown>;
    assert.deepEqual(Object.keys(shown).sort(), ['id', 'image', 'ip_address', 'provider', 'state']);
    assert.equal(shown.id, body.id);
    assert.equal(shown.provider, 'libvirt');
    assert.equal(shown.image, 'debian-12');
    const stored = await client.resource<Instance>(Resources.instances).get('default', inst.metadata!.name!);
    assert.equal(shown.ip_address, stored?.status?.ipAddress || null);
    assert.equal(stored?.status?.state, 'running');
    assert.equal(stored?.spec.nodeName, 'sim');

    const deleted = await http('DELETE', `${env.legacy}/instances/${body.id}`, { headers: tokenHeaders(token.token) });
    assert.equal(deleted.status, 200, deleted.text);
    assert.equal((deleted.json as { state: string }).state, 'terminating');
    assert.equal((deleted.json as { id: string }).id, body.id);
    await waitFor(
      'the instance to be gone',
      async () => {
        const r = await http('GET', `${env.legacy}/instances/${body.id}`, { headers: tokenHeaders(token.token) });
        if (r.status === 200) assert.equal((r.json as { state: string }).state, 'terminating');
        return r.status === 404;
      },
      60_000,
      100,
    );
    const gone = await http('GET', `${env.legacy}/instances/${body.id}`, { headers: tokenHeaders(token.token) });
    assert.deepEqual(gone.json, { error: 'instance not found' });
  });

  it('GET of an unknown or malformed id is 404 in Cloud Brain style', async () => {
    for (const id of ['00000000-0000-4000-8000-000000000000', 'not-a-uuid', '..']) {
      const r = await http('GET', `${env.legacy}/instances/${id}`, { headers: tokenHeaders(token.token) });
      assert.equal(r.status, 404, id);
      assert.equal(typeof (r.json as { error: string }).error, 'string');
    }
  });

  it('every kind of invalid token is 401 with one and the same answer, and creates nothing', async () => {
    const revoked = await createToken(env.serve.kubeconfig, 'to be revoked');
    const ok = await http('GET', `${env.legacy}/instances/00000000-0000-4000-8000-000000000000`, { headers: tokenHeaders(revoked.token) });
    assert.equal(ok.status, 404, 'the token works before it is revoked');
    const { stdout } = await stratus(['token', 'revoke', revoked.id, '--kubeconfig', env.serve.kubeconfig]);
    assert.match(stdout, /revoked token/);

    const expired = await createToken(env.serve.kubeconfig, 'to expire');
    await client.resource<AccessToken>(Resources.accessTokens).mergePatch('default', `token-${expired.id}`, { spec: { expiresAt: '2020-01-01T00:00:00Z' } });

    const wrongSecret = `${token.id}-${token.secret.slice(0, 31)}${token.secret.endsWith('0') ? '1' : '0'}`;
    const cases: Record<string, Record<string, string>> = {
      'no header': {},
      'malformed: no dash': { authorization: `token ${token.id}${token.secret}` },
      'malformed: short secret': { authorization: `token ${token.id}-${token.secret.slice(1)}` },
      'malformed: upper-case hex': { authorization: `token ${token.id}-${token.secret.toUpperCase()}` },
      'malformed: wrong scheme': { authorization: `Bearer ${token.token}` },
      'malformed: empty': { authorization: 'token ' },
      'unknown ID': { authorization: `token 999999-${token.secret}` },
      'wrong secret': { authorization: `token ${wrongSecret}` },
      revoked: { authorization: `token ${revoked.token}` },
      expired: { authorization: `token ${expired.token}` },
    };
    const before = await instanceCount();
    for (const [name, headers] of Object.entries(cases)) {
      for (const [method, path, body] of [
        ['POST', '/instances', JSON.stringify({ provider: 'libvirt', image: 'debian-12' })],
        ['GET', `/instances/00000000-0000-4000-8000-000000000000`, undefined],
        ['DELETE', `/instances/00000000-0000-4000-8000-000000000000`, undefined],
      ] as const) {
        const r = await http(method, `${env.legacy}${path}`, { headers: { 'content-type': 'application/json', ...headers }, ...(body ? { body } : {}) });
        assert.equal(r.status, 401, `${name}: ${method} ${path}`);
        assert.equal(r.text, '{"error":"unauthorized"}', name);
        assert.equal(r.headers.get('www-authenticate'), 'Token', name);
      }
    }
    assert.equal(await instanceCount(), before);
  });

  it('stores the token as an scrypt salt and hash that recompute from the secret', async () => {
    const t = await client.resource<AccessToken>(Resources.accessTokens).get('default', `token-${token.id}`);
    assert.ok(t);
    assert.equal(t.spec.tokenID, token.id);
    assert.equal(t.spec.description, 'cloud brain e2e');
    const params = scryptParamsOf(t.spec);
    assert.deepEqual(t.spec.scrypt, { cost: 16384, blockSize: 8, parallelization: 1, keyLength: 64 });
    const { salt, hash } = decodeStored(t.spec, params.keyLength);
    assert.ok(salt.length >= 16);
    assert.equal(hash.length, 64);
    assert.deepEqual(await scryptHash(token.secret, salt, params), hash, 'scrypt(secret, stored salt, stored params) is the stored hash');
    assert.notDeepEqual(await scryptHash(token.secret.replace(/.$/, (c) => (c === 'a' ? 'b' : 'a')), salt, params), hash);
    assert.ok(!JSON.stringify(t).includes(token.secret));
  });

  it('the secret appears nowhere in storage, in any object or in the server log', async () => {
    // Every object of every kind the server knows, plus core kinds.
    const all: unknown[] = [];
    for (const ref of Object.values(Resources)) all.push(...(await client.resource(ref).list()));
    const dump = JSON.stringify(all);
    assert.ok(dump.includes(`token-${token.id}`), 'the dump holds the token object');
    assert.ok(!dump.includes(token.secret), 'no object holds the secret');
    // Every byte the server wrote to its data dir (SQLite database, WAL, kubeconfig, ...).
    const files = await filesUnder(env.serve.dataDir);
    assert.ok(files.length > 0);
    for (const f of files) {
      const bytes = await readFile(f);
      for (const needle of [token.secret, Buffer.from(token.secret).toString('base64').slice(0, 40), Buffer.from(token.secret, 'hex').toString('base64').slice(0, 20)]) {
        assert.equal(bytes.indexOf(needle), -1, `${f} holds the secret (${needle})`);
      }
      assert.equal(bytes.indexOf(Buffer.from(token.secret, 'hex')), -1, `${f} holds the secret's raw bytes`);
    }
    const log = env.serve.output();
    assert.ok(log.length > 0);
    assert.ok(!log.includes(token.secret), 'the server log holds the secret');
  });

  it('a standalone stratus proxy logging at trace level writes the secret nowhere in its complete log', async () => {
    const dir = await tempDir('legacy-proxy-log');
    const logFile = join(dir, 'proxy.log');
    const fh = await open(logFile, 'w');
    const port = await freePort();
    const child = spawn(process.execPath, [stratusBin(), 'proxy', '--kubeconfig', env.serve.kubeconfig, '--listen', `127.0.0.1:${port}`], {
      stdio: ['ignore', fh.fd, fh.fd],
      env: { ...process.env, STRATUS_LOG_LEVEL: 'trace' },
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const url = `http://127.0.0.1:${port}`;
      await waitFor('stratus proxy to listen', async () => (await readFile(logFile, 'utf8')).includes(`legacy APIs at ${url}`), 30_000, 100);
      const wrong = `${token.id}-${'f'.repeat(32)}`;
      for (const t of [token.token, wrong, `${token.token}x`]) {
        await http('GET', `${url}/instances/00000000-0000-4000-8000-000000000000`, { headers: tokenHeaders(t) });
        await http('POST', `${url}/instances`, { headers: tokenHeaders(t), body: '{"provider": "nope", "image": "x"}' });
        await http('POST', `${url}/host/h.example.com/`, { headers: tokenHeaders(t), body: '{' });
      }
      const ok = await http('GET', `${url}/instances/00000000-0000-4000-8000-000000000000`, { headers: tokenHeaders(token.token) });
      assert.equal(ok.status, 404, 'the token works through this proxy');
    } finally {
      if (child.pid !== undefined && pidAlive(child.pid)) child.kill('SIGTERM');
      assert.equal(await exited, 0, 'SIGTERM stops the proxy cleanly');
      await fh.close();
    }
    const log = await readFile(logFile, 'utf8');
    assert.match(log, /"level":10|"level":20/, 'trace/debug lines were written');
    assert.ok(!log.includes(token.secret), 'the complete proxy log holds the secret');
    await removeDir(dir);
  });

  it('malformed requests get a 4xx in Cloud Brain style and create nothing', async () => {
    const before = await instanceCount();
    const cases: [string, string | Buffer, number][] = [
      ['bad JSON', '{"provider": "libvirt", "image": ', 400],
      ['not an object', '["libvirt", "debian-12"]', 400],
      ['empty body', '', 400],
      ['missing provider', JSON.stringify({ image: 'debian-12' }), 400],
      ['missing image', JSON.stringify({ provider: 'libvirt' }), 400],
      ['provider of the wrong type', JSON.stringify({ provider: 7, image: 'debian-12' }), 400],
      ['image of the wrong type', JSON.stringify({ provider: 'libvirt', image: ['debian-12'] }), 400],
      ['empty image', JSON.stringify({ provider: 'libvirt', image: '' }), 400],
      ['unknown provider', JSON.stringify({ provider: 'openstack', image: 'debian-12' }), 400],
      ['huge body', JSON.stringify({ provider: 'libvirt', image: 'debian-12', pad: 'x'.repeat(1024 * 1024) }), 413],
    ];
    for (const [name, body, status] of cases) {
      const r = await http('POST', `${env.legacy}/instances`, { headers: tokenHeaders(token.token), body });
      assert.equal(r.status, status, `${name}: ${r.text}`);
      const err = (r.json as { error?: unknown }).error;
      assert.equal(typeof err, 'string', name);
    }
    const unknown = await http('POST', `${env.legacy}/instances`, { headers: tokenHeaders(token.token), body: JSON.stringify({ provider: 'openstack', image: 'x' }) });
    assert.match((unknown.json as { error: string }).error, /unknown provider "openstack"/);
    const wrongMethod = await http('PUT', `${env.legacy}/instances`, { headers: tokenHeaders(token.token), body: '{}' });
    assert.equal(wrongMethod.status, 405);
    assert.equal(wrongMethod.headers.get('allow'), 'POST');
    assert.equal(await instanceCount(), before);
  });
});
