/**
 * ProjectReconciler: follows a Project's source and makes a Deployment for every new commit of
 * `source.git.ref` (polled with `git ls-remote`) or every new `source.artifact`. Changing the
 * ref in Git (Argo CD) therefore deploys; `stratus push` deploys the ref at once by creating a
 * Deployment itself.
 *
 * Deployments carry the label `apps.stratus.dev/project: NAME` and a controller owner
 * reference to the Project (deleting the Project deletes them). History is bounded: finished
 * Deployments beyond the newest `historyLimit` are deleted (running ones never are).
 *
 * The Project's `Ready` follows its newest Deployment: True when it Succeeded, False with the
 * failing stage when it failed or was rolled back (the previous release keeps serving, and
 * `status.currentRelease` says which), False/Deploying while one runs.
 *
 * Idempotency: before creating, the newest Deployment is checked; one already made for the
 * commit (a crash between create and the status write) is adopted instead of doubled.
 *
 * A `source.push` Project is not polled: a `git push` to `status.pushURL` (the API server's
 * remote, `apiserver/git/`) creates its Deployments.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { ComputeNode, Deployment, Instance, Project, User } from '../crds/types.js';
import { apiVersionOf, objectKey, splitKey, type ResourceClient } from '../runtime/client.js';
import type { Informer } from '../runtime/informer.js';
import type { Manager } from '../runtime/manager.js';
import type { Reconciler, ReconcileContext, ReconcileResult } from '../runtime/controller.js';
import { updateStatus } from '../runtime/status.js';
import { setCondition, type ConditionInput } from '../runtime/conditions.js';
import type { EventRecorder } from '../runtime/events.js';
import type { NodeConnections, SecretReader } from './connections.js';
import { Resources } from './resources.js';
import { DeploymentReconciler, PROJECT_LABEL, type DeploymentEventReason } from './deployment.js';
import { ArtifactStore, GitMirrors, resolveRef } from './pipeline/source.js';
import { pushURL } from '../apiserver/git/paths.js';

export type ProjectEventReason = 'NewCommit' | 'NewArtifact' | 'SourceError' | 'Pruned';

export interface ProjectReconcilerDeps {
  projects: ResourceClient<Project>;
  projectCache: Informer<Project>;
  deployments: ResourceClient<Deployment>;
  deploymentCache: Informer<Deployment>;
  recorder: EventRecorder<ProjectEventReason>;
  /** How often the remote is polled for the ref. Default 15 s. */
  pollIntervalMs?: number;
  /** Finished Deployments kept per Project. Default 10. */
  historyLimit?: number;
  /** The API server's URL: each Project's `status.pushURL`/`pillarPushURL` are its remotes there. */
  apiURL?: string;
}

type Status = NonNullable<Project['status']>;
const FINISHED = new Set(['Succeeded', 'Failed', 'RolledBack']);

