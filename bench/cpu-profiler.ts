/**
 * `--cpu-prof` for processes started through NODE_OPTIONS, where Node 20 refuses
 * `--cpu-prof` itself: `NODE_OPTIONS=--import=<this file's URL>` with
 * `BENCH_CPU_PROF_DIR=<dir>` profiles the whole process with the inspector and writes
 * `<dir>/<pid>.cpuprofile` (the same JSON as `--cpu-prof`) when it exits.
 */
import { Session } from 'node:inspector';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.BENCH_CPU_PROF_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 1000 });
  session.post('Profiler.start');
  process.once('exit', () => {
    // an in-process session answers synchronously, so this completes before exit
    session.post('Profiler.stop', (err, res) => {
      if (err) return;
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `${Date.now()}-${process.pid}.cpuprofile`), JSON.stringify(res.profile));
    });
  });
}
