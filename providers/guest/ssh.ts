/**
 * A VM (or any host) guest over SSH with the system OpenSSH client: `ssh` for commands, `tar -x`
 * over ssh's stdin for uploads. The private key is written 0600 into a private temp dir for the
 * life of the channel; `close()` removes it.
 *
 * Host keys: with `knownHosts` (known_hosts lines) the server must match them
 * (`StrictHostKeyChecking=yes`); without, the first key seen is trusted and pinned in
 * `knownHostsFile` (`accept-new`), which callers keep across channels so a changed key is refused.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { GuestUnreachable, shellQuote, type GuestChannel, type GuestExecOptions, type GuestExecResult } from './channel.js';
import { run } from './local.js';

export interface SshTarget {
  host: string;
  port?: number;
  user?: string;
  /** PEM/OpenSSH private key. */
  privateKey: string;
  /** known_hosts lines the server's key must match; absent → trust on first use. */
  knownHosts?: string;
  /** Where trust-on-first-use keys are pinned. Default: a file in the channel's temp dir. */
  knownHostsFile?: string;
  /** Connect timeout in seconds. Default 10. */
  connectTimeoutSeconds?: number;
  /**
   * Run every remote command through `sudo -n` (as root): for cloud images, whose login user
   * is not root (root logins are refused) but has password-less sudo.
   */
  sudo?: boolean;
}

export class SshChannel implements GuestChannel {
  private dir: Promise<string> | undefined;

  constructor(
    readonly name: string,
    private readonly target: SshTarget,
    private readonly defaultTimeoutMs = 30 * 60_000,
  ) {}

  private async files(): Promise<{ key: string; knownHosts: string; strict: string }> {
    this.dir ??= (async () => {
      const d = await mkdtemp(join(tmpdir(), 'stratus-ssh-'));
      await writeFile(join(d, 'key'), this.target.privateKey.endsWith('\n') ? this.target.privateKey : `${this.target.privateKey}\n`, { mode: 0o600 });
      if (this.target.knownHosts) await writeFile(join(d, 'known_hosts'), this.target.knownHosts, { mode: 0o600 });
      return d;
    })();
    const d = await this.dir;
    return {
      key: join(d, 'key'),
      knownHosts: this.target.knownHosts ? join(d, 'known_hosts') : (this.target.knownHostsFile ?? join(d, 'known_hosts')),
      strict: this.target.knownHosts ? 'yes' : 'accept-new',
    };
  }

  /** Options every ssh invocation of this channel shares (one multiplexed connection). */
  private async options(): Promise<string[]> {
    const f = await this.files();
    return [
      '-i', f.key,
      '-p', String(this.target.port ?? 22),
      '-o', 'BatchMode=yes',
      '-o', 'IdentitiesOnly=yes',
      '-o', `StrictHostKeyChecking=${f.strict}`,
      '-o', `UserKnownHostsFile=${f.knownHosts}`,
      '-o', 'GlobalKnownHostsFile=/dev/null',
      '-o', `ConnectTimeout=${this.target.connectTimeoutSeconds ?? 10}`,
      '-o', 'LogLevel=ERROR',
      // one TCP connection and authentication for all the stages of a release
      '-o', 'ControlMaster=auto',
      '-o', `ControlPath=${join(dirname(f.key), 'control')}`,
      '-o', 'ControlPersist=60',
    ];
  }

  private destination(): string {
    return `${this.target.user ?? 'root'}@${this.target.host}`;
  }

  private async ssh(remote: string, options: GuestExecOptions): Promise<GuestExecResult> {
    const command = this.target.sudo ? `sudo -n sh -c ${shellQuote(remote)}` : remote;
    const argv = ['ssh', ...(await this.options()), this.destination(), '--', command];
    const r = await run(argv, { ...(options.stdin !== undefined ? { stdin: options.stdin } : {}) }, options.timeoutMs ?? this.defaultTimeoutMs);
    // 255 is ssh's own failure (connection, authentication, host key)
    if (r.exitCode === 255) throw new GuestUnreachable(this.name, `ssh to ${this.target.host}:${this.target.port ?? 22} failed: ${r.stderr.trim()}`);
    return r;
  }

  exec(argv: string[], options: GuestExecOptions = {}): Promise<GuestExecResult> {
    const env = Object.entries(options.env ?? {}).map(([k, v]) => `${k}=${shellQuote(v)}`);
    const command = [...(env.length ? ['env', ...env] : []), ...argv.map(shellQuote)].join(' ');
    return this.ssh(options.cwd ? `cd ${shellQuote(options.cwd)} && ${command}` : command, options);
  }

  async upload(tar: Buffer, path: string): Promise<void> {
    const r = await this.ssh(`tar -x -C ${shellQuote(path)}`, { stdin: tar });
    if (r.exitCode !== 0) throw new Error(`cannot extract into ${path} on ${this.name}: ${r.stderr.trim()}`);
  }

  async close(): Promise<void> {
    const d = this.dir;
    if (!d) return;
    // ends the multiplexing master this channel started (it would also exit after ControlPersist)
    await run(['ssh', ...(await this.options()), '-O', 'exit', this.destination()], {}, 10_000).catch(() => undefined);
    this.dir = undefined;
    await rm(await d, { recursive: true, force: true });
  }
}
