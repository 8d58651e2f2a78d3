/**
 * A private `libvirtd` for tests that need a real qemu domain: it runs as `nobody` with its
 * XDG directories under a fresh temp dir, so it serves `qemu:///session` on its own socket
 * and touches nothing of the machine's system libvirt.
 */
import { chown, mkdir, mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { removeDir, requireBinary, startDaemon, waitFor, pidAlive, execFileP, type Daemon } from './process.js';

export interface PrivateLibvirtd {
  /** `qemu+unix:///session?socket=...` for this daemon. */
  uri: string;
  /** The temp dir holding the daemon's state; readable and writable by `nobody`. */
  dir: string;
  pid: number;
  /** Stops libvirtd (its qemu processes keep running) and starts it again on the same dirs. */
  restart(): Promise<void>;
  /** SIGKILL libvirtd alone (its qemu processes keep running); `restart` brings it back. */
  kill(): Promise<void>;
  /** Stops the daemon, kills qemu processes it left behind (by PID) and removes `dir`. */
  stop(): Promise<void>;
}

const NOBODY_UID = 65534;
const NOGROUP_GID = 65534;

/** PIDs of processes whose command line mentions `marker` (qemu started by this daemon). */
export async function processesMentioning(marker: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    try {
      const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes(marker)) found.push(pid);
    } catch {
      // the process ended while we looked
    }
  }
  return found;
}

/**
 * Waits until libvirtd `d` answers on `uri` (its socket `socket` exists and `virsh version`
 * works); throws with the daemon's output if it exits first.
 */
export async function awaitLibvirtd(d: Daemon, socket: string, uri: string, timeoutMs: number): Promise<void> {
  await waitFor('libvirtd to listen', async () => {
    if (d.child.exitCode !== null) throw new Error(`libvirtd exited: ${d.output()}`);
    if (!existsSync(socket)) return false;
    await execFileP('virsh', ['-c', uri, 'version']);
    return true;
  }, timeoutMs, 100);
}

/**
 * Stops libvirtd (if started), kills by PID the processes it left behind (qemu: their
 * command lines mention `dir`, where its state lives) and removes `dir`.
 */
export async function stopLibvirtdIn(dir: string, daemon?: Daemon): Promise<void> {
  await daemon?.stop(5000);
  for (const pid of await processesMentioning(dir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await waitFor(`process ${pid} to exit`, () => !pidAlive(pid), 10_000);
  }
  await removeDir(dir);
}

export async function startLibvirtd(): Promise<PrivateLibvirtd> {
  const libvirtd = requireBinary('libvirtd');
  requireBinary('qemu-system-x86_64');
  // A short prefix: qemu's UNIX socket paths under this dir must stay under 108 bytes.
  const dir = await mkdtemp(join(tmpdir(), 'svirt-'));
  const dirs = ['r', 'c', 'k', 'h'].map((d) => join(dir, d));
  for (const d of dirs) await mkdir(d, { recursive: true });
  for (const d of [dir, ...dirs]) await chown(d, NOBODY_UID, NOGROUP_GID);
  const [run, config, cache, home] = dirs as [string, string, string, string];
  const socket = join(run, 'libvirt', 'libvirt-sock');
  const uri = `qemu+unix:///session?socket=${socket}`;
  const launch = async (): Promise<Daemon> => {
    const d = startDaemon(libvirtd, [], {
      uid: NOBODY_UID,
      gid: NOGROUP_GID,
      cwd: home,
      env: {
        PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
        HOME: home,
        XDG_RUNTIME_DIR: run,
        XDG_CONFIG_HOME: config,
        XDG_CACHE_HOME: cache,
        LIBVIRT_LOG_OUTPUTS: `3:file:${join(dir, 'libvirtd.log')}`,
      },
    });
    try {
      await awaitLibvirtd(d, socket, uri, 20_000);
    } catch (err) {
      await d.stop(2000);
      throw err;
    }
    return d;
  };
  let daemon: Daemon | undefined;
  const stop = (): Promise<void> => stopLibvirtdIn(dir, daemon);
  try {
    daemon = await launch();
  } catch (err) {
    await stop();
    throw err;
  }
  const handle: PrivateLibvirtd = {
    uri,
    dir,
    pid: daemon.pid,
    stop,
    async kill() {
      await daemon?.kill();
    },
    async restart() {
      await daemon?.stop(5000);
      daemon = await launch();
      handle.pid = daemon.pid;
    },
  };
  return handle;
}
