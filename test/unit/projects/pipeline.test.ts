/**
 * The release pipeline against a real directory: a LocalChannel runs the stage shell with
 * child_process, and a temp dir stands in for the guest's /srv/projects.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, readlink, writeFile, chmod } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { LocalChannel } from '../../../providers/guest/local.js';
import { runRelease, readGuestFile, bundlePath, type ReleasePlan, type StageReport } from '../../../controllers/pipeline/engine.js';
import { MODE_STAGES, type ReleaseMode } from '../../../controllers/pipeline/stages.js';
import { execFileP, removeDir, tempDir } from '../../harness/process.js';

let dir = '';
before(async () => {
  dir = await tempDir('pipeline');
});
after(async () => {
  await removeDir(dir);
});

/** Every script appends its stage name (and version) to data/log. */
const logging = (stage: string, extra = ''): string => `#!/bin/sh\necho "${stage} $STRATUS_RELEASE_ID" >> "$STRATUS_DATA_DIR/log"\n${extra}`;

async function tree(name: string, files: Record<string, string>): Promise<Buffer> {
  const d = join(dir, 'trees', name);
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(d, path, '..'), { recursive: true });
    await writeFile(join(d, path), content);
    if (path.startsWith('.stratus/')) await chmod(join(d, path), 0o755);
  }
  const { stdout } = await execFileP('tar', ['-c', '-C', d, '.'], { encoding: 'buffer', maxBuffer: 64 << 20 });
  return stdout;
}

function app(version: string, opts: { failActivate?: boolean; upgrade?: string } = {}): Record<string, string> {
  return {
    'www/index.html': `${version}\n`,
    '.stratus/configure': logging('configure', `echo "configured for $STRATUS_ENVIRONMENT"\necho ${version} > "$STRATUS_DATA_DIR/seen-by-configure"`),
    '.stratus/build': logging('build'),
    '.stratus/reconfigure': logging('reconfigure'),
    '.stratus/activate': logging('activate', opts.failActivate ? 'echo "activate of ' + version + ' is broken" >&2\nexit 3\n' : `cp www/index.html "$STRATUS_DATA_DIR/served"\n`),
    '.stratus/upgrade': logging('upgrade', opts.upgrade ?? `echo migrated ${version} >> "$STRATUS_DATA_DIR/migrations"`),
    '.stratus/bundle': logging('bundle'),
    '.stratus/post_install': logging('post_install'),
    '.stratus/rollback': logging('rollback', `cp www/index.html "$STRATUS_DATA_DIR/served"\necho "rolled back from $STRATUS_FAILED_RELEASE_ID"`),
    '.stratus/notification': logging('notification', 'echo "$STRATUS_OUTCOME $STRATUS_FAILED_STAGE" >> "$STRATUS_DATA_DIR/notifications"'),
  };
}

let n = 0;
function plan(root: string, source: Buffer, mode: ReleaseMode = 'full', extra: Partial<ReleasePlan> = {}): ReleasePlan {
  n++;
  return {
    project: 'shop',
    releaseID: `20261122T0300${String(n).padStart(2, '0')}Z-abc${n}`,
    mode,
    environment: 'staging',
    keepReleases: 5,
    root,
    source: async () => source,
    healthCheck: { command: ['sh', '-c', 'test -s "$STRATUS_DATA_DIR/served"'], timeoutSeconds: 2 },
    ...extra,
  };
}

const guest = { name: 'g1', channel: new LocalChannel('g1') };
const stateOf = (stages: StageReport[]): Record<string, string> => Object.fromEntries(stages.map((s) => [s.name, s.state]));
const logLines = async (root: string): Promise<string[]> => (await readFile(join(root, 'shop/data/log'), 'utf8')).trim().split('\n');

