/**
 * Projects end to end on a container guest: `stratus serve` with its controllers, a real Docker
 * engine (TLS) as a ComputeNode, a busybox Instance as the guest, a real Git remote (file://),
 * a webhook receiver on loopback and `bin/stratus push`.
 *
 * The source poll is long here, so only `stratus push` deploys after v1 (the SSH test covers
 * polling). v1 is served; pushing v2 serves v2; v3's activate fails and is rolled back automatically (v2
 * served again, Deployment RolledBack with the stage and its output, webhook notified); v4
 * succeeds and `keepReleases: 2` prunes v1; data/ survives every release and the upgrade step
 * ran once; a controller restarted while v5 builds resumes without running a finished stage
 * again.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ComputeNode, Deployment, Instance, Project } from '../../../crds/types.js';
import { KubeClient, CoreResources, type KubeObject } from '../../../runtime/client.js';
import { Resources } from '../../../controllers/resources.js';
import { startStratusServe, type StratusServe } from '../../harness/apiserver.js';
import { importBusybox, makeCerts, registerDockerNode, startDockerd, type Dockerd } from '../../harness/dockerd.js';
import { startGitRemote, type GitRemote } from '../../harness/gitrepo.js';
import { stratusBin } from '../../harness/paths.js';
import { removeDir, tempDir, waitFor } from '../../harness/process.js';

const execFileP = promisify(execFile);

let serve: StratusServe | undefined;
let engine: Dockerd | undefined;
let remote: GitRemote | undefined;
let certDir: string | undefined;
let webhook: Server | undefined;
let client: KubeClient;
let image = '';
let webhookURL = '';
const notifications: Array<Record<string, unknown>> = [];

before(async () => {
  certDir = await tempDir('projcerts');
  const certs = await makeCerts(join(certDir, 'certs'));
  engine = await startDockerd({ certs });
  image = await importBusybox(engine);
  remote = await startGitRemote();
  webhook = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      notifications.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => webhook!.listen(0, '127.0.0.1', resolve));
  const addr = webhook.address();
  webhookURL = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/hook`;
  serve = await startStratusServe({ controllers: true, env: { STRATUS_PROJECTS_DIR: join(certDir, 'projects'), STRATUS_PROJECT_POLL_MS: '600000' } });
  client = KubeClient.fromFile(serve.kubeconfig);
  await registerDockerNode(client, engine, certs, { capacity: { cpus: 16, memoryMiB: 16384 } });
});

after(async () => {
  try {
    if (serve && client) {
      const instances = client.resource<Instance>(Resources.instances);
      await instances.delete('default', 'web').catch(() => undefined);
      await waitFor('instances deleted', async () => (await instances.list('default')).length === 0, 30_000).catch(() => undefined);
    }
  } finally {
    client?.close();
    await serve?.stop();
    await engine?.stop();
    await remote?.remove();
    await new Promise<void>((resolve) => (webhook ? webhook.close(() => resolve()) : resolve()));
    if (certDir) await removeDir(certDir);
  }
});

/** The app at `version`: serves www/ through a link busybox httpd resolves per request. */
function app(version: string, opts: { brokenActivate?: boolean; buildWaitsFor?: string } = {}): Record<string, string | null> {
  const link = `mkdir -p /srv/site && ln -sfn "$STRATUS_RELEASE_DIR/www" /srv/site/live\npidof httpd >/dev/null || httpd -p 8080 -h /srv/site\n`;
  return {
    'www/index.html': `${version}\n`,
    '.stratus/configure': `#!/bin/sh\necho "configure ${version}" >> "$STRATUS_DATA_DIR/log"\necho "${version}" >> "$STRATUS_DATA_DIR/history"\n`,
    '.stratus/build': `#!/bin/sh\necho "build ${version}" >> "$STRATUS_DATA_DIR/log"\n${opts.buildWaitsFor ? `echo "build ${version} waiting" > /tmp/build-started\nwhile [ ! -e ${opts.buildWaitsFor} ]; do sleep 0.2; done\n` : ''}`,
    '.stratus/activate': opts.brokenActivate
      ? `#!/bin/sh\necho "activate ${version}" >> "$STRATUS_DATA_DIR/log"\necho "${version}: cannot bind the new listener" >&2\nexit 1\n`
      : `#!/bin/sh\necho "activate ${version}" >> "$STRATUS_DATA_DIR/log"\n${link}`,
    '.stratus/rollback': `#!/bin/sh\necho "rollback to $STRATUS_RELEASE_ID from $STRATUS_FAILED_RELEASE_ID" >> "$STRATUS_DATA_DIR/log"\n${link}`,
    // an upgrade step ships in one release: a release carrying a step already done fails
    '.stratus/upgrade': version === 'v1' ? '#!/bin/sh\necho "schema v2" >> "$STRATUS_DATA_DIR/migrations"\n' : null,
    '.stratus/notification': `#!/bin/sh\necho "notified $STRATUS_OUTCOME" >> "$STRATUS_DATA_DIR/log"\n`,
  };
}

