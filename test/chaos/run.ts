/**
 * `make chaos`: every scenario with the full profile (CHAOS_SCENARIOS=process-faults,disk-full,
 * etcd-members,engine-faults,libvirtd-restart picks some), the summary printed and the report in
 * `bench/results/chaos-full-<time>.json`. Exits 1 when an invariant was violated.
 */
import { fullProfile } from './profiles.js';
import { chaosReport, summary, writeChaosReport } from './report.js';
import { engineFaults, libvirtdRestart } from './engines.js';
import { diskFull, etcdMembers, processFaults, type ChaosProfile, type ScenarioReport } from './scenarios.js';

const all: Record<string, (p: ChaosProfile) => Promise<ScenarioReport>> = {
  'process-faults': processFaults,
  'disk-full': diskFull,
  'etcd-members': etcdMembers,
  // full profile only: dockerd down for a minute is too long for `make test`
  'engine-faults': engineFaults,
  'libvirtd-restart': libvirtdRestart,
};

async function main(): Promise<void> {
  const profile = fullProfile();
  const names = (process.env.CHAOS_SCENARIOS ?? Object.keys(all).join(',')).split(',').map((s) => s.trim()).filter(Boolean);
  const reports: ScenarioReport[] = [];
  for (const name of names) {
    const run = all[name];
    if (!run) throw new Error(`CHAOS_SCENARIOS: no scenario "${name}" (known: ${Object.keys(all).join(', ')})`);
    process.stdout.write(`chaos: ${name} (seed ${profile.seed})...\n`);
    reports.push(await run(profile));
  }
  const report = chaosReport(profile, reports);
  process.stdout.write(summary(report) + '\n');
  process.stdout.write(`report: ${writeChaosReport(report)}\n`);
  if (report.violations > 0) process.exitCode = 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`chaos: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
