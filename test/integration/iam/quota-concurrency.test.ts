/**
 * Quotas hold under concurrent load: 64 Instance creates at once against a Quota of 10
 * Instances admit exactly 10 — on SQLite, on etcd, and across two API servers sharing one
 * etcd — because admission charges `status.used` with a compare-and-swap before each write.
 * The refusals are 403 with kube's message.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startApiServer, type ApiServer } from '../../../apiserver/server.js';
import { startEtcd, type EtcdInstance } from '../../harness/etcd.js';
import { repoRoot } from '../../harness/paths.js';
import { removeDir, tempDir } from '../../harness/process.js';
import { call, ensureNamespace, instance, instancesPath, quota, quotasPath, quotaStatus, useServer } from './helpers.js';

const crdDir = join(repoRoot(), 'crds');
const cleanups: (() => Promise<void>)[] = [];

after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

async function server(etcd?: EtcdInstance): Promise<ApiServer> {
  const dir = await tempDir('quota');
  const s = useServer(await startApiServer({ dataDir: dir, listen: '127.0.0.1:0', crdDir, ...(etcd ? { etcdServers: [etcd.endpoint] } : {}) }));
  cleanups.push(async () => {
    await s.close();
    await removeDir(dir);
  });
  return s;
}

/** 64 creates spread over `bases` at once; returns the status codes and one refusal. */
async function storm(bases: string[], ns: string): Promise<{ codes: number[]; refusal?: Record<string, unknown> }> {
  const replies = await Promise.all(Array.from({ length: 64 }, (_, i) => call(bases[i % bases.length]!, 'POST', instancesPath(ns), instance(`vm-${i}`))));
  return { codes: replies.map((r) => r.status), refusal: replies.find((r) => r.status === 403)?.body };
}

async function checkStorm(bases: string[], ns: string): Promise<void> {
  const base = bases[0]!;
  await ensureNamespace(base, ns);
  assert.equal((await call(base, 'POST', quotasPath(ns), quota('team', { instances: 10 }))).status, 201);
  const { codes, refusal } = await storm(bases, ns);
  assert.equal(codes.filter((c) => c === 201).length, 10, `admitted: ${JSON.stringify(codes)}`);
  assert.equal(codes.filter((c) => c === 403).length, 54, `refused: ${JSON.stringify(codes)}`);
  assert.equal(refusal?.reason, 'Forbidden');
  assert.equal(refusal?.code, 403);
  assert.match(String(refusal?.message), /^instances\.compute\.stratus\.dev "vm-\d+" is forbidden: exceeded quota: team, requested: instances=1, used: instances=10, limited: instances=10$/);
  const list = await call(base, 'GET', instancesPath(ns));
  assert.equal((list.body.items as unknown[]).length, 10, 'exactly 10 Instances are stored');
  const st = await quotaStatus(base, ns, 'team');
  assert.equal(st.used?.instances, 10);
  assert.equal(st.used?.cpus, 10);
  assert.equal(st.used?.memoryMiB, 1280);
}

describe('64 concurrent creates against a Quota of 10 Instances', () => {
  it('admit exactly 10 on SQLite', async () => {
    const s = await server();
    await checkStorm([s.url], 'sqlite-storm');
  });

  it('admit exactly 10 on etcd', async () => {
    const etcd = await startEtcd();
    cleanups.push(() => etcd.stop());
    const s = await server(etcd);
    await checkStorm([s.url], 'etcd-storm');
  });

  it('admit exactly 10 across two API servers sharing one etcd', async () => {
    const etcd = await startEtcd();
    cleanups.push(() => etcd.stop());
    const a = await server(etcd);
    const b = await server(etcd);
    await checkStorm([a.url, b.url], 'two-servers');
  });

  it('refuse with kube\'s message naming only the exceeded resource (cpus 14 of 16 used, 4 asked)', async () => {
    const s = await server();
    await ensureNamespace(s.url, 'team-a');
    assert.equal((await call(s.url, 'POST', quotasPath('team-a'), quota('team-a', { cpus: 16, instances: 100 }))).status, 201);
    assert.equal((await call(s.url, 'POST', instancesPath('team-a'), instance('big', 8))).status, 201);
    assert.equal((await call(s.url, 'POST', instancesPath('team-a'), instance('mid', 6))).status, 201);
    const r = await call(s.url, 'POST', instancesPath('team-a'), instance('more', 4));
    assert.equal(r.status, 403);
    assert.equal(r.body.message, 'instances.compute.stratus.dev "more" is forbidden: exceeded quota: team-a, requested: cpus=4, used: cpus=14, limited: cpus=16');
    assert.equal((await call(s.url, 'GET', `${instancesPath('team-a')}/more`)).status, 404, 'a refusal stores nothing');
    // A dry run is checked but never charged.
    const dry = await call(s.url, 'POST', `${instancesPath('team-a')}?dryRun=All`, instance('dry', 2));
    assert.equal(dry.status, 201);
    assert.equal((await quotaStatus(s.url, 'team-a', 'team-a')).used?.cpus, 14);
    // Growing an Instance is charged too: 14 + 3 > 16.
    const grow = await call(s.url, 'PATCH', `${instancesPath('team-a')}/mid`, { spec: { cpus: 9 } }, undefined, 'application/merge-patch+json');
    assert.equal(grow.status, 403);
    assert.match(String(grow.body.message), /exceeded quota: team-a, requested: cpus=3, used: cpus=14, limited: cpus=16$/);
    assert.equal((await call(s.url, 'PATCH', `${instancesPath('team-a')}/mid`, { spec: { cpus: 8 } }, undefined, 'application/merge-patch+json')).status, 200);
    assert.equal((await quotaStatus(s.url, 'team-a', 'team-a')).used?.cpus, 16);
  });
});
