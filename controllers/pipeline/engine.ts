/**
 * The release pipeline: one release of a project onto a set of guests, over their exec
 * channels, corpus-style. No Kubernetes types inside: the Deployment controller turns a
 * Deployment into a `ReleasePlan` and the `ReleaseResult` back into status.
 *
 * Layout on every guest (`root` defaults to `/srv/projects`):
 *
 * ```
 * ROOT/NAME/project/            the pushed tree (editable: the code runs here, in place)
 * ROOT/NAME/data/               persistent data, never replaced by a release
 * ROOT/NAME/build/              build scratch shared by releases (caches)
 * ROOT/NAME/deploy/ID/          the journal of release ID (stage markers and output)
 * ROOT/NAME/releases/ID/        the code of release ID
 * ROOT/NAME/releases/ID.tar.gz  its code archive (bundle stage)
 * ROOT/NAME/releases/ID.data.tar  data as it was when ID was replaced (archive stage)
 * ROOT/NAME/current -> releases/ID   (editable: -> project)
 * ```
 *
 * Guarantees:
 * - Stages run stage by stage across guests (a stage on every guest before the next).
 * - `current` moves only when `activate` and the health check passed on that guest.
 * - A stage that completed on a guest is journaled there (`deploy/ID/STAGE.done`, written
 *   by the same shell that ran it) and never runs again for this release: running the
 *   pipeline again after a controller restart resumes it. A stage still running from a dead
 *   controller's exec (Docker exec processes outlive their client) is waited for, not
 *   started twice. A failure is journaled too, so a resumed pipeline goes straight to the
 *   rollback.
 * - On a failure every guest is rolled back: data restored from the archive taken by this
 *   release's `archive` stage, `current` back on the previous release, that release's
 *   `.stratus/rollback` run, the health check again. The failed release's code is removed.
 * - `upgrade` steps are journaled in `data/.stratus-upgrades/` and never run twice (a rollback
 *   restores data, and with it the journal, to before the failed release).
 * - `notification` runs whatever the outcome.
 * - After a success the newest `keepReleases` releases (code and data archives) are kept.
 *
 * Scripts are `.stratus/STAGE` in the release's tree, run with `./` when executable, else
 * with `sh`, in the release directory, with `STRATUS_*` variables describing the release.
 * `upgrade` may be a file (one step, identified by its content) or a directory (a step per
 * file, by name, in name order).
 */
import type { GuestChannel } from '../../providers/guest/channel.js';
import { shellQuote as q } from '../../providers/guest/channel.js';
import { ALL_STAGES, PIPELINE_STAGES, runsStage, type PipelineStage, type ReleaseMode, type StageName } from './stages.js';

export interface HealthCheck {
  /** Argv run in the release directory; exit 0 is healthy. */
  command?: string[];
  /** Fetched from the guest (wget or curl); a 2xx answer is healthy. */
  httpGet?: { url: string };
  /** How long the check may keep failing before it fails (retried every second). Default 30. */
  timeoutSeconds?: number;
}

export interface ReleaseGuest {
  name: string;
  channel: GuestChannel;
}

export interface ReleasePlan {
  project: string;
  releaseID: string;
  mode: ReleaseMode;
  environment: string;
  keepReleases: number;
  healthCheck?: HealthCheck;
  /** Base directory of projects on the guests. Default `/srv/projects`. */
  root?: string;
  /** The tree to release as a plain tar; only called when a guest does not have it yet. */
  source: () => Promise<Buffer>;
  /** Extra variables for every script (e.g. STRATUS_COMMIT). */
  env?: Record<string, string>;
  /** Deadline of one stage on one guest. Default 30 minutes. */
  stageTimeoutMs?: number;
}

export type StageState = 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Skipped';

export interface StageReport {
  name: StageName;
  state: StageState;
  startTime?: string;
  completionTime?: string;
  outputTail?: string;
}

export type ReleaseOutcome = 'Succeeded' | 'Failed' | 'RolledBack';

export interface ReleaseResult {
  outcome: ReleaseOutcome;
  failedStage?: StageName;
  stages: StageReport[];
}

