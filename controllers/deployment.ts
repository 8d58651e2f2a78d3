/**
 * DeploymentReconciler: a Deployment is one release of a Project going through the corpus
 * pipeline (`controllers/pipeline/`) on the Project's guests.
 *
 * A reconcile reads the Deployment; a finished one (Succeeded, Failed, RolledBack) is left
 * alone. Deployments of one Project run one at a time, oldest first. The reconcile resolves
 * the commit (spec.commit, else spec.ref or the Project's ref through `git ls-remote`), fixes
 * the release ID (creation time + commit, so a restarted controller computes the same one),
 * opens an exec channel per guest — Docker exec for container Instances, SSH with the
 * Project's key for VM Instances (`status.ipAddress`) and for `spec.sshGuests` — and runs the
 * pipeline, writing each stage's state, timing and output tail as it goes. The pipeline's
 * journal lives on the guests, so a controller restarted mid-release resumes it without
 * running a finished stage again.
 *
 * At the end: `status.phase`, `failedStage`, the `Ready` condition, an Event, the Project's
 * `currentRelease` and `releases` (newest first, at most keepReleases), a JSON POST to
 * `notify.webhook` and a mail to `notify.mail.to` and the Deployment's initiator (at least once:
 * both are sent before the final status is written), and for
 * a `staging` (`cooking`) or `full` Project the release bundle kept by the control plane (`status.artifact`).
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { pushedTree, repoDir } from '../apiserver/git/paths.js';
import { join } from 'node:path';
import type { ComputeNode, Deployment, Instance, Project } from '../crds/types.js';
import { objectKey, splitKey, type ResourceClient } from '../runtime/client.js';
import type { Informer } from '../runtime/informer.js';
import type { Reconciler, ReconcileContext, ReconcileResult } from '../runtime/controller.js';
import { updateStatus } from '../runtime/status.js';
import { kubeTime, setCondition } from '../runtime/conditions.js';
import type { EventRecorder } from '../runtime/events.js';
import type { GuestChannel } from '../providers/guest/channel.js';
import { SshChannel } from '../providers/guest/ssh.js';
import { guestLoginUser } from '../providers/libvirt/guest-user.js';
import type { NodeConnections, SecretReader } from './connections.js';
import { releaseMode } from './pipeline/stages.js';
import { bundlePath, readGuestFile, releaseIdFor, runRelease, type ReleaseGuest, type ReleasePlan, type ReleaseResult, type StageReport } from './pipeline/engine.js';
import { fetchArtifact, resolveRef, type ArtifactStore, type GitMirrors } from './pipeline/source.js';
import { mailOutcome } from './deployment-mail.js';

export const PROJECT_LABEL = 'apps.stratus.dev/project';

export type DeploymentEventReason = 'Started' | 'Succeeded' | 'RolledBack' | 'Failed' | 'WaitingForGuests' | 'NotifyFailed' | 'ArtifactKept';

export interface DeploymentReconcilerDeps {
  deployments: ResourceClient<Deployment>;
  deploymentCache: Informer<Deployment>;
  projects: ResourceClient<Project>;
  projectCache: Informer<Project>;
  instanceCache: Informer<Instance>;
  nodeCache: Informer<ComputeNode>;
  connections: NodeConnections;
  secrets: SecretReader;
  mirrors: GitMirrors;
  artifacts: ArtifactStore;
  /** The controller's own files: SSH keys for git, pinned SSH host keys (`known_hosts`). */
  workDir: string;
  recorder: EventRecorder<DeploymentEventReason>;
  /** Base directory of projects on the guests. Default `/srv/projects`. */
  guestRoot?: string;
  /** How often a Deployment waiting for guests or an older Deployment is checked. Default 2 s. */
  waitPollMs?: number;
  /** The API server's push remotes (`DATA_DIR/git`), for `source.push` Projects and pushed pillars. */
  gitDir?: string;
  /** A stratus user's address (the User's spec.email), for mail to a Deployment's initiator. */
  userEmail?: (user: string) => Promise<string | undefined>;
}

type Status = NonNullable<Deployment['status']>;
type Phase = NonNullable<Status['phase']>;

const FINISHED: ReadonlySet<Phase> = new Set(['Succeeded', 'Failed', 'RolledBack']);

