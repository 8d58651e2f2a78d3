/**
 * Where a release's tree comes from, on the control plane's side: a Git remote (resolved with
 * `git ls-remote`, exported with `git archive` from a bare mirror the controller keeps), or a
 * release artifact (a tar.gz made by a `cooking` deployment's bundle stage).
 *
 * Artifacts are kept by the control plane in `ArtifactStore` — a directory on the controller's
 * host (`<dir>/<namespace>/<project>/<releaseID>.tar.gz`), named by a `file://` URL. The
 * controller fetches an artifact (file:// or http(s)://) and uploads it to the guests through
 * their exec channel, so guests need no route back to the control plane.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gunzipSync } from 'node:zlib';

function git(args: string[], env: Record<string, string> = {}, cwd?: string): Promise<{ stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      'git',
      args,
      { cwd, env: { ...process.env, GIT_TERMINAL_PROMPT: '0', ...env }, encoding: 'buffer', maxBuffer: 512 << 20, timeout: 10 * 60_000 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`git ${args[0]} failed: ${stderr.toString().trim() || err.message}`));
        else resolve({ stdout, stderr: stderr.toString() });
      },
    );
  });
}

/** Options for reaching a remote: extra environment (e.g. GIT_SSH_COMMAND). */
export interface GitAccess {
  env?: Record<string, string>;
}

/**
 * The commit `ref` names on `url`: a full commit id is returned as is; otherwise the branch
 * (`refs/heads/REF`), then the tag (`refs/tags/REF`, peeled), then an exact ref name.
 */
export async function resolveRef(url: string, ref: string, access: GitAccess = {}): Promise<string> {
  if (/^[0-9a-f]{40}$/.test(ref)) return ref;
  const { stdout } = await git(['ls-remote', url], access.env);
  const refs = new Map<string, string>();
  for (const line of stdout.toString('utf8').split('\n')) {
    const [sha, name] = line.split('\t');
    if (sha && name) refs.set(name, sha);
  }
  const found = refs.get(`refs/heads/${ref}`) ?? refs.get(`refs/tags/${ref}^{}`) ?? refs.get(`refs/tags/${ref}`) ?? refs.get(ref);
  if (!found) throw new Error(`ref "${ref}" does not exist on ${url}`);
  return found;
}

/** Bare mirrors of remotes, under `dir`, so a deploy fetches only what is new. */
export class GitMirrors {
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(private readonly dir: string) {}

  /** A plain tar of the tree at `commit` (short ids accepted) of `url`. */
  async archive(url: string, commit: string, access: GitAccess = {}): Promise<Buffer> {
    const mirror = join(this.dir, `${createHash('sha256').update(url).digest('hex').slice(0, 24)}.git`);
    const previous = this.locks.get(mirror) ?? Promise.resolve();
    const job = previous.catch(() => undefined).then(async () => {
      await mkdir(mirror, { recursive: true });
      await git(['init', '--quiet', '--bare', mirror]);
      const have = await git(['-C', mirror, 'cat-file', '-e', `${commit}^{commit}`]).then(
        () => true,
        () => false,
      );
      if (!have) await git(['-C', mirror, 'fetch', '--quiet', '--force', '--tags', url, '+refs/heads/*:refs/heads/*'], access.env);
      const { stdout } = await git(['-C', mirror, 'archive', '--format=tar', commit]);
      return stdout;
    });
    this.locks.set(mirror, job);
    return job;
  }
}

/** Release artifacts kept by the control plane. */
export class ArtifactStore {
  constructor(private readonly dir: string) {}

  /** Keeps `tarGz` as release `releaseID` of `namespace/project`; returns its URL. */
  async put(namespace: string, project: string, releaseID: string, tarGz: Buffer): Promise<string> {
    const path = join(this.dir, namespace, project, `${releaseID}.tar.gz`);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(`${path}.partial`, tarGz);
    await rename(`${path}.partial`, path);
    return pathToFileURL(path).href;
  }
}

/** Reads an artifact URL (file:// or http(s)://) and returns it as a plain tar. */
export async function fetchArtifact(url: string, signal?: AbortSignal): Promise<Buffer> {
  let body: Buffer;
  if (url.startsWith('file://')) {
    body = await readFile(fileURLToPath(url));
  } else {
    const res = await fetch(url, { ...(signal ? { signal } : {}) });
    if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
    body = Buffer.from(await res.arrayBuffer());
  }
  return body[0] === 0x1f && body[1] === 0x8b ? gunzipSync(body) : body;
}