export interface ReleaseHooks {
  /** Called with a fresh copy of every stage's report whenever one changes. */
  onProgress?: (stages: StageReport[]) => Promise<void> | void;
  /** Stops between stages (the journal lets a later run resume). */
  signal?: AbortSignal;
}

const ABSENT = '__stratus_absent__';
const NO_PREVIOUS = '__stratus_no_previous__';
const TAIL_CHARS = 4000;

/** Release directories are named `<UTC time>-<commit>`, e.g. `20261122T031500Z-3f2a9c1`. */
export function releaseIdFor(created: Date, commit: string): string {
  const t = created.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
  return `${t}-${commit.slice(0, 7) || 'artifact'}`;
}

export function projectDir(plan: Pick<ReleasePlan, 'root' | 'project'>): string {
  return `${plan.root ?? '/srv/projects'}/${plan.project}`;
}

function now(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function tail(s: string, n = TAIL_CHARS): string {
  return s.length > n ? s.slice(s.length - n) : s;
}

/** Shell lines that set the release's variables; `$P`, `$R`, `$STATE`, `$WORK` for the scripts below. */
function prelude(plan: ReleasePlan): string {
  const p = projectDir(plan);
  const vars: Record<string, string> = {
    STRATUS_PROJECT: plan.project,
    STRATUS_ENVIRONMENT: plan.environment,
    STRATUS_MODE: plan.mode,
    STRATUS_RELEASE_ID: plan.releaseID,
    STRATUS_PROJECT_DIR: p,
    STRATUS_DATA_DIR: `${p}/data`,
    STRATUS_BUILD_DIR: `${p}/build`,
    ...(plan.env ?? {}),
  };
  const work = plan.mode === 'editable' ? `${p}/project` : `${p}/releases/${plan.releaseID}`;
  return [
    `P=${q(p)}; R=${q(plan.releaseID)}; STATE="$P/deploy/$R"; WORK=${q(work)}`,
    ...Object.entries(vars).map(([k, v]) => `export ${k}=${q(v)}`),
    'export STRATUS_RELEASE_DIR="$WORK"',
    'PREV=$(cat "$STATE/previous" 2>/dev/null); export STRATUS_PREVIOUS_RELEASE_ID="$PREV"',
    '',
  ].join('\n');
}

/** Runs `.stratus/NAME` in the current directory, or prints the absent marker. */
function script(name: string): string {
  return `if [ -f .stratus/${name} ]; then if [ -x .stratus/${name} ]; then ./.stratus/${name}; else sh .stratus/${name}; fi; else echo ${ABSENT}; fi`;
}

function healthCheck(hc: HealthCheck | undefined): string {
  if (!hc || (!hc.command && !hc.httpGet)) return 'echo "no health check"';
  const seconds = hc.timeoutSeconds ?? 30;
  const check = hc.command
    ? hc.command.map(q).join(' ')
    : // busybox wget crashes on -T; `timeout` bounds it instead
      `if command -v wget >/dev/null 2>&1; then $HC_T wget -q -O /dev/null ${q(hc.httpGet!.url)}; else curl -fsS -m 5 -o /dev/null ${q(hc.httpGet!.url)}; fi`;
  return [
    'HC_T=; if command -v timeout >/dev/null 2>&1; then HC_T="timeout 5"; fi',
    `hc_n=0; until ( ${check} ); do`,
    `  hc_n=$((hc_n+1)); if [ "$hc_n" -ge ${seconds} ]; then echo "health check failed for ${seconds}s"; exit 1; fi; sleep 1`,
    'done; echo "health check passed"',
  ].join('\n');
}

function stageBody(plan: ReleasePlan, stage: PipelineStage): string {
  switch (stage) {
    case 'archive':
      return [
        'if [ -n "$PREV" ]; then tar -cf "$P/releases/$PREV.data.tar" -C "$P/data" . && echo "archived data of $PREV"',
        'else echo "first release: no data to archive"; fi',
      ].join('\n');
    case 'release-sync':
      return 'rm -rf "$WORK.partial" && cp -a "$P/project" "$WORK.partial" && rm -rf "$WORK" && mv "$WORK.partial" "$WORK" && echo "synced release $R"';
    case 'configure':
    case 'build':
    case 'reconfigure':
    case 'post_install':
      return `cd "$WORK" && ${script(stage)}`;
    case 'activate': {
      const link = plan.mode === 'editable' ? 'project' : 'releases/$R';
      return [
        `cd "$WORK" && ${script('activate')} || exit $?`,
        healthCheck(plan.healthCheck),
        `ln -sfn "${link}" "$P/current" || exit 1`,
        'echo "current -> $(readlink "$P/current")"',
      ].join('\n');
    }
    case 'upgrade':
      return [
        'cd "$WORK" || exit 1',
        'U="$P/data/.stratus-upgrades"; mkdir -p "$U"',
        'step() { if [ -e "$U/$1" ]; then echo "upgrade step $1 already done"; return 0; fi',
        '  echo "upgrade step $1"; if [ -x "$2" ]; then "$2"; else sh "$2"; fi || return $?',
        '  date -u +%Y-%m-%dT%H:%M:%SZ > "$U/$1"; }',
        'if [ -d .stratus/upgrade ]; then for f in $(ls .stratus/upgrade | sort); do step "$f" "./.stratus/upgrade/$f" || exit $?; done',
        'elif [ -f .stratus/upgrade ]; then step "upgrade-$(md5sum < .stratus/upgrade | cut -c1-16)" ./.stratus/upgrade || exit $?',
        `else echo ${ABSENT}; fi`,
      ].join('\n');
    case 'bundle':
      return [
        'cd "$WORK" || exit 1',
        `if [ -f .stratus/bundle ]; then ${script('bundle')} || exit $?; fi`,
        'tar -czf "$P/releases/$R.tar.gz.partial" -C "$WORK" . && mv -f "$P/releases/$R.tar.gz.partial" "$P/releases/$R.tar.gz" && echo "bundled releases/$R.tar.gz"',
      ].join('\n');
  }
}

function rollbackBody(plan: ReleasePlan): string {
  return [
    'if [ -n "$PREV" ] && [ -d "$P/releases/$PREV" ]; then',
    '  if [ -e "$STATE/archive.done" ] && [ -f "$P/releases/$PREV.data.tar" ]; then',
    '    rm -rf "$P/data.rollback" && mkdir "$P/data.rollback" && tar -xf "$P/releases/$PREV.data.tar" -C "$P/data.rollback" && rm -rf "$P/data" && mv "$P/data.rollback" "$P/data" || exit 1',
    '    echo "data of $PREV restored"',
    '  fi',
    '  ln -sfn "releases/$PREV" "$P/current" && echo "current -> releases/$PREV"',
    '  export STRATUS_FAILED_RELEASE_ID="$R" STRATUS_RELEASE_ID="$PREV" STRATUS_RELEASE_DIR="$P/releases/$PREV"',
    `  cd "$P/releases/$PREV" && ${script('rollback')} || exit $?`,
    `  ${healthCheck(plan.healthCheck).replace(/\n/g, '\n  ')}`,
    plan.mode === 'editable' ? '' : '  rm -rf "$WORK" "$P/releases/$R.tar.gz" && echo "removed failed release $R"',
    'else',
    `  echo ${NO_PREVIOUS}; echo "no previous release to roll back to"`,
    `  if [ -d "$WORK" ]; then cd "$WORK" && ${script('rollback')}; fi`,
    'fi',
  ].join('\n');
}

function notificationBody(outcome: ReleaseOutcome, failedStage: StageName | undefined): string {
  return [
    `export STRATUS_OUTCOME=${q(outcome)} STRATUS_FAILED_STAGE=${q(failedStage ?? '')}`,
    'if [ -d "$WORK" ]; then cd "$WORK"; elif [ -d "$P/current/" ]; then cd "$P/current/"; else echo ' + ABSENT + '; exit 0; fi',
    script('notification'),
  ].join('\n');
}

function pruneBody(keep: number): string {
  return [
    'cur=$(readlink "$P/current"); cur=${cur#releases/}',
    `n=0; for d in $(ls -1 "$P/releases" | grep -v '\\.' | sort -r); do`,
    `  n=$((n+1)); if [ "$n" -le ${keep} ] || [ "$d" = "$cur" ] || [ "$d" = "$R" ]; then continue; fi`,
    '  rm -rf "$P/releases/$d" "$P/releases/$d.tar.gz" "$P/releases/$d.data.tar" "$P/deploy/$d" && echo "pruned $d"',
    'done',
  ].join('\n');
}

interface StepOutcome {
  ok: boolean;
  output: string;
}

/**
 * Runs `body` on a guest under the stage's journal: skipped when done, replayed as failed
 * when it failed, waited for when another exec still runs it.
 */
async function journaled(guest: ReleaseGuest, plan: ReleasePlan, stage: StageName, body: string): Promise<StepOutcome> {
  const s = stage;
  const sh = [
    prelude(plan),
    'mkdir -p "$STATE" || exit 1',
    `if [ -e "$STATE/${s}.pid" ]; then p=$(cat "$STATE/${s}.pid"); while [ -n "$p" ] && [ "$p" != "$$" ] && kill -0 "$p" 2>/dev/null; do sleep 1; done; fi`,
    `if [ -e "$STATE/${s}.done" ]; then tail -c ${TAIL_CHARS} "$STATE/${s}.out" 2>/dev/null; exit 0; fi`,
    `if [ -e "$STATE/${s}.failed" ]; then tail -c ${TAIL_CHARS} "$STATE/${s}.out" 2>/dev/null; exit 1; fi`,
    `echo $$ > "$STATE/${s}.pid"`,
    `( ${body}\n ) > "$STATE/${s}.out" 2>&1`,
    'rc=$?',
    `if [ $rc = 0 ]; then touch "$STATE/${s}.done"; else echo $rc > "$STATE/${s}.failed"; fi`,
    `rm -f "$STATE/${s}.pid"`,
    `tail -c ${TAIL_CHARS} "$STATE/${s}.out"`,
    'exit $rc',
  ].join('\n');
  try {
    const r = await guest.channel.exec(['sh', '-c', sh], { timeoutMs: plan.stageTimeoutMs ?? 30 * 60_000 });
    return { ok: r.exitCode === 0, output: r.stdout + r.stderr };
  } catch (err) {
    return { ok: false, output: `cannot run ${stage} on ${guest.name}: ${err instanceof Error ? err.message : String(err)}` };
  }
}

/** Ensures the layout and the pushed tree on a guest; records the release being replaced. */
async function prepare(guest: ReleaseGuest, plan: ReleasePlan): Promise<void> {
  const sh = [
    prelude(plan),
    'mkdir -p "$P/project" "$P/data" "$P/build" "$P/releases" "$STATE" || exit 1',
    'if [ ! -e "$STATE/previous" ]; then cur=$(readlink "$P/current" 2>/dev/null); case "$cur" in releases/*) echo "${cur#releases/}";; *) echo "";; esac > "$STATE/previous.next" && mv -f "$STATE/previous.next" "$STATE/previous"; fi',
    'if [ -e "$STATE/source.done" ]; then echo have; else rm -rf "$P/project" && mkdir -p "$P/project" && echo need; fi',
  ].join('\n');
  const r = await guest.channel.exec(['sh', '-c', sh]);
  if (r.exitCode !== 0) throw new Error(`cannot lay out ${projectDir(plan)} on ${guest.name}: ${(r.stdout + r.stderr).trim()}`);
  if (r.stdout.trim().endsWith('need')) {
    await guest.channel.upload(await plan.source(), `${projectDir(plan)}/project`);
    const done = await guest.channel.exec(['sh', '-c', `touch ${q(`${projectDir(plan)}/deploy/${plan.releaseID}/source.done`)}`]);
    if (done.exitCode !== 0) throw new Error(`cannot journal the source on ${guest.name}: ${done.stderr.trim()}`);
  }
}

class Reports {
  readonly stages: StageReport[];
  constructor(
    mode: ReleaseMode,
    private readonly hooks: ReleaseHooks,
  ) {
    this.stages = ALL_STAGES.map((name) => ({
      name,
      state: (PIPELINE_STAGES as readonly string[]).includes(name) && !runsStage(mode, name as PipelineStage) ? 'Skipped' : 'Pending',
    }));
  }
  get(name: StageName): StageReport {
    return this.stages.find((s) => s.name === name)!;
  }
  async set(name: StageName, patch: Partial<StageReport>): Promise<void> {
    Object.assign(this.get(name), patch);
    await this.hooks.onProgress?.(this.stages.map((s) => ({ ...s })));
  }
}

/** Runs a journaled step on every guest at once and reports it as stage `name`. */
async function stageOnAll(
  guests: ReleaseGuest[],
  plan: ReleasePlan,
  reports: Reports,
  name: StageName,
  body: string,
  signal?: AbortSignal,
): Promise<{ ok: boolean; outputs: string[] }> {
  await reports.set(name, { state: 'Running', startTime: now() });
  const results = await untilAborted(Promise.all(guests.map((g) => journaled(g, plan, name, body))), signal);
  const ok = results.every((r) => r.ok);
  const absent = results.every((r) => r.output.trim() === ABSENT);
  const shown = results.map((r, i) => {
    const text = r.output.replaceAll(ABSENT, `(no .stratus/${name} script)`).replaceAll(NO_PREVIOUS + '\n', '');
    return guests.length > 1 ? `== ${guests[i]!.name} ==\n${tail(text, Math.floor(TAIL_CHARS / guests.length))}` : tail(text);
  });
  await reports.set(name, { state: !ok ? 'Failed' : absent ? 'Skipped' : 'Succeeded', completionTime: now(), outputTail: shown.join('\n') });
  return { ok, outputs: results.map((r) => r.output) };
}

/**
 * Resolves with `work`, or rejects as soon as `signal` aborts: the stage keeps running on the
 * guest and its journal tells the next run how it ended.
 */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new Error('release interrupted (it resumes from its journal)'));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

