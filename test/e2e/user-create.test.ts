/**
 * `stratus user create NAME --group G... --kubeconfig-out FILE` through `bin/stratus`: the
 * cluster-scoped User, its Group memberships (written on the Groups), the signing secret
 * printed once, and a kubeconfig carrying a fresh token of the user's that the real kubectl
 * uses as it is (server and TLS settings copied from the admin kubeconfig).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { Group, User } from '../../crds/types.js';
import { KubeClient } from '../../runtime/client.js';
import { Resources } from '../../controllers/resources.js';
import { TokenAuthenticator } from '../../legacy/tokens.js';
import { groupsOf } from '../../apiserver/auth/membership.js';
import { clientGroupSource } from '../../legacy/membership.js';
import { kubectl, startStratusServe, type StratusServe } from '../harness/apiserver.js';
import { removeDir, tempDir } from '../harness/process.js';
import { stratus } from './legacy/helpers.js';

describe('stratus user create --kubeconfig-out', () => {
  let serve: StratusServe;
  let client: KubeClient;
  let dir: string;

  before(async () => {
    serve = await startStratusServe();
    client = KubeClient.fromFile(serve.kubeconfig);
    dir = await tempDir('usercreate');
  });

  after(async () => {
    client?.close();
    await serve?.stop();
    if (dir) await removeDir(dir);
  });

  it('creates the User in its groups and writes a kubeconfig with its token that kubectl uses', async () => {
    const file = join(dir, 'carol.kubeconfig');
    const { stdout } = await stratus(['user', 'create', 'carol', '--namespace', 'team-c', '--group', 'devs', '--group', 'ops', '--kubeconfig', serve.kubeconfig, '--kubeconfig-out', file]);
    assert.match(stdout, /^generated secret: [0-9a-f]{64}\nwrote kubeconfig .*carol\.kubeconfig \(user carol, token [0-9]+\)\n$/);
    assert.equal(statSync(file).mode & 0o777, 0o600, 'the kubeconfig holds a secret: mode 0600');

    const user = await client.resource<User>(Resources.users).get(undefined, 'carol');
    assert.equal(user?.spec.namespace, 'team-c');
    const groups = await client.resource<Group>(Resources.groups).list();
    assert.deepEqual(groups.map((g) => [g.metadata?.name, g.spec?.members]).sort(), [
      ['devs', ['carol']],
      ['ops', ['carol']],
    ]);
    assert.deepEqual(await groupsOf('carol', clientGroupSource(client)), ['devs', 'ops']);

    const config = parseYaml(readFileSync(file, 'utf8')) as { clusters: { cluster: { server: string } }[]; users: { name: string; user: { token: string } }[]; contexts: { name: string; context: { namespace: string; user: string } }[]; 'current-context': string };
    assert.equal(config.clusters[0]!.cluster.server, serve.url);
    assert.equal(config['current-context'], 'carol@stratus');
    assert.deepEqual(config.contexts[0]!.context, { cluster: 'stratus', user: 'carol', namespace: 'team-c' });
    const token = config.users[0]!.user.token;
    const who = await new TokenAuthenticator(client).authenticate(`token ${token}`);
    assert.deepEqual(who && { user: who.user, namespace: who.namespace }, { user: 'carol', namespace: 'team-c' });

    const cache = join(dir, 'kcache');
    const created = await kubectl(file, cache, ['create', '-f', '-'], JSON.stringify({ apiVersion: 'compute.stratus.dev/v1alpha1', kind: 'Instance', metadata: { name: 'mine' }, spec: { provider: 'docker', image: 'busybox' } }));
    assert.equal(created.code, 0, created.stderr);
    const got = await kubectl(file, cache, ['get', 'instances.compute.stratus.dev', '-o', 'name']);
    assert.equal(got.code, 0, got.stderr);
    assert.equal(got.stdout.trim(), 'instance.compute.stratus.dev/mine', "kubectl works in the user's namespace from the kubeconfig");
  });

  it('adds a second user to an existing group without losing the first, and refuses a taken name', async () => {
    await stratus(['user', 'create', 'dave', '--namespace', 'team-c', '--group', 'devs', '--kubeconfig', serve.kubeconfig]);
    const devs = await client.resource<Group>(Resources.groups).get(undefined, 'devs');
    assert.deepEqual(devs?.spec?.members, ['carol', 'dave']);
    await assert.rejects(stratus(['user', 'create', 'dave', '--kubeconfig', serve.kubeconfig]), /user dave already exists/);
    await assert.rejects(stratus(['user', 'create', 'erin', '--group', 'Not_A_Label', '--kubeconfig', serve.kubeconfig]), /group name "Not_A_Label" must be a DNS-1123 label/);
    assert.equal(await client.resource<User>(Resources.users).get(undefined, 'erin'), undefined, 'a refused create leaves nothing');
  });
});