/** Runs a command in the guest's container behind stratus's back (the test's own view). */
async function inGuest(cmd: string): Promise<{ code: number; out: string }> {
  const containers = await engine!.client.listContainers({ filters: { label: ['stratus.dev/name=web'] } });
  assert.equal(containers.length, 1, 'container of web');
  const exec = await engine!.client.getContainer(containers[0]!.Id).exec({ Cmd: ['sh', '-c', cmd], AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({});
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve) => {
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', resolve);
    stream.on('close', resolve);
  });
  // strip the 8-byte multiplexing headers
  const raw = Buffer.concat(chunks);
  let out = '';
  for (let i = 0; i + 8 <= raw.length; ) {
    const len = raw.readUInt32BE(i + 4);
    out += raw.subarray(i + 8, i + 8 + len).toString('utf8');
    i += 8 + len;
  }
  const info = await exec.inspect();
  return { code: info.ExitCode ?? -1, out };
}

const served = async (): Promise<string> => (await inGuest('wget -q -O - http://127.0.0.1:8080/live/index.html')).out.trim();

async function finished(name: string, timeoutMs = 120_000): Promise<Deployment> {
  const rc = client.resource<Deployment>(Resources.deployments);
  return waitFor(`deployment ${name} finished`, async () => {
    const d = await rc.get('default', name);
    return d?.status?.phase && ['Succeeded', 'Failed', 'RolledBack'].includes(d.status.phase) ? d : undefined;
  }, timeoutMs, 200);
}

async function push(project: string, ...extra: string[]): Promise<string> {
  const { stdout } = await execFileP(process.execPath, [stratusBin(), 'push', project, '--kubeconfig', serve!.kubeconfig, ...extra]);
  const m = /deployment (\S+) created/.exec(stdout);
  assert.ok(m, `push output: ${stdout}`);
  return m[1]!;
}

/** The busybox guest both tests release onto. */
async function ensureGuest(instances = client.resource<Instance>(Resources.instances)): Promise<void> {
  if (await instances.get('default', 'web')) return;
  await instances.create({
    apiVersion: 'compute.stratus.dev/v1alpha1',
    kind: 'Instance',
    metadata: { name: 'web', namespace: 'default' },
    spec: { provider: 'docker', image, command: ['/bin/busybox', 'sleep', '36000'], cpus: 1, memoryMiB: 64 },
  });
}