test('a release runs the stages in corpus order, switches current and keeps data', async () => {
  const root = join(dir, 'order');
  const p = plan(root, await tree('v1', app('v1')));
  const r = await runRelease([guest], p);
  assert.equal(r.outcome, 'Succeeded');
  assert.deepEqual(
    (await logLines(root)).map((l) => l.split(' ')[0]),
    ['configure', 'build', 'reconfigure', 'activate', 'upgrade', 'bundle', 'post_install', 'notification'],
  );
  assert.equal(await readlink(join(root, 'shop/current')), `releases/deployed/${p.releaseID}`);
  assert.equal(await readFile(join(root, 'shop/current/www/index.html'), 'utf8'), 'v1\n');
  assert.equal(stateOf(r.stages).rollback, 'Skipped');
  assert.match(r.stages.find((s) => s.name === 'configure')!.outputTail ?? '', /configured for staging/);
  // the corpus document's layout
  for (const d of ['git', 'project', 'pillar', 'data', 'build', 'deploy', 'releases/deployed', 'releases/failed']) assert.ok(existsSync(join(root, 'shop', d)), d);
  // the bundle is a readable code archive of the release
  const bundle = await readGuestFile(guest.channel, bundlePath(p));
  assert.equal(bundle[0], 0x1f, 'gzip');
});

test('a failing activate rolls back: previous release, data restored, rollback script, notification', async () => {
  const root = join(dir, 'rollback');
  const p1 = plan(root, await tree('r1', app('v1')));
  const p2 = plan(root, await tree('r2', app('v2')));
  const p3 = plan(root, await tree('r3', app('v3', { failActivate: true })));
  assert.equal((await runRelease([guest], p1)).outcome, 'Succeeded');
  assert.equal((await runRelease([guest], p2)).outcome, 'Succeeded');
  const progress: string[] = [];
  const r = await runRelease([guest], p3, { onProgress: (s) => void progress.push(s.filter((x) => x.state === 'Running').map((x) => x.name).join()) });
  assert.equal(r.outcome, 'RolledBack');
  assert.equal(r.failedStage, 'activate');
  const st = stateOf(r.stages);
  assert.equal(st.activate, 'Failed');
  assert.equal(st.upgrade, 'Skipped');
  assert.equal(st.rollback, 'Succeeded');
  assert.equal(st.notification, 'Succeeded');
  assert.match(r.stages.find((s) => s.name === 'activate')!.outputTail ?? '', /activate of v3 is broken/);
  assert.equal(await readlink(join(root, 'shop/current')), `releases/deployed/${p2.releaseID}`);
  assert.equal(await readFile(join(root, 'shop/data/served'), 'utf8'), 'v2\n');
  // v3's configure wrote into data; the rollback restored data as v2 left it
  assert.equal(await readFile(join(root, 'shop/data/seen-by-configure'), 'utf8'), 'v2\n');
  assert.ok(!existsSync(join(root, 'shop/releases/deployed', p3.releaseID)), 'the failed release left releases/deployed');
  assert.equal(await readFile(join(root, 'shop/releases/failed', p3.releaseID, 'www/index.html'), 'utf8'), 'v3\n', 'and is archived in releases/failed');
  assert.match(await readFile(join(root, 'shop/data/notifications'), 'utf8'), /RolledBack activate/);
  assert.ok(progress.includes('rollback'));
});

test('the first release failing has nothing to roll back to: Failed', async () => {
  const root = join(dir, 'firstfail');
  const r = await runRelease([guest], plan(root, await tree('f1', app('v1', { failActivate: true }))));
  assert.equal(r.outcome, 'Failed');
  assert.equal(r.failedStage, 'activate');
  assert.ok(!existsSync(join(root, 'shop/current')));
});

test('keepReleases 2 prunes the third-oldest release and its archives; data survives; each upgrade runs once', async () => {
  const root = join(dir, 'keep');
  const plans: ReleasePlan[] = [];
  for (const v of ['k1', 'k2', 'k3']) {
    const p = plan(root, await tree(v, app(v)), 'full', { keepReleases: 2 });
    plans.push(p);
    assert.equal((await runRelease([guest], p)).outcome, 'Succeeded');
  }
  const releases = await readdir(join(root, 'shop/releases/deployed'));
  assert.deepEqual(releases.filter((f) => !f.includes('.')).sort(), [plans[1]!.releaseID, plans[2]!.releaseID]);
  assert.ok(!releases.some((f) => f.startsWith(plans[0]!.releaseID)), `no archive of the pruned release: ${releases.join(' ')}`);
  assert.ok(releases.includes(`${plans[1]!.releaseID}.data.tar`), 'data archive of a kept release');
  assert.equal(await readFile(join(root, 'shop/data/migrations'), 'utf8'), 'migrated k1\nmigrated k2\nmigrated k3\n', 'each release\'s upgrade ran once');
  assert.equal((await logLines(root)).filter((l) => l.startsWith('configure')).length, 3, 'data/ kept every release\'s log');
});

