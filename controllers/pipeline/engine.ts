/**
 * The release pipeline: one release of a project onto a set of guests, over their exec
 * channels, corpus-style. No Kubernetes types inside: the Deployment controller turns a
 * Deployment into a `ReleasePlan` and the `ReleaseResult` back into status.
 *
 * Layout on every guest (`root` defaults to `/srv/projects`), the corpus document's:
 *
 * ```
 * ROOT/NAME/git/                          git side of the project (the push remotes live on the control plane)
 * ROOT/NAME/project/                      the pushed tree (editable, staging: the code runs here, in place)
 * ROOT/NAME/pillar/                       the private configuration (pillar repo or Secret), never logged
 * ROOT/NAME/data/                         persistent data, never replaced by a release
 * ROOT/NAME/build/                        build scratch, wiped before every build
 * ROOT/NAME/deploy/                       where release-sync assembles a release before it is moved in place
 * ROOT/NAME/releases/deployed/ID/         the code of release ID (full, final)
 * ROOT/NAME/releases/deployed/ID.tar.gz   its deliverable (bundle stage)
 * ROOT/NAME/releases/deployed/ID.data.tar data as it was when ID was replaced (archive stage)
 * ROOT/NAME/releases/failed/ID/           the code of a release that failed and was rolled back
 * ROOT/NAME/current -> releases/deployed/ID   (editable, staging: -> project)
 * ROOT/NAME/.journal/ID/                  the journal of release ID (stage markers and output)
 * ```
 *
 * Guarantees:
 * - Stages run stage by stage across guests (a stage on every guest before the next).
 * - `current` moves only when `activate` and the health check passed on that guest, by
 *   renaming a new symlink over the old one (`mv -T`): a `current` that is not a symlink (a
 *   directory) fails the activation, and so does a link that does not read back as the target.
 * - A stage that completed on a guest is journaled there (`.journal/ID/STAGE.done`, written
 *   by the same shell that ran it) and never runs again for this release: running the
 *   pipeline again after a controller restart resumes it. A stage still running from a dead
 *   controller's exec (Docker exec processes outlive their client) is waited for, not
 *   started twice. A failure is journaled too, so a resumed pipeline goes straight to the
 *   rollback.
 * - On a failure (modes that roll back) every guest is rolled back: the failed release's code
 *   moved to `releases/failed/ID`, data restored from the archive taken by this release's
 *   `archive` stage, `current` back on the previous release (staging: `project/` unpacked
 *   from the previous release's bundle), that release's `.stratus/rollback` run, the health
 *   check again.
 * - `upgrade` steps are journaled in `data/.stratus-upgrades/`; a release carrying a step
 *   that is already done fails (the corpus document: "fail entirely the deployment if
 *   already done").
 * - `notification` runs whatever the outcome.
 * - After a success the newest `keepReleases` releases (code and data archives) are kept,
 *   and as many failed ones.
 *
 * Scripts are `.stratus/STAGE` in the release's tree, run with `./` when executable, else
 * with `sh`, in the release directory, with `STRATUS_*` variables describing the release.
 * `upgrade` may be a file (one step, identified by its content) or a directory (a step per
 * file, by name, in name order).
 */
