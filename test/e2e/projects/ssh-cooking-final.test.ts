/**
 * Projects end to end over SSH: `stratus serve` with its controllers releases onto a real
 * OpenSSH server on loopback (the VM stand-in, declared as `spec.sshGuests` with the key and
 * known_hosts line from a Secret). The guests' project root is a temp dir
 * (`STRATUS_GUEST_ROOT`), the source poll is short.
 *
 * A `cooking` (staging) Project deploys v1 in place, then a new commit on its ref deploys by
 * polling alone; its kept artifact is deployed by a `final` Project without build; an
 * `editable` Project runs in place and skips archive, release-sync, reconfigure, bundle and
 * rollback.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readlink } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Deployment, Project } from '../../../crds/types.js';
import { KubeClient, CoreResources, type KubeObject } from '../../../runtime/client.js';
import { Resources } from '../../../controllers/resources.js';
import { startStratusServe, type StratusServe } from '../../harness/apiserver.js';
import { startGitRemote, type GitRemote } from '../../harness/gitrepo.js';
import { startSshd, type Sshd } from '../../harness/sshd.js';
import { removeDir, tempDir, waitFor } from '../../harness/process.js';

let serve: StratusServe | undefined;
let sshd: Sshd | undefined;
let remote: GitRemote | undefined;
let dir = '';
let client: KubeClient;
let guestRoot = '';

before(async () => {
  dir = await tempDir('projssh');
  guestRoot = join(dir, 'srv');
  [sshd, remote] = await Promise.all([startSshd(), startGitRemote()]);
  serve = await startStratusServe({
    controllers: true,
    env: { STRATUS_PROJECTS_DIR: join(dir, 'control'), STRATUS_GUEST_ROOT: guestRoot, STRATUS_PROJECT_POLL_MS: '500' },
  });
  client = KubeClient.fromFile(serve.kubeconfig);
  await client.resource<KubeObject & { stringData: Record<string, string> }>(CoreResources.secrets).create({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'vm-key', namespace: 'default' },
    stringData: { 'ssh-privatekey': sshd.privateKey, known_hosts: sshd.knownHosts },
  });
});

after(async () => {
  client?.close();
  await serve?.stop();
  await sshd?.stop();
  await remote?.remove();
  if (dir) await removeDir(dir);
});

const app = (v: string): Record<string, string> => ({
  'index.html': `${v}\n`,
  '.stratus/configure': `#!/bin/sh\necho "configure ${v} for $STRATUS_ENVIRONMENT" >> "$STRATUS_DATA_DIR/log"\n`,
  '.stratus/build': `#!/bin/sh\necho "build ${v}" >> "$STRATUS_DATA_DIR/log"\necho "built ${v}" > built.txt\n`,
  '.stratus/reconfigure': `#!/bin/sh\necho "reconfigure ${v}" >> "$STRATUS_DATA_DIR/log"\n`,
  '.stratus/activate': `#!/bin/sh\necho "activate ${v}" >> "$STRATUS_DATA_DIR/log"\n`,
  '.stratus/bundle': `#!/bin/sh\necho "bundle ${v}" >> "$STRATUS_DATA_DIR/log"\n`,
});

function project(name: string, mode: 'cooking' | 'final' | 'editable', source: Project['spec']['source']): Project {
  return {
    apiVersion: 'apps.stratus.dev/v1alpha1',
    kind: 'Project',
    metadata: { name, namespace: 'default' },
    spec: {
      source,
      mode,
      environment: 'prod',
      sshGuests: [{ name: 'vm', host: sshd!.host, port: sshd!.port, user: sshd!.user }],
      sshSecretRef: { name: 'vm-key' },
      healthCheck: { command: ['test', '-f', 'index.html'], timeoutSeconds: 5 },
    },
  };
}

async function finishedFor(projectName: string, match: (d: Deployment) => boolean): Promise<Deployment> {
  const deps = client.resource<Deployment>(Resources.deployments);
  return waitFor(`a finished Deployment of ${projectName}`, async () => {
    const d = (await deps.list('default')).find((x) => x.spec.project === projectName && match(x));
    return d?.status?.phase && ['Succeeded', 'Failed', 'RolledBack'].includes(d.status.phase) ? d : undefined;
  }, 90_000, 200);
}

const states = (d: Deployment): Record<string, string> => Object.fromEntries((d.status?.stages ?? []).map((s) => [s.name, s.state]));

test('cooking over SSH, a new commit deploys by polling, the cooked artifact deploys in a final Project', async () => {
  const projects = client.resource<Project>(Resources.projects);
  const c1 = await remote!.commit(app('v1'), 'v1');
  await projects.create(project('cook', 'cooking', { git: { url: remote!.url, ref: 'main' } }));
  const d1 = await finishedFor('cook', (d) => d.spec.commit === c1);
  assert.equal(d1.status?.phase, 'Succeeded', JSON.stringify(d1.status, null, 1));
  assert.deepEqual(d1.status?.guests, ['vm']);
  assert.equal(await readFile(join(guestRoot, 'cook/current/index.html'), 'utf8'), 'v1\n');

  // a commit on the followed ref is found by the poll and deployed
  const c2 = await remote!.commit(app('v2'), 'v2');
  const d2 = await finishedFor('cook', (d) => d.spec.commit === c2);
  assert.equal(d2.status?.phase, 'Succeeded');
  // cooking is the document's staging mode: it runs in place and cooks a deliverable
  assert.equal(await readlink(join(guestRoot, 'cook/current')), 'project');
  assert.ok(existsSync(join(guestRoot, `cook/releases/deployed/${d2.status?.releaseID}.tar.gz`)));
  for (const s of ['archive', 'release-sync']) assert.equal(states(d2)[s], 'Skipped', s);
  const artifact = d2.status?.artifact ?? '';
  assert.match(artifact, /^file:\/\/.+\.tar\.gz$/);
  assert.ok(!artifact.startsWith(`file://${guestRoot}`), 'the artifact is kept by the control plane, not on the guest');

  // final: the cooked artifact, no build (the document's final list skips build only)
  await projects.create(project('shop', 'final', { artifact }));
  const f = await finishedFor('shop', () => true);
  assert.equal(f.status?.phase, 'Succeeded', JSON.stringify(f.status, null, 1));
  assert.equal(states(f).configure, 'Succeeded');
  assert.equal(states(f).build, 'Skipped');
  assert.equal(await readFile(join(guestRoot, 'shop/current/index.html'), 'utf8'), 'v2\n');
  assert.equal(await readFile(join(guestRoot, 'shop/current/built.txt'), 'utf8'), 'built v2\n', 'what cooking built is what final runs');
  const log = await readFile(join(guestRoot, 'shop/data/log'), 'utf8');
  assert.doesNotMatch(log, /^build /m);
  assert.match(log, /configure v2 for prod/);
  assert.match(log, /reconfigure v2/);
  const shop = await projects.get('default', 'shop');
  assert.equal(shop?.status?.lastArtifact, artifact);
  await waitFor('shop Ready', async () => (await projects.get('default', 'shop'))?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'), 10_000);
});

test('editable over SSH runs in place and skips archive, release-sync, reconfigure, bundle and rollback', async () => {
  const projects = client.resource<Project>(Resources.projects);
  // the GitOps pillar: a Secret whose keys become pillar/'s files
  await client.resource<KubeObject & { stringData: Record<string, string> }>(CoreResources.secrets).create({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'dev-pillar', namespace: 'default' },
    stringData: { 'init.sls': 'db_password: s3cr3t-from-a-secret\n' },
  });
  await projects.create({ ...project('dev', 'editable', { git: { url: remote!.url, ref: 'main' } }), spec: { ...project('dev', 'editable', { git: { url: remote!.url, ref: 'main' } }).spec, pillarSecretRef: { name: 'dev-pillar' } } });
  const d = await finishedFor('dev', () => true);
  assert.equal(d.status?.phase, 'Succeeded', JSON.stringify(d.status, null, 1));
  const st = states(d);
  for (const s of ['archive', 'release-sync', 'reconfigure', 'bundle', 'rollback']) assert.equal(st[s], 'Skipped', s);
  for (const s of ['configure', 'build', 'activate']) assert.equal(st[s], 'Succeeded', s);
  assert.equal(await readlink(join(guestRoot, 'dev/current')), 'project');
  assert.equal(await readFile(join(guestRoot, 'dev/pillar/init.sls'), 'utf8'), 'db_password: s3cr3t-from-a-secret\n', 'the Secret-backed pillar reached pillar/');
  assert.ok(!JSON.stringify(d).includes('s3cr3t'), 'and is not in the Deployment');
  assert.equal(await readFile(join(guestRoot, 'dev/project/built.txt'), 'utf8'), 'built v2\n');
  assert.deepEqual((await readFile(join(guestRoot, 'dev/data/log'), 'utf8')).trim().split('\n'), ['configure v2 for prod', 'build v2', 'activate v2']);
});
