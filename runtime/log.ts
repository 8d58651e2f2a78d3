/**
 * The one logger of stratus: structured JSON lines (pino) on stderr. Child loggers carry
 * context (`controller`, `key`, `reconcileID`, `component`).
 *
 * `STRATUS_LOG_LEVEL` sets the level (default `info`; tests default to `warn` so their
 * output stays readable). `STRATUS_LOG_FILE` appends the lines to that file instead of
 * stderr (`make bench` sends every process's log to `bench/results/bench.log`).
 */
import { pino, type Logger } from 'pino';

export type { Logger };

const defaultLevel = process.env.STRATUS_LOG_LEVEL ?? (process.env.NODE_TEST_CONTEXT ? 'warn' : 'info');

export const log: Logger = pino(
  { level: defaultLevel, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
  process.env.STRATUS_LOG_FILE
    ? pino.destination({ dest: process.env.STRATUS_LOG_FILE, append: true, mkdir: true, sync: false })
    : pino.destination({ fd: 2, sync: false }),
);
