/**
 * What `make bench` shows while it runs: one progress line per phase (done/total, rate,
 * ETA; redrawn in place on a terminal, printed once when the phase ends otherwise), while
 * everything verbose — the controllers' and servers' JSON logs, each benchmark's full
 * figures, the hottest functions of each CPU profile, warnings — goes to the log file
 * `bench/results/bench.log` (`benchLogFile()`).
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';

/** The file every log line of a bench run goes to (`STRATUS_LOG_FILE`, set by bench/logfile.ts). */
export function benchLogFile(): string {
  return process.env.STRATUS_LOG_FILE ?? join(process.cwd(), 'bench', 'results', 'bench.log');
}

/** Appends plain text (a report, a profile summary, a warning) to the bench log. */
export function benchLog(text: string): void {
  const file = benchLogFile();
  mkdirSync(dirname(file), { recursive: true });
  appendFileSync(file, text.endsWith('\n') ? text : text + '\n');
}

/** A warning: into the log, and one line on the terminal so it is not missed. */
export function benchWarn(text: string): void {
  benchLog(`WARN ${text}`);
  endLine();
  process.stdout.write(`  ! ${text.split('\n')[0]}\n`);
}

const tty = process.stdout.isTTY === true;
let drawn = false;

/** Ends a progress line being redrawn (before anything else is printed). */
function endLine(): void {
  if (drawn) process.stdout.write('\n');
  drawn = false;
}

function duration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s.toFixed(0)} s`;
  return `${Math.floor(s / 60)} min ${String(Math.round(s % 60)).padStart(2, '0')} s`;
}

function rateText(r: number): string {
  return r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2);
}

export interface Progress {
  /** Sets how much is done (of `total`). */
  set(done: number): void;
  /** Adds `n` (default 1) to what is done. */
  add(n?: number): void;
  /** Ends the phase: its final line, with `note` (e.g. "987 of 1000 running"). */
  end(note?: string): void;
}

/**
 * Starts a phase. `total` is what it has to do in `unit`s (the line shows done/total, the
 * rate and the ETA); without one, the line shows the elapsed time against `budgetS` when given.
 */
export function progress(label: string, total?: number, unit = '', budgetS?: number): Progress {
  const t0 = performance.now();
  let done = 0;
  let last = 0;
  let ended = false;
  const line = (final: boolean): string => {
    const s = (performance.now() - t0) / 1000;
    const parts = [`[${label}]`.padEnd(34)];
    if (total !== undefined) {
      const rate = s > 0 ? done / s : 0;
      parts.push(`${String(done).padStart(String(total).length)}/${total} ${unit}`.padEnd(22));
      parts.push(`${Math.floor((100 * done) / Math.max(1, total))}%`.padStart(4));
      parts.push(`${rateText(rate)} ${unit}/s`.padEnd(18));
      parts.push(final ? `took ${duration(s)}` : `ETA ${rate > 0 ? duration((total - done) / rate) : '?'}`);
    } else {
      parts.push(final ? `took ${duration(s)}` : `${duration(s)}${budgetS ? ` of at most ${duration(budgetS)}` : ''}`);
    }
    return parts.join(' ');
  };
  const draw = (): void => {
    if (!tty || ended) return;
    const now = performance.now();
    if (now - last < 250) return;
    last = now;
    process.stdout.write(`\r${line(false)}\x1b[K`);
    drawn = true;
  };
  const ticker = tty ? setInterval(draw, 1000) : undefined;
  ticker?.unref();
  draw();
  return {
    set(n) {
      done = n;
      draw();
    },
    add(n = 1) {
      done += n;
      draw();
    },
    end(note) {
      if (ended) return;
      clearInterval(ticker);
      const text = line(true) + (note ? `  ${note}` : '');
      ended = true;
      if (tty) process.stdout.write(`\r${text}\x1b[K\n`);
      else process.stdout.write(`${text}\n`);
      drawn = false;
      benchLog(`-- phase ${text}`);
    },
  };
}

/** Prints a heading line (a benchmark starts). */
export function heading(text: string): void {
  endLine();
  process.stdout.write(`${text}\n`);
  benchLog(`==== ${text}`);
}
