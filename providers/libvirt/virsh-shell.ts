/**
 * One long-lived `virsh -c URI` process per connection, driven through its interactive
 * shell on stdin.
 *
 * Why a long-lived process and not `execFile('virsh', ...)` per call: the `test:///`
 * driver keeps its whole state in the process that opened it, so every short-lived `virsh`
 * would see a fresh, empty world. Sending every pool, volume, network (and, for `test:///`,
 * domain) command through the same process keeps exactly one state per connection. For
 * daemon URIs the same shell saves a connection handshake per command.
 *
 * Protocol: each command is followed by `echo --xml "<marker><"`, whose output
 * (`<marker>&lt;`) cannot appear in the echoed command line; everything between two markers
 * is the command's output. stderr is merged into stdout (readline flushes stdout before each
 * prompt, so a command's errors never cross a marker). A line starting with `error: ` marks
 * the command as failed; its text is libvirt's message, which callers match (the binding
 * and virsh give no usable error codes).
 *
 * Commands run one at a time in submission order. A command that does not finish within
 * `timeoutMs` kills the process (by PID); so does any exit — the next command starts a new
 * process, which is how the shell reconnects. Caveat: for `test:///` URIs a new process
 * is a new, freshly loaded world.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { log } from '../../runtime/log.js';

/** A virsh command failed; `message` is libvirt's error text. */
export class VirshError extends Error {
  constructor(
    message: string,
    /** The command's arguments, for logs. */
    readonly command: string[],
    /** True when the failure was the connection itself (process could not start, exited, timed out). */
    readonly connectionLost = false,
    readonly timedOut = false,
  ) {
    super(message);
    this.name = 'VirshError';
  }
}

interface Pending {
  marker: string;
  args: string[];
  /** The quoted command line sent to virsh. */
  line: string;
  resolve(out: string): void;
  reject(err: Error): void;
  timer?: NodeJS.Timeout;
}

