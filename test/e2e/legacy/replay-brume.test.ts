/**
 * Replays the Brume document's exchange (test/fixtures/legacy/brume/) through the legacy
 * proxy: `upload_ssh` signed with x-username/x-signature, and the same keyname from another
 * user of the server refused in the document's `{output, message}` shape.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { SSHKey } from '../../../crds/types.js';
import { KubeClient } from '../../../runtime/client.js';
import { Resources } from '../../../controllers/resources.js';
import { signBody } from '../../../legacy/users.js';
import { startLegacyServe, stratus, type LegacyServe } from './helpers.js';
import { bind, loadExchange, replay } from './replay.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKqP3Cr632C2dNhhgKVcon4ldUSAeKiku2yP9O9/bDtY alice@laptop';

describe('Brume document replayed through the legacy proxy', () => {
  let env: LegacyServe;
  let client: KubeClient;
  const secrets: Record<string, string> = {};

  before(async () => {
    env = await startLegacyServe();
    client = KubeClient.fromFile(env.serve.kubeconfig);
    for (const [user, ns] of [['alice', 'team-a'], ['bob', 'team-b']] as const) {
      const { stdout } = await stratus(['user', 'create', user, '--namespace', ns, '--kubeconfig', env.serve.kubeconfig]);
      secrets[user] = /^generated secret: ([0-9a-f]{64})\n$/.exec(stdout)![1]!;
    }
  });

  after(async () => {
    client?.close();
    await env?.serve.stop();
  });

  const signed = (user: string, body: unknown): Record<string, string> => ({ 'x-username': user, 'x-signature': signBody(secrets[user]!, JSON.stringify(body)) });

  it('01 upload_ssh answers {output: true, message} and stores the key', async () => {
    const ex = bind(await loadExchange('brume', '01-upload-ssh'), { 'ssh key file content': KEY });
    await replay(env.legacy, ex, signed('alice', ex.request.body));
    const keys = await client.resource<SSHKey>(Resources.sshKeys).list();
    assert.deepEqual(keys.map((k) => [k.metadata?.namespace, k.spec.keyName, k.spec.publicKey]), [['team-a', 'keyname', KEY]]);
  });

  it('02 the same keyname from another user of the server answers {output: false, message} and stores nothing', async () => {
    const ex = bind(await loadExchange('brume', '02-upload-ssh-keyname-taken'), { 'ssh key file content': KEY });
    const res = await replay(env.legacy, ex, signed('bob', ex.request.body));
    assert.match((res.json as { message: string }).message, /keyname/);
    assert.equal((await client.resource<SSHKey>(Resources.sshKeys).list()).length, 1);
  });
});
