/**
 * A guest exec channel: how the Deployments pipeline reaches one guest (a container through
 * Docker exec, a VM through SSH, a local directory in tests). It runs a command and uploads a
 * tar archive; everything else the pipeline needs is shell on the guest (POSIX `sh`, `tar`,
 * `ln`, `base64` — busybox is enough).
 *
 * Contract: `exec` resolves with the exit code whatever it is (a non-zero exit is not an
 * error); it rejects only when the guest cannot be reached or the command cannot be started.
 * `upload` extracts a (plain) tar into an existing directory.
 */
export interface GuestExecOptions {
  /** Written to the command's stdin, which is then closed. */
  stdin?: string | Buffer;
  env?: Record<string, string>;
  cwd?: string;
  /** Deadline of the command; the channel's default when absent. */
  timeoutMs?: number;
}

export interface GuestExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface GuestChannel {
  /** Names the guest in logs and stage output. */
  readonly name: string;
  exec(argv: string[], options?: GuestExecOptions): Promise<GuestExecResult>;
  upload(tar: Buffer, path: string): Promise<void>;
  close(): Promise<void>;
}

/** A guest that could not be reached (as opposed to a command that failed on it). */
export class GuestUnreachable extends Error {
  constructor(
    readonly guest: string,
    message: string,
  ) {
    super(`guest ${guest}: ${message}`);
    this.name = 'GuestUnreachable';
  }
}

/** Single-quotes a string for POSIX sh. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
