/**
 * `stratus serve` (with its controllers, as a user runs it) from process start to ready:
 * `/readyz` answering 200 over HTTPS after the "serving the Kubernetes API" line. Two cases,
 * each the median of `runs`: a fresh data dir (the CA and certificates are generated, the
 * store created, RBAC bootstrapped) and a restart on that data dir. The harness polls every
 * 50 ms, so each figure may be up to 50 ms late.
 */
import { performance } from 'node:perf_hooks';
import { startStratusServe } from '../test/harness/apiserver.js';
import { median } from './report.js';
import { progress } from './progress.js';

export interface ColdStartResult {
  freshMs: number;
  restartMs: number;
  runs: number;
}

export async function runColdStart(runs = 3): Promise<ColdStartResult> {
  const fresh: number[] = [];
  const restart: number[] = [];
  const shown = progress('stratus serve: start to ready', 2 * runs, 'starts');
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const serve = await startStratusServe({ controllers: true });
    try {
      fresh.push(performance.now() - t0);
      shown.add();
      await serve.terminate();
      const t1 = performance.now();
      await serve.restart();
      restart.push(performance.now() - t1);
      shown.add();
    } finally {
      await serve.stop();
    }
  }
  shown.end();
  return { freshMs: median(fresh), restartMs: median(restart), runs };
}
