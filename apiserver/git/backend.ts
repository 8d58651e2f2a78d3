/**
 * The Projects' Git remotes over smart HTTP: Debian git's own `git http-backend`, run as a CGI
 * program per request, behind the API server's authentication and RBAC (see `paths.ts` for
 * the URLs and the permissions). Bare repositories are made on first use, under
 * `GIT_DIR/NS/NAME/{project,pillar}.git`, for Projects that exist.
 *
 * `project.git` has a `pre-receive` hook (`hook.ts`): it exports the pushed commit, creates
 * the Deployment through the API with the pusher's own token, and streams its stages into the
 * `git push` output; a failed (rolled back) release makes the hook, and so the push, fail.
 * The token reaches the hook in its environment only (never a file or a log).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { log } from '../../runtime/log.js';
import { parseGitPath, repoDir, type GitPath } from './paths.js';

export interface GitBackendOptions {
  /** Where the bare repositories live. */
  gitDir: string;
  /** The API server's URL, for the hook. */
  apiURL: () => string;
  /** The CA (PEM) the hook trusts for the API server. */
  caCert: string;
  /** Whether Project NS/NAME exists. */
  projectExists: (namespace: string, name: string) => Promise<boolean>;
}

const HOOK = fileURLToPath(new URL('./hook.js', import.meta.url));

function fail(res: ServerResponse, code: number, reason: string, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

/** The bearer of the request's token (basic password or bearer), for the hook. */
function callerToken(req: IncomingMessage): string {
  const h = req.headers.authorization ?? '';
  const bearer = /^Bearer\s+(\S+)/i.exec(h);
  if (bearer) return bearer[1]!;
  const basic = /^Basic\s+(\S+)/i.exec(h);
  if (!basic) return '';
  const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
  return decoded.slice(decoded.indexOf(':') + 1);
}

export class GitBackend {
  private readonly ready = new Map<string, Promise<void>>();
  private readonly caFile: string;

  constructor(private readonly o: GitBackendOptions) {
    this.caFile = join(o.gitDir, 'api-ca.pem');
  }

  /** Makes the bare repo (and its hook) once. */
  private ensure(g: GitPath): Promise<void> {
    const dir = repoDir(this.o.gitDir, g.namespace, g.project, g.repo);
    let p = this.ready.get(dir);
    if (!p) {
      p = (async () => {
        await mkdir(this.o.gitDir, { recursive: true, mode: 0o700 });
        await writeFile(this.caFile, this.o.caCert);
        if (!existsSync(join(dir, 'HEAD'))) {
          await mkdir(dirname(dir), { recursive: true });
          await run('git', ['init', '--quiet', '--bare', '--initial-branch=main', dir]);
        }
        await run('git', ['-C', dir, 'config', 'http.receivepack', 'true']);
        const hooks = join(dir, 'hooks');
        await mkdir(hooks, { recursive: true });
        const hook = join(hooks, 'pre-receive');
        await writeFile(hook, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(HOOK)}\n`);
        await chmod(hook, 0o755);
      })();
      this.ready.set(dir, p);
      p.catch(() => this.ready.delete(dir));
    }
    return p;
  }

  /** Serves one request (already authenticated and authorized). */
  handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const g = parseGitPath(url.pathname);
    if (!g) return fail(res, 404, 'NotFound', `no Git repository at ${url.pathname}: the remotes are /git/projects/NAMESPACE/PROJECT/project.git and pillar.git`);
    void (async () => {
      if (!(await this.o.projectExists(g.namespace, g.project))) return fail(res, 404, 'NotFound', `projects.apps.stratus.dev "${g.project}" not found in namespace ${g.namespace}`);
      await this.ensure(g);
      this.cgi(req, res, g, url);
    })().catch((err: unknown) => {
      log.error({ component: 'git', err: err instanceof Error ? err.message : String(err) }, 'git request failed');
      fail(res, 500, 'InternalError', err instanceof Error ? err.message : String(err));
    });
  };

  private cgi(req: IncomingMessage, res: ServerResponse, g: GitPath, url: URL): void {
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      GIT_PROJECT_ROOT: join(this.o.gitDir, g.namespace, g.project),
      GIT_HTTP_EXPORT_ALL: '1',
      PATH_INFO: `/${g.repo}.git${g.rest}`,
      REQUEST_METHOD: req.method ?? 'GET',
      QUERY_STRING: url.search.slice(1),
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      REMOTE_USER: 'stratus',
      REMOTE_ADDR: req.socket.remoteAddress ?? '',
      ...(req.headers['content-length'] ? { CONTENT_LENGTH: req.headers['content-length'] } : {}),
      ...(req.headers['content-encoding'] ? { HTTP_CONTENT_ENCODING: req.headers['content-encoding'] } : {}),
      ...(typeof req.headers['git-protocol'] === 'string' ? { GIT_PROTOCOL: req.headers['git-protocol'] } : {}),
      // for the pre-receive hook
      STRATUS_API_URL: this.o.apiURL(),
      STRATUS_API_CA: this.caFile,
      STRATUS_API_TOKEN: callerToken(req),
      STRATUS_NAMESPACE: g.namespace,
      STRATUS_PROJECT: g.project,
      STRATUS_REPO: g.repo,
      STRATUS_GIT_DIR: this.o.gitDir,
    };
    const child = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    req.pipe(child.stdin);
    child.stdin.on('error', () => undefined);
    let head = Buffer.alloc(0);
    let headersDone = false;
    child.stdout.on('data', (chunk: Buffer) => {
      if (headersDone) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n') >= 0 ? head.indexOf('\r\n\r\n') : head.indexOf('\n\n');
      if (end < 0) return;
      const sep = head[end] === 0x0d ? 4 : 2;
      const lines = head.subarray(0, end).toString('latin1').split(/\r?\n/);
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const i = line.indexOf(':');
        if (i < 0) continue;
        const k = line.slice(0, i).trim();
        const v = line.slice(i + 1).trim();
        if (k.toLowerCase() === 'status') status = Number(v.split(' ')[0]) || 200;
        else headers[k] = v;
      }
      headersDone = true;
      res.writeHead(status, headers);
      // stream: git's sideband carries the hook's progress as it is written
      res.flushHeaders();
      const rest = head.subarray(end + sep);
      if (rest.length) res.write(rest);
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString('utf8')).slice(-2000)));
    child.on('error', (err) => fail(res, 500, 'InternalError', `cannot run git http-backend: ${err.message} (make deps installs git)`));
    child.on('close', (code) => {
      if (!headersDone) return fail(res, 500, 'InternalError', `git http-backend failed (${code}): ${stderr.trim()}`);
      if (code !== 0) log.info({ component: 'git', repo: url.pathname, code, stderr: stderr.trim() }, 'git http-backend exited non-zero');
      res.end();
    });
  }
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
    c.on('error', reject);
    c.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')}: ${err.trim()}`))));
  });
}