/** Deployments before `d` in run order: creation time, then name. */
function runsBefore(a: Deployment, b: Deployment): boolean {
  const ta = a.metadata?.creationTimestamp ?? '';
  const tb = b.metadata?.creationTimestamp ?? '';
  return ta !== tb ? ta < tb : (a.metadata?.name ?? '') < (b.metadata?.name ?? '');
}

class WaitingForGuests extends Error {}

export class DeploymentReconciler implements Reconciler {
  constructor(private readonly d: DeploymentReconcilerDeps) {}

  async reconcile(key: string, ctx: ReconcileContext): Promise<ReconcileResult | void> {
    const dep = this.d.deploymentCache.get(key);
    if (!dep || dep.metadata?.deletionTimestamp) return;
    if (dep.status?.phase && FINISHED.has(dep.status.phase)) return;
    const { namespace } = splitKey(key);
    const ns = namespace ?? 'default';
    const project = this.d.projectCache.get(`${ns}/${dep.spec.project}`);
    if (!project) return this.finish(dep, undefined, { phase: 'Failed' }, 'ProjectNotFound', `Project "${dep.spec.project}" does not exist`);

    const earlier = this.d.deploymentCache
      .list()
      .filter((o) => o.metadata?.namespace === ns && o.spec.project === dep.spec.project && !FINISHED.has(o.status?.phase ?? 'Pending') && runsBefore(o, dep));
    if (earlier.length > 0) {
      await this.write(dep, { phase: 'Pending' }, { status: 'False', reason: 'Queued', message: `waiting for ${earlier[0]!.metadata?.name}` });
      return { requeueAfterMs: this.d.waitPollMs ?? 2000 };
    }

    // What to release: a commit (resolved once, then kept in status) or an artifact.
    const ns0 = project.metadata?.namespace ?? 'default';
    const pushed = project.spec.source.push;
    if (pushed && !this.d.gitDir) {
      return this.finish(dep, project, { phase: 'Failed' }, 'InvalidSource', 'a source.push Project needs the controllers beside the API server that keeps its remote (stratus serve)');
    }
    const git = project.spec.source.git ?? (pushed ? { url: pathToFileURL(repoDir(this.d.gitDir!, ns0, project.metadata?.name ?? '', 'project')).href, ref: pushed.ref ?? 'main' } : undefined);
    const artifact = dep.spec.artifact ?? (git ? undefined : project.spec.source.artifact);
    let commit = dep.spec.commit ?? dep.status?.resolvedCommit;
    if (!commit && !artifact) {
      if (!git) return this.finish(dep, project, { phase: 'Failed' }, 'InvalidSource', 'the Project has no source.git to resolve a ref on');
      try {
        commit = await resolveRef(git.url, dep.spec.ref ?? git.ref ?? 'main', await this.gitAccess(project));
      } catch (err) {
        return this.finish(dep, project, { phase: 'Failed' }, 'RefNotResolved', err instanceof Error ? err.message : String(err));
      }
    }
    const created = dep.metadata?.creationTimestamp ? new Date(dep.metadata.creationTimestamp) : new Date();
    const releaseID = dep.status?.releaseID ?? releaseIdFor(created, commit ?? '');

    let guests: ReleaseGuest[];
    try {
      await mkdir(this.d.workDir, { recursive: true, mode: 0o700 }); // pinned host keys live here
      guests = await this.openGuests(project, ns);
    } catch (err) {
      if (!(err instanceof WaitingForGuests)) throw err;
      if (dep.status?.conditions?.find((c) => c.type === 'Ready')?.message !== err.message) this.d.recorder.normal(dep, 'WaitingForGuests', err.message);
      await this.write(dep, { phase: 'Pending', releaseID, ...(commit ? { resolvedCommit: commit } : {}) }, { status: 'False', reason: 'WaitingForGuests', message: err.message });
      return { requeueAfterMs: this.d.waitPollMs ?? 2000 };
    }

    // a ComputeNode may force a mode on the Projects it carries (corpus computenode_switchmode)
    const forced = new Set(
      (project.spec.guests ?? []).map((g) => this.d.nodeCache.get(this.d.instanceCache.get(`${ns}/${g}`)?.spec.nodeName ?? '')?.spec.projectMode).filter((m) => m !== undefined),
    );
    if (forced.size > 1) {
      await Promise.all(guests.map((g) => g.channel.close()));
      return this.finish(dep, project, { phase: 'Failed' }, 'ModeConflict', `the guests' ComputeNodes force different modes: ${[...forced].join(', ')}`);
    }
    const mode = [...forced][0] ?? releaseMode(project.spec.mode);
    try {
      if (dep.status?.phase !== 'Running') this.d.recorder.normal(dep, 'Started', `release ${releaseID} onto ${guests.map((g) => g.name).join(', ')}`);
      await this.write(
        dep,
        {
          phase: 'Running',
          releaseID,
          mode,
          ...(commit ? { resolvedCommit: commit } : {}),
          guests: guests.map((g) => g.name),
          startTime: dep.status?.startTime ?? kubeTime(),
        },
        { status: 'False', reason: 'Running', message: `releasing ${releaseID}` },
      );
      const plan: ReleasePlan = {
        project: project.metadata?.name ?? dep.spec.project,
        releaseID,
        mode,
        environment: project.spec.environment ?? 'dev',
        keepReleases: project.spec.keepReleases ?? 5,
        ...(project.spec.healthCheck ? { healthCheck: project.spec.healthCheck } : {}),
        ...(this.d.guestRoot ? { root: this.d.guestRoot } : {}),
        env: { STRATUS_COMMIT: commit ?? '', STRATUS_DEPLOYMENT: dep.metadata?.name ?? '' },
        pillar: () => this.pillar(project, git?.ref ?? 'main'),
        source: async () => {
          if (artifact) return fetchArtifact(artifact, ctx.signal);
          // a pushed commit: the pre-receive hook exported it before the ref moved
          const tree = pushed && commit ? pushedTree(this.d.gitDir!, ns0, project.metadata?.name ?? '', commit) : undefined;
          if (tree && existsSync(tree)) return fetchArtifact(pathToFileURL(tree).href, ctx.signal);
          return this.d.mirrors.archive(git!.url, commit!, await this.gitAccess(project));
        },
      };
      let result: ReleaseResult;
      try {
        result = await runRelease(guests, plan, {
          signal: ctx.signal,
          onProgress: (stages) => this.write(dep, { stages: toStatusStages(stages) }),
        });
      } catch (err) {
        // a guest that cannot be prepared (unreachable, container gone): retried with backoff,
        // the journal keeps what was done
        const message = err instanceof Error ? err.message : String(err);
        if (!ctx.signal.aborted) await this.write(dep, {}, { status: 'False', reason: 'GuestError', message });
        throw err;
      }
      let artifactURL: string | undefined;
      if (result.outcome === 'Succeeded' && (plan.mode === 'staging' || plan.mode === 'full')) {
        const bundle = await readGuestFile(guests[0]!.channel, bundlePath(plan));
        artifactURL = await this.d.artifacts.put(ns, plan.project, releaseID, bundle);
        this.d.recorder.normal(dep, 'ArtifactKept', `release artifact ${artifactURL}`);
      }
      await this.notify(dep, project, result, releaseID, commit, ctx);
      return this.finish(
        dep,
        project,
        {
          phase: result.outcome,
          stages: toStatusStages(result.stages),
          ...(result.failedStage ? { failedStage: result.failedStage } : {}),
          ...(artifactURL ? { artifact: artifactURL } : {}),
        },
        result.outcome,
        outcomeMessage(result, releaseID),
        releaseID,
        commit,
      );
    } finally {
      await Promise.all(guests.map((g) => g.channel.close()));
    }
  }