import type { GuestChannel } from '../../providers/guest/channel.js';
import { shellQuote as q } from '../../providers/guest/channel.js';
import { ALL_STAGES, PIPELINE_STAGES, inPlace, runsStage, type PipelineStage, type ReleaseMode, type StageName } from './stages.js';

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
  /**
   * The private configuration as a plain tar (pillar repo or Secret), unpacked into `pillar/`
   * by the initialization stage; undefined when the project has none.
   */
  pillar?: () => Promise<Buffer | undefined>;
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
    STRATUS_PILLAR_DIR: `${p}/pillar`,
    ...(plan.env ?? {}),
  };
  const work = inPlace(plan.mode) ? `${p}/project` : `${p}/releases/deployed/${plan.releaseID}`;
  return [
    `P=${q(p)}; R=${q(plan.releaseID)}; STATE="$P/.journal/$R"; WORK=${q(work)}; D="$P/releases/deployed"; F="$P/releases/failed"`,
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

/**
 * Points `$P/current` at `link` atomically: a new symlink renamed over the old one. `mv -T`
 * refuses a `current` that is a directory (it would otherwise move the link inside it), and
 * the link is read back: a switch that did not take effect fails.
 */
function switchCurrent(link: string): string {
  return [
    `rm -f "$P/.current.new" && ln -s "${link}" "$P/.current.new" || exit 1`,
    `if ! mv -fT "$P/.current.new" "$P/current"; then rm -f "$P/.current.new"; echo "cannot switch $P/current to ${link}: it is not a symlink"; exit 1; fi`,
    `if [ "$(readlink "$P/current")" != "${link}" ]; then echo "$P/current does not point to ${link}"; exit 1; fi`,
    'echo "current -> $(readlink "$P/current")"',
  ].join('\n');
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
        'if [ -n "$PREV" ]; then tar -cf "$D/$PREV.data.tar" -C "$P/data" . && echo "archived data of $PREV"',
        'else echo "first release: no data to archive"; fi',
      ].join('\n');
    case 'initialization':
      return [
        'mkdir -p "$P/git" "$P/pillar" "$P/data" "$P/build" "$P/deploy" "$D" "$F" || exit 1',
        'if [ -d "$STATE/tree" ]; then rm -rf "$P/project.next" && cp -a "$STATE/tree" "$P/project.next" && rm -rf "$P/project" && mv "$P/project.next" "$P/project" && rm -rf "$STATE/tree" || exit 1; fi',
        // the pillar is replaced as a whole; its content is never printed
        'if [ -d "$STATE/pillar" ]; then rm -rf "$P/pillar" && mv "$STATE/pillar" "$P/pillar" && chmod 700 "$P/pillar" && echo "pillar: $(find "$P/pillar" -type f | wc -l) file(s)" || exit 1; fi',
        'echo "project/ holds release $R"',
      ].join('\n');
    case 'release-sync':
      return 'rm -rf "$P/deploy" && cp -a "$P/project" "$P/deploy" && rm -rf "$WORK" && mv "$P/deploy" "$WORK" && mkdir -p "$P/deploy" && echo "synced release $R to releases/deployed/$R"';
    case 'build':
      return `rm -rf "$P/build" && mkdir -p "$P/build" && echo "build/ wiped" && cd "$WORK" && ${script(stage)}`;
    case 'configure':
    case 'reconfigure':
    case 'post_install':
      return `cd "$WORK" && ${script(stage)}`;
    case 'activate':
      return [`cd "$WORK" && ${script('activate')} || exit $?`, healthCheck(plan.healthCheck), switchCurrent(inPlace(plan.mode) ? 'project' : 'releases/deployed/$R')].join('\n');
    case 'upgrade':
      return [
        'cd "$WORK" || exit 1',
        'U="$P/data/.stratus-upgrades"; mkdir -p "$U"',
        'step() { if [ -e "$U/$1" ]; then echo "upgrade step $1 was already done on $(cat "$U/$1"): the deployment fails"; return 1; fi',
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
        'tar -czf "$D/$R.tar.gz.partial" -C "$WORK" . && mv -f "$D/$R.tar.gz.partial" "$D/$R.tar.gz" && echo "bundled releases/deployed/$R.tar.gz"',
      ].join('\n');
  }
}

