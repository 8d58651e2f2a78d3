import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeClient } from '../../../runtime/client.js';
import { startLegacyProxy, type LegacyProxy } from '../../../legacy/proxy.js';
import { signBody } from '../../../legacy/users.js';
import { freePort } from '../../harness/process.js';

/** A client of an API server that is not there: every call fails with ECONNREFUSED. */
async function deadClient(): Promise<KubeClient> {
  const port = await freePort();
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'dead', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'u', token: 'x' }],
    contexts: [{ name: 'c', cluster: 'dead', user: 'u' }],
    currentContext: 'c',
  });
  return KubeClient.fromKubeConfig(kc, { requestTimeoutMs: 2000 });
}

describe('legacy proxy while the Kubernetes API is unreachable', () => {
  let proxy: LegacyProxy;
  let insecure: LegacyProxy;
  let client: KubeClient;

  before(async () => {
    client = await deadClient();
    proxy = await startLegacyProxy({ client, listen: '127.0.0.1:0' });
    insecure = await startLegacyProxy({ client, listen: '127.0.0.1:0', insecure: true });
  });

  after(async () => {
    await proxy?.close();
    await insecure?.close();
    client?.close();
  });

  it('answers 503 in each API\'s style, never 401 for a well-formed token and never 5xx for a malformed one', async () => {
    const token = { authorization: 'token 1-0123456789abcdef0123456789abcdef' };
    const cb = await fetch(`${proxy.url}/instances`, { method: 'POST', headers: token, body: '{"provider":"libvirt","image":"debian-12"}' });
    assert.equal(cb.status, 503);
    assert.equal(typeof ((await cb.json()) as { error: string }).error, 'string');

    const malformed = await fetch(`${proxy.url}/instances`, { method: 'POST', headers: { authorization: 'token nope' }, body: '{}' });
    assert.equal(malformed.status, 401, 'a malformed token is refused without asking the API');

    const dc = await fetch(`${insecure.url}/host/a.example.com/`);
    assert.equal(dc.status, 503);
    const badBody = await fetch(`${insecure.url}/host/a.example.com/`, { method: 'POST', body: '{' });
    assert.equal(badBody.status, 400, 'the body is judged before the API is asked');

    const cl = await fetch(`${insecure.url}/apiv1/engines`);
    assert.equal(cl.status, 503);
    assert.deepEqual(Object.keys((await cl.json()) as object).sort(), ['data', 'error', 'ok']);

    const body = '{"command":"upload_ssh","keyname":"k","content":"ssh-ed25519 AAAA"}';
    const br = await fetch(`${proxy.url}/brume`, { method: 'POST', headers: { 'x-username': 'alice', 'x-signature': signBody('s', body) }, body });
    assert.equal(br.status, 503);
    assert.equal(((await br.json()) as { output: boolean }).output, false);
  });

  it('answers unknown paths with 404 and the proxy keeps serving', async () => {
    const r = await fetch(`${proxy.url}/nothing/here`);
    assert.equal(r.status, 404);
    assert.deepEqual(await r.json(), { error: 'not found' });
  });
});
