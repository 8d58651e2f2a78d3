/**
 * The corpus stages, their order and which ones each mode runs — the corpus document's
 * "Workflows" lists are the contract (`MODE_STAGES` spells them out; a table test checks them).
 *
 * Order: archive, initialization (the document's "initialization/sync"), release-sync,
 * configure, build, reconfigure, activate, upgrade, bundle, post_install; `rollback` only
 * after a failure, `notification` always.
 *
 * - `full`: every stage.
 * - `editable` (dev): archive, release-sync, reconfigure, bundle and rollback are skipped; the
 *   code runs in place in `project/`.
 * - `staging` (the document's cooking mode; `cooking` is accepted as its old name): archive and
 *   release-sync are skipped; the code runs in `project/`, `bundle` cooks the deliverable.
 * - `final` (prod): build is skipped; the release (a cooked artifact or a commit) is synced to
 *   `releases/deployed/ID` and runs there.
 */
export const PIPELINE_STAGES = [
  'archive',
  'initialization',
  'release-sync',
  'configure',
  'build',
  'reconfigure',
  'activate',
  'upgrade',
  'bundle',
  'post_install',
] as const;

export type PipelineStage = (typeof PIPELINE_STAGES)[number];
export type StageName = PipelineStage | 'rollback' | 'notification';
export type ReleaseMode = 'full' | 'editable' | 'staging' | 'final';
/** What a Project's `spec.mode` may say: the four modes and `cooking`, staging's other name. */
export type ProjectMode = ReleaseMode | 'cooking';

/** Every stage name in the order `status.stages` lists them. */
export const ALL_STAGES: readonly StageName[] = [...PIPELINE_STAGES, 'rollback', 'notification'];

const SKIPPED: Record<ReleaseMode, ReadonlySet<StageName>> = {
  full: new Set(),
  editable: new Set(['archive', 'release-sync', 'reconfigure', 'bundle', 'rollback']),
  staging: new Set(['archive', 'release-sync']),
  final: new Set(['build']),
};

const stagesOf = (mode: ReleaseMode): readonly StageName[] => ALL_STAGES.filter((s) => !SKIPPED[mode].has(s));

/** The stages each mode runs, in order (rollback only on an error, notification always). */
export const MODE_STAGES: Readonly<Record<ReleaseMode, readonly StageName[]>> = {
  full: stagesOf('full'),
  editable: stagesOf('editable'),
  staging: stagesOf('staging'),
  final: stagesOf('final'),
};

/** Whether `mode` runs `stage`. */
export function runsStage(mode: ReleaseMode, stage: StageName): boolean {
  return !SKIPPED[mode].has(stage);
}

/** `cooking` is staging; anything else is itself. */
export function releaseMode(mode: ProjectMode | undefined): ReleaseMode {
  return mode === 'cooking' ? 'staging' : (mode ?? 'editable');
}

/** Whether the code runs in place in `project/` (release-sync skipped) rather than in `releases/deployed/ID`. */
export function inPlace(mode: ReleaseMode): boolean {
  return !runsStage(mode, 'release-sync');
}