test('upgrade steps in a directory run once each; a release carrying a step already done fails and rolls back', async () => {
  const root = join(dir, 'upgrades');
  const base = app('u1');
  delete base['.stratus/upgrade'];
  const step = (id: string): string => `#!/bin/sh\necho ${id} >> "$STRATUS_DATA_DIR/steps"\n`;
  assert.equal((await runRelease([guest], plan(root, await tree('u1', { ...base, '.stratus/upgrade/001-a': step('a') })))).outcome, 'Succeeded');
  assert.equal((await runRelease([guest], plan(root, await tree('u2', { ...base, '.stratus/upgrade/002-b': step('b') })))).outcome, 'Succeeded');
  const again = await runRelease([guest], plan(root, await tree('u3', { ...base, '.stratus/upgrade/002-b': step('b') })));
  assert.equal(again.outcome, 'RolledBack');
  assert.equal(again.failedStage, 'upgrade');
  assert.match(again.stages.find((s) => s.name === 'upgrade')!.outputTail ?? '', /002-b was already done/);
  assert.equal(await readFile(join(root, 'shop/data/steps'), 'utf8'), 'a\nb\n');
});

test('editable runs in place and skips archive, release-sync, reconfigure, bundle and rollback', async () => {
  const root = join(dir, 'editable');
  const r = await runRelease([guest], plan(root, await tree('e1', app('e1')), 'editable'));
  assert.equal(r.outcome, 'Succeeded');
  const st = stateOf(r.stages);
  for (const s of ['archive', 'release-sync', 'reconfigure', 'bundle', 'rollback']) assert.equal(st[s], 'Skipped', s);
  for (const s of ['configure', 'build', 'activate', 'upgrade', 'post_install']) assert.equal(st[s], 'Succeeded', s);
  assert.deepEqual((await logLines(root)).map((l) => l.split(' ')[0]), ['configure', 'build', 'activate', 'upgrade', 'post_install', 'notification']);
  assert.equal(await readlink(join(root, 'shop/current')), 'project');
  assert.deepEqual(await readdir(join(root, 'shop/releases/deployed')), []);
});

test('final deploys without build', async () => {
  const root = join(dir, 'final');
  const r = await runRelease([guest], plan(root, await tree('fin', app('fin')), 'final'));
  assert.equal(r.outcome, 'Succeeded');
  assert.deepEqual((await logLines(root)).map((l) => l.split(' ')[0]), ['configure', 'reconfigure', 'activate', 'upgrade', 'bundle', 'post_install', 'notification']);
});

test('a release interrupted after build resumes without running completed stages again', async () => {
  const root = join(dir, 'resume');
  const p = plan(root, await tree('res', app('res')));
  const stop = new AbortController();
  await assert.rejects(
    runRelease([guest], p, {
      signal: stop.signal,
      onProgress: (s) => {
        if (s.find((x) => x.name === 'build')?.state === 'Succeeded') stop.abort();
      },
    }),
    /interrupted/,
  );
  assert.deepEqual((await logLines(root)).map((l) => l.split(' ')[0]), ['configure', 'build']);
  const r = await runRelease([guest], p);
  assert.equal(r.outcome, 'Succeeded');
  assert.deepEqual(
    (await logLines(root)).map((l) => l.split(' ')[0]),
    ['configure', 'build', 'reconfigure', 'activate', 'upgrade', 'bundle', 'post_install', 'notification'],
  );
  // and running a finished release again runs nothing
  await runRelease([guest], p);
  assert.equal((await logLines(root)).length, 8);
});

