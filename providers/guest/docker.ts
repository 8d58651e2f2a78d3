/**
 * A container guest: commands through Docker exec and uploads through the archive API of the
 * engine carrying the container (the Instance's uid names it). The engine connection is shared
 * with the Instance controller; closing the channel leaves it open.
 */
import type { DockerNodeConnection } from '../docker/index.js';
import type { GuestChannel, GuestExecOptions, GuestExecResult } from './channel.js';

/** Per stream: release bundles travel base64-encoded on stdout. */
const MAX_OUTPUT = 256 * 1024 * 1024;

export type DockerExecEndpoint = Pick<DockerNodeConnection, 'exec' | 'uploadArchive'>;

export class DockerExecChannel implements GuestChannel {
  constructor(
    readonly name: string,
    private readonly engine: DockerExecEndpoint,
    /** The Instance uid the container carries (`stratus.dev/uid`). */
    private readonly uid: string,
    private readonly defaultTimeoutMs = 30 * 60_000,
  ) {}

  async exec(argv: string[], options: GuestExecOptions = {}): Promise<GuestExecResult> {
    const r = await this.engine.exec(this.uid, argv, {
      ...(options.stdin !== undefined ? { stdin: options.stdin } : {}),
      ...(options.env ? { env: options.env } : {}),
      ...(options.cwd ? { workingDir: options.cwd } : {}),
      timeoutMs: options.timeoutMs ?? this.defaultTimeoutMs,
      maxOutputBytes: MAX_OUTPUT,
    });
    // a cut stream would be a corrupt download (readGuestFile) or a wrong exit story
    if (r.truncated) throw new Error(`output of ${argv[0]} on ${this.name} exceeds ${MAX_OUTPUT} bytes`);
    return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr };
  }

  async upload(tar: Buffer, path: string): Promise<void> {
    await this.engine.uploadArchive(this.uid, path, tar);
  }

  async close(): Promise<void> {}
}
