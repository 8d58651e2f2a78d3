/**
 * The `pre-receive` hook of a Project's `project.git` (run by `git http-backend` under the
 * API server, see `backend.ts`). For a push to the Project's ref (`spec.source.push.ref`) it
 * exports the pushed commit's tree for the Deployment controller, creates the Deployment
 * through the API with the pusher's token (so RBAC, quota and audit judge the pusher), and
 * prints the stages as they finish — git shows them as `remote: [3/11] build … ok (4.2 s)`.
 * It exits 0 when the release Succeeded (the ref moves), 1 when it failed or was rolled back
 * (git refuses the ref update and `git push` exits non-zero).
 */
import { spawn } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Deployment, Project } from '../../crds/types.js';
import { KubeClient } from '../../runtime/client.js';
import { Resources } from '../../controllers/resources.js';
import { deploymentFor, deploymentName } from '../../controllers/project.js';
import { pushedTree } from './paths.js';

const ZERO = /^0+$/;
const FINISHED = new Set(['Succeeded', 'Failed', 'RolledBack']);
const say = (line: string): void => void process.stdout.write(`${line}\n`);

function env(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (the hook runs under stratus's git http-backend)`);
  return v;
}

/** `git archive` of `commit` as tar.gz into `file` (the quarantined objects are readable here). */
function archive(commit: string, file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const out = createWriteStream(`${file}.partial`);
    const c = spawn('git', ['archive', '--format=tar.gz', commit], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    c.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
    c.stdout.pipe(out);
    c.on('error', reject);
    c.on('close', (code) => {
      out.close(() => {
        if (code !== 0) return reject(new Error(`git archive ${commit}: ${err.trim()}`));
        rename(`${file}.partial`, file).then(resolve, reject);
      });
    });
  });
}

function client(): KubeClient {
  return KubeClient.fromCredentials({ server: env('STRATUS_API_URL'), ca: readFileSync(env('STRATUS_API_CA')), token: env('STRATUS_API_TOKEN') }, { userAgent: 'stratus-git-hook' });
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/** Follows a Deployment, printing each stage when it ends; resolves with the final object. */
async function follow(kube: KubeClient, ns: string, name: string): Promise<Deployment> {
  const deps = kube.resource<Deployment>(Resources.deployments);
  const started = new Map<string, number>();
  const printed = new Set<string>();
  let planned: string[] | undefined;
  let phase = '';
  for (;;) {
    const d = await deps.get(ns, name);
    if (!d) throw new Error(`Deployment ${name} disappeared`);
    const stages = d.status?.stages ?? [];
    if (!planned && stages.length) {
      planned = stages.filter((s) => s.state !== 'Skipped' && s.name !== 'rollback').map((s) => s.name);
      say(`deploying ${d.status?.resolvedCommit?.slice(0, 7) ?? ''} as release ${d.status?.releaseID ?? ''} onto ${(d.status?.guests ?? []).join(', ')}: ${planned.length} stages`);
    }
    if (d.status?.phase && d.status.phase !== phase) phase = d.status.phase;
    for (const s of stages) {
      if (s.state === 'Running' && !started.has(s.name)) started.set(s.name, Date.now());
      if (printed.has(s.name) || !['Succeeded', 'Failed', 'Skipped'].includes(s.state)) continue;
      if (s.state === 'Skipped' && !started.has(s.name) && !s.startTime) continue; // not run in this mode / not reached
      printed.add(s.name);
      if (s.name === 'rollback' && planned && !planned.includes('rollback')) planned.splice(Math.max(0, planned.indexOf('notification')), 0, 'rollback');
      const i = (planned?.indexOf(s.name) ?? -1) + 1;
      const took = started.has(s.name) ? Date.now() - started.get(s.name)! : s.startTime && s.completionTime ? Date.parse(s.completionTime) - Date.parse(s.startTime) : 0;
      const word = s.state === 'Succeeded' ? 'ok' : s.state === 'Failed' ? 'FAILED' : 'skipped (no script)';
      say(`[${i}/${planned?.length ?? '?'}] ${s.name} … ${word} (${seconds(took)})`);
      if (s.state === 'Failed') for (const l of (s.outputTail ?? '').trimEnd().split('\n').slice(-15)) say(`    ${l}`);
    }
    if (FINISHED.has(phase)) return d;
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function main(): Promise<number> {
  const lines = await new Promise<string>((resolve) => {
    let s = '';
    process.stdin.on('data', (c: Buffer) => (s += c.toString('utf8')));
    process.stdin.on('end', () => resolve(s));
  });
  if (env('STRATUS_REPO') === 'pillar') {
    say('pillar updated; the next release of the project carries it');
    return 0;
  }
  const ns = env('STRATUS_NAMESPACE');
  const name = env('STRATUS_PROJECT');
  const kube = client();
  try {
    const project = await kube.resource<Project>(Resources.projects).get(ns, name);
    if (!project) throw new Error(`Project ${ns}/${name} does not exist`);
    const push = project.spec.source.push;
    if (!push) {
      say(`Project ${name} follows ${project.spec.source.git ? `source.git ${project.spec.source.git.url}` : 'source.artifact'}: set spec.source.push to deploy by git push`);
      return 1;
    }
    const ref = `refs/heads/${push.ref ?? 'main'}`;
    let status = 0;
    for (const line of lines.split('\n').filter(Boolean)) {
      const [, commit, refname] = line.split(' ');
      if (refname !== ref) {
        say(`${refname}: stored, not deployed (the Project deploys ${ref})`);
        continue;
      }
      if (!commit || ZERO.test(commit)) {
        say(`${ref} cannot be deleted: it is what the Project deploys`);
        return 1;
      }
      const file = pushedTree(env('STRATUS_GIT_DIR'), ns, name, commit);
      await mkdir(dirname(file), { recursive: true });
      await archive(commit, file);
      const dep = await kube.resource<Deployment>(Resources.deployments).create(deploymentFor(project, deploymentName(name, 'git'), { commit }));
      say(`deployment ${dep.metadata?.name} created for ${commit.slice(0, 7)}`);
      const done = await follow(kube, ns, dep.metadata!.name!);
      const phase = done.status?.phase;
      if (phase === 'Succeeded') say(`release ${done.status?.releaseID} is active`);
      else {
        say(
          phase === 'RolledBack'
            ? `deployment failed at ${done.status?.failedStage}: rolled back to the previous release; the push is refused`
            : `deployment failed at ${done.status?.failedStage ?? '?'} (${done.status?.conditions?.find((c) => c.type === 'Ready')?.message ?? ''}); the push is refused`,
        );
        status = 1;
      }
    }
    return status;
  } finally {
    kube.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    say(`stratus: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