  /**
   * The pillar as a plain tar: the pushed pillar.git at the Project's ref, else the keys of
   * `spec.pillarSecretRef` as files; undefined when there is neither.
   */
  private async pillar(project: Project, ref: string): Promise<Buffer | undefined> {
    const ns = project.metadata?.namespace ?? 'default';
    if (this.d.gitDir) {
      const dir = repoDir(this.d.gitDir, ns, project.metadata?.name ?? '', 'pillar');
      if (existsSync(dir)) {
        const url = pathToFileURL(dir).href;
        const commit = await resolveRef(url, ref).catch(() => undefined);
        if (commit) return this.d.mirrors.archive(url, commit);
      }
    }
    const secret = project.spec.pillarSecretRef;
    if (!secret) return undefined;
    const data = await this.d.secrets(ns, secret.name);
    const dir = await mkdtemp(join(tmpdir(), 'stratus-pillar-'));
    try {
      for (const [k, v] of Object.entries(data)) {
        if (!/^[-._a-zA-Z0-9]+$/.test(k) || k.startsWith('.')) continue; // Secret keys are file names already; be strict anyway
        await writeFile(join(dir, k), v, { mode: 0o600 });
      }
      return await new Promise<Buffer>((resolve, reject) =>
        execFile('tar', ['-c', '-C', dir, '.'], { encoding: 'buffer', maxBuffer: 64 << 20 }, (err, out) => (err ? reject(err) : resolve(out))),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  private async gitAccess(project: Project): Promise<{ env?: Record<string, string> }> {
    if (!project.spec.sshSecretRef) return {};
    const ns = project.metadata?.namespace ?? 'default';
    const key = (await this.d.secrets(ns, project.spec.sshSecretRef.name))['ssh-privatekey'];
    if (!key) return {};
    // git over ssh with the Project's key, kept 0600 in the controller's work dir
    const dir = join(this.d.workDir, 'keys');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const file = join(dir, `${ns}.${project.spec.sshSecretRef.name}`);
    await writeFile(file, key.endsWith('\n') ? key : `${key}\n`, { mode: 0o600 });
    return {
      env: {
        GIT_SSH_COMMAND: `ssh -i ${file} -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=${this.knownHosts()}`,
      },
    };
  }

  private knownHosts(): string {
    return join(this.d.workDir, 'known_hosts');
  }

  /** An exec channel per guest; throws WaitingForGuests while one is not running yet. */
  private async openGuests(project: Project, ns: string): Promise<ReleaseGuest[]> {
    const out: ReleaseGuest[] = [];
    let sshData: Record<string, string> | undefined;
    const sshKey = async (): Promise<{ privateKey: string; knownHosts?: string }> => {
      if (!project.spec.sshSecretRef) throw new Error('the Project needs spec.sshSecretRef to reach its guests over SSH');
      sshData ??= await this.d.secrets(ns, project.spec.sshSecretRef.name);
      const privateKey = sshData['ssh-privatekey'];
      if (!privateKey) throw new Error(`Secret "${project.spec.sshSecretRef.name}" has no ssh-privatekey`);
      return { privateKey, ...(sshData['known_hosts'] ? { knownHosts: sshData['known_hosts'] } : {}) };
    };
    for (const name of project.spec.guests ?? []) {
      const inst = this.d.instanceCache.get(`${ns}/${name}`);
      if (!inst) throw new WaitingForGuests(`Instance "${name}" does not exist`);
      if (inst.status?.state !== 'running' || !inst.spec.nodeName) throw new WaitingForGuests(`Instance "${name}" is not running yet`);
      const node = this.d.nodeCache.get(inst.spec.nodeName);
      if (!node) throw new WaitingForGuests(`ComputeNode "${inst.spec.nodeName}" of Instance "${name}" is not known yet`);
      let channel: GuestChannel;
      // A provider with its own guest channel (containers: exec) needs no SSH.
      const guestChannel = this.d.connections.providerOf(node).capabilities.guestChannel;
      if (guestChannel) {
        channel = guestChannel.open(await this.d.connections.get(node), { name, uid: inst.metadata?.uid ?? '' });
      } else {
        if (!inst.status.ipAddress) throw new WaitingForGuests(`Instance "${name}" has no IP address yet`);
        // The image's cloud user (root logins are refused on cloud images), root through sudo.
        const user = guestLoginUser(inst.spec.image, inst.metadata?.annotations);
        channel = new SshChannel(name, { host: inst.status.ipAddress, user, sudo: user !== 'root', ...(await sshKey()), knownHostsFile: this.knownHosts() });
      }
      out.push({ name, channel });
    }
    for (const g of project.spec.sshGuests ?? []) {
      out.push({
        name: g.name,
        channel: new SshChannel(g.name, { host: g.host, port: g.port ?? 22, user: g.user ?? 'root', ...(await sshKey()), knownHostsFile: this.knownHosts() }),
      });
    }
    if (out.length === 0) throw new WaitingForGuests('the Project has no guests (spec.guests, spec.sshGuests)');
    return out;
  }

  /** POSTs the outcome to the Project's webhook and mails it; a failure is an Event, never a failed deployment. */
  private async notify(dep: Deployment, project: Project, result: ReleaseResult, releaseID: string, commit: string | undefined, ctx: ReconcileContext): Promise<void> {
    try {
      const to = await mailOutcome(this.d, project, dep, { releaseID, result, ...(commit ? { commit } : {}) });
      if (to.length > 0) ctx.log.info({ to }, 'outcome mailed');
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      ctx.log.warn({ err: message }, 'mail notification failed');
      this.d.recorder.warning(dep, 'NotifyFailed', `mail: ${message}`);
    }
    const url = project.spec.notify?.webhook;
    if (!url) return;
    const body = {
      project: project.metadata?.name,
      namespace: project.metadata?.namespace,
      deployment: dep.metadata?.name,
      environment: project.spec.environment ?? 'dev',
      releaseID,
      commit: commit ?? null,
      phase: result.outcome,
      failedStage: result.failedStage ?? null,
      stages: result.stages.map((s) => ({ name: s.name, state: s.state, outputTail: s.outputTail ?? '' })),
    };
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      await res.arrayBuffer();
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      ctx.log.warn({ url, err: message }, 'webhook notification failed');
      this.d.recorder.warning(dep, 'NotifyFailed', `POST ${url}: ${message}`);
    }
  }

  private async finish(
    dep: Deployment,
    project: Project | undefined,
    fields: Partial<Status> & { phase: Phase },
    reason: string,
    message: string,
    releaseID?: string,
    commit?: string,
  ): Promise<ReconcileResult> {
    const ok = fields.phase === 'Succeeded';
    await this.write(dep, { ...fields, completionTime: kubeTime() }, { status: ok ? 'True' : 'False', reason, message });
    if (ok) this.d.recorder.normal(dep, 'Succeeded', message);
    else this.d.recorder.warning(dep, fields.phase === 'RolledBack' ? 'RolledBack' : 'Failed', message);
    if (project && ok && releaseID) {
      const keep = project.spec.keepReleases ?? 5;
      await updateStatus(this.d.projects, project.metadata?.namespace, project.metadata?.name ?? '', (p) => {
        if (p.metadata?.uid !== project.metadata?.uid) return false;
        const others = (p.status?.releases ?? []).filter((r) => r.id !== releaseID);
        p.status = {
          ...(p.status ?? {}),
          currentRelease: releaseID,
          releases: [{ id: releaseID, ...(commit ? { commit } : {}), deployment: dep.metadata?.name ?? '', createdAt: kubeTime() }, ...others].slice(0, keep),
        };
      });
    }
    return {};
  }

  private async write(dep: Deployment, fields: Partial<Status>, ready?: { status: 'True' | 'False'; reason: string; message: string }): Promise<void> {
    const { namespace, name } = splitKey(objectKey(dep));
    await updateStatus(this.d.deployments, namespace, name, (fresh) => {
      if (fresh.metadata?.uid !== dep.metadata?.uid) return false;
      if (fresh.status?.phase && FINISHED.has(fresh.status.phase) && !fields.completionTime) return false;
      const generation = fresh.metadata?.generation ?? 0;
      const st: Status = { ...(fresh.status ?? {}), ...fields, observedGeneration: generation };
      if (ready) st.conditions = setCondition(st.conditions, { type: 'Ready', ...ready }, generation);
      fresh.status = st;
    });
  }
}

function toStatusStages(stages: StageReport[]): Status['stages'] {
  return stages.map((s) => ({
    name: s.name,
    state: s.state,
    ...(s.startTime ? { startTime: s.startTime } : {}),
    ...(s.completionTime ? { completionTime: s.completionTime } : {}),
    ...(s.outputTail !== undefined ? { outputTail: s.outputTail.slice(-16_000) } : {}),
  }));
}

function outcomeMessage(result: ReleaseResult, releaseID: string): string {
  if (result.outcome === 'Succeeded') return `release ${releaseID} is active`;
  const failed = result.stages.find((s) => s.name === result.failedStage);
  const tailLines = (failed?.outputTail ?? '').trim().split('\n').slice(-5).join('\n');
  const what = result.outcome === 'RolledBack' ? 'rolled back to the previous release' : 'not rolled back';
  return `stage ${result.failedStage} failed, ${what}: ${tailLines}`;
}
