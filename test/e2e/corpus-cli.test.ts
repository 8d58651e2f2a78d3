/**
 * `stratus corpus VERB` through `bin/stratus` against two `stratus serve --sim-node` control
 * planes with controllers, named in one config file of the corpus document's shape: `prod`
 * by url + id + password (an AccessToken of user `ops`) + the server's CA, so TLS is
 * verified; `dev` by a kubeconfig. Covers the node verbs (list across endpoints, init,
 * infos, switchmode), the guest verbs on the simulated libvirt node (a real libvirt test
 * driver), project create/destroy, storage enlarge/trim, `-o json`, and the refusals (bad
 * token, wrong id, a shrinking trim).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import type { ComputeNode, Deployment, Instance, Project } from '../../crds/types.js';
import { KubeClient } from '../../runtime/client.js';
import { Resources } from '../../controllers/resources.js';
import { startStratusServe, type StratusServe } from '../harness/apiserver.js';
import { removeDir, tempDir } from '../harness/process.js';
import { stratusBin } from '../harness/paths.js';
import { stratus } from './legacy/helpers.js';

const execFileP = promisify(execFile);

describe('stratus corpus', () => {
  let prod: StratusServe;
  let dev: StratusServe;
  let prodAdmin: KubeClient;
  let devAdmin: KubeClient;
  let dir: string;
  let config: string;
  let token: string;

  /** `bin/stratus corpus --config CONFIG ARGS`: stdout, stderr and exit code (never rejects). */
  const corpus = async (args: string[], configFile = config): Promise<{ code: number; stdout: string; stderr: string }> => {
    try {
      const r = await execFileP(process.execPath, [stratusBin(), 'corpus', '--config', configFile, ...args], { env: { ...process.env, STRATUS_LOG_LEVEL: 'warn' } });
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  };
  const json = async <T>(args: string[]): Promise<T> => {
    const r = await corpus(['-o', 'json', ...args]);
    assert.equal(r.code, 0, `corpus ${args.join(' ')}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  };

  before(async () => {
    [prod, dev] = await Promise.all([startStratusServe({ controllers: true, args: ['--sim-node'] }), startStratusServe({ controllers: true, args: ['--sim-node'] })]);
    prodAdmin = KubeClient.fromFile(prod.kubeconfig);
    devAdmin = KubeClient.fromFile(dev.kubeconfig);
    dir = await tempDir('corpuscli');
    // user ops: a sysadmin (cluster-admin) known to prod only by an AccessToken
    const { stdout } = await stratus(['token', 'create', 'corpus cli', '--user', 'ops', '--namespace', 'corp', '--kubeconfig', prod.kubeconfig]);
    token = /^generated token: ([0-9]+-[0-9a-f]{32})\n$/.exec(stdout)![1]!;
    await prodAdmin.request({
      method: 'POST',
      path: '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
      body: { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: 'ops-admin' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' }, subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'ops' }] },
    });
    const kc = parseYaml(readFileSync(prod.kubeconfig, 'utf8')) as { clusters: { cluster: { 'certificate-authority-data': string } }[] };
    const ca = join(dir, 'prod-ca.pem');
    writeFileSync(ca, Buffer.from(kc.clusters[0]!.cluster['certificate-authority-data'], 'base64'));
    config = join(dir, 'makinastates.conf');
    writeFileSync(config, stringifyYaml({ prod: { url: prod.url, id: 'ops', password: token, ca, namespace: 'corp' }, dev: { kubeconfig: dev.kubeconfig } }));
  });

  after(async () => {
    prodAdmin?.close();
    devAdmin?.close();
    await Promise.all([prod?.stop(), dev?.stop()]);
    if (dir) await removeDir(dir);
  });

  it('lists the compute nodes of both endpoints, as a table and as JSON', async () => {
    const rows = await json<{ endpoint: string; name: string; uid: string; provider: string }[]>(['computenode_list']);
    assert.deepEqual(rows.map((r) => [r.endpoint, r.name, r.provider]).sort(), [
      ['dev', 'sim', 'libvirt'],
      ['prod', 'sim', 'libvirt'],
    ]);
    const prodSim = await prodAdmin.resource<ComputeNode>(Resources.computeNodes).get(undefined, 'sim');
    assert.equal(rows.find((r) => r.endpoint === 'prod')!.uid, prodSim?.metadata?.uid);
    const human = await corpus(['computenode_list', 'dev']);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^ENDPOINT\s+NAME\s+UID\s+PROVIDER\s+TYPE\s+MODE\s+READY\s+FREE SLOTS\s+GUESTS\ndev\s+sim\s+/);
    assert.equal(human.stdout.trim().split('\n').length, 2, 'only the dev endpoint');
  });

  it('inits a compute node on one endpoint and switches its mode by uid', async () => {
    const created = await json<{ name: string; uid: string; platformType: string }>(['computenode_init', 'dev', 'staging', 'tcp://127.0.0.1:1', 'container', '--name', 'edge']);
    assert.equal(created.name, 'edge');
    const node = await devAdmin.resource<ComputeNode>(Resources.computeNodes).get(undefined, 'edge');
    assert.equal(node?.spec.provider, 'docker');
    assert.equal(node?.spec.docker?.address, 'tcp://127.0.0.1:1');
    assert.equal(node?.metadata?.uid, created.uid);
    assert.equal(node?.metadata?.labels?.['corpus.stratus.dev/platform-type'], 'staging');
    assert.equal(await prodAdmin.resource<ComputeNode>(Resources.computeNodes).get(undefined, 'edge'), undefined, 'the other endpoint is untouched');

    const switched = await corpus(['computenode_switchmode', 'dev', created.uid, 'final']);
    assert.equal(switched.code, 0, switched.stderr);
    assert.equal(switched.stdout, 'compute node edge: mode final\n');
    assert.equal((await devAdmin.resource<ComputeNode>(Resources.computeNodes).get(undefined, 'edge'))?.spec.projectMode, 'final');
    const cleared = await json<{ projectMode: string | null }>(['computenode_switchmode', 'dev', 'edge', 'default']);
    assert.equal(cleared.projectMode, null);
    assert.equal((await devAdmin.resource<ComputeNode>(Resources.computeNodes).get(undefined, 'edge'))?.spec.projectMode, undefined);

    const bad = await corpus(['computenode_switchmode', 'dev', 'edge', 'turbo']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /operation_mode "turbo": expected one of full, editable, staging, final/);
    const badHost = await corpus(['computenode_init', 'dev', 'prod', 'somehost']);
    assert.notEqual(badHost.code, 0);
    assert.match(badHost.stderr, /host "somehost": expected a libvirt URI/);
  });

  it('creates a guest, shows it in the node infos (IP, DNS, SSH), projects on it, and deletes it', async () => {
    const made = await corpus(['guest_create', 'prod', 'web1', '--node', 'sim', '--memory', '128']);
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stderr, /guest web1: running/, 'progress on stderr');
    assert.match(made.stdout, /^web1 \(uid [0-9a-f-]+, running, [0-9.]+\)\n$/);
    const inst = await prodAdmin.resource<Instance>(Resources.instances).get('corp', 'web1');
    assert.equal(inst?.spec.nodeName, 'sim');

    const infos = await json<{ name: string; freeGuestSlots: number; guests: { name: string; ipAddress: string; dnsNames: string[]; ssh: string }[] }>(['computenode_infos', 'prod', 'sim']);
    assert.equal(infos.name, 'sim');
    assert.equal(typeof infos.freeGuestSlots, 'number');
    const g = infos.guests.find((x) => x.name === 'web1');
    assert.equal(g?.ipAddress, inst?.status?.ipAddress);
    assert.deepEqual(g?.dnsNames, inst?.status?.dnsNames ?? []);
    assert.match(g?.ssh ?? '', new RegExp(`^ssh [a-z]+@${inst!.status!.ipAddress!.replace(/\./g, '\\.')}$`));
    const human = await corpus(['computenode_infos', 'prod', 'sim']);
    assert.match(human.stdout, /free guest slots: \d+/);
    assert.match(human.stdout, /GUEST\s+NAMESPACE\s+STATE\s+IP\s+DNS NAMES\s+SSH\nweb1\s+corp\s+running\s+/);

    const project = await json<{ metadata: { uid: string }; status: { pushURL: string } }>(['project_create', 'prod', 'shop']);
    assert.match(project.status.pushURL, /\/projects\/corp\/shop\/project\.git$/);
    const p = await prodAdmin.resource<Project>(Resources.projects).get('corp', 'shop');
    assert.equal(p?.metadata?.uid, project.metadata.uid);
    // a Deployment of the project, as push would make it, goes with the project
    const pushed = await corpus(['push', 'prod', 'web1', 'shop', '--no-wait']);
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.deepEqual((await prodAdmin.resource<Project>(Resources.projects).get('corp', 'shop'))?.spec.guests, ['web1']);
    assert.equal((await prodAdmin.resource<Deployment>(Resources.deployments).list('corp')).length >= 1, true);

    const destroyed = await json<{ destroyed: string; guests: string[] }>(['project_destroy', 'prod', 'sim', 'shop']);
    assert.deepEqual(destroyed, { destroyed: 'shop', node: 'sim', guests: ['web1'] });
    assert.equal(await prodAdmin.resource<Project>(Resources.projects).get('corp', 'shop'), undefined);
    assert.deepEqual(await prodAdmin.resource<Deployment>(Resources.deployments).list('corp', { labelSelector: 'apps.stratus.dev/project=shop' }), []);

    // Project storage: guest_create gave the VM a 5 GiB "project" disk. The simulated node's
    // test driver cannot resize volumes, so enlarge asks and then reports the node's refusal;
    // trim asks for a smaller disk, which the API server refuses (a disk only grows).
    assert.deepEqual(inst?.spec.disks, [{ name: 'project', sizeGiB: 5 }]);
    const enlarged = await corpus(['enlarge', 'prod', 'sim', 'web1', '2G']);
    assert.notEqual(enlarged.code, 0);
    assert.match(enlarged.stderr, /disk project 5 GiB → 7 GiB/);
    assert.match(enlarged.stderr, /disk project was not grown to 7 GiB: DiskResizeUnsupported: this libvirt driver cannot grow disk "project"/);
    assert.equal((await prodAdmin.resource<Instance>(Resources.instances).get('corp', 'web1'))?.spec.disks?.[0]?.sizeGiB, 7);
    const trimmed = await corpus(['trim', 'prod', 'sim', 'web1', '3']);
    assert.notEqual(trimmed.code, 0);
    assert.match(trimmed.stderr, /spec\.disks\[0\]\.sizeGiB: Forbidden: disk project may not shrink from 7 to 4 GiB/);
    const tooMuch = await corpus(['trim', 'prod', 'sim', 'web1', '7G']);
    assert.match(tooMuch.stderr, /disk project is 7 GiB; it cannot lose 7 GiB/);

    const deleted = await corpus(['guest_delete', 'prod', 'web1']);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.equal(deleted.stdout, 'guest web1 deleted\n');
    assert.equal(await prodAdmin.resource<Instance>(Resources.instances).get('corp', 'web1'), undefined);
    const again = await corpus(['guest_delete', 'prod', 'web1']);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /no guest "web1" in namespace corp/);
  });

  it('refuses a bad token, a token of another user, an unknown endpoint and the storage verbs', async () => {
    const wrong = join(dir, 'wrong.conf');
    const ca = join(dir, 'prod-ca.pem');
    writeFileSync(wrong, stringifyYaml({ prod: { url: prod.url, id: 'ops', password: `${token.split('-')[0]}-${'0'.repeat(32)}`, ca }, other: { url: prod.url, id: 'alice', password: token, ca }, noca: { url: prod.url, id: 'ops', password: token } }));
    const badToken = await corpus(['computenode_list', 'prod'], wrong);
    assert.notEqual(badToken.code, 0);
    assert.match(badToken.stderr, /Unauthorized|401/);
    const otherUser = await corpus(['computenode_list', 'other'], wrong);
    assert.notEqual(otherUser.code, 0);
    assert.match(otherUser.stderr, /the password \(token\) belongs to user ops, not alice/);
    const noCa = await corpus(['computenode_list', 'noca'], wrong);
    assert.notEqual(noCa.code, 0, 'without the CA, TLS verification fails');
    assert.match(noCa.stderr, /certificate/);
    const unknown = await corpus(['computenode_infos', 'staging', 'sim']);
    assert.match(unknown.stderr, /no endpoint "staging" in the config file \(known: prod, dev\)/);
    const badSize = await corpus(['enlarge', 'prod', 'sim', 'web1', '1.5T']);
    assert.match(badSize.stderr, /size "1\.5T": expected a whole number of GiB, e\.g\. 5G/);
    const noGuest = await corpus(['enlarge', 'prod', 'sim', 'nosuch', '5G']);
    assert.match(noGuest.stderr, /no guest "nosuch" in namespace corp/);
  });
});