test('a failed stage is journaled: running the release again goes straight to the (journaled) rollback', async () => {
  const root = join(dir, 'refail');
  await runRelease([guest], plan(root, await tree('rf1', app('v1'))));
  const p = plan(root, await tree('rf2', app('v2', { failActivate: true })));
  assert.equal((await runRelease([guest], p)).outcome, 'RolledBack');
  const before = (await logLines(root)).length;
  const again = await runRelease([guest], p);
  assert.equal(again.outcome, 'RolledBack');
  assert.equal((await logLines(root)).length, before, 'no script ran twice');
});

test('an HTTP health check that never answers fails the release', async () => {
  const root = join(dir, 'http');
  await runRelease([guest], plan(root, await tree('h1', app('v1'))));
  const p = plan(root, await tree('h2', app('v2')), 'full', { healthCheck: { httpGet: { url: 'http://127.0.0.1:1/' }, timeoutSeconds: 1 } });
  const r = await runRelease([guest], p);
  assert.equal(r.failedStage, 'activate');
  assert.match(r.stages.find((s) => s.name === 'activate')!.outputTail ?? '', /health check failed/);
  // the rollback's health check uses the same (failing) check, so the outcome is Failed, and current is back on v1 anyway
  assert.equal(r.outcome, 'Failed');
  assert.equal(await readFile(join(root, 'shop/current/www/index.html'), 'utf8'), 'v1\n');
});

/** The corpus document's "Workflows" lists, stage by stage (trigger is the push itself). */
const DOCUMENT: Record<ReleaseMode, string[]> = {
  full: ['archive', 'initialization', 'release-sync', 'configure', 'build', 'reconfigure', 'activate', 'upgrade', 'bundle', 'post_install', 'rollback', 'notification'],
  editable: ['initialization', 'configure', 'build', 'activate', 'upgrade', 'post_install', 'notification'],
  staging: ['initialization', 'configure', 'build', 'reconfigure', 'activate', 'upgrade', 'bundle', 'post_install', 'rollback', 'notification'],
  final: ['archive', 'initialization', 'release-sync', 'configure', 'reconfigure', 'activate', 'upgrade', 'bundle', 'post_install', 'rollback', 'notification'],
};

test('each mode runs exactly the document\'s stage list', async () => {
  for (const mode of Object.keys(DOCUMENT) as ReleaseMode[]) {
    assert.deepEqual(MODE_STAGES[mode], DOCUMENT[mode], mode);
    // and a release in that mode reports every other stage Skipped from the start
    const root = join(dir, `table-${mode}`);
    const seen: string[][] = [];
    const r = await runRelease([guest], plan(root, await tree(`t-${mode}`, app(mode)), mode), {
      onProgress: (s) => void seen.push(s.filter((x) => x.state !== 'Skipped').map((x) => x.name)),
    });
    assert.equal(r.outcome, 'Succeeded', `${mode}: ${JSON.stringify(r.stages)}`);
    assert.deepEqual(seen[0], DOCUMENT[mode], `${mode}: the stages it plans`);
    const ran = r.stages.filter((s) => s.state === 'Succeeded').map((s) => s.name);
    assert.deepEqual(ran, DOCUMENT[mode].filter((s) => s !== 'rollback'), `${mode}: the stages it ran`);
  }
});

test('regression: a current that is a directory fails the activation instead of getting the link inside it', async () => {
  const root = join(dir, 'curdir');
  await mkdir(join(root, 'shop/current'), { recursive: true });
  const p = plan(root, await tree('cd1', app('v1')));
  const r = await runRelease([guest], p);
  assert.equal(r.failedStage, 'activate');
  assert.equal(r.outcome, 'Failed', 'nothing to roll back to, and never Succeeded');
  assert.match(r.stages.find((s) => s.name === 'activate')!.outputTail ?? '', /cannot switch .*current/);
  assert.deepEqual(await readdir(join(root, 'shop/current')), [], 'no link was created inside current/');
});

test('the switch of current is a rename of a new symlink over the old one', async () => {
  const root = join(dir, 'atomic');
  const p1 = plan(root, await tree('a1', app('v1')));
  await runRelease([guest], p1);
  const p2 = plan(root, await tree('a2', app('v2')));
  const r = await runRelease([guest], p2);
  assert.equal(r.outcome, 'Succeeded');
  assert.equal(await readlink(join(root, 'shop/current')), `releases/deployed/${p2.releaseID}`);
  assert.ok(!existsSync(join(root, 'shop/.current.new')));
  assert.ok(!existsSync(join(root, `shop/releases/deployed/${p1.releaseID}/${p2.releaseID}`)), 'no link inside the old release');
});

