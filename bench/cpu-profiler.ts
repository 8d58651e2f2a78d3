/**
 * `--cpu-prof` for processes started through NODE_OPTIONS, where Node 20 refuses
 * `--cpu-prof` itself: `NODE_OPTIONS=--import=<this file's URL>` with
 * `BENCH_CPU_PROF_DIR=<dir>` profiles the whole process with the inspector and writes
 * `<dir>/NNN.cpuprofile` (the same JSON as `--cpu-prof`): one per phase the benchmark marks
 * with SIGUSR2 (`markPhase`), the last when it exits. At each mark it also runs a full GC
 * and writes `<dir>/NNN.memory.json` (`{rss, heapUsed}` in bytes) — `heapAfterPhase`.
 */
import { Session } from 'node:inspector';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Closes the current profile segment of a process started with the preload. */
export function markPhase(pid: number): void {
  process.kill(pid, 'SIGUSR2');
}

/**
 * The server's `{rss, heapUsed}` (bytes, after a full GC) at the end of phase `index`;
 * waits up to 10 s for the file the mark writes.
 */
export async function heapAfterPhase(dir: string, index: number): Promise<{ rss: number; heapUsed: number }> {
  const file = join(dir, `${String(index).padStart(3, '0')}.memory.json`);
  for (let waited = 0; waited < 10_000; waited += 50) {
    if (existsSync(file)) {
      try {
        return JSON.parse(readFileSync(file, 'utf8')) as { rss: number; heapUsed: number };
      } catch {
        // still being written
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${file} was not written`);
}

/**
 * Profiles this process from now until the returned function is called; that writes the
 * profile to `file` (for the controllers, which run inside the bench process).
 */
export function profileThisProcess(file: string): () => void {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 1000 });
  session.post('Profiler.start');
  return () => {
    session.post('Profiler.stop', (err, res) => {
      if (!err) writeFileSync(file, JSON.stringify(res.profile));
    });
    session.disconnect();
  };
}

const dir = process.env.BENCH_CPU_PROF_DIR;
if (dir) {
  // SIGUSR2 closes the current segment and starts the next: `<dir>/000.cpuprofile`, 001, ...
  // — the benchmark marks its phases so each profile covers one of them.
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 1000 });
  session.post('Profiler.start');
  let segment = 0;
  const cut = (): void => {
    // an in-process session answers synchronously, so this completes before we go on
    session.post('Profiler.stop', (err, res) => {
      if (err) return;
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `${String(segment++).padStart(3, '0')}.cpuprofile`), JSON.stringify(res.profile));
    });
  };
  // A full GC at each mark, then the heap as it stands: what the phase left behind.
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  process.on('SIGUSR2', () => {
    const n = String(segment).padStart(3, '0');
    cut();
    gc();
    const m = process.memoryUsage();
    writeFileSync(join(dir, `${n}.memory.json`), JSON.stringify({ rss: m.rss, heapUsed: m.heapUsed }));
    session.post('Profiler.start');
  });
  process.once('exit', cut);
}
