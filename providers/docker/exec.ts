/**
 * Running commands in containers and copying files into them — what the Deployments pipeline
 * (release-sync, configure, build, activate, ...) needs from a container guest.
 *
 * `execInContainer` collects stdout and stderr separately (Docker's multiplexed stream) up to a
 * byte limit and reports the exit code. Caveat: Docker has no API to kill an exec'd process,
 * so on a deadline the call fails with `ExecTimeout` while the process may keep running in
 * the container.
 */
import { PassThrough, type Readable } from 'node:stream';
import { ReconcileError } from '../../runtime/errors.js';
import { engineMessage, statusCode, type Engine } from './engine.js';

export interface ExecOptions {
  env?: Record<string, string>;
  workingDir?: string;
  /** `user`, `user:group`, `uid` or `uid:gid`. */
  user?: string;
  /** Written to the process's stdin, which is then closed. */
  stdin?: string | Buffer;
  /** Default: the engine's operation deadline. */
  timeoutMs?: number;
  /** Per stream; more is dropped and `truncated` is set. Default 8 MiB. */
  maxOutputBytes?: number;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  truncated: boolean;
}

class Collector extends PassThrough {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  truncated = false;

  constructor(private readonly limit: number) {
    super();
    this.on('data', (b: Buffer) => {
      const room = this.limit - this.size;
      if (room <= 0) {
        this.truncated = true;
        return;
      }
      const part = b.length > room ? b.subarray(0, room) : b;
      if (part.length < b.length) this.truncated = true;
      this.chunks.push(part);
      this.size += part.length;
    });
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

function missing(containerId: string, err: unknown): ReconcileError {
  return new ReconcileError('ContainerNotFound', `container ${containerId} does not exist: ${engineMessage(err)}`, false);
}

/** Runs `argv` in a running container and waits for it to finish. */
export async function execInContainer(engine: Engine, containerId: string, argv: string[], options: ExecOptions = {}): Promise<ExecResult> {
  if (argv.length === 0) throw new ReconcileError('InvalidSpec', 'exec needs a command', false);
  const timeoutMs = options.timeoutMs ?? engine.operationTimeoutMs;
  const signal = AbortSignal.timeout(timeoutMs);
  const container = engine.docker.getContainer(containerId);
  const createBody: Parameters<typeof container.exec>[0] = {
    Cmd: argv,
    AttachStdout: true,
    AttachStderr: true,
    AttachStdin: options.stdin !== undefined,
    Tty: false,
  };
  if (options.env) createBody.Env = Object.entries(options.env).map(([k, v]) => `${k}=${v}`);
  if (options.workingDir) createBody.WorkingDir = options.workingDir;
  if (options.user) createBody.User = options.user;
  let exec: Awaited<ReturnType<typeof container.exec>>;
  try {
    exec = await engine.call('create exec', () => container.exec({ ...createBody, abortSignal: engine.quick() }));
  } catch (err) {
    if (statusCode(err) === 404) throw missing(containerId, err);
    if (statusCode(err) === 409) throw new ReconcileError('ContainerNotRunning', `cannot exec in container ${containerId}: ${engineMessage(err)}`);
    if (err instanceof ReconcileError) throw err;
    throw new ReconcileError('EngineError', `cannot exec in container ${containerId}: ${engineMessage(err)}`);
  }
  const stream = await engine.must(
    'start exec',
    () => exec.start({ hijack: true, stdin: options.stdin !== undefined, abortSignal: signal }),
    timeoutMs,
  );
  const limit = options.maxOutputBytes ?? 8 * 1024 * 1024;
  const stdout = new Collector(limit);
  const stderr = new Collector(limit);
  engine.docker.modem.demuxStream(stream, stdout, stderr);
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      stream.removeListener('end', done);
      (stream as Readable).destroy?.();
      reject(new ReconcileError('ExecTimeout', `${argv.join(' ')} did not finish within ${timeoutMs} ms (it may still run in the container)`));
    };
    const done = (): void => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    stream.once('end', done);
    stream.once('close', done);
    stream.once('error', (err: Error) => {
      signal.removeEventListener('abort', onAbort);
      reject(new ReconcileError('EngineError', `exec stream failed: ${err.message}`));
    });
    if (options.stdin !== undefined) {
      const writable = stream as NodeJS.ReadWriteStream;
      writable.write(options.stdin);
      writable.end();
    }
  });
  const info = await engine.must('inspect exec', () => exec.inspect({ abortSignal: engine.quick() }));
  if (info.Running || info.ExitCode === null) {
    throw new ReconcileError('EngineError', `exec of ${argv.join(' ')} ended its stream but is still running`);
  }
  return { exitCode: info.ExitCode, stdout: stdout.text(), stderr: stderr.text(), truncated: stdout.truncated || stderr.truncated };
}

/**
 * Extracts a tar archive into `path` inside the container (which must exist; Docker does not
 * create it). Works on stopped containers too.
 */
export async function uploadArchive(engine: Engine, containerId: string, path: string, tar: Buffer | Readable): Promise<void> {
  const container = engine.docker.getContainer(containerId);
  try {
    await engine.call('upload archive', () => container.putArchive(tar, { path, abortSignal: engine.slow() }), engine.operationTimeoutMs);
  } catch (err) {
    const code = statusCode(err);
    const message = engineMessage(err);
    if (code === 404 && /no such container/i.test(message)) throw missing(containerId, err);
    if (code === 404) throw new ReconcileError('PathNotFound', `cannot upload into ${path}: ${message}`, false);
    if (code === 400 || code === 403) throw new ReconcileError('InvalidArchive', `cannot upload into ${path}: ${message}`, false);
    if (err instanceof ReconcileError) throw err;
    throw new ReconcileError('EngineError', `cannot upload into ${path}: ${message}`);
  }
}