/** Runs (or resumes) one release on `guests`. Rejects only when a guest cannot be prepared. */
export async function runRelease(guests: ReleaseGuest[], plan: ReleasePlan, hooks: ReleaseHooks = {}): Promise<ReleaseResult> {
  if (guests.length === 0) throw new Error('a release needs at least one guest');
  const reports = new Reports(plan.mode, hooks);
  await hooks.onProgress?.(reports.stages.map((s) => ({ ...s })));
  await Promise.all(guests.map((g) => prepare(g, plan)));

  let failedStage: PipelineStage | undefined;
  for (const stage of PIPELINE_STAGES) {
    if (!runsStage(plan.mode, stage)) continue;
    if (hooks.signal?.aborted) throw new Error('release interrupted (it resumes from its journal)');
    const r = await stageOnAll(guests, plan, reports, stage, stageBody(plan, stage), hooks.signal);
    if (!r.ok) {
      failedStage = stage;
      break;
    }
  }

  let outcome: ReleaseOutcome = 'Succeeded';
  if (failedStage) {
    for (const s of PIPELINE_STAGES) if (reports.get(s).state === 'Pending') await reports.set(s, { state: 'Skipped' });
    const rb = await stageOnAll(guests, plan, reports, 'rollback', rollbackBody(plan));
    const restored = rb.ok && rb.outputs.every((o) => !o.includes(NO_PREVIOUS));
    outcome = restored && plan.mode !== 'editable' ? 'RolledBack' : 'Failed';
  } else {
    await reports.set('rollback', { state: 'Skipped' });
    await Promise.all(guests.map((g) => journaled(g, plan, 'prune' as StageName, pruneBody(plan.keepReleases))));
  }
  await stageOnAll(guests, plan, reports, 'notification', notificationBody(outcome, failedStage));
  return { outcome, ...(failedStage ? { failedStage } : {}), stages: reports.stages.map((s) => ({ ...s })) };
}

/** Reads a file from a guest (through `base64`, so any channel carries it). */
export async function readGuestFile(channel: GuestChannel, path: string): Promise<Buffer> {
  const r = await channel.exec(['sh', '-c', `base64 < ${q(path)}`], { timeoutMs: 10 * 60_000 });
  if (r.exitCode !== 0) throw new Error(`cannot read ${path} on ${channel.name}: ${r.stderr.trim()}`);
  return Buffer.from(r.stdout.replace(/\s+/g, ''), 'base64');
}

/** Where the bundle stage leaves release `releaseID`'s code archive. */
export function bundlePath(plan: Pick<ReleasePlan, 'root' | 'project' | 'releaseID'>): string {
  return `${projectDir(plan)}/releases/${plan.releaseID}.tar.gz`;
}
