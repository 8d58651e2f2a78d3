/**
 * A real Git remote for tests: a bare repository in a temp dir (`file://` URL) and a working
 * clone that commits and pushes to it.
 */
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { execFileP, removeDir, requireBinary, tempDir } from './process.js';

export interface GitRemote {
  /** `file://` URL of the bare repository. */
  url: string;
  dir: string;
  /**
   * Commits `files` on `branch` (paths under `.stratus/` are made executable; `null` deletes)
   * and pushes; resolves to the commit id.
   */
  commit(files: Record<string, string | null>, message: string, branch?: string): Promise<string>;
  remove(): Promise<void>;
}

export async function startGitRemote(): Promise<GitRemote> {
  const gitBin = requireBinary('git');
  const dir = await tempDir('git');
  const bare = join(dir, 'remote.git');
  const work = join(dir, 'work');
  const git = async (args: string[], cwd = work): Promise<string> => {
    const env = { ...process.env, GIT_AUTHOR_NAME: 'test', GIT_AUTHOR_EMAIL: 'test@127.0.0.1', GIT_COMMITTER_NAME: 'test', GIT_COMMITTER_EMAIL: 'test@127.0.0.1' };
    return (await execFileP(gitBin, args, { cwd, env })).stdout.trim();
  };
  await git(['init', '--quiet', '--bare', '--initial-branch=main', bare], dir);
  await git(['init', '--quiet', '--initial-branch=main', work], dir);
  const url = pathToFileURL(bare).href;
  return {
    url,
    dir,
    async commit(files, message, branch = 'main') {
      const current = await git(['branch', '--show-current']).catch(() => '');
      if (current !== branch) await git(['checkout', '--quiet', '-B', branch]);
      for (const [path, content] of Object.entries(files)) {
        const p = join(work, path);
        if (content === null) {
          await rm(p, { force: true, recursive: true });
          continue;
        }
        await mkdir(dirname(p), { recursive: true });
        await writeFile(p, content);
        if (path.startsWith('.stratus/')) await chmod(p, 0o755);
      }
      await git(['add', '-A', '.']);
      await git(['commit', '--quiet', '--allow-empty', '-m', message]);
      await git(['push', '--quiet', '--force', url, `HEAD:refs/heads/${branch}`]);
      return git(['rev-parse', 'HEAD']);
    },
    remove: () => removeDir(dir),
  };
}
