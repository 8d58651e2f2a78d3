/**
 * The charts `make bench` draws from its reports, as plain SVG written by hand (no browser,
 * no dependency), into `bench/results/`:
 *
 * - `goals.svg`: each figure with a goal — its ratio to the same-run limit (or to the goal's
 *   absolute bound), the goal marked, green when met;
 * - `latency.svg`: latency distributions (the figures that carry `quantilesMs`) as
 *   cumulative curves on a logarithmic time axis.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fmt, goalText, meetsGoal, ratioOf, type BenchReport, type Figure } from './report.js';

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const FONT = 'font-family="DejaVu Sans, Helvetica, Arial, sans-serif"';

function text(x: number, y: number, s: string, attrs = ''): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attrs}>${esc(s)}</text>`;
}

function svg(width: number, height: number, title: string, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT} font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    text(12, 22, title, 'font-size="15" font-weight="bold"'),
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

interface GoalRow {
  label: string;
  /** Bar length: the ratio to the same-run limit, or value ÷ the absolute bound. */
  x: number;
  goal: number;
  pass: boolean;
  note: string;
}

function goalRows(reports: BenchReport[]): GoalRow[] {
  const rows: GoalRow[] = [];
  for (const r of reports) {
    for (const f of r.figures) {
      const pass = meetsGoal(f);
      if (pass === undefined || !f.goal) continue;
      const ratio = ratioOf(f);
      const absolute = f.goal.max !== undefined;
      const x = absolute ? f.value / f.goal.max! : (ratio ?? 0);
      const goal = absolute ? 1 : (f.goal.minRatio ?? f.goal.maxRatio ?? 1);
      const note = absolute ? `${fmt(f.value)} ${f.unit} (goal ${goalText(f)})` : `${fmt(ratio ?? NaN)}× ${f.limit?.name ?? ''} (goal ${goalText(f)})`;
      rows.push({ label: `${r.benchmark}: ${f.name}`, x: Number.isFinite(x) ? x : 0, goal, pass, note });
    }
  }
  return rows;
}

/** Horizontal bars: one row per goal figure. */
export function goalsChart(reports: BenchReport[], subtitle: string): string {
  const rows = goalRows(reports);
  const labelW = 430;
  const plotW = 300;
  const noteW = 580;
  const rowH = 22;
  const top = 58;
  const width = labelW + plotW + noteW;
  const height = top + rows.length * rowH + 40;
  const xMax = Math.min(3, Math.max(1.5, ...rows.map((r) => Math.max(r.x, r.goal)))) * 1.05;
  const sx = (v: number): number => labelW + (Math.min(v, xMax) / xMax) * plotW;
  const body: string[] = [text(12, 40, subtitle, 'fill="#555"')];
  for (let t = 0; t <= xMax; t += xMax > 2 ? 1 : 0.5) {
    body.push(`<line x1="${sx(t)}" y1="${top - 6}" x2="${sx(t)}" y2="${top + rows.length * rowH}" stroke="#ddd"/>`);
    body.push(text(sx(t), top + rows.length * rowH + 16, `${t}×`, 'text-anchor="middle" fill="#555"'));
  }
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    body.push(text(labelW - 8, y + 14, r.label.length > 66 ? r.label.slice(0, 65) + '…' : r.label, 'text-anchor="end"'));
    body.push(`<rect x="${labelW}" y="${y + 3}" width="${(sx(r.x) - labelW).toFixed(1)}" height="${rowH - 7}" fill="${r.pass ? '#3a9e5c' : '#d0453a'}"/>`);
    if (r.x > xMax) body.push(text(sx(xMax) - 4, y + 14, '»', 'text-anchor="end" fill="#fff" font-weight="bold"'));
    body.push(`<line x1="${sx(r.goal)}" y1="${y + 1}" x2="${sx(r.goal)}" y2="${y + rowH - 2}" stroke="#111" stroke-width="2.5"/>`);
    body.push(text(labelW + plotW + 10, y + 14, `${r.pass ? 'pass' : 'FAIL'}  ${r.note}`, `fill="${r.pass ? '#1d6b38' : '#a3261d'}"`));
  });
  body.push(text(labelW, top + rows.length * rowH + 32, 'bar: ratio to the same-run limit (or value ÷ the goal\'s bound); black tick: the goal', 'fill="#555"'));
  return svg(width, height, 'stratus make bench: goals', body);
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];

