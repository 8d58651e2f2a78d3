/**
 * The quota controller keeps `Quota.status.used` exact after every change — create, resize,
 * delete, and a create whose write failed after admission charged it — and group quotas
 * bound what a Group's members create together, wherever they create it. Runs the identity
 * controllers (quota, user, group) in-process against an in-process API server; identities
 * are set with impersonation headers (the seam the legacy proxy uses).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startApiServer, type ApiServer } from '../../../apiserver/server.js';
import { KubeClient } from '../../../runtime/client.js';
import { Manager } from '../../../runtime/manager.js';
import { registerIdentityControllers } from '../../../controllers/index.js';
import { repoRoot } from '../../harness/paths.js';
import { removeDir, tempDir, waitFor } from '../../harness/process.js';
import { call, ensureNamespace, groupsPath, instance, instancesPath, quota, quotasPath, quotaStatus, useServer, type QuotaStatusView } from './helpers.js';

let server: ApiServer;
let dir: string;
let mgr: Manager;
const merge = 'application/merge-patch+json';

before(async () => {
  dir = await tempDir('quota-status');
  server = useServer(await startApiServer({ dataDir: dir, listen: '127.0.0.1:0', crdDir: join(repoRoot(), 'crds') }));
  mgr = new Manager({ client: KubeClient.fromFile(server.kubeconfigPath) });
  registerIdentityControllers(mgr);
  await mgr.start();
  for (const ns of ['team-a', 'team-b', 'shared']) await ensureNamespace(server.url, ns);
});

after(async () => {
  await mgr?.stop();
  await server?.close();
  if (dir) await removeDir(dir);
});

/** Waits until the quota's status equals `used` with nothing pending. */
async function settles(ns: string, name: string, used: Record<string, number>): Promise<void> {
  let last: QuotaStatusView = {};
  await waitFor(
    `quota ${ns}/${name} used ${JSON.stringify(used)}`,
    async () => {
      last = await quotaStatus(server.url, ns, name);
      return !last.pending && Object.entries(used).every(([k, v]) => last.used?.[k] === v);
    },
    20_000,
  ).catch((err: unknown) => {
    throw new Error(`${err instanceof Error ? err.message : String(err)}; last status ${JSON.stringify(last)}`);
  });
}

describe('namespace quota status', () => {
  it('is exact after creates, a resize, a delete, and a create whose write failed', async () => {
    assert.equal((await call(server.url, 'POST', quotasPath('team-a'), quota('compute', { instances: 5, cpus: 20 }))).status, 201);
    assert.equal((await call(server.url, 'POST', instancesPath('team-a'), instance('a1', 2, 256, [10]))).status, 201);
    assert.equal((await call(server.url, 'POST', instancesPath('team-a'), instance('a2', 1, 128))).status, 201);
    await settles('team-a', 'compute', { instances: 2, cpus: 3, memoryMiB: 384, diskGiB: 10, elasticIPs: 0 });

    assert.equal((await call(server.url, 'PATCH', `${instancesPath('team-a')}/a2`, { spec: { cpus: 4 } }, undefined, merge)).status, 200);
    await settles('team-a', 'compute', { instances: 2, cpus: 6 });

    // Shrinking is not charged by admission; the controller releases it.
    assert.equal((await call(server.url, 'PATCH', `${instancesPath('team-a')}/a1`, { spec: { cpus: 1 } }, undefined, merge)).status, 200);
    await settles('team-a', 'compute', { instances: 2, cpus: 5 });

    assert.equal((await call(server.url, 'DELETE', `${instancesPath('team-a')}/a1`)).status, 200);
    await settles('team-a', 'compute', { instances: 1, cpus: 4, diskGiB: 0 });

    // Admission charges a2 again, then the write fails (the name exists): the over-charge is released.
    const dup = await call(server.url, 'POST', instancesPath('team-a'), instance('a2', 3));
    assert.equal(dup.status, 409);
    await settles('team-a', 'compute', { instances: 1, cpus: 4 });

    // What was released can be used again: 4 more Instances fit, a fifth more does not.
    for (const n of ['b1', 'b2', 'b3', 'b4']) assert.equal((await call(server.url, 'POST', instancesPath('team-a'), instance(n))).status, 201);
    assert.equal((await call(server.url, 'POST', instancesPath('team-a'), instance('b5'))).status, 403);
    await settles('team-a', 'compute', { instances: 5, cpus: 8 });
  });

  it('counts ElasticIPs', async () => {
    assert.equal((await call(server.url, 'POST', quotasPath('team-b'), quota('ips', { elasticIPs: 1 }))).status, 201);
    const eip = (name: string): unknown => ({ apiVersion: 'compute.stratus.dev/v1alpha1', kind: 'ElasticIP', metadata: { name }, spec: {} });
    const first = await call(server.url, 'POST', '/apis/compute.stratus.dev/v1alpha1/namespaces/team-b/elasticips', eip('ip1'));
    assert.equal(first.status, 201, JSON.stringify(first.body));
    const second = await call(server.url, 'POST', '/apis/compute.stratus.dev/v1alpha1/namespaces/team-b/elasticips', eip('ip2'));
    assert.equal(second.status, 403);
    assert.match(String(second.body.message), /exceeded quota: ips, requested: elasticIPs=1, used: elasticIPs=1, limited: elasticIPs=1$/);
    await settles('team-b', 'ips', { elasticIPs: 1 });
  });
});

