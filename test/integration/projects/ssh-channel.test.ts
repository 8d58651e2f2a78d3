/**
 * The release pipeline over SSH to a real OpenSSH server on loopback (the VM stand-in): the
 * SshChannel runs the stages with the system ssh client and uploads with tar over ssh.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readlink, writeFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SshChannel } from '../../../providers/guest/ssh.js';
import { GuestUnreachable } from '../../../providers/guest/channel.js';
import { runRelease, type ReleasePlan } from '../../../controllers/pipeline/engine.js';
import { startSshd, type Sshd } from '../../harness/sshd.js';
import { execFileP, removeDir, tempDir } from '../../harness/process.js';

let sshd: Sshd | undefined;
let dir = '';
before(async () => {
  dir = await tempDir('sshpipe');
  sshd = await startSshd();
});
after(async () => {
  await sshd?.stop();
  await removeDir(dir);
});

async function tarOf(name: string, files: Record<string, string>): Promise<Buffer> {
  const d = join(dir, 'trees', name);
  for (const [p, c] of Object.entries(files)) {
    await mkdir(join(d, p, '..'), { recursive: true });
    await writeFile(join(d, p), c, { mode: p.startsWith('.stratus/') ? 0o755 : 0o644 });
  }
  return (await execFileP('tar', ['-c', '-C', d, '.'], { encoding: 'buffer' })).stdout;
}

const app = (v: string, broken = false): Record<string, string> => ({
  'index.html': `${v}\n`,
  '.stratus/build': `#!/bin/sh\necho "built ${v} over $(echo ssh)"\n`,
  '.stratus/activate': broken ? '#!/bin/sh\necho "no luck" >&2; exit 4\n' : `#!/bin/sh\ncp index.html "$STRATUS_DATA_DIR/served"\n`,
  '.stratus/rollback': `#!/bin/sh\ncp index.html "$STRATUS_DATA_DIR/served"\n`,
  // an upgrade step ships once: a release carrying a step already done fails
  ...(v === 'v1' ? { '.stratus/upgrade': `#!/bin/sh\necho once >> "$STRATUS_DATA_DIR/upgrades"\n` } : {}),
});

test('v1, v2, then a failing v3 rolled back, over SSH with a pinned host key', async () => {
  const root = join(dir, 'srv');
  const channel = new SshChannel('vm1', { host: sshd!.host, port: sshd!.port, user: sshd!.user, privateKey: sshd!.privateKey, knownHosts: sshd!.knownHosts });
  try {
    const plan = (id: string, src: Buffer): ReleasePlan => ({
      project: 'site',
      releaseID: id,
      mode: 'full',
      environment: 'prod',
      keepReleases: 5,
      root,
      source: async () => src,
      healthCheck: { command: ['sh', '-c', 'test -s "$STRATUS_DATA_DIR/served"'], timeoutSeconds: 2 },
    });
    const guests = [{ name: 'vm1', channel }];
    const r1 = await runRelease(guests, plan('20261122T000001Z-aaaaaaa', await tarOf('v1', app('v1'))));
    assert.equal(r1.outcome, 'Succeeded', JSON.stringify(r1.stages));
    assert.match(r1.stages.find((s) => s.name === 'build')?.outputTail ?? '', /built v1 over ssh/);
    assert.equal((await runRelease(guests, plan('20261122T000002Z-bbbbbbb', await tarOf('v2', app('v2'))))).outcome, 'Succeeded');
    const r3 = await runRelease(guests, plan('20261122T000003Z-ccccccc', await tarOf('v3', app('v3', true))));
    assert.equal(r3.outcome, 'RolledBack');
    assert.equal(r3.failedStage, 'activate');
    assert.match(r3.stages.find((s) => s.name === 'activate')?.outputTail ?? '', /no luck/);
    assert.equal(await readlink(join(root, 'site/current')), 'releases/deployed/20261122T000002Z-bbbbbbb');
    assert.ok(existsSync(join(root, 'site/releases/failed/20261122T000003Z-ccccccc/index.html')), 'the failed release is archived');
    assert.equal(await readFile(join(root, 'site/data/served'), 'utf8'), 'v2\n');
    assert.equal(await readFile(join(root, 'site/data/upgrades'), 'utf8'), 'once\n');
  } finally {
    await channel.close();
  }
});

test('a host key that does not match the pinned one is refused (GuestUnreachable)', async () => {
  const wrong = sshd!.knownHosts.replace(/ssh-ed25519 \S+/, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAw3c9jqRC6w0ogvW1V4DjSxR+Ip9rS8DHyk7yGm8s6M');
  const channel = new SshChannel('vm1', { host: sshd!.host, port: sshd!.port, user: sshd!.user, privateKey: sshd!.privateKey, knownHosts: wrong });
  try {
    await assert.rejects(channel.exec(['true']), (err: unknown) => err instanceof GuestUnreachable && /Host key verification failed|REMOTE HOST IDENTIFICATION/i.test(err.message));
  } finally {
    await channel.close();
  }
});

test('exec passes stdin, environment and working directory; exit codes come back', async () => {
  const channel = new SshChannel('vm1', { host: sshd!.host, port: sshd!.port, user: sshd!.user, privateKey: sshd!.privateKey });
  try {
    const r = await channel.exec(['sh', '-c', 'cat; echo "$GREETING from $(pwd)"; exit 7'], { stdin: 'in\n', env: { GREETING: "it's me" }, cwd: '/' });
    assert.equal(r.exitCode, 7);
    assert.equal(r.stdout, "in\nit's me from /\n");
  } finally {
    await channel.close();
  }
});
