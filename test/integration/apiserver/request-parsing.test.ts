/**
 * Requests are parsed as kube-apiserver parses them, over real HTTP against an in-process
 * server: booleans as Go's strconv.ParseBool (so the official Python client's `?watch=True`
 * works), `limit`/`timeoutSeconds` refused when malformed on every verb before anything is
 * read or written, and DELETE bodies decoded as DeleteOptions.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startApiServer, type ApiServer } from '../../../apiserver/server.js';
import { once } from 'node:events';
import { connect as tlsConnect } from 'node:tls';
import { kubeconfigCredentials, kubeFetch, type KubeFetch } from '../../harness/kubefetch.js';
import { repoRoot } from '../../harness/paths.js';
import { removeDir, tempDir, waitFor } from '../../harness/process.js';

type Obj = Record<string, unknown> & { metadata: Record<string, unknown> };

const cms = '/api/v1/namespaces/default/configmaps';

describe('request parsing', () => {
  let dir: string;
  let server: ApiServer;
  /** As the admin of the kubeconfig the server wrote. */
  let adminFetch: KubeFetch;
  const send = async (method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; body: Obj }> => {
    const res = await adminFetch(server.url + path, {
      method,
      headers: { 'content-type': contentType },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as Obj };
  };
  const exists = async (name: string): Promise<boolean> => (await send('GET', `${cms}/${name}`)).status === 200;

  before(async () => {
    dir = await tempDir('apiserver-parse');
    server = await startApiServer({ dataDir: dir, listen: '127.0.0.1:0', crdDir: join(repoRoot(), 'crds'), heartbeatSeconds: 1 });
    adminFetch = kubeFetch(server.kubeconfigPath);
  });
  after(async () => {
    await server?.close();
    await removeDir(dir);
  });

  it('watch=True, T, TRUE and 1 start a watch; watch=False and 0 list', async () => {
    for (const v of ['True', 'T', 'TRUE', '1', 't', 'true']) {
      const ctl = new AbortController();
      const res = await adminFetch(`${server.url}${cms}?watch=${v}&timeoutSeconds=1`, { signal: ctl.signal });
      assert.equal(res.status, 200, v);
      assert.equal(res.headers.get('transfer-encoding'), 'chunked', `watch=${v} streams`);
      ctl.abort();
      await res.body?.cancel().catch(() => undefined);
    }
    for (const v of ['False', 'F', 'FALSE', '0', 'f', 'false']) {
      const r = await send('GET', `${cms}?watch=${v}`);
      assert.equal(r.status, 200, v);
      assert.equal(r.body.kind, 'ConfigMapList', `watch=${v} lists`);
    }
  });

  it('a boolean outside strconv.ParseBool is a 400 Status naming the parameter', async () => {
    for (const [path, param] of [
      [`${cms}?watch=yes`, 'watch'],
      [`${cms}?watch=1&allowWatchBookmarks=on`, 'allowWatchBookmarks'],
      [`${cms}?watch=1&allowWatchBookmarks=1&sendInitialEvents=maybe`, 'sendInitialEvents'],
    ] as const) {
      const r = await send('GET', path);
      assert.equal(r.status, 400, path);
      assert.equal(r.body.kind, 'Status');
      assert.equal(r.body.reason, 'BadRequest');
      assert.match(String(r.body.message), new RegExp(`invalid boolean value for ${param}`));
    }
    await send('POST', cms, { metadata: { name: 'forced' } });
    const patch = await send('PATCH', `${cms}/forced?force=nope`, 'metadata:\n  name: forced\n', 'application/apply-patch+yaml');
    assert.equal(patch.status, 400);
    assert.match(String(patch.body.message), /force/);
  });

  it('an invalid limit or timeoutSeconds is a 400 on every verb and changes nothing', async () => {
    await send('POST', cms, { metadata: { name: 'keep' }, data: { a: '1' } });
    for (const param of ['limit=abc', 'timeoutSeconds=x', 'limit=1.5', 'timeoutSeconds=9223372036854775808']) {
      const name = param.split('=')[0] ?? '';
      const tries: [string, string, unknown, string?][] = [
        ['GET', `${cms}/keep?${param}`, undefined],
        ['GET', `${cms}?${param}`, undefined],
        ['GET', `${cms}?watch=1&${param}`, undefined],
        ['POST', `${cms}?${param}`, { metadata: { name: 'new-one' } }],
        ['PUT', `${cms}/keep?${param}`, { metadata: { name: 'keep' }, data: { a: '2' } }],
        ['PATCH', `${cms}/keep?${param}`, { data: { a: '3' } }, 'application/merge-patch+json'],
        ['DELETE', `${cms}/keep?${param}`, undefined],
        ['DELETE', `${cms}?${param}`, undefined],
      ];
      for (const [method, path, body, type] of tries) {
        const r = await send(method, path, body, type);
        assert.equal(r.status, 400, `${method} ${path}`);
        assert.equal(r.body.kind, 'Status');
        assert.match(String(r.body.message), new RegExp(name), `${method} ${path} names ${name}`);
      }
      assert.ok(await exists('keep'), 'nothing deleted');
      assert.ok(!(await exists('new-one')), 'nothing created');
      assert.deepEqual((await send('GET', `${cms}/keep`)).body.data, { a: '1' }, 'nothing changed');
    }
    // well-formed values still work, including a signed one
    assert.equal((await send('GET', `${cms}?limit=%2B1`)).body.kind, 'ConfigMapList');
  });

  it('a DELETE body must be DeleteOptions: another kind or a mistyped field is a 400 and deletes nothing', async () => {
    await send('POST', cms, { metadata: { name: 'target' } });
    const wrongKind = await send('DELETE', `${cms}/target`, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'target' } });
    assert.equal(wrongKind.status, 400);
    assert.equal(wrongKind.body.kind, 'Status');
    assert.match(String(wrongKind.body.message), /DeleteOptions/);
    const notObject = await send('DELETE', `${cms}/target`, '["Orphan"]');
    assert.equal(notObject.status, 400);
    const mistyped = await send('DELETE', `${cms}/target`, { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 7 });
    assert.equal(mistyped.status, 400);
    assert.match(String(mistyped.body.message), /propagationPolicy/);
    const badCollection = await send('DELETE', cms, { apiVersion: 'v1', kind: 'Pod' });
    assert.equal(badCollection.status, 400);
    assert.ok(await exists('target'));
    const ok = await send('DELETE', `${cms}/target`, { kind: 'DeleteOptions', apiVersion: 'meta.k8s.io/v1', propagationPolicy: 'Background', preconditions: {} });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.status, 'Success');
    assert.ok(!(await exists('target')));
  });

  it('a request that arrives while the previous large response is still being written is served, not reset (HPE_PAUSED)', async () => {
    // A LIST of 11 MB: more than the kernel's socket buffers hold while the client is not reading.
    for (let i = 0; i < 4; i++) assert.equal((await send('POST', cms, { metadata: { name: `large-${i}` }, data: { v: 'x'.repeat(2_800_000) } })).status, 201);
    const { ca, cert, key } = kubeconfigCredentials(server.kubeconfigPath);
    const url = new URL(server.url);
    const socket = tlsConnect({ host: url.hostname, port: Number(url.port), ca, cert, key, servername: 'localhost' });
    await once(socket, 'secureConnect');
    let received = Buffer.alloc(0);
    socket.on('data', (b: Buffer) => (received = Buffer.concat([received, b])));
    socket.write(`GET ${cms} HTTP/1.1\r\nHost: x\r\n\r\n`);
    await waitFor('the first bytes of the large response', () => received.length > 0, 10_000, 5);
    // Stop reading, so the server's write backs up; then send a create with a 200 KB body.
    socket.pause();
    await new Promise((r) => setTimeout(r, 200));
    const body = JSON.stringify({ metadata: { name: 'after-large' }, data: { v: 'y'.repeat(200_000) } });
    socket.write(`POST ${cms} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    await new Promise((r) => setTimeout(r, 200));
    socket.resume();
    const closed = once(socket, 'close');
    await waitFor('both responses', () => /HTTP\/1\.1 201/.test(received.toString('latin1')) || socket.destroyed, 30_000, 10);
    socket.end();
    await closed;
    const text = received.toString('latin1');
    assert.match(text, /^HTTP\/1\.1 200/, 'the GET is answered');
    assert.match(text, /HTTP\/1\.1 201 Created/, 'the create that arrived meanwhile is answered 201, not reset');
    assert.ok(await exists('after-large'));
  });
});