describe('group quota', () => {
  it('bounds what the members create together in any namespace, and only them', async () => {
    assert.equal((await call(server.url, 'POST', quotasPath('shared'), quota('developers', { instances: 2 }))).status, 201);
    const group = { apiVersion: 'iam.stratus.dev/v1alpha1', kind: 'Group', metadata: { name: 'developers' }, spec: { members: ['alice', 'bob'], quotaRef: { namespace: 'shared', name: 'developers' } } };
    assert.equal((await call(server.url, 'POST', groupsPath, group)).status, 201);
    const alice = { user: 'alice', groups: ['developers'] };
    const bob = { user: 'bob', groups: ['developers'] };
    const carol = { user: 'carol', groups: ['testers'] };
    for (const ns of ['g1', 'g2']) await ensureNamespace(server.url, ns);
    // RBAC is enforced: the three act as tenants wherever they create (quota is the subject here).
    const tenants = {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'quota-test-tenants' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'stratus:tenant' },
      subjects: ['alice', 'bob', 'carol'].map((name) => ({ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name })),
    };
    assert.equal((await call(server.url, 'POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', tenants)).status, 201);

    const made = await call(server.url, 'POST', instancesPath('g1'), instance('alice-1'), alice);
    assert.equal(made.status, 201);
    const annotations = (made.body.metadata as { annotations?: Record<string, string> }).annotations;
    assert.equal(annotations?.['iam.stratus.dev/charged-quotas'], 'shared/developers');
    assert.equal((await call(server.url, 'POST', instancesPath('g2'), instance('bob-1'), bob)).status, 201);
    const third = await call(server.url, 'POST', instancesPath('g1'), instance('alice-2'), alice);
    assert.equal(third.status, 403);
    assert.match(String(third.body.message), /exceeded quota: developers, requested: instances=1, used: instances=2, limited: instances=2$/);
    // Not a member: not bounded by the group's quota.
    assert.equal((await call(server.url, 'POST', instancesPath('g1'), instance('carol-1'), carol)).status, 201);
    // A group quota does not bound its own namespace.
    assert.equal((await call(server.url, 'POST', instancesPath('shared'), instance('ops-1'), carol)).status, 201);
    await settles('shared', 'developers', { instances: 2 });

    // The stamp cannot be removed by an update.
    const strip = await call(server.url, 'PATCH', `${instancesPath('g1')}/alice-1`, { metadata: { annotations: { 'iam.stratus.dev/charged-quotas': null } } }, alice, merge);
    assert.equal(strip.status, 200);
    assert.equal((strip.body.metadata as { annotations?: Record<string, string> }).annotations?.['iam.stratus.dev/charged-quotas'], 'shared/developers');

    // A member's delete frees room for the group.
    assert.equal((await call(server.url, 'DELETE', `${instancesPath('g2')}/bob-1`, undefined, bob)).status, 200);
    await settles('shared', 'developers', { instances: 1 });
    assert.equal((await call(server.url, 'POST', instancesPath('g2'), instance('bob-2'), bob)).status, 201);
  });

  it('User and Group status: members counted, groups mirrored, a missing quota is Ready=False', async () => {
    const user = (name: string): unknown => ({ apiVersion: 'iam.stratus.dev/v1alpha1', kind: 'User', metadata: { name }, spec: { namespace: 'team-a' } });
    assert.equal((await call(server.url, 'POST', '/apis/iam.stratus.dev/v1alpha1/users', user('alice'))).status, 201);
    await waitFor('developers memberCount 1', async () => {
      const g = await call(server.url, 'GET', `${groupsPath}/developers`);
      const st = g.body.status as { memberCount?: number; conditions?: { type: string; status: string; message?: string }[] } | undefined;
      return st?.memberCount === 1 && st.conditions?.find((c) => c.type === 'Ready')?.message === 'not Users (yet): bob';
    }, 20_000);
    await waitFor('alice status.groups', async () => {
      const u = await call(server.url, 'GET', '/apis/iam.stratus.dev/v1alpha1/users/alice');
      const st = u.body.status as { groups?: string[]; conditions?: { type: string; status: string }[] } | undefined;
      return JSON.stringify(st?.groups) === '["developers"]' && st?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
    }, 20_000);
    const lost = { apiVersion: 'iam.stratus.dev/v1alpha1', kind: 'Group', metadata: { name: 'lost' }, spec: { members: ['alice'], quotaRef: { namespace: 'shared', name: 'nowhere' } } };
    assert.equal((await call(server.url, 'POST', groupsPath, lost)).status, 201);
    await waitFor('lost Ready=False QuotaNotFound', async () => {
      const g = await call(server.url, 'GET', `${groupsPath}/lost`);
      const ready = (g.body.status as { conditions?: { type: string; status: string; reason?: string }[] } | undefined)?.conditions?.find((c) => c.type === 'Ready');
      return ready?.status === 'False' && ready.reason === 'QuotaNotFound';
    }, 20_000);
    await waitFor('alice in two groups', async () => {
      const u = await call(server.url, 'GET', '/apis/iam.stratus.dev/v1alpha1/users/alice');
      return JSON.stringify((u.body.status as { groups?: string[] } | undefined)?.groups) === '["developers","lost"]';
    }, 20_000);
  });
});
