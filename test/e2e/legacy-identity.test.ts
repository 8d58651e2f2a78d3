/**
 * The legacy APIs act as their caller's identity: through `bin/stratus serve`'s legacy proxy,
 * two tenants (alice in team-a, bob in team-b, each with a token acting as their User) cannot
 * see or delete each other's objects through Cloud Brain, DataCentred, clementine or Brume;
 * (Brume key names are unique server-wide, as the seed says, so each tenant uploads its own);
 * the caller's identity (user and Groups) reaches the API server's admission, so a group
 * quota on alice's Group refuses her third Cloud Brain instance with 403 while bob goes on;
 * `--legacy-anonymous datacentred` admits DataCentred callers without credentials (as
 * system:anonymous) and no other API.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import type { Instance, Quota, SSHKey, User } from '../../crds/types.js';
import { KubeClient } from '../../runtime/client.js';
import { Resources } from '../../controllers/resources.js';
import { http, startLegacyServe, stratus, tokenHeaders, type LegacyServe } from './legacy/helpers.js';
import { waitFor } from '../harness/process.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKqP3Cr632C2dNhhgKVcon4ldUSAeKiku2yP9O9/bDtY someone@laptop';

describe('legacy APIs act as the caller (two tenants)', () => {
  let env: LegacyServe;
  let client: KubeClient;
  const tenant: Record<'alice' | 'bob', { token: string; secret: string; namespace: string }> = {
    alice: { token: '', secret: '', namespace: 'team-a' },
    bob: { token: '', secret: '', namespace: 'team-b' },
  };

  before(async () => {
    env = await startLegacyServe(['--legacy-anonymous', 'datacentred']);
    client = KubeClient.fromFile(env.serve.kubeconfig);
    const kc = env.serve.kubeconfig;
    for (const [name, group] of [
      ['alice', 'red'],
      ['bob', 'blue'],
    ] as const) {
      const ns = tenant[name].namespace;
      const created = await stratus(['user', 'create', name, '--namespace', ns, '--group', group, '--kubeconfig', kc]);
      tenant[name].secret = /generated secret: ([0-9a-f]{64})/.exec(created.stdout)![1]!;
      const tok = await stratus(['token', 'create', `${name}'s token`, '--namespace', ns, '--user', name, '--kubeconfig', kc]);
      tenant[name].token = /generated token: (\S+)/.exec(tok.stdout)![1]!;
    }
    // Group red's members may hold 2 Instances together.
    await client.resource<Quota>(Resources.quotas).create({ apiVersion: 'iam.stratus.dev/v1alpha1', kind: 'Quota', metadata: { name: 'red', namespace: 'team-a' }, spec: { hard: { instances: 2 } } });
    await client.resource(Resources.groups).mergePatch(undefined, 'red', { spec: { quotaRef: { namespace: 'team-a', name: 'red' } } });
  });

  after(async () => {
    client?.close();
    await env?.serve.stop();
  });

  const as = (who: 'alice' | 'bob'): Record<string, string> => tokenHeaders(tenant[who].token);

  it('Cloud Brain: an instance is visible and deletable only by its tenant', async () => {
    const created = await http('POST', `${env.legacy}/instances`, { headers: as('alice'), body: JSON.stringify({ provider: 'libvirt', image: 'debian-12' }) });
    assert.equal(created.status, 201, created.text);
    const id = (created.json as { id: string }).id;
    assert.equal((await http('GET', `${env.legacy}/instances/${id}`, { headers: as('alice') })).status, 200);
    assert.equal((await http('GET', `${env.legacy}/instances/${id}`, { headers: as('bob') })).status, 404);
    assert.equal((await http('DELETE', `${env.legacy}/instances/${id}`, { headers: as('bob') })).status, 404);
    assert.equal((await http('GET', `${env.legacy}/instances/${id}`, { headers: as('alice') })).status, 200, 'bob deleted nothing');
    const stored = (await client.resource<Instance>(Resources.instances).list('team-a'))[0];
    assert.equal(stored?.metadata?.annotations?.['iam.stratus.dev/charged-quotas'], 'team-a/red', 'the API server saw alice with her Group red');
  });

  it("the caller's identity reaches quota admission: alice's group quota refuses her third instance with 403, bob is unaffected", async () => {
    const second = await http('POST', `${env.legacy}/instances`, { headers: as('alice'), body: JSON.stringify({ provider: 'libvirt', image: 'debian-12' }) });
    assert.equal(second.status, 201, second.text);
    const third = await http('POST', `${env.legacy}/instances`, { headers: as('alice'), body: JSON.stringify({ provider: 'libvirt', image: 'debian-12' }) });
    assert.equal(third.status, 403, third.text);
    assert.match(third.text, /exceeded quota: red, requested: instances=1, used: instances=2, limited: instances=2/);
    for (let i = 0; i < 3; i++) {
      const b = await http('POST', `${env.legacy}/instances`, { headers: as('bob'), body: JSON.stringify({ provider: 'libvirt', image: 'debian-12' }) });
      assert.equal(b.status, 201, b.text);
    }
  });

  it("DataCentred: a tenant's host network is invisible to the other", async () => {
    const url = `${env.legacy}/host/h1/network/staging/`;
    const created = await http('POST', url, { headers: as('alice'), body: JSON.stringify({ bridge: 'br-staging', vlan: 10 }) });
    assert.equal(created.status, 201, created.text);
    assert.equal((await http('GET', url, { headers: as('alice') })).status, 204);
    assert.equal((await http('GET', url, { headers: as('bob') })).status, 404);
  });

  it("clementine: a tenant lists only its own containers", async () => {
    await client.resource<Instance>(Resources.instances).create({
      apiVersion: 'compute.stratus.dev/v1alpha1',
      kind: 'Instance',
      metadata: { name: 'web', namespace: 'team-b' },
      spec: { provider: 'docker', image: 'busybox' },
    });
    const bobs = await http('GET', `${env.legacy}/apiv1/containers`, { headers: as('bob') });
    assert.equal(bobs.status, 200, bobs.text);
    assert.equal((bobs.json as { data: unknown[] }).data.length, 1);
    const alices = await http('GET', `${env.legacy}/apiv1/containers`, { headers: as('alice') });
    assert.equal(alices.status, 200, alices.text);
    assert.equal((alices.json as { data: unknown[] }).data.length, 0);
  });

  it('Brume: each signed user writes into its own namespace', async () => {
    for (const who of ['alice', 'bob'] as const) {
      const body = JSON.stringify({ command: 'upload_ssh', keyname: `${who}-laptop`, content: KEY });
      const sig = createHmac('sha256', tenant[who].secret).update(body).digest('hex');
      const r = await http('POST', `${env.legacy}/brume`, { body, headers: { 'content-type': 'application/json', 'x-username': who, 'x-signature': sig } });
      assert.deepEqual(r.json, { output: true, message: `SSH key ${who}-laptop uploaded` });
    }
    const keys = await client.resource<SSHKey>(Resources.sshKeys).list();
    assert.deepEqual(keys.map((k) => `${k.metadata?.namespace}/${k.spec.keyName}`).sort(), ['team-a/alice-laptop', 'team-b/bob-laptop']);
    // An accepted signature is a login: lastLoginTime is written (off the request path).
    await waitFor('alice lastLoginTime', async () => (await client.resource<User>(Resources.users).get(undefined, 'alice'))?.status?.lastLoginTime, 10_000);
  });

  it('--legacy-anonymous datacentred admits callers without credentials there, and nowhere else', async () => {
    const anon = await http('POST', `${env.legacy}/host/h2/network/public/`, { headers: tokenHeaders(undefined), body: JSON.stringify({ bridge: 'br-public', vlan: 20 }) });
    assert.equal(anon.status, 201, anon.text);
    assert.equal((await http('GET', `${env.legacy}/apiv1/containers`)).status, 401);
    assert.equal((await http('GET', `${env.legacy}/instances/x`)).status, 401);
    // A bad token is still refused where anonymous callers are admitted.
    assert.equal((await http('GET', `${env.legacy}/host/h2/network/public/`, { headers: tokenHeaders('1-00000000000000000000000000000000') })).status, 401);
  });
});
