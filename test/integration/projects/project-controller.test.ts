/**
 * The Project controller against `stratus serve` (no built-in controllers): the Project and
 * Deployment controllers run in-process on a Manager, the source is a real Git remote.
 * Guests are never reachable here, so Deployments wait (Pending, WaitingForGuests) and the
 * test finishes them itself through the status subresource where history needs it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ComputeNode, Deployment, Instance, Project } from '../../../crds/types.js';
import { KubeClient, type ResourceClient } from '../../../runtime/client.js';
import { Manager } from '../../../runtime/manager.js';
import { updateStatus } from '../../../runtime/status.js';
import { Resources } from '../../../controllers/resources.js';
import { NodeConnections } from '../../../controllers/connections.js';
import { ProviderRegistry } from '../../../providers/registry.js';
import { registerProjectControllers } from '../../../controllers/project.js';
import { startStratusServe, type StratusServe } from '../../harness/apiserver.js';
import { startGitRemote, type GitRemote } from '../../harness/gitrepo.js';
import { removeDir, requireBinary, tempDir, waitFor } from '../../harness/process.js';

let serve: StratusServe | undefined;
let remote: GitRemote | undefined;
let mgr: Manager | undefined;
let client: KubeClient;
let dir = '';
let pathBefore: string | undefined;

/** How many times the controller has asked a remote for its refs (`git ls-remote`, logged by a PATH shim). */
function lsRemotes(): number {
  try {
    return readFileSync(join(dir, 'ls-remote.log'), 'utf8').split('\n').filter((l) => l !== '').length;
  } catch {
    return 0;
  }
}

before(async () => {
  dir = await tempDir('projctl');
  // The controllers run in this process and spawn `git` from PATH: a shim in front of the
  // real git logs each ls-remote, so a test can wait for polls instead of sleeping.
  const realGit = requireBinary('git');
  writeFileSync(join(dir, 'git'), `#!/bin/sh\n[ "$1" = ls-remote ] && echo "$2" >> '${join(dir, 'ls-remote.log')}'\nexec '${realGit}' "$@"\n`, { mode: 0o755 });
  pathBefore = process.env.PATH;
  process.env.PATH = `${dir}:${process.env.PATH ?? ''}`;
  [serve, remote] = await Promise.all([startStratusServe(), startGitRemote()]);
  client = KubeClient.fromFile(serve.kubeconfig);
  mgr = new Manager({ client: KubeClient.fromFile(serve.kubeconfig) });
  const secrets = async (): Promise<Record<string, string>> => ({});
  registerProjectControllers(mgr, {
    connections: new NodeConnections(new ProviderRegistry(), secrets),
    secrets,
    instanceCache: mgr.informer<Instance>(Resources.instances),
    nodeCache: mgr.informer<ComputeNode>(Resources.computeNodes),
    workDir: join(dir, 'work'),
    pollIntervalMs: 200,
    historyLimit: 2,
  });
  await mgr.start();
});

after(async () => {
  process.env.PATH = pathBefore;
  await mgr?.stop();
  client?.close();
  await serve?.stop();
  await remote?.remove();
  if (dir) await removeDir(dir);
});

const projects = (): ResourceClient<Project> => client.resource<Project>(Resources.projects);
const deployments = (): ResourceClient<Deployment> => client.resource<Deployment>(Resources.deployments);

async function ofProject(name: string): Promise<Deployment[]> {
  return (await deployments().list('default')).filter((d) => d.metadata?.labels?.['apps.stratus.dev/project'] === name);
}

