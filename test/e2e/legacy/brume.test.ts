import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import type { AddressPool, ElasticIP, Instance, SSHKey, User } from '../../../crds/types.js';
import { CoreResources, KubeClient, type KubeObject } from '../../../runtime/client.js';
import { Resources } from '../../../controllers/resources.js';
import { http, startLegacyServe, stratus, type LegacyServe } from './helpers.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKqP3Cr632C2dNhhgKVcon4ldUSAeKiku2yP9O9/bDtY alice@laptop';
const KEY2 = 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 alice@desktop';

/** What a Brume client computes: hex HMAC-SHA256 of the raw body, keyed by the secret's UTF-8 bytes. */
function sign(secret: string, body: string): string {
  return createHmac('sha256', Buffer.from(secret, 'utf8')).update(Buffer.from(body, 'utf8')).digest('hex');
}

describe('Brume API through the legacy proxy (stratus serve --legacy-insecure)', () => {
  let env: LegacyServe;
  let client: KubeClient;
  let secret: string;

  before(async () => {
    env = await startLegacyServe(['--legacy-insecure']);
    client = KubeClient.fromFile(env.serve.kubeconfig);
    const { stdout } = await stratus(['user', 'create', 'alice', '--namespace', 'team-a', '--kubeconfig', env.serve.kubeconfig]);
    const m = /^generated secret: ([0-9a-f]{64})\n$/.exec(stdout);
    assert.ok(m, `user create printed ${JSON.stringify(stdout)}`);
    secret = m[1]!;
  });

  after(async () => {
    client?.close();
    await env?.serve.stop();
  });

  const post = (body: string, headers: Record<string, string>) => http('POST', `${env.legacy}/brume`, { body, headers: { 'content-type': 'application/json', ...headers } });
  const signed = (body: string, user = 'alice', key = secret) => post(body, { 'x-username': user, 'x-signature': sign(key, body) });
  const keys = () => client.resource<SSHKey>(Resources.sshKeys).list();

  it('user create makes a cluster-scoped User of namespace team-a whose secretRef names a Secret holding the signing secret', async () => {
    const user = await client.resource<User>(Resources.users).get(undefined, 'alice');
    assert.ok(user);
    assert.equal(user.metadata?.namespace, undefined);
    assert.equal(user.spec.namespace, 'team-a');
    assert.ok(!JSON.stringify(user).includes(secret), 'the User object does not hold the secret');
    const ref = user.spec.secretRef!;
    assert.equal(ref.namespace, 'stratus-system', 'the signing secret is out of the tenant namespace');
    const s = await client.resource<KubeObject & { data?: Record<string, string> }>(CoreResources.secrets).get(ref.namespace, ref.name);
    assert.equal(Buffer.from(s?.data?.[ref.key ?? 'secret'] ?? '', 'base64').toString(), secret);
    await assert.rejects(stratus(['user', 'create', 'alice', '--namespace', 'team-a', '--kubeconfig', env.serve.kubeconfig]), /already exists/);
  });

  it('upload_ssh with a valid signature creates an SSHKey in the user\'s namespace; the same keyname again is output false with the reason', async () => {
    const body = JSON.stringify({ command: 'upload_ssh', keyname: 'laptop', content: KEY });
    const r = await signed(body);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { output: true, message: 'SSH key laptop uploaded' });
    const made = (await keys()).filter((k) => k.spec.keyName === 'laptop');
    assert.equal(made.length, 1);
    assert.equal(made[0]!.metadata?.namespace, 'team-a');
    assert.equal(made[0]!.spec.publicKey, KEY);

    const dup = await signed(JSON.stringify({ command: 'upload_ssh', keyname: 'laptop', content: KEY2 }));
    assert.equal(dup.status, 200);
    const out = dup.json as { output: boolean; message: string };
    assert.equal(out.output, false);
    assert.match(out.message, /laptop exists/);
    assert.equal((await keys()).filter((k) => k.spec.keyName === 'laptop').length, 1);
    assert.equal((await keys()).find((k) => k.spec.keyName === 'laptop')?.spec.publicKey, KEY, 'the first key stays');

    // Key names that are not DNS labels, and nested arguments.
    const nested = await signed(JSON.stringify({ command: 'upload_ssh', args: { keyname: 'Alice@Work_2', content: KEY2 } }));
    assert.deepEqual(nested.json, { output: true, message: 'SSH key Alice@Work_2 uploaded' });
    assert.ok((await keys()).some((k) => k.spec.keyName === 'Alice@Work_2'));
  });

  it('a missing, wrong or foreign signature, or an unknown user, is 401 and creates nothing', async () => {
    const body = JSON.stringify({ command: 'upload_ssh', keyname: 'stolen', content: KEY });
    const before = (await keys()).length;
    const cases: Record<string, Record<string, string>> = {
      'no headers': {},
      'no signature': { 'x-username': 'alice' },
      'no username': { 'x-signature': sign(secret, body) },
      'signature of another body': { 'x-username': 'alice', 'x-signature': sign(secret, body + ' ') },
      'signature with another key': { 'x-username': 'alice', 'x-signature': sign('0'.repeat(64), body) },
      'signature not hex': { 'x-username': 'alice', 'x-signature': 'zz'.repeat(32) },
      'signature truncated': { 'x-username': 'alice', 'x-signature': sign(secret, body).slice(0, 40) },
      'unknown user': { 'x-username': 'mallory', 'x-signature': sign(secret, body) },
      'user name not a label': { 'x-username': 'Alice!', 'x-signature': sign(secret, body) },
    };
    for (const [name, headers] of Object.entries(cases)) {
      const r = await post(body, headers);
      assert.equal(r.status, 401, name);
      assert.deepEqual(r.json, { output: false, message: 'authentication failed' }, name);
    }
    // A disabled user is refused too.
    await client.resource<User>(Resources.users).mergePatch('team-a', 'alice', { spec: { disabled: true } });
    assert.equal((await signed(body)).status, 401);
    await client.resource<User>(Resources.users).mergePatch('team-a', 'alice', { spec: { disabled: false } });
    assert.equal((await keys()).length, before);
  });

  it('--legacy-insecure on serve opens DataCentred and clementine, but never Brume or Cloud Brain', async () => {
    assert.equal((await http('GET', `${env.legacy}/host/nobody.example.com/`)).status, 404);
    // A token that is sent is still checked: it names the caller's namespace.
    const badToken = { authorization: 'token 1-0123456789abcdef0123456789abcdef' };
    assert.equal((await http('GET', `${env.legacy}/host/nobody.example.com/`, { headers: badToken })).status, 401);
    assert.equal((await http('GET', `${env.legacy}/apiv1/engines`, { headers: badToken })).status, 401);
    const engines = await http('GET', `${env.legacy}/apiv1/engines`);
    assert.equal(engines.status, 200);
    assert.deepEqual(engines.json, { ok: true, data: [] });
    assert.equal((await http('GET', `${env.legacy}/instances/00000000-0000-4000-8000-000000000000`)).status, 401);
    assert.equal((await post(JSON.stringify({ command: 'upload_ssh', keyname: 'k', content: KEY }), {})).status, 401);
  });

  it('malformed requests are 400 (413 when huge) in Brume style and create nothing', async () => {
    const before = (await keys()).length;
    const cases: [string, string, number][] = [
      ['bad JSON', '{"command": "upload_ssh", ', 400],
      ['not an object', '"upload_ssh"', 400],
      ['missing command', JSON.stringify({ keyname: 'k', content: KEY }), 400],
      ['command not a string', JSON.stringify({ command: ['upload_ssh'], keyname: 'k', content: KEY }), 400],
      ['unknown command', JSON.stringify({ command: 'format_disk' }), 400],
      ['missing keyname', JSON.stringify({ command: 'upload_ssh', content: KEY }), 400],
      ['missing content', JSON.stringify({ command: 'upload_ssh', keyname: 'k' }), 400],
      ['keyname not a string', JSON.stringify({ command: 'upload_ssh', keyname: 7, content: KEY }), 400],
      ['keyname with a slash', JSON.stringify({ command: 'upload_ssh', keyname: 'a/b', content: KEY }), 400],
      ['content not a key', JSON.stringify({ command: 'upload_ssh', keyname: 'k', content: 'hello' }), 400],
      ['args not an object', JSON.stringify({ command: 'upload_ssh', args: 'k' }), 400],
      ['huge', JSON.stringify({ command: 'upload_ssh', keyname: 'k', content: KEY, pad: 'x'.repeat(1024 * 1024) }), 413],
    ];
    for (const [name, body, status] of cases) {
      const r = await signed(body);
      assert.equal(r.status, status, `${name}: ${r.text}`);
      const out = r.json as { output: boolean; message: string };
      assert.equal(out.output, false, name);
      assert.equal(typeof out.message, 'string', name);
    }
    const unknown = await signed(JSON.stringify({ command: 'format_disk' }));
    assert.match((unknown.json as { message: string }).message, /unknown command "format_disk"/);
    assert.equal((await http('GET', `${env.legacy}/brume`)).status, 405);
    assert.equal((await keys()).length, before);
  });

  it('allocate_ip, associate_ip, disassociate_ip, list_ips and release_ip manage the user\'s ElasticIPs; another user\'s address is refused', async () => {
    await client.resource<AddressPool>(Resources.addressPools).create({
      apiVersion: 'compute.stratus.dev/v1alpha1', kind: 'AddressPool', metadata: { name: 'brume-pool' }, spec: { cidrs: ['198.51.100.0/29'] },
    });
    const run = async (body: object) => {
      const r = await signed(JSON.stringify(body));
      assert.equal(r.status, 200, r.text);
      return r.json as { output: boolean; message: string; address?: string; ips?: { address: string; instance: string | null; pool: string | null; state: string }[] };
    };
    const first = await run({ command: 'allocate_ip' });
    assert.deepEqual(first, { output: true, message: 'elastic IP 198.51.100.1 allocated', address: '198.51.100.1' });
    const claimed = await run({ command: 'allocate_ip', args: { address: '198.51.100.5', pool: 'brume-pool' } });
    assert.equal(claimed.address, '198.51.100.5');
    const taken = await run({ command: 'allocate_ip', address: '198.51.100.5' });
    assert.equal(taken.output, false);
    assert.match(taken.message, /198\.51\.100\.5 is held by ElasticIP team-a\//);

    assert.deepEqual(await run({ command: 'associate_ip', address: '198.51.100.1', instance: 'nope' }), { output: false, message: 'no instance named nope' });
    await client.resource<Instance>(Resources.instances).create({
      apiVersion: 'compute.stratus.dev/v1alpha1', kind: 'Instance', metadata: { name: 'web', namespace: 'team-a' }, spec: { provider: 'libvirt', image: 'debian-12', cpus: 1, memoryMiB: 256 },
    });
    assert.deepEqual(await run({ command: 'associate_ip', address: '198.51.100.1', instance: 'web' }), { output: true, message: 'elastic IP 198.51.100.1 associated with web' });
    const eipOf = async (address: string) => (await client.resource<ElasticIP>(Resources.elasticIPs).list('team-a')).find((e) => e.status?.address === address);
    assert.equal((await eipOf('198.51.100.1'))?.spec?.instanceRef?.name, 'web');
    assert.equal((await run({ command: 'disassociate_ip', address: '198.51.100.1' })).output, true);
    assert.equal((await eipOf('198.51.100.1'))?.spec?.instanceRef, undefined);

    const listed = await run({ command: 'list_ips' });
    assert.deepEqual(listed.ips?.map((i) => i.address).sort(), ['198.51.100.1', '198.51.100.5']);
    assert.ok(listed.ips?.every((i) => i.pool === 'brume-pool'));

    const { stdout } = await stratus(['user', 'create', 'bob', '--namespace', 'team-b', '--kubeconfig', env.serve.kubeconfig]);
    const bobSecret = /^generated secret: ([0-9a-f]{64})\n$/.exec(stdout)![1]!;
    const bobRelease = JSON.stringify({ command: 'release_ip', address: '198.51.100.1' });
    const stolen = await signed(bobRelease, 'bob', bobSecret);
    assert.deepEqual(stolen.json, { output: false, message: '198.51.100.1 is not one of your elastic IPs' });

    assert.deepEqual(await run({ command: 'release_ip', address: '198.51.100.1' }), { output: true, message: 'elastic IP 198.51.100.1 released' });
    const r = await signed(JSON.stringify({ command: 'release_ip', address: 'not-an-ip' }));
    assert.equal(r.status, 400);
    await client.resource<Instance>(Resources.instances).delete('team-a', 'web');
  });
});