function rollbackBody(plan: ReleasePlan): string {
  const place = inPlace(plan.mode);
  return [
    `if [ -n "$PREV" ] && ${place ? '[ -f "$D/$PREV.tar.gz" ]' : '[ -d "$D/$PREV" ]'}; then`,
    '  if [ -e "$STATE/archive.done" ] && [ -f "$D/$PREV.data.tar" ]; then',
    '    rm -rf "$P/data.rollback" && mkdir "$P/data.rollback" && tar -xf "$D/$PREV.data.tar" -C "$P/data.rollback" && rm -rf "$P/data" && mv "$P/data.rollback" "$P/data" || exit 1',
    '    echo "data of $PREV restored"',
    '  fi',
    '  rm -rf "$F/$R" && mkdir -p "$F" || exit 1',
    ...(place
      ? [
          '  mv "$P/project" "$F/$R" && mkdir "$P/project" && tar -xzf "$D/$PREV.tar.gz" -C "$P/project" || exit 1',
          '  echo "failed release archived in releases/failed/$R; project/ restored from releases/deployed/$PREV.tar.gz"',
          `  ${switchCurrent('project').replace(/\n/g, '\n  ')}`,
          '  PD="$P/project"',
        ]
      : [
          '  if [ -d "$WORK" ]; then mv "$WORK" "$F/$R" || exit 1; fi; rm -f "$D/$R.tar.gz"',
          '  echo "failed release archived in releases/failed/$R"',
          `  ${switchCurrent('releases/deployed/$PREV').replace(/\n/g, '\n  ')}`,
          '  PD="$D/$PREV"',
        ]),
    '  export STRATUS_FAILED_RELEASE_ID="$R" STRATUS_RELEASE_ID="$PREV" STRATUS_RELEASE_DIR="$PD"',
    `  cd "$PD" && ${script('rollback')} || exit $?`,
    `  ${healthCheck(plan.healthCheck).replace(/\n/g, '\n  ')}`,
    'else',
    `  echo ${NO_PREVIOUS}; echo "no previous release to roll back to"`,
    place
      ? '  rm -rf "$F/$R" && mkdir -p "$F" && cp -a "$P/project" "$F/$R" && echo "failed release copied to releases/failed/$R"'
      : '  if [ -d "$WORK" ]; then rm -rf "$F/$R" && mkdir -p "$F" && mv "$WORK" "$F/$R" && echo "failed release archived in releases/failed/$R"; fi; rm -f "$D/$R.tar.gz"\n  if [ "$(readlink "$P/current" 2>/dev/null)" = "releases/deployed/$R" ]; then rm -f "$P/current"; fi',
    `  if [ -d "$F/$R" ]; then cd "$F/$R" && export STRATUS_RELEASE_DIR="$F/$R" && ${script('rollback')}; fi`,
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

/** After a success: records the active release and keeps the newest `keep` deployed and failed releases. */
function pruneBody(keep: number): string {
  return [
    'echo "$R" > "$P/.journal/active.next" && mv -f "$P/.journal/active.next" "$P/.journal/active" || exit 1',
    'for dir in "$D" "$F"; do',
    `  n=0; for d in $(ls -1 "$dir" | sed 's/[.].*//' | sort -u -r); do`,
    `    n=$((n+1)); if [ "$n" -le ${keep} ] || [ "$d" = "$R" ]; then continue; fi`,
    '    rm -rf "$dir/$d" "$dir/$d.tar.gz" "$dir/$d.data.tar" "$P/.journal/$d" && echo "pruned $d"',
    '  done',
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

/**
 * Ensures the journal, records the release being replaced (the last one that succeeded) and
 * puts the tree (and the pillar) to release in the journal, where the initialization stage
 * takes them.
 */
async function prepare(guest: ReleaseGuest, plan: ReleasePlan): Promise<void> {
  const sh = [
    prelude(plan),
    'mkdir -p "$STATE" || exit 1',
    'if [ ! -e "$STATE/previous" ]; then cat "$P/.journal/active" 2>/dev/null > "$STATE/previous.next"; mv -f "$STATE/previous.next" "$STATE/previous"; fi',
    'if [ -e "$STATE/source.done" ]; then echo have; else rm -rf "$STATE/tree" "$STATE/pillar" && mkdir -p "$STATE/tree" "$STATE/pillar" && chmod 700 "$STATE/pillar" && echo need; fi',
  ].join('\n');
  const r = await guest.channel.exec(['sh', '-c', sh]);
  if (r.exitCode !== 0) throw new Error(`cannot lay out ${projectDir(plan)} on ${guest.name}: ${(r.stdout + r.stderr).trim()}`);
  if (r.stdout.trim().endsWith('need')) {
    const state = `${projectDir(plan)}/.journal/${plan.releaseID}`;
    await guest.channel.upload(await plan.source(), `${state}/tree`);
    const pillar = await plan.pillar?.();
    if (pillar) await guest.channel.upload(pillar, `${state}/pillar`);
    else {
      const rm = await guest.channel.exec(['rmdir', `${state}/pillar`]);
      if (rm.exitCode !== 0) throw new Error(`cannot prepare ${state} on ${guest.name}: ${rm.stderr.trim()}`);
    }
    const done = await guest.channel.exec(['touch', `${state}/source.done`]);
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
      state: runsStage(mode, name) ? 'Pending' : 'Skipped',
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
    outcome = 'Failed';
    if (runsStage(plan.mode, 'rollback')) {
      const rb = await stageOnAll(guests, plan, reports, 'rollback', rollbackBody(plan));
      if (rb.ok && rb.outputs.every((o) => !o.includes(NO_PREVIOUS))) outcome = 'RolledBack';
    }
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
  return `${projectDir(plan)}/releases/deployed/${plan.releaseID}.tar.gz`;
}
