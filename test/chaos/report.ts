/** The chaos report: every scenario's faults, figures and violations, as JSON in bench/results/. */
import { cpus, loadavg } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChaosProfile, ScenarioReport } from './scenarios.js';

export interface ChaosReport {
  at: string;
  profile: ChaosProfile;
  machine: { cores: number; loadavg: number[]; node: string };
  scenarios: ScenarioReport[];
  violations: number;
}

export function chaosReport(profile: ChaosProfile, scenarios: ScenarioReport[]): ChaosReport {
  return {
    at: new Date().toISOString(),
    profile,
    machine: { cores: cpus().length, loadavg: loadavg().map((l) => Number(l.toFixed(2))), node: process.version },
    scenarios,
    violations: scenarios.reduce((n, s) => n + s.violations.length, 0),
  };
}

/** Writes `bench/results/chaos-<profile>-<time>.json` and returns its path. */
export function writeChaosReport(report: ChaosReport, dir = join(process.cwd(), 'bench', 'results')): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `chaos-${report.profile.name}-${report.at.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
  return file;
}

/** A few lines per scenario for a terminal or a test log. */
export function summary(report: ChaosReport): string {
  const lines = [`chaos (${report.profile.name}, seed ${report.profile.seed}, load ${report.machine.loadavg.join(' ')}): ${report.violations} violations`];
  for (const s of report.scenarios) {
    lines.push(`== ${s.scenario}: ${s.seconds} s, ${s.faults.length} faults, ${s.violations.length} violations`);
    for (const f of s.faults) lines.push(`   ${String(f.atSeconds).padStart(7)} s  ${f.fault}${f.recoverySeconds !== undefined ? ` (back after ${f.recoverySeconds} s)` : ''}`);
    for (const [k, v] of Object.entries(s.figures)) lines.push(`   ${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
    for (const v of s.violations) lines.push(`   VIOLATION ${v}`);
  }
  return lines.join('\n');
}
