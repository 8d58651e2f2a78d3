/**
 * A real OpenSSH server on 127.0.0.1 for tests — the stand-in for a VM guest: a private host
 * key, config and authorized_keys in a temp dir, a free port, public-key login only. The test
 * gets a client key pair and the server's known_hosts line. Stopped by PID.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { execFileP, freePort, removeDir, requireBinary, startDaemon, tempDir, waitFor, type Daemon } from './process.js';
import { createConnection } from 'node:net';

export interface Sshd {
  host: string;
  port: number;
  user: string;
  /** The client's private key (OpenSSH format), authorized on the server. */
  privateKey: string;
  privateKeyPath: string;
  /** `[127.0.0.1]:PORT ssh-ed25519 ...`, for a known_hosts file. */
  knownHosts: string;
  dir: string;
  output(): string;
  stop(): Promise<void>;
}

function banner(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    sock.once('data', (b) => {
      sock.destroy();
      resolve(b.toString().startsWith('SSH-'));
    });
    sock.once('error', () => resolve(false));
  });
}

export async function startSshd(): Promise<Sshd> {
  const sshd = requireBinary('sshd', 'make deps-apt (openssh-server)');
  const keygen = requireBinary('ssh-keygen', 'make deps-apt (openssh-client)');
  const dir = await tempDir('sshd');
  let daemon: Daemon | undefined;
  try {
    // sshd insists on its privilege separation directory
    await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
    await execFileP(keygen, ['-q', '-t', 'ed25519', '-N', '', '-C', 'stratus-test-host', '-f', join(dir, 'host_key')]);
    await execFileP(keygen, ['-q', '-t', 'ed25519', '-N', '', '-C', 'stratus-test-client', '-f', join(dir, 'client_key')]);
    await writeFile(join(dir, 'authorized_keys'), await readFile(join(dir, 'client_key.pub')), { mode: 0o600 });
    const port = await freePort();
    const user = userInfo().username;
    await writeFile(
      join(dir, 'sshd_config'),
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${join(dir, 'host_key')}`,
        `PidFile ${join(dir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        'PubkeyAuthentication yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PermitRootLogin prohibit-password',
        `AllowUsers ${user}`,
        'StrictModes no',
        'UsePAM no',
        'MaxStartups 100:30:200',
        'MaxSessions 50',
        '',
      ].join('\n'),
    );
    daemon = startDaemon(sshd, ['-D', '-e', '-f', join(dir, 'sshd_config')]);
    const d = daemon;
    await waitFor('sshd to answer', async () => {
      if (d.child.exitCode !== null) throw new Error(`sshd exited: ${d.output()}`);
      return banner(port);
    }, 10_000, 50);
    const hostPub = (await readFile(join(dir, 'host_key.pub'), 'utf8')).trim().split(' ').slice(0, 2).join(' ');
    return {
      host: '127.0.0.1',
      port,
      user,
      privateKey: await readFile(join(dir, 'client_key'), 'utf8'),
      privateKeyPath: join(dir, 'client_key'),
      knownHosts: `[127.0.0.1]:${port} ${hostPub}\n`,
      dir,
      output: () => d.output(),
      async stop() {
        await d.stop();
        await removeDir(dir);
      },
    };
  } catch (err) {
    await daemon?.stop();
    await removeDir(dir);
    throw err;
  }
}
