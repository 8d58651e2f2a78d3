/**
 * The controller image (Dockerfile) can run every program the controllers spawn: each
 * executable named in a spawn/execFile call of the production code is resolved to its Debian
 * package on this machine (`dpkg -S`), and that package must be installed by the image's
 * final stage or be part of every Debian base image (Priority: required).
 *
 * Found by reading the source, so a new spawn of a new program fails this test until the
 * Dockerfile provides it (or it is listed below as a CLI-only tool, with the reason).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../harness/paths.js';
import { execFileP } from '../../harness/process.js';

const productionDirs = ['apiserver', 'cli', 'controllers', 'legacy', 'providers', 'runtime'];

/** Programs only `stratus` CLI commands run on an operator's machine, never the controller image. */
const cliOnly: Record<string, string> = {
  // `stratus image build` / `make image` build a cloud image on the operator's machine; the controllers only boot images.
  mmdebstrap: 'stratus image build',
  'mkfs.fat': 'stratus image build',
  syslinux: 'stratus image build',
  mcopy: 'stratus image build',
};

/** Patterns that name the program a child process runs. Commands run inside guests (channel.exec) are not ours. */
const spawnPatterns = [
  /\b(?:execFile|execFileP|execFileSync|spawn|spawnSync)\(\s*'([^'\s]+)'/g,
  /(?<![.\w])run\(\s*\[?\s*'([^'\s]+)'/g,
  /\bthis\.run\(\s*'([^'\s]+)'/g,
  /\bargv\s*=\s*\[\s*'([^'\s]+)'/g,
  /'-c',\s*'(?:[^']*?\s)?exec ([a-z][\w.-]*)/g,
];

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

function spawnedPrograms(): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const dir of productionDirs) {
    for (const file of sourceFiles(join(repoRoot(), dir))) {
      const text = readFileSync(file, 'utf8');
      for (const re of spawnPatterns) {
        for (const m of text.matchAll(re)) {
          const program = m[1] ?? '';
          if (!/^[a-z][\w.+-]*$/.test(program)) continue;
          found.set(program, [...(found.get(program) ?? []), file.slice(repoRoot().length + 1)]);
        }
      }
    }
  }
  return found;
}

/** The Debian package that ships `program` on this machine (usr-merged paths tried both ways). */
async function packageOf(program: string): Promise<string> {
  for (const dir of ['/usr/bin', '/bin', '/usr/sbin', '/sbin']) {
    try {
      const { stdout } = await execFileP('dpkg', ['-S', `${dir}/${program}`]);
      // Lines are `PACKAGE: PATH`; `diversion by …` lines only say who diverted the path.
      const owner = stdout.split('\n').find((l) => /^[a-z0-9][\w.+-]*: \//.test(l));
      const pkg = owner?.split(':')[0];
      if (pkg) return pkg;
    } catch {
      // not under this directory
    }
  }
  throw new Error(`no installed Debian package provides ${program} (run make deps-apt)`);
}

async function priorityOf(pkg: string): Promise<string> {
  const { stdout } = await execFileP('dpkg-query', ['-W', '-f=${Priority}', pkg]);
  return stdout.trim();
}

/** Packages the Dockerfile's last stage installs with apt-get. */
function imagePackages(): Set<string> {
  const dockerfile = readFileSync(join(repoRoot(), 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const finalStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
  const pkgs = new Set<string>();
  for (const m of finalStage.matchAll(/apt-get install ([^&\n]+)/g)) {
    for (const word of (m[1] ?? '').split(/\s+/)) if (word && !word.startsWith('-')) pkgs.add(word);
  }
  return pkgs;
}

test('the controller image provides every program the code spawns', async () => {
  const programs = spawnedPrograms();
  // The scanner must see the programs we know the code runs, or it reads nothing.
  for (const known of ['git', 'ssh', 'qemu-img', 'virsh', 'ip', 'tar']) {
    assert.ok(programs.has(known), `the source scan did not find ${known}; found ${[...programs.keys()].join(', ')}`);
  }
  for (const program of Object.keys(cliOnly)) assert.ok(programs.has(program), `cliOnly lists ${program}, which no code spawns any more`);
  const installed = imagePackages();
  const missing: string[] = [];
  for (const [program, files] of programs) {
    if (cliOnly[program]) continue;
    const pkg = await packageOf(program);
    if (installed.has(pkg) || (await priorityOf(pkg)) === 'required') continue;
    missing.push(`${program} (package ${pkg}; spawned in ${[...new Set(files)].join(', ')})`);
  }
  assert.deepEqual(missing, [], `the Dockerfile's final stage does not install: ${missing.join('; ')}`);
});
