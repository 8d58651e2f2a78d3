/**
 * How every benchmark reports: named figures, each beside the limit it is compared with
 * (measured in the same run), printed as a table and written as JSON to `bench/results/`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Figure {
  name: string;
  value: number;
  unit: string;
  /** The limit this figure is compared with, measured in the same run (omit when none applies). */
  limit?: { name: string; value: number; unit: string };
}

export interface BenchReport {
  benchmark: string;
  /** Free-form conditions of the run: backend, counts, concurrency. */
  conditions: Record<string, string | number>;
  figures: Figure[];
}

/** Median of the values (the figure benchmarks report over repeated runs). */
export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The p-th percentile (0..100), nearest-rank. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const rank = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[rank]!;
}

function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  return Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 1 ? n.toFixed(2) : n.toPrecision(3);
}

/** Prints the report as aligned lines and writes `bench/results/<benchmark>.json`. */
export function publish(report: BenchReport, resultsDir = join(process.cwd(), 'bench', 'results')): void {
  const cond = Object.entries(report.conditions).map(([k, v]) => `${k}=${v}`).join(' ');
  const lines = [`== ${report.benchmark} (${cond})`];
  for (const f of report.figures) {
    let line = `  ${f.name.padEnd(44)} ${fmt(f.value).padStart(12)} ${f.unit}`;
    if (f.limit) {
      const ratio = f.limit.unit === f.unit && f.limit.value ? `  (${fmt(f.value / f.limit.value)}× of limit)` : '';
      line += `   limit: ${f.limit.name} ${fmt(f.limit.value)} ${f.limit.unit}${ratio}`;
    }
    lines.push(line);
  }
  process.stdout.write(lines.join('\n') + '\n');
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(join(resultsDir, `${report.benchmark}.json`), JSON.stringify({ ...report, at: new Date().toISOString() }, null, 2) + '\n');
}
