/**
 * How every benchmark reports: named figures, each beside the limit it is compared with
 * (measured in the same run) and the goal it has to meet, written in full to the bench log
 * and as JSON to `bench/results/`; `resultsTable` is the table `make bench` ends with.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { benchLog } from './progress.js';

export interface Figure {
  name: string;
  value: number;
  unit: string;
  /** The limit this figure is compared with, measured in the same run (omit when none applies). */
  limit?: { name: string; value: number; unit: string };
  /**
   * The goal (issue #19 and the issues that set one): the ratio value ÷ limit must reach
   * `minRatio` or stay under `maxRatio`, or the value itself must stay under `max`.
   */
  goal?: { minRatio?: number; maxRatio?: number; max?: number };
  /** The distribution behind a latency figure, as the 0th..100th percentiles (ms), for the charts. */
  quantilesMs?: number[];
  /** What the distribution is, for the chart's legend (e.g. "GET at 200/s"). */
  distribution?: string;
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

/** The 0th..100th percentiles of `values` (101 numbers; empty when there are none). */
export function quantiles(values: number[]): number[] {
  if (values.length === 0) return [];
  const s = [...values].sort((a, b) => a - b);
  return Array.from({ length: 101 }, (_, p) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!);
}

export function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  return Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 1 ? n.toFixed(2) : n.toPrecision(3);
}

/** value ÷ limit when both are in the same unit. */
export function ratioOf(f: Figure): number | undefined {
  return f.limit && f.limit.unit === f.unit && f.limit.value ? f.value / f.limit.value : undefined;
}

export function goalText(f: Figure): string {
  const g = f.goal;
  if (!g) return '';
  if (g.minRatio !== undefined) return `≥ ${g.minRatio}×`;
  if (g.maxRatio !== undefined) return `≤ ${g.maxRatio}×`;
  if (g.max !== undefined) return `≤ ${fmt(g.max)} ${f.unit}`;
  return '';
}

/** Whether the figure meets its goal (undefined: it has none). */
export function meetsGoal(f: Figure): boolean | undefined {
  const g = f.goal;
  if (!g) return undefined;
  const r = ratioOf(f);
  if (g.minRatio !== undefined) return r !== undefined && r >= g.minRatio;
  if (g.maxRatio !== undefined) return r !== undefined && r <= g.maxRatio;
  if (g.max !== undefined) return Number.isFinite(f.value) && f.value <= g.max;
  return undefined;
}

const published: BenchReport[] = [];

/** Every report published in this process so far. */
export function publishedReports(): BenchReport[] {
  return published;
}

/**
 * The results table: each figure that has a same-run limit or a goal, grouped by benchmark —
 * figure, value, limit, ratio, goal, pass/FAIL.
 */
export function resultsTable(reports: BenchReport[]): string {
  const rows: string[][] = [['figure', 'value', 'same-run limit', 'ratio', 'goal', 'met']];
  const groups: number[] = [];
  for (const r of reports) {
    const figs = r.figures.filter((f) => f.limit || f.goal);
    if (!figs.length) continue;
    groups.push(rows.length);
    rows.push([r.benchmark, '', '', '', '', '']);
    for (const f of figs) {
      const ratio = ratioOf(f);
      const ok = meetsGoal(f);
      rows.push([
        `  ${f.name}`,
        `${fmt(f.value)} ${f.unit}`,
        f.limit ? `${fmt(f.limit.value)}${f.limit.unit === f.unit ? '' : ` ${f.limit.unit}`} (${f.limit.name})` : '',
        ratio !== undefined ? `${fmt(ratio)}×` : '',
        goalText(f),
        ok === undefined ? '' : ok ? 'pass' : 'FAIL',
      ]);
    }
  }
  const maxLimit = 58;
  const cut = (s: string, n: number): string => (s.length > n ? s.slice(0, n - 1) + '…' : s);
  const widths = [0, 1, 2, 3, 4, 5].map((c) => Math.min(c === 0 ? 52 : c === 2 ? maxLimit : 24, Math.max(...rows.map((r) => r[c]!.length))));
  return rows
    .map((r, i) => {
      if (groups.includes(i)) return r[0]!;
      return r.map((c, j) => (j === 1 || j === 3 ? cut(c, widths[j]!).padStart(widths[j]!) : cut(c, widths[j]!).padEnd(widths[j]!))).join('  ').trimEnd();
    })
    .join('\n');
}

/** Writes the report to the bench log (aligned lines) and to `bench/results/<benchmark>.json`. */
export function publish(report: BenchReport, resultsDir = join(process.cwd(), 'bench', 'results')): void {
  const cond = Object.entries(report.conditions).map(([k, v]) => `${k}=${v}`).join(' ');
  const lines = [`== ${report.benchmark} (${cond})`];
  for (const f of report.figures) {
    let line = `  ${f.name.padEnd(44)} ${fmt(f.value).padStart(12)} ${f.unit}`;
    if (f.limit) {
      const ratio = f.limit.unit === f.unit && f.limit.value ? `  (${fmt(f.value / f.limit.value)}× of limit)` : '';
      line += `   limit: ${f.limit.name} ${fmt(f.limit.value)} ${f.limit.unit}${ratio}`;
    }
    if (f.goal) line += `   goal ${goalText(f)}: ${meetsGoal(f) ? 'pass' : 'FAIL'}`;
    lines.push(line);
  }
  benchLog(lines.join('\n'));
  published.push(report);
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(join(resultsDir, `${report.benchmark}.json`), JSON.stringify({ ...report, at: new Date().toISOString() }, null, 2) + '\n');
}