test('v1 served, v2 pushed, v3 rolled back automatically, v4 prunes v1, restart mid-build resumes', async () => {
  const projects = client.resource<Project>(Resources.projects);
  const instances = client.resource<Instance>(Resources.instances);
  const deps = client.resource<Deployment>(Resources.deployments);
  await ensureGuest(instances);
  const c1 = await remote!.commit(app('v1'), 'v1');
  await projects.create({
    apiVersion: 'apps.stratus.dev/v1alpha1',
    kind: 'Project',
    metadata: { name: 'shop', namespace: 'default' },
    spec: {
      source: { git: { url: remote!.url, ref: 'main' } },
      mode: 'full',
      environment: 'staging',
      guests: ['web'],
      keepReleases: 2,
      healthCheck: { httpGet: { url: 'http://127.0.0.1:8080/live/index.html' }, timeoutSeconds: 5 },
      notify: { webhook: webhookURL },
    },
  });

  // v1: the Project controller makes a Deployment for the commit of main
  const first = await waitFor('a Deployment for v1', async () => (await deps.list('default')).find((d) => d.spec.commit === c1), 60_000, 200);
  assert.equal(first.metadata?.labels?.['apps.stratus.dev/project'], 'shop');
  assert.equal(first.metadata?.ownerReferences?.[0]?.kind, 'Project');
  const d1 = await finished(first.metadata!.name!);
  assert.equal(d1.status?.phase, 'Succeeded', JSON.stringify(d1.status, null, 1));
  assert.equal(await served(), 'v1');
  assert.deepEqual(d1.status?.stages?.map((s) => `${s.name}:${s.state}`), [
    'archive:Succeeded', 'initialization:Succeeded', 'release-sync:Succeeded', 'configure:Succeeded', 'build:Succeeded', 'reconfigure:Skipped', 'activate:Succeeded',
    'upgrade:Succeeded', 'bundle:Succeeded', 'post_install:Skipped', 'rollback:Skipped', 'notification:Succeeded',
  ]);
  assert.match(d1.status?.releaseID ?? '', new RegExp(`^\\d{8}T\\d{6}Z-${c1.slice(0, 7)}$`));
  assert.equal((await inGuest('readlink /srv/projects/shop/current')).out.trim(), `releases/deployed/${d1.status?.releaseID}`);
  assert.match(d1.status?.artifact ?? '', /^file:\/\/.*\.tar\.gz$/, 'full keeps the release artifact');

  // v2 through `stratus push`
  await remote!.commit(app('v2'), 'v2');
  const d2 = await finished(await push('shop'));
  assert.equal(d2.status?.phase, 'Succeeded', JSON.stringify(d2.status, null, 1));
  assert.equal(await served(), 'v2');

  // v3: activate fails → rolled back to v2 automatically
  await remote!.commit(app('v3', { brokenActivate: true }), 'v3');
  const d3 = await finished(await push('shop'));
  assert.equal(d3.status?.phase, 'RolledBack', JSON.stringify(d3.status, null, 1));
  assert.equal(d3.status?.failedStage, 'activate');
  assert.match(d3.status?.stages?.find((s) => s.name === 'activate')?.outputTail ?? '', /v3: cannot bind the new listener/);
  assert.equal(d3.status?.stages?.find((s) => s.name === 'rollback')?.state, 'Succeeded');
  assert.equal(await served(), 'v2', 'v2 is served again');
  assert.equal((await inGuest('readlink /srv/projects/shop/current')).out.trim(), `releases/deployed/${d2.status?.releaseID}`);
  const ready = d3.status?.conditions?.find((c) => c.type === 'Ready');
  assert.equal(ready?.status, 'False');
  assert.equal(ready?.reason, 'RolledBack');
  await waitFor('webhook notified of the rollback', () => notifications.find((n) => n.deployment === d3.metadata?.name), 10_000);
  const note = notifications.find((n) => n.deployment === d3.metadata?.name)!;
  assert.equal(note.phase, 'RolledBack');
  assert.equal(note.failedStage, 'activate');
  const events = await client.resource<KubeObject & { reason: string; involvedObject: { name?: string } }>(CoreResources.events).list('default');
  assert.ok(events.some((e) => e.involvedObject.name === d3.metadata?.name && e.reason === 'RolledBack'), 'an Event says RolledBack');
  assert.equal(notifications.filter((n) => n.phase === 'Succeeded').length, 2, 'v1 and v2 were notified too');

  // v4 succeeds; keepReleases 2 prunes v1 (code and data archive)
  await remote!.commit(app('v4'), 'v4');
  const d4 = await finished(await push('shop'));
  assert.equal(d4.status?.phase, 'Succeeded');
  assert.equal(await served(), 'v4');
  const releases = (await inGuest('ls -1 /srv/projects/shop/releases/deployed')).out.trim().split('\n');
  assert.deepEqual(releases.filter((r) => !r.includes('.')).sort(), [d2.status!.releaseID!, d4.status!.releaseID!].sort());
  assert.ok(!releases.some((r) => r.startsWith(d1.status!.releaseID!)), `v1 pruned: ${releases.join(' ')}`);
  // data/ survived every release; v3's write was undone by the rollback; the upgrade ran once
  assert.equal((await inGuest('cat /srv/projects/shop/data/history')).out, 'v1\nv2\nv4\n');
  assert.equal((await inGuest('cat /srv/projects/shop/data/migrations')).out, 'schema v2\n');
  const project = await projects.get('default', 'shop');
  assert.equal(project?.status?.currentRelease, d4.status?.releaseID);
  assert.deepEqual(project?.status?.releases?.map((r) => r.id), [d4.status?.releaseID, d2.status?.releaseID]);

  // v5: the controller restarts while build runs; the build (a Docker exec that outlives the
  // controller) is waited for, and no finished stage runs again
  await remote!.commit(app('v5', { buildWaitsFor: '/tmp/go-v5' }), 'v5');
  const n5 = await push('shop');
  await waitFor('v5 build running', async () => (await inGuest('cat /tmp/build-started')).out.includes('v5'), 60_000, 200);
  await serve!.kill();
  await serve!.restart();
  await inGuest('touch /tmp/go-v5');
  const d5 = await finished(n5);
  assert.equal(d5.status?.phase, 'Succeeded', JSON.stringify(d5.status, null, 1));
  assert.equal(await served(), 'v5');
  const log = (await inGuest('cat /srv/projects/shop/data/log')).out;
  assert.equal(log.split('\n').filter((l) => l === 'configure v5').length, 1, log);
  assert.equal(log.split('\n').filter((l) => l === 'build v5').length, 1, log);
  assert.equal(log.split('\n').filter((l) => l === 'activate v5').length, 1, log);

  // v6 lives on another branch: `stratus push --ref` deploys it, resolved to its commit
  const c6 = await remote!.commit(app('v6'), 'v6 hotfix', 'hotfix');
  const d6 = await finished(await push('shop', '--ref', 'hotfix'));
  assert.equal(d6.status?.resolvedCommit ?? d6.spec.commit, c6, 'the Deployment is pinned to the branch head');
  assert.equal(d6.status?.phase, 'Succeeded', JSON.stringify(d6.status, null, 1));
  assert.equal(await served(), 'v6');
  // A ref the remote lacks is the Deployment's failure (the controller resolves refs), named in its status
  const bad = await finished(await push('shop', '--ref', 'no-such-branch'));
  assert.equal(bad.status?.phase, 'Failed', JSON.stringify(bad.status, null, 1));
  assert.match(JSON.stringify(bad.status), /no-such-branch/);
  assert.equal(await served(), 'v6', 'v6 keeps serving');
});