test('every new commit of the followed ref makes one Deployment, labelled and owned by the Project', async () => {
  const c1 = await remote!.commit({ 'a.txt': '1' }, 'one');
  const created = await projects().create({
    apiVersion: 'apps.stratus.dev/v1alpha1',
    kind: 'Project',
    metadata: { name: 'follow', namespace: 'default' },
    spec: { source: { git: { url: remote!.url, ref: 'main' } }, guests: ['nowhere'] },
  });
  const d1 = await waitFor('Deployment of c1', async () => (await ofProject('follow')).find((d) => d.spec.commit === c1), 20_000);
  assert.deepEqual(d1.metadata?.ownerReferences?.map((o) => [o.kind, o.name, o.uid, o.controller]), [['Project', 'follow', created.metadata?.uid, true]]);
  // no guest is reachable: the Deployment waits and says why
  await waitFor('WaitingForGuests', async () => {
    const d = await deployments().get('default', d1.metadata!.name!);
    return d?.status?.phase === 'Pending' && d.status.conditions?.some((c) => c.reason === 'WaitingForGuests' && /Instance "nowhere" does not exist/.test(c.message ?? ''));
  }, 20_000);
  const p = await projects().get('default', 'follow');
  assert.equal(p?.status?.lastCommit, c1);
  assert.equal(p?.status?.lastDeployment, d1.metadata?.name);

  const c2 = await remote!.commit({ 'a.txt': '2' }, 'two');
  await waitFor('Deployment of c2', async () => (await ofProject('follow')).some((d) => d.spec.commit === c2), 20_000);
  // polling again and again does not double it
  await waitFor('a few more polls', async () => {
    const pp = await projects().get('default', 'follow');
    return pp?.status?.lastCommit === c2;
  }, 20_000);
  const polled = lsRemotes();
  await waitFor('three more polls of the remote', () => lsRemotes() >= polled + 3, 20_000, 20);
  assert.equal((await ofProject('follow')).filter((d) => d.spec.commit === c2).length, 1);

  // following another ref (a tag) deploys what it names
  await remote!.commit({ 'b.txt': 'release' }, 'release', 'release-1');
  const c3 = await remote!.commit({ 'b.txt': 'release 1.1' }, 'release 1.1', 'release-1');
  await projects().mergePatch('default', 'follow', { spec: { source: { git: { url: remote!.url, ref: 'release-1' } } } });
  await waitFor('Deployment of the release-1 branch', async () => (await ofProject('follow')).some((d) => d.spec.commit === c3), 20_000);
});

test('history is bounded: finished Deployments beyond the limit are deleted, unfinished ones never', async () => {
  await projects().create({
    apiVersion: 'apps.stratus.dev/v1alpha1',
    kind: 'Project',
    metadata: { name: 'bounded', namespace: 'default' },
    spec: { source: { git: { url: remote!.url, ref: 'main' } }, guests: ['nowhere'] },
  });
  // the first Deployment releases main as it is now; it stays unfinished (no guest)
  const head = await waitFor('Deployment of the current head', async () => (await ofProject('bounded'))[0], 20_000);
  const names: string[] = [];
  for (let i = 0; i < 4; i++) {
    const c = await remote!.commit({ 'n.txt': String(i) }, `n${i}`);
    const d = await waitFor(`Deployment ${i}`, async () => (await ofProject('bounded')).find((x) => x.spec.commit === c), 20_000);
    names.push(d.metadata!.name!);
    // the test plays the pipeline: this release failed
    await updateStatus(deployments(), 'default', d.metadata!.name!, (x) => {
      x.status = { ...(x.status ?? {}), phase: 'Failed', failedStage: 'build' };
    });
  }
  const expected = [head.metadata?.name, names[2], names[3]].sort();
  const left = async (): Promise<string[]> => (await ofProject('bounded')).map((d) => `${d.metadata?.name}`).sort();
  await waitFor('the newest two finished Deployments and the unfinished one remain', async () => (await left()).join() === expected.join(), 20_000).catch(
    async () => assert.deepEqual(await left(), expected, `${head.metadata?.name} then ${names.join(' ')}: ${JSON.stringify((await ofProject('bounded')).map((d) => [d.metadata?.name, d.metadata?.creationTimestamp, d.status?.phase]))}`),
  );
  const ready = await waitFor('Ready follows the newest Deployment', async () => {
    const p = await projects().get('default', 'bounded');
    return p?.status?.conditions?.find((c) => c.type === 'Ready' && c.reason !== 'Deploying');
  }, 20_000);
  assert.equal(ready.status, 'False');
  assert.equal(ready.reason, 'Failed');
  assert.match(ready.message ?? '', /stage build failed/);
});