/** Quotes one argument for virsh's own tokenizer (double quotes, backslash escapes). */
export function quoteVirshArg(arg: string): string {
  if ([...arg].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) {
    throw new Error(`virsh argument contains a control character: ${JSON.stringify(arg)}`);
  }
  return `"${arg.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

export class VirshShell {
  private child: ChildProcessWithoutNullStreams | undefined;
  private buffer = '';
  private current: Pending | undefined;
  private readonly queue: Pending[] = [];
  private readonly token = randomBytes(6).toString('hex');
  private seq = 0;
  private closed = false;

  constructor(
    readonly uri: string,
    private readonly timeoutMs = 60_000,
  ) {}

  /** PID of the current virsh process, if one runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /**
   * Runs one virsh command (e.g. `['vol-list', 'default']`) and returns its output. When the
   * virsh process dies under the command (killed, daemon gone), it runs once more on a new
   * process; a timed-out command is not repeated.
   */
  async run(args: string[]): Promise<string> {
    try {
      return await this.runOnce(args);
    } catch (err) {
      if (!(err instanceof VirshError) || !err.connectionLost || err.timedOut || this.closed) throw err;
      return this.runOnce(args);
    }
  }

  private runOnce(args: string[]): Promise<string> {
    if (this.closed) return Promise.reject(new VirshError('virsh shell is closed', args, true));
    let line: string;
    try {
      line = args.map(quoteVirshArg).join(' ');
    } catch (err) {
      return Promise.reject(err instanceof Error ? new VirshError(err.message, args) : err);
    }
    return new Promise<string>((resolve, reject) => {
      const marker = `__stratus_${this.token}_${++this.seq}__`;
      this.queue.push({ marker, args, line, resolve, reject });
      this.pump();
    });
  }

  /** Like `run`, but returns undefined when the error text matches `absent`. */
  async runOrAbsent(args: string[], absent: RegExp): Promise<string | undefined> {
    try {
      return await this.run(args);
    } catch (err) {
      if (err instanceof VirshError && !err.connectionLost && absent.test(err.message)) return undefined;
      throw err;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const child = this.child;
    this.failAll(new VirshError('virsh shell is closed', [], true));
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.stdin.end('quit\n');
    const t = setTimeout(() => child.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(t);
  }

  private pump(): void {
    if (this.current) return;
    const next = this.queue.shift();
    if (!next) return;
    this.current = next;
    const child = this.ensureProcess();
    next.timer = setTimeout(() => {
      log.warn({ component: 'virsh', uri: this.uri, command: next.args }, 'virsh command timed out; restarting virsh');
      this.kill(new VirshError(`virsh ${next.args.join(' ')} timed out after ${this.timeoutMs} ms`, next.args, true, true));
    }, this.timeoutMs);
    child.stdin.write(`${next.line}\necho --xml "${next.marker}<"\n`);
  }

  private ensureProcess(): ChildProcessWithoutNullStreams {
    if (this.child) return this.child;
    this.buffer = '';
    const child = spawn('sh', ['-c', 'exec virsh -q -c "$0" 2>&1', this.uri], {
      env: { ...process.env, TERM: 'dumb', COLUMNS: '1000000', INPUTRC: '/dev/null', LC_ALL: 'C' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child = child;
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      this.buffer += d;
      this.drain();
    });
    child.stderr.on('data', () => undefined);
    child.stdin.on('error', () => undefined);
    child.once('exit', (code, signal) => {
      if (this.child !== child) return;
      this.child = undefined;
      const errors = errorLines(this.buffer);
      const why = errors.length ? errors.join(': ') : `virsh exited (${signal ?? code})`;
      this.failAll(new VirshError(why, this.current?.args ?? [], true));
    });
    return child;
  }

  private drain(): void {
    const cur = this.current;
    if (!cur) return;
    const done = `${cur.marker}&lt;`;
    const at = this.buffer.indexOf(done);
    if (at < 0) return;
    const chunk = this.buffer.slice(0, at);
    this.buffer = this.buffer.slice(at + done.length);
    clearTimeout(cur.timer);
    this.current = undefined;
    const out = commandOutput(chunk);
    const all = errorLines(out);
    // virsh reconnects by itself after the daemon went away and says so on stderr; those
    // notices are not the command's failure.
    const notices = all.filter((e) => RECONNECT_NOTICE.test(e));
    if (notices.length) log.info({ component: 'virsh', uri: this.uri, notices }, 'virsh reconnected to the hypervisor');
    const errors = all.filter((e) => !RECONNECT_NOTICE.test(e));
    if (errors.length) cur.reject(new VirshError(errors.join(': '), cur.args));
    else cur.resolve(out);
    this.pump();
  }

  private kill(err: VirshError): void {
    const child = this.child;
    this.child = undefined;
    if (child) child.kill('SIGKILL');
    this.failAll(err);
  }

  private failAll(err: VirshError): void {
    const all = [...(this.current ? [this.current] : []), ...this.queue.splice(0)];
    this.current = undefined;
    for (const p of all) {
      clearTimeout(p.timer);
      p.reject(err);
    }
  }
}

const RECONNECT_NOTICE = /^(Reconnected to the hypervisor|Disconnected from .* due to )/;

/** Strips the echoed prompt + command line at the start and the echoed marker command at the end. */
function commandOutput(chunk: string): string {
  let out = chunk.replace(/^\n+/, '');
  const nl = out.indexOf('\n');
  out = nl >= 0 ? out.slice(nl + 1) : '';
  const tail = out.lastIndexOf('virsh # echo --xml "');
  if (tail >= 0) out = out.slice(0, tail);
  return out;
}

function errorLines(out: string): string[] {
  return out
    .split('\n')
    .filter((l) => l.startsWith('error: '))
    .map((l) => l.slice('error: '.length).trim());
}
