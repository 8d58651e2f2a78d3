/**
 * LDAP login end to end: a real `slapd` (own config and database, loopback port),
 * `bin/stratus serve --ldap-url --ldap-base-dn`, and `bin/stratus login --username U`
 * reading the password from stdin. A right password yields a kubeconfig whose token is a
 * short-lived AccessToken acting as U, that the real kubectl uses; LDAP groups become Group
 * memberships (and leaving an LDAP group leaves the Group at the next login); a wrong
 * password, an unknown user or an LDAP injection attempt is refused alike; attempts are
 * rate-limited; the password never appears in the server's output.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { AccessToken, Group, User } from '../../crds/types.js';
import { KubeClient } from '../../runtime/client.js';
import { Resources } from '../../controllers/resources.js';
import { TokenAuthenticator } from '../../legacy/tokens.js';
import { kubectl, startStratusServe, type StratusServe } from '../harness/apiserver.js';
import { startSlapd, type Slapd } from '../harness/slapd.js';
import { stratusBin } from '../harness/paths.js';
import { execFileP, removeDir, requireBinary, tempDir } from '../harness/process.js';
import { kubeFetch } from '../harness/kubefetch.js';

const ALICE_PASSWORD = 'correct horse battery staple';

/** `stratus login ARGS` with `stdin` as the password; resolves with exit code and output. */
function login(args: string[], stdin: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [stratusBin(), 'login', ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, STRATUS_LOG_LEVEL: 'warn' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

describe('stratus login against a real slapd', () => {
  let ldap: Slapd;
  let serve: StratusServe;
  let client: KubeClient;
  let dir: string;
  let output = '';

  before(async () => {
    ldap = await startSlapd(
      [
        { uid: 'alice', password: ALICE_PASSWORD },
        { uid: 'bob', password: 'bobs-password' },
      ],
      [
        { cn: 'Developers', members: ['alice', 'bob'] },
        { cn: 'ops', members: ['alice'], posix: true },
        { cn: 'Not A Label', members: ['alice'] },
      ],
    );
    serve = await startStratusServe({
      args: ['--ldap-url', ldap.url, '--ldap-base-dn', ldap.baseDN, '--ldap-user-namespace', 'corpus', '--login-token-ttl', '600'],
      env: { STRATUS_LOG_LEVEL: 'debug' },
      onOutput: (chunk) => (output += chunk),
    });
    client = KubeClient.fromFile(serve.kubeconfig);
    dir = await tempDir('login');
  });

  const writeTemp = async (name: string, text: string): Promise<string> => {
    const path = join(dir, name);
    await writeFile(path, text);
    return path;
  };

  after(async () => {
    client?.close();
    await serve?.stop();
    await ldap?.stop();
    if (dir) await removeDir(dir);
  });

  it('exchanges the right password for a kubeconfig whose short-lived token acts as the user, used by kubectl', async () => {
    const file = join(dir, 'alice.kubeconfig');
    const r = await login(['--username', 'alice', '--server', serve.url, '--certificate-authority', join(serve.dataDir, 'pki', 'ca.crt'), '--kubeconfig', file], `${ALICE_PASSWORD}\n`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^logged in as alice \(groups: developers, ops\); token valid until \d{4}-\d\d-\d\dT[\d:]+Z; kubeconfig /);
    const config = parseYaml(readFileSync(file, 'utf8')) as { 'current-context': string; users: { name: string; user: { token: string } }[]; contexts: { context: { namespace: string } }[] };
    assert.equal(config['current-context'], 'alice@stratus');
    const token = config.users.find((u) => u.name === 'alice')!.user.token;
    assert.match(token, /^[0-9]+-[0-9a-f]{32}$/);
    assert.equal(config.contexts[0]!.context.namespace, 'corpus');

    // The token verifies as alice's, in her namespace, and expires.
    const who = await new TokenAuthenticator(client).authenticate(`token ${token}`);
    assert.deepEqual(who && { user: who.user, namespace: who.namespace }, { user: 'alice', namespace: 'corpus' });
    const stored = (await client.resource<AccessToken>(Resources.accessTokens).list('corpus')).find((t) => t.spec.tokenID === token.split('-')[0]);
    const ttl = Date.parse(stored!.spec.expiresAt!) - Date.now();
    assert.ok(ttl > 0 && ttl <= 600_000, `expires in ${ttl} ms`);

    // The real kubectl talks to the server with it.
    const k = await kubectl(file, join(dir, 'kcache'), ['get', 'instances.compute.stratus.dev', '-o', 'name']);
    assert.equal(k.code, 0, k.stderr);

    // The User exists (cluster-scoped, from LDAP) with its login time; LDAP groups are Group memberships.
    const user = await client.resource<User>(Resources.users).get(undefined, 'alice');
    assert.equal(user?.spec.namespace, 'corpus');
    assert.ok(user?.status?.lastLoginTime, 'lastLoginTime is set');
    const groups = await client.resource<Group>(Resources.groups).list();
    assert.deepEqual(groups.filter((g) => g.spec?.members?.includes('alice')).map((g) => g.metadata?.name).sort(), ['developers', 'ops']);
  });

  it('leaving an LDAP group leaves the Group at the next login; other members and groups not from LDAP stay', async () => {
    assert.equal((await login(['--username', 'bob', '--server', serve.url, '--certificate-authority', join(serve.dataDir, 'pki', 'ca.crt'), '--kubeconfig', join(dir, 'bob.kubeconfig')], 'bobs-password\n')).code, 0);
    const groups = client.resource<Group>(Resources.groups);
    await groups.create({ apiVersion: 'iam.stratus.dev/v1alpha1', kind: 'Group', metadata: { name: 'local' }, spec: { members: ['alice'] } });
    const ldif = `dn: cn=Developers,ou=groups,${ldap.baseDN}\nchangetype: modify\ndelete: member\nmember: uid=alice,ou=people,${ldap.baseDN}\n`;
    await execFileP(requireBinary('ldapmodify'), ['-x', '-H', ldap.url, '-D', `cn=admin,${ldap.baseDN}`, '-w', 'admin-secret', '-f', await writeTemp('leave.ldif', ldif)]);
    const again = await login(['--username', 'alice', '--kubeconfig', join(dir, 'alice.kubeconfig')], `${ALICE_PASSWORD}\n`);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^logged in as alice \(groups: ops\)/);
    assert.deepEqual((await groups.get(undefined, 'developers'))!.spec?.members, ['bob']);
    assert.deepEqual((await groups.get(undefined, 'local'))!.spec?.members, ['alice']);
    assert.deepEqual((await groups.get(undefined, 'ops'))!.spec?.members, ['alice']);
  });

  it('refuses a wrong password, an unknown user and a filter injection alike, and never logs the password', async () => {
    const file = join(dir, 'nobody.kubeconfig');
    for (const [user, pw] of [
      ['alice', 'wrong'],
      ['mallory', 'x'],
      ['alice', ' '],
    ] as const) {
      const r = await login(['--username', user, '--server', serve.url, '--certificate-authority', join(serve.dataDir, 'pki', 'ca.crt'), '--kubeconfig', file], `${pw}\n`);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /login refused \(401\): invalid user name or password/);
    }
    const injection = await login(['--username', '*', '--server', serve.url, '--certificate-authority', join(serve.dataDir, 'pki', 'ca.crt'), '--kubeconfig', file], 'x\n');
    assert.equal(injection.code, 1);
    assert.match(injection.stderr, /login refused \(400\): username must be a DNS-1123 label/);
    assert.ok(!output.includes(ALICE_PASSWORD) && !output.includes('bobs-password'), 'no password in the server output');
  });

  it('rate-limits attempts per client address with 429 and Retry-After', async () => {
    // No credentials (what a user about to log in has), trusting the server's CA.
    const anonymousFetch = kubeFetch(serve.kubeconfig, { anonymous: true });
    let last: Response | undefined;
    for (let i = 0; i < 12; i++) {
      last = await anonymousFetch(`${serve.url}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'alice', password: 'guess' }) });
      await last.arrayBuffer();
    }
    assert.equal(last?.status, 429);
    assert.ok(Number(last?.headers.get('retry-after')) >= 1);
  });
});