/** Runs the real `git` client; resolves with its exit code and everything it printed. */
async function gitRun(args: string[], cwd: string, ca?: string): Promise<{ code: number; out: string }> {
  // the environment's GIT_SSL_CAINFO would win over `-c http.sslCAInfo`
  const env = { ...process.env, ...(ca ? { GIT_SSL_CAINFO: ca } : {}), GIT_TERMINAL_PROMPT: '0', GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x' };
  try {
    const { stdout, stderr } = await execFileP('git', args, { cwd, env, maxBuffer: 16 << 20 });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, out: (e.stdout ?? '') + (e.stderr ?? '') };
  }
}

async function commitTree(dir: string, files: Record<string, string | null>, message: string): Promise<void> {
  const { mkdir, writeFile, rm, chmod } = await import('node:fs/promises');
  await mkdir(dir, { recursive: true });
  if ((await gitRun(['rev-parse', '--git-dir'], dir)).code !== 0) await gitRun(['init', '-q', '-b', 'main'], dir);
  for (const [p, c] of Object.entries(files)) {
    const f = join(dir, p);
    if (c === null) {
      await rm(f, { force: true });
      continue;
    }
    await mkdir(join(f, '..'), { recursive: true });
    await writeFile(f, c);
    if (p.startsWith('.stratus/')) await chmod(f, 0o755);
  }
  await gitRun(['add', '-A', '.'], dir);
  const r = await gitRun(['commit', '-q', '--allow-empty', '-m', message], dir);
  assert.equal(r.code, 0, r.out);
}