test('staging runs in place, wipes build/ before building, and a failure restores project/ from the previous bundle', async () => {
  const root = join(dir, 'staging');
  const buildCheck = 'test -e "$STRATUS_BUILD_DIR/left-over" && echo "build dir not wiped" && exit 9\necho x > "$STRATUS_BUILD_DIR/left-over"\n';
  const v1 = { ...app('s1'), '.stratus/build': logging('build', buildCheck) };
  const p1 = plan(root, await tree('s1', v1), 'staging');
  assert.equal((await runRelease([guest], p1)).outcome, 'Succeeded');
  assert.equal(await readlink(join(root, 'shop/current')), 'project');
  assert.ok(existsSync(join(root, `shop/releases/deployed/${p1.releaseID}.tar.gz`)), 'the cooked deliverable');
  const p2 = plan(root, await tree('s2', { ...app('s2', { failActivate: true }), '.stratus/build': logging('build', buildCheck) }), 'staging');
  const r = await runRelease([guest], p2);
  assert.equal(stateOf(r.stages).build, 'Succeeded', 'the second build found build/ empty');
  assert.equal(r.outcome, 'RolledBack');
  assert.equal(await readFile(join(root, 'shop/project/www/index.html'), 'utf8'), 's1\n', 'project/ is the previous release again');
  assert.equal(await readFile(join(root, 'shop/releases/failed', p2.releaseID, 'www/index.html'), 'utf8'), 's2\n');
  assert.equal(await readFile(join(root, 'shop/data/served'), 'utf8'), 's1\n', 'the rollback script ran in the restored project');
});

test('the pillar reaches pillar/ beside project/ and its content is never in the stage output', async () => {
  const root = join(dir, 'pillar');
  const pillar = await tree('pil', { 'init.sls': 'db_password: hunter2-secret\n' });
  const v = { ...app('p1'), '.stratus/configure': '#!/bin/sh\ngrep db_password "$STRATUS_PILLAR_DIR/init.sls" | cut -d" " -f2 > "$STRATUS_DATA_DIR/pw"\necho configured\n' };
  const p = plan(root, await tree('p1', v), 'full', { pillar: async () => pillar });
  const r = await runRelease([guest], p);
  assert.equal(r.outcome, 'Succeeded');
  assert.equal(await readFile(join(root, 'shop/pillar/init.sls'), 'utf8'), 'db_password: hunter2-secret\n');
  assert.equal(await readFile(join(root, 'shop/data/pw'), 'utf8'), 'hunter2-secret\n');
  assert.ok(!JSON.stringify(r.stages).includes('hunter2'), 'no stage output shows the pillar');
  assert.ok(!existsSync(join(root, `shop/.journal/${p.releaseID}/pillar`)), 'no copy left in the journal');
});

test('a file deleted from the pushed tree is gone from project/ and the new release (full and editable)', async () => {
  for (const mode of ['full', 'editable'] as const) {
    const root = join(dir, `prune-${mode}`);
    const v1 = await runRelease([guest], plan(root, await tree(`p1-${mode}`, { ...app('v1'), 'www/old.html': 'old\n' }), mode));
    assert.equal(v1.outcome, 'Succeeded');
    assert.equal(await readFile(join(root, 'shop/current/www/old.html'), 'utf8'), 'old\n');
    const v2 = await runRelease([guest], plan(root, await tree(`p2-${mode}`, app('v2')), mode));
    assert.equal(v2.outcome, 'Succeeded');
    assert.equal(await readFile(join(root, 'shop/current/www/index.html'), 'utf8'), 'v2\n');
    assert.equal(existsSync(join(root, 'shop/current/www/old.html')), false, `${mode}: the release lacks the deleted file`);
    assert.equal(existsSync(join(root, 'shop/project/www/old.html')), false, `${mode}: project/ lacks the deleted file`);
  }
});
