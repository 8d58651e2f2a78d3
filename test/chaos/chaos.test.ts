/**
 * The short chaos profile inside `make test` (`make chaos` runs the full one): stratus under
 * a mixed load while its processes are killed and stopped, its SQLite filesystem fills up,
 * and its etcd cluster loses members. Each scenario's invariants — acknowledged writes kept,
 * acknowledged deletes gone, watches consistent, Instances converged with exactly one
 * container each, resources back to baseline, never a 500 — must all hold.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { shortProfile } from './profiles.js';
import { chaosReport, summary } from './report.js';
import { diskFull, etcdMembers, processFaults, type ChaosProfile, type ScenarioReport } from './scenarios.js';

const profile = shortProfile();

async function check(run: (p: ChaosProfile) => Promise<ScenarioReport>): Promise<void> {
  const report = chaosReport(profile, [await run(profile)]);
  process.stdout.write(summary(report) + '\n');
  assert.deepEqual(report.scenarios[0]!.violations, [], `invariants violated (replay with CHAOS_SEED=${profile.seed})`);
}

describe('chaos (short profile)', () => {
  it('SIGKILL and SIGSTOP of stratus serve and stratus controller lose no acknowledged write, leave no duplicate or leaked container, and resources return to baseline after a soak', { timeout: 600_000 }, () => check(processFaults));
  it('SQLite on a full filesystem refuses writes with 507/503, keeps reading, loses nothing and resumes when space returns', { timeout: 180_000 }, () => check(diskFull));
  it('an etcd cluster losing its leader, a follower and quorum answers 503 only while quorum is gone and loses no acknowledged write', { timeout: 300_000 }, () => check(etcdMembers));
});