test('git push to deploy: token as the basic password, RBAC, the pillar, stages streamed, a rolled-back push exits non-zero', async (t) => {
  await ensureGuest();
  const kc = serve!.kubeconfig;
  const run = (args: string[]): Promise<{ stdout: string }> => execFileP(process.execPath, [stratusBin(), ...args, '--kubeconfig', kc]);
  await run(['user', 'create', 'pusher', '--namespace', 'default', '--group', 'devs']);
  const token = /generated token: (\S+)/.exec((await run(['token', 'create', 'git', '--namespace', 'default', '--user', 'pusher'])).stdout)![1]!;
  // a user of another namespace: authenticated, but RBAC gives it nothing in default
  await run(['user', 'create', 'outsider', '--namespace', 'elsewhere', '--group', 'others']);
  const outsider = /generated token: (\S+)/.exec((await run(['token', 'create', 'git', '--namespace', 'elsewhere', '--user', 'outsider'])).stdout)![1]!;
  const projects = client.resource<Project>(Resources.projects);
  await projects.create({
    apiVersion: 'apps.stratus.dev/v1alpha1',
    kind: 'Project',
    metadata: { name: 'pushed', namespace: 'default' },
    spec: { source: { push: { ref: 'main' } }, mode: 'full', environment: 'prod', guests: ['web'], healthCheck: { command: ['test', '-f', 'index.html'], timeoutSeconds: 3 } },
  });
  // status can be written (conditions) before the reconcile that advertises the remotes
  const st = await waitFor('push URLs in status', async () => {
    const status = (await projects.get('default', 'pushed'))?.status;
    return status?.pushURL ? status : undefined;
  }, 30_000, 200);
  assert.equal(st.pushURL, `${serve!.url}/git/projects/default/pushed/project.git`);
  assert.equal(st.pillarPushURL, `${serve!.url}/git/projects/default/pushed/pillar.git`);
  const ca = join(serve!.dataDir, 'pki', 'ca.crt');
  const withToken = (u: string, t: string): string => u.replace('https://', `https://anyone:${t}@`);
  const code = join(certDir!, 'push-code');
  const pillar = join(certDir!, 'push-pillar');
  const gitPush = (dir: string, url: string, t = token): Promise<{ code: number; out: string }> => gitRun(['push', withToken(url, t), 'HEAD:refs/heads/main'], dir, ca);

  const v = (n: string, broken = false): Record<string, string | null> => ({
    'index.html': `${n}\n`,
    '.stratus/configure': '#!/bin/sh\ncut -d" " -f2 "$STRATUS_PILLAR_DIR/init.sls" > "$STRATUS_DATA_DIR/greeting"\necho configured\n',
    '.stratus/build': `#!/bin/sh\necho "built ${n}" > built.txt\n`,
    '.stratus/activate': broken ? '#!/bin/sh\necho "port taken" >&2; exit 2\n' : '#!/bin/sh\necho up\n',
  });
  await commitTree(code, v('v1'), 'v1');

  // no token, a wrong token: 401; a token whose user has no role in the Project's namespace: 403
  assert.match((await gitRun(['push', st.pushURL!, 'HEAD:refs/heads/main'], code, ca)).out, /could not read Username|Authentication failed|401/);
  assert.match((await gitPush(code, st.pushURL!, '1-00000000000000000000000000000000')).out, /Authentication failed|401/);
  const denied = await gitPush(code, st.pushURL!, outsider);
  assert.notEqual(denied.code, 0);
  assert.match(denied.out, /403/);

  // the pillar first, as `corpus push` does
  await commitTree(pillar, { 'init.sls': 'greeting: hello-from-the-pillar\n' }, 'pillar');
  assert.match((await gitPush(pillar, st.pillarPushURL!, outsider)).out, /403/, 'nor may it push (or read) the pillar');
  const p = await gitPush(pillar, st.pillarPushURL!);
  assert.equal(p.code, 0, p.out);
  assert.match(p.out, /pillar updated/);

  const ok = await gitPush(code, st.pushURL!);
  assert.equal(ok.code, 0, ok.out);
  t.diagnostic(ok.out);
  for (const stage of ['archive', 'initialization', 'release-sync', 'configure', 'build', 'activate', 'bundle', 'notification']) {
    assert.match(ok.out, new RegExp(`remote: \\[\\d+/\\d+\\] ${stage} … (ok|skipped \\(no script\\)) \\(\\d+\\.\\d s\\)`), `${stage} in:\n${ok.out}`);
  }
  assert.match(ok.out, /remote: \[5\/11\] build … ok/);
  assert.match(ok.out, /remote: release \S+ is active/);
  assert.equal((await inGuest('cat /srv/projects/pushed/current/built.txt')).out, 'built v1\n');
  assert.equal((await inGuest('cat /srv/projects/pushed/data/greeting')).out, 'hello-from-the-pillar\n', 'the pillar reached the stages');
  const deps = (await client.resource<Deployment>(Resources.deployments).list('default')).filter((d) => d.spec.project === 'pushed');
  assert.equal(deps.length, 1);
  assert.equal(deps[0]!.metadata?.annotations?.['apps.stratus.dev/initiator'], 'pusher', 'the API server recorded who pushed (the mail goes to them)');
  assert.ok(!JSON.stringify(deps[0]).includes('hello-from-the-pillar'), 'the pillar is not in the Deployment');
  assert.ok(!JSON.stringify(await projects.get('default', 'pushed')).includes('hello-from-the-pillar'), 'nor in the Project');

  await commitTree(code, v('v2', true), 'v2 broken');
  const bad = await gitPush(code, st.pushURL!);
  assert.notEqual(bad.code, 0, bad.out);
  t.diagnostic(bad.out);
  assert.match(bad.out, /remote: \[\d+\/\d+\] activate … FAILED/);
  assert.match(bad.out, /remote: +port taken/);
  assert.match(bad.out, /rolled back to the previous release/);
  assert.match(bad.out, /pre-receive hook declined/);
  assert.equal((await inGuest('cat /srv/projects/pushed/current/index.html')).out, 'v1\n', 'v1 still serves');
  // the remote's main did not move to the failed commit
  const remoteHead = await gitRun(['ls-remote', withToken(st.pushURL!, token), 'refs/heads/main'], code, ca);
  const local = await gitRun(['rev-parse', 'HEAD~1'], code);
  assert.equal(remoteHead.out.split(/\s/)[0], local.out.trim());

  // computenode_switchmode: the node forces editable on the Projects it carries
  await client.resource<ComputeNode>(Resources.computeNodes).mergePatch(undefined, 'engine-1', { spec: { projectMode: 'editable' } });
  await waitFor('the override in the informer', async () => {
    const d = await finished(await push('pushed'));
    return d.status?.mode === 'editable' ? d : undefined;
  }, 30_000, 500).then((d) => {
    assert.equal(d.status?.phase, 'Succeeded', JSON.stringify(d.status, null, 1));
    const states = Object.fromEntries((d.status?.stages ?? []).map((x) => [x.name, x.state]));
    for (const x of ['archive', 'release-sync', 'reconfigure', 'bundle', 'rollback']) assert.equal(states[x], 'Skipped', x);
  });
  assert.equal((await inGuest('readlink /srv/projects/pushed/current')).out.trim(), 'project');
  await client.resource<ComputeNode>(Resources.computeNodes).mergePatch(undefined, 'engine-1', { spec: { projectMode: null } });
});