/** A Deployment of `project` (label, owner reference) releasing `spec`. */
export function deploymentFor(project: Project, name: string, spec: Omit<Deployment['spec'], 'project'>): Deployment {
  return {
    apiVersion: 'apps.stratus.dev/v1alpha1',
    kind: 'Deployment',
    metadata: {
      name,
      namespace: project.metadata?.namespace ?? 'default',
      labels: { [PROJECT_LABEL]: project.metadata?.name ?? '' },
      ownerReferences: [
        {
          apiVersion: apiVersionOf(Resources.projects),
          kind: 'Project',
          name: project.metadata?.name ?? '',
          uid: project.metadata?.uid ?? '',
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: { project: project.metadata?.name ?? '', ...spec },
  };
}

/**
 * A unique Deployment name: project, creation time in ms (base 36, so names of one project
 * sort in creation order where creationTimestamp's seconds tie), what it releases.
 */
export function deploymentName(project: string, what: string): string {
  return `${project}-${Date.now().toString(36)}-${what}`.slice(0, 253);
}

const newestFirst = (a: Deployment, b: Deployment): number => {
  const ta = a.metadata?.creationTimestamp ?? '';
  const tb = b.metadata?.creationTimestamp ?? '';
  return ta !== tb ? (ta < tb ? 1 : -1) : (a.metadata?.name ?? '') < (b.metadata?.name ?? '') ? 1 : -1;
};

export class ProjectReconciler implements Reconciler {
  /** When each Project's source was last checked, and at which generation. */
  private readonly polled = new Map<string, { at: number; generation: number }>();

  constructor(private readonly d: ProjectReconcilerDeps) {}

  /** The Project's Deployments, newest first. */
  private history(project: Project): Deployment[] {
    return this.d.deploymentCache
      .list()
      .filter((x) => x.metadata?.namespace === project.metadata?.namespace && (x.metadata?.labels?.[PROJECT_LABEL] ?? x.spec.project) === project.metadata?.name)
      .sort(newestFirst);
  }

  async reconcile(key: string, ctx: ReconcileContext): Promise<ReconcileResult | void> {
    const project = this.d.projectCache.get(key);
    if (!project || project.metadata?.deletionTimestamp) {
      this.polled.delete(key);
      return;
    }
    const name = project.metadata?.name ?? '';
    const pollMs = this.d.pollIntervalMs ?? 15_000;
    const fields: Partial<Status> = {};
    if (this.d.apiURL) {
      const ns = project.metadata?.namespace ?? 'default';
      fields.pushURL = pushURL(this.d.apiURL, ns, name, 'project');
      fields.pillarPushURL = pushURL(this.d.apiURL, ns, name, 'pillar');
    }
    const conditions: ConditionInput[] = [];
    let history = this.history(project);

    // The remote is asked once per poll interval or spec change, not on every Deployment
    // status write that wakes this reconciler up.
    const generation = project.metadata?.generation ?? 0;
    const last = this.polled.get(key);
    const due = !last || last.generation !== generation || performance.now() - last.at >= pollMs;
    const poll = { requeueAfterMs: due ? pollMs : Math.max(1, pollMs - (performance.now() - last.at)) };
    if (due) this.polled.set(key, { at: performance.now(), generation }); // monotonic: a clock jump neither stalls nor floods polling

    const git = project.spec.source.git;
    try {
      if (!due) {
        // nothing to ask the source this time
      } else if (git) {
        const commit = await resolveRef(git.url, git.ref ?? 'main');
        fields.lastCommit = commit;
        if (commit !== project.status?.lastCommit) {
          // made already (a crash before the status write), or a pushed ref not resolved yet that will release it
          const existing = history.find(
            (x) => x.spec.commit === commit || x.status?.resolvedCommit === commit || (x.spec.ref === (git.ref ?? 'main') && !x.spec.commit && !x.status?.resolvedCommit),
          );
          const dep = existing ?? (await this.d.deployments.create(deploymentFor(project, deploymentName(name, commit.slice(0, 7)), { commit })));
          if (!existing) {
            this.d.recorder.normal(project, 'NewCommit', `${git.ref ?? 'main'} is at ${commit.slice(0, 12)}: Deployment ${dep.metadata?.name}`);
            history = [dep, ...history];
          }
          fields.lastDeployment = dep.metadata?.name ?? '';
        }
      } else if (project.spec.source.artifact) {
        const artifact = project.spec.source.artifact;
        if (artifact !== project.status?.lastArtifact) {
          const existing = history.find((x) => x.spec.artifact === artifact);
          const dep = existing ?? (await this.d.deployments.create(deploymentFor(project, deploymentName(name, 'artifact'), { artifact })));
          if (!existing) {
            this.d.recorder.normal(project, 'NewArtifact', `Deployment ${dep.metadata?.name} for ${artifact}`);
            history = [dep, ...history];
          }
          fields.lastArtifact = artifact;
          fields.lastDeployment = dep.metadata?.name ?? '';
        }
      }
      if (due) conditions.push({ type: 'Synced', status: 'True', reason: 'ReconcileSuccess', message: '' });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      ctx.log.warn({ err: message }, 'cannot follow the project source');
      const prev = project.status?.conditions?.find((c) => c.type === 'Synced');
      if (prev?.message !== message) this.d.recorder.warning(project, 'SourceError', message);
      conditions.push({ type: 'Synced', status: 'False', reason: 'SourceError', message });
    }

    await this.prune(project, history);

    const newest = history[0];
    const phase = newest?.status?.phase ?? 'Pending';
    if (!newest) conditions.push({ type: 'Ready', status: 'False', reason: 'NoDeployment', message: 'nothing deployed yet' });
    else if (phase === 'Succeeded') conditions.push({ type: 'Ready', status: 'True', reason: 'Deployed', message: `${newest.metadata?.name}: release ${newest.status?.releaseID}` });
    else if (FINISHED.has(phase)) {
      conditions.push({ type: 'Ready', status: 'False', reason: phase, message: `${newest.metadata?.name}: stage ${newest.status?.failedStage ?? '?'} failed` });
    } else conditions.push({ type: 'Ready', status: 'False', reason: 'Deploying', message: `${newest.metadata?.name} is ${phase}` });

    const { namespace } = splitKey(objectKey(project));
    await updateStatus(this.d.projects, namespace, name, (fresh) => {
      if (fresh.metadata?.uid !== project.metadata?.uid) return false;
      const generation = fresh.metadata?.generation ?? 0;
      const st: Status = { ...(fresh.status ?? {}), ...fields, observedGeneration: generation };
      for (const c of conditions) st.conditions = setCondition(st.conditions, c, generation);
      fresh.status = st;
    });
    return poll;
  }

  /** Deletes finished Deployments beyond the history limit, oldest first. */
  private async prune(project: Project, history: Deployment[]): Promise<void> {
    const limit = this.d.historyLimit ?? 10;
    const finished = history.filter((x) => FINISHED.has(x.status?.phase ?? ''));
    for (const old of finished.slice(limit)) {
      await this.d.deployments.delete(old.metadata?.namespace, old.metadata?.name ?? '');
      this.d.recorder.normal(project, 'Pruned', `deleted Deployment ${old.metadata?.name} (history limit ${limit})`);
    }
  }
}

export interface ProjectControllerSettings {
  connections: NodeConnections;
  secrets: SecretReader;
  instanceCache: Informer<Instance>;
  nodeCache: Informer<ComputeNode>;
  /**
   * The controllers' own files: Git mirrors, kept release artifacts, SSH keys and pinned host
   * keys. Default `$STRATUS_PROJECTS_DIR`, else `~/.cache/stratus/projects`.
   */
  workDir?: string;
  /** Source poll interval. Default `$STRATUS_PROJECT_POLL_MS`, else 15 s. */
  pollIntervalMs?: number;
  /** Base directory of projects on the guests. Default `$STRATUS_GUEST_ROOT`, else `/srv/projects`. */
  guestRoot?: string;
  /** Finished Deployments kept per Project. Default 10. */
  historyLimit?: number;
  /** The API server's URL (for `status.pushURL`); without it the push remotes are not advertised. */
  apiURL?: string;
  /** Where the API server keeps the push remotes (`DATA_DIR/git`): pushed Projects are released from there. */
  gitDir?: string;
}

/** Registers the Project and Deployment controllers on `mgr`. */
export function registerProjectControllers(mgr: Manager, s: ProjectControllerSettings): void {
  const workDir = s.workDir ?? process.env.STRATUS_PROJECTS_DIR ?? join(homedir(), '.cache', 'stratus', 'projects');
  const pollEnv = Number(process.env.STRATUS_PROJECT_POLL_MS);
  const projects = mgr.resource<Project>(Resources.projects);
  const deployments = mgr.resource<Deployment>(Resources.deployments);
  const projectCache = mgr.informer<Project>(Resources.projects);
  const deploymentCache = mgr.informer<Deployment>(Resources.deployments);
  const users = mgr.resource<User>(Resources.users);

  mgr
    .addController(
      { name: 'project', concurrency: 2 },
      projectCache,
      new ProjectReconciler({
        projects,
        projectCache,
        deployments,
        deploymentCache,
        recorder: mgr.eventRecorder<ProjectEventReason>('project-controller'),
        pollIntervalMs: s.pollIntervalMs ?? (pollEnv > 0 ? pollEnv : 15_000),
        ...(s.historyLimit !== undefined ? { historyLimit: s.historyLimit } : {}),
        ...(s.apiURL ? { apiURL: s.apiURL } : {}),
      }),
    )
    // Ready follows the newest Deployment's phase
    .watches(deploymentCache, (x) => [`${x.metadata?.namespace}/${x.metadata?.labels?.[PROJECT_LABEL] ?? x.spec.project}`]);

  const deploymentReconciler = new DeploymentReconciler({
    deployments,
    deploymentCache,
    projects,
    projectCache,
    instanceCache: s.instanceCache,
    nodeCache: s.nodeCache,
    connections: s.connections,
    secrets: s.secrets,
    mirrors: new GitMirrors(join(workDir, 'git')),
    artifacts: new ArtifactStore(join(workDir, 'artifacts')),
    workDir,
    ...(s.gitDir ? { gitDir: s.gitDir } : {}),
    // mail to a Deployment's initiator: the User's spec.email (none when the User is unknown)
    userEmail: async (name) => (await users.get(undefined, name).catch(() => undefined))?.spec.email,
    recorder: mgr.eventRecorder<DeploymentEventReason>('deployment-controller'),
    ...((s.guestRoot ?? process.env.STRATUS_GUEST_ROOT) ? { guestRoot: s.guestRoot ?? process.env.STRATUS_GUEST_ROOT } : {}),
  });
  mgr
    .addController({ name: 'deployment', concurrency: 4 }, deploymentCache, deploymentReconciler)
    // a finished Deployment lets the next one of its Project start
    .watches(deploymentCache, (x) =>
      FINISHED.has(x.status?.phase ?? '')
        ? deploymentCache
            .list()
            .filter((o) => o.metadata?.namespace === x.metadata?.namespace && o.spec.project === x.spec.project && !FINISHED.has(o.status?.phase ?? ''))
            .map((o) => objectKey(o))
        : [],
    );
}