/** Cumulative latency curves (percentile vs ms, log time axis) of the figures with quantiles. */
export function latencyChart(reports: BenchReport[], subtitle: string): string {
  const series: Array<{ label: string; q: number[] }> = [];
  for (const r of reports) {
    for (const f of r.figures as Figure[]) {
      if (f.quantilesMs?.length === 101) series.push({ label: `${r.benchmark}: ${f.distribution ?? f.name}`, q: f.quantilesMs.map((v) => Math.max(v, 0.01)) });
    }
  }
  const left = 60;
  const top = 58;
  const plotW = 640;
  const plotH = 320;
  const legendW = 520;
  const width = left + plotW + 30 + legendW;
  const height = top + plotH + 50;
  const all = series.flatMap((s) => s.q);
  const lo = Math.pow(10, Math.floor(Math.log10(all.length ? Math.min(...all) : 0.1)));
  const hi = Math.pow(10, Math.ceil(Math.log10(all.length ? Math.max(...all) : 1000)));
  const sx = (ms: number): number => left + ((Math.log10(ms) - Math.log10(lo)) / Math.max(1e-9, Math.log10(hi) - Math.log10(lo))) * plotW;
  const sy = (p: number): number => top + plotH - (p / 100) * plotH;
  const body: string[] = [text(12, 40, subtitle, 'fill="#555"')];
  for (let d = lo; d <= hi * 1.0001; d *= 10) {
    body.push(`<line x1="${sx(d)}" y1="${top}" x2="${sx(d)}" y2="${top + plotH}" stroke="#ddd"/>`);
    body.push(text(sx(d), top + plotH + 16, d >= 1000 ? `${d / 1000} s` : `${d} ms`, 'text-anchor="middle" fill="#555"'));
  }
  for (const p of [0, 25, 50, 75, 90, 100]) {
    body.push(`<line x1="${left}" y1="${sy(p)}" x2="${left + plotW}" y2="${sy(p)}" stroke="${p === 50 || p === 99 ? '#bbb' : '#eee'}"/>`);
    body.push(text(left - 6, sy(p) + 4, `p${p}`, 'text-anchor="end" fill="#555"'));
  }
  body.push(`<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`);
  series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length]!;
    const pts = s.q.map((v, p) => `${sx(v).toFixed(1)},${sy(p).toFixed(1)}`).join(' ');
    body.push(`<polyline points="${pts}" fill="none" stroke="${color}" stroke-width="2"/>`);
    const ly = top + 10 + i * 20;
    body.push(`<line x1="${left + plotW + 30}" y1="${ly}" x2="${left + plotW + 50}" y2="${ly}" stroke="${color}" stroke-width="3"/>`);
    const ms = (v: number): string => (v >= 1000 ? `${fmt(v / 1000)} s` : `${fmt(v)} ms`);
    const label = s.label.length > 52 ? `${s.label.slice(0, 51)}…` : s.label;
    body.push(text(left + plotW + 56, ly + 4, `${label} — p50 ${ms(s.q[50]!)}, p99 ${ms(s.q[99]!)}`));
  });
  if (!series.length) body.push(text(left + 20, top + 30, 'no latency distributions in this run'));
  body.push(text(left + plotW / 2, top + plotH + 36, 'latency (log scale) — share of events at or below it', 'text-anchor="middle" fill="#555"'));
  return svg(width, height, 'stratus make bench: latency distributions', body);
}

/** Writes goals.svg and latency.svg; resolves to their paths. */
export function writeCharts(reports: BenchReport[], subtitle: string, dir = join(process.cwd(), 'bench', 'results')): string[] {
  mkdirSync(dir, { recursive: true });
  const goals = join(dir, 'goals.svg');
  const latency = join(dir, 'latency.svg');
  writeFileSync(goals, goalsChart(reports, subtitle));
  writeFileSync(latency, latencyChart(reports, subtitle));
  return [goals, latency];
}
