/**
 * Imported first by bench/run.ts, before anything that loads runtime/log.ts: every log line
 * of the run (the controllers in the bench process, and through the environment the
 * `stratus serve` processes it starts) goes to `bench/results/bench.log`, started afresh.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const file = process.env.STRATUS_LOG_FILE ?? join(process.cwd(), 'bench', 'results', 'bench.log');
mkdirSync(dirname(file), { recursive: true });
writeFileSync(file, `stratus benchmarks ${new Date().toISOString()}\n`);
process.env.STRATUS_LOG_FILE = file;
