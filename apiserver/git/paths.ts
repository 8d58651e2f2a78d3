/**
 * The push remotes' URLs and what RBAC asks of them. Every Project has two Git remotes on the
 * API server's address, served over Git's smart HTTP protocol:
 *
 * ```
 * /git/projects/NS/NAME/project.git   the code; a push to the Project's ref deploys it
 * /git/projects/NS/NAME/pillar.git    the private configuration (the corpus pillar)
 * ```
 *
 * (`/git/` is no Kubernetes path.) A request is authorized as the Kubernetes request it
 * amounts to: pushing code creates a Deployment (`create deployments.apps.stratus.dev` in NS),
 * fetching code reads the Project (`get projects` NAME), and the pillar, private, needs
 * `update projects` NAME both ways.
 */
import type { RequestAttributes } from '../auth/requestinfo.js';

export const GIT_PREFIX = '/git/projects/';

export type PushRepo = 'project' | 'pillar';

export interface GitPath {
  namespace: string;
  project: string;
  repo: PushRepo;
  /** What follows `NAME.git` (`/info/refs`, `/git-receive-pack`, ...). */
  rest: string;
}

const LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** Parses `/git/projects/NS/NAME/(project|pillar).git/...`; undefined for anything else. */
export function parseGitPath(pathname: string): GitPath | undefined {
  if (!pathname.startsWith(GIT_PREFIX)) return undefined;
  const m = /^([^/]+)\/([^/]+)\/(project|pillar)\.git(\/.*)?$/.exec(pathname.slice(GIT_PREFIX.length));
  if (!m || !LABEL.test(m[1]!) || !LABEL.test(m[2]!)) return undefined;
  return { namespace: m[1]!, project: m[2]!, repo: m[3] as PushRepo, rest: m[4] ?? '' };
}

/** Whether the request writes (git-receive-pack, or its ref advertisement). */
export function isPush(rest: string, search: URLSearchParams): boolean {
  return rest === '/git-receive-pack' || (rest === '/info/refs' && search.get('service') === 'git-receive-pack');
}

/** The Kubernetes request a Git request amounts to (see the file comment). */
export function gitRequestAttributes(url: URL): RequestAttributes | undefined {
  const g = parseGitPath(url.pathname);
  if (!g) return undefined;
  const base = { path: url.pathname, resourceRequest: true, apiGroup: 'apps.stratus.dev', apiVersion: 'v1alpha1', subresource: '', namespace: g.namespace };
  if (g.repo === 'pillar') return { ...base, verb: 'update', resource: 'projects', name: g.project };
  if (isPush(g.rest, url.searchParams)) return { ...base, verb: 'create', resource: 'deployments', name: '' };
  return { ...base, verb: 'get', resource: 'projects', name: g.project };
}

/** The full remote URL of a Project's repo, given the API server's URL. */
export function pushURL(apiURL: string, namespace: string, project: string, repo: PushRepo): string {
  return `${apiURL.replace(/\/$/, '')}${GIT_PREFIX}${namespace}/${project}/${repo}.git`;
}

/** Where the bare repo lives under the server's git directory. */
export function repoDir(gitDir: string, namespace: string, project: string, repo: PushRepo): string {
  return `${gitDir}/${namespace}/${project}/${repo}.git`;
}

/** Where the pre-receive hook leaves the tree of a pushed commit for the Deployment controller. */
export function pushedTree(gitDir: string, namespace: string, project: string, commit: string): string {
  return `${gitDir}/${namespace}/${project}/pushes/${commit}.tar.gz`;
}
