/**
 * Benchmark helper processes (load generator, bare server, watch receivers, informer):
 * started from `dist/bench/`, bounded by a timeout, killed by PID when done.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

export interface BenchChild {
  child: ChildProcess;
  pid: number;
  /** Resolves with the first stdout line that `match` accepts. */
  line(match: (line: string) => boolean): Promise<string>;
  /** Resolves with the exit code once the process is gone. */
  exited: Promise<number | null>;
  /** SIGTERM, SIGKILL after 3 s; removes the config file. */
  stop(): Promise<void>;
}

/**
 * Starts `node [nodeArgs] dist/bench/<script>.js CONFIG.json` with `config` written to a
 * temp file; the process is killed after `timeoutMs` whatever happens.
 */
export function startChild(script: string, config: unknown, timeoutMs: number, nodeArgs: string[] = []): BenchChild {
  const dir = mkdtempSync(join(tmpdir(), 'stratus-bench-'));
  const file = join(dir, 'config.json');
  writeFileSync(file, typeof config === 'string' ? config : JSON.stringify(config));
  const child = spawn(process.execPath, [...nodeArgs, join(here, `${script}.js`), typeof config === 'string' ? config : file], { stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error(`cannot start ${script}`);
  const pid = child.pid;
  let out = '';
  let err = '';
  const waiters: Array<{ match: (l: string) => boolean; resolve: (l: string) => void }> = [];
  const lines: string[] = [];
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    out += chunk;
    let nl: number;
    while ((nl = out.indexOf('\n')) >= 0) {
      const l = out.slice(0, nl);
      out = out.slice(nl + 1);
      lines.push(l);
      for (const w of [...waiters]) {
        if (w.match(l)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(l);
        }
      }
    }
  });
  child.stderr?.on('data', (b: Buffer) => {
    err = (err + b.toString()).slice(-4000);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  void exited.then(() => {
    clearTimeout(killer);
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    child,
    pid,
    exited,
    line(match) {
      const seen = lines.find(match);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        waiters.push({ match, resolve });
        void exited.then((code) => reject(new Error(`bench ${script} exited (${code}) before the expected output:\n${err}`)));
      });
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** Runs a child to completion and parses its last JSON line. */
export async function runChildJson<T>(script: string, config: unknown, timeoutMs: number, nodeArgs: string[] = []): Promise<T> {
  const c = startChild(script, config, timeoutMs, nodeArgs);
  try {
    return JSON.parse(await c.line((l) => l.startsWith('{'))) as T;
  } finally {
    await c.stop();
  }
}
