/**
 * The corpus stages, their order and which ones each mode runs.
 *
 * Order (corpus seed): archive, release-sync, configure, build, reconfigure, activate,
 * upgrade, bundle, post_install; `rollback` only after a failure, `notification` always.
 *
 * - `editable`: code lives and runs in place in `project/` — archive, release-sync,
 *   reconfigure and bundle are skipped (corpus's editable guests).
 * - `cooking`: every stage; `bundle` makes the release artifact the control plane keeps.
 * - `final`: deploys a cooked artifact without building — configure and build are skipped
 *   (the artifact was configured and built when it was cooked); reconfigure adapts it to
 *   the environment.
 */
export const PIPELINE_STAGES = [
  'archive',
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
export type ReleaseMode = 'editable' | 'cooking' | 'final';

const SKIPPED: Record<ReleaseMode, ReadonlySet<PipelineStage>> = {
  editable: new Set(['archive', 'release-sync', 'reconfigure', 'bundle']),
  cooking: new Set(),
  final: new Set(['configure', 'build']),
};

/** Whether `mode` runs `stage`. */
export function runsStage(mode: ReleaseMode, stage: PipelineStage): boolean {
  return !SKIPPED[mode].has(stage);
}

/** Every stage name in the order `status.stages` lists them. */
export const ALL_STAGES: readonly StageName[] = [...PIPELINE_STAGES, 'rollback', 'notification'];
