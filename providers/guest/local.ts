/**
 * A guest channel on this machine: commands run with `child_process`, uploads extract with the
 * system `tar`. Used by tests (a temp dir stands in for a guest's filesystem) and by a
 * controller that releases onto its own host.
 */
import { spawn } from 'node:child_process';
import type { GuestChannel, GuestExecOptions, GuestExecResult } from './channel.js';

export class LocalChannel implements GuestChannel {
  constructor(
    readonly name = 'local',
    private readonly defaultTimeoutMs = 10 * 60_000,
  ) {}

  exec(argv: string[], options: GuestExecOptions = {}): Promise<GuestExecResult> {
    return run(argv, options, this.defaultTimeoutMs);
  }

  async upload(tar: Buffer, path: string): Promise<void> {
    const r = await run(['tar', '-x', '-C', path], { stdin: tar }, this.defaultTimeoutMs);
    if (r.exitCode !== 0) throw new Error(`cannot extract into ${path}: ${r.stderr.trim()}`);
  }

  async close(): Promise<void> {}
}

/** Runs argv, collecting stdout and stderr; resolves with the exit code (128+n for a signal). */
export function run(argv: string[], options: GuestExecOptions, defaultTimeoutMs: number): Promise<GuestExecResult> {
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = argv;
    if (!cmd) return reject(new Error('exec needs a command'));
    const child = spawn(cmd, args, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: options.timeoutMs ?? defaultTimeoutMs,
      killSignal: 'SIGKILL',
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.once('error', reject);
    child.stdin.on('error', () => undefined); // the command may exit without reading stdin
    child.once('close', (code, signal) => {
      resolve({
        exitCode: code ?? (signal ? 128 + (signal === 'SIGKILL' ? 9 : 15) : 1),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
    if (options.stdin !== undefined) child.stdin.end(options.stdin);
    else child.stdin.end();
  });
}
