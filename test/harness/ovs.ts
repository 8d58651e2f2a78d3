/**
 * A private Open vSwitch for one test: ovsdb-server and ovs-vswitchd (netdev datapath, no
 * kernel module) with their database, sockets, pidfiles and logs in a temp dir.
 *
 * ovs-vswitchd runs inside its own network namespace (`netns`). Two vswitchds in one
 * namespace cannot coexist: the userspace datapath's tap device is always named
 * `ovs-netdev`, so the second fails with EBUSY. Consequence for tests: the host ends of
 * veth pairs (and every device the switch opens) must live in `netns` — pass it as
 * `switchNetns` to `attachNamespace`. ovsdb-server is reached through a unix socket, which
 * works from any namespace.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { execFileP, removeDir, requireBinary, startDaemon, tempDir, waitFor, type Daemon } from './process.js';

export interface OvsInstance {
  dir: string;
  /** `unix:/.../db.sock`, the endpoint for `OvsdbClient`. */
  dbSocket: string;
  /** The network namespace ovs-vswitchd runs in (where bridge and veth host ends live). */
  netns: string;
  ovsdbPid(): number;
  vswitchdPid: number;
  /** Runs `ovs-vsctl --db=... ARGS` (waits for vswitchd unless `--no-wait` is passed first); resolves stdout, trimmed. */
  vsctl(...args: string[]): Promise<string>;
  /**
   * Returns once ovs-vswitchd has revalidated its cached datapath flows against the current
   * configuration. `cur_cfg` (what `OvsSwitch` waits for) means the configuration is
   * applied; flows cached before it are revalidated by separate threads moments later, and
   * until then a packet may still follow the old VLAN. Call this after a change and before
   * asserting on traffic. (Two rounds of `revalidator/wait`: the first may end a dump that
   * began before the change.)
   */
  settle(): Promise<void>;
  /** Stops both daemons by PID, removes the namespace and the temp dir. Idempotent. */
  stop(): Promise<void>;
  /** Stops ovsdb-server, deletes the database and starts an empty one (as after a reinstall); vswitchd stays up. */
  restartEmpty(): Promise<void>;
}

const SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema';

export async function startOvs(): Promise<OvsInstance> {
  const bins = {
    tool: requireBinary('ovsdb-tool'),
    server: requireBinary('ovsdb-server'),
    vswitchd: requireBinary('ovs-vswitchd'),
    vsctl: requireBinary('ovs-vsctl'),
    appctl: requireBinary('ovs-appctl'),
    ip: requireBinary('ip'),
  };
  if (!existsSync(SCHEMA)) throw new Error(`${SCHEMA} is missing: run \`make deps-apt\` (openvswitch-switch)`);

  const dir = await tempDir('ovs');
  const netns = `stratus-ovs-${randomBytes(4).toString('hex')}`;
  const db = join(dir, 'conf.db');
  const sock = join(dir, 'db.sock');
  const env = { ...process.env, OVS_RUNDIR: dir, OVS_LOGDIR: dir, OVS_DBDIR: dir };
  let ovsdb: Daemon | undefined;
  let vswitchd: Daemon | undefined;
  let stopped = false;

  const vsctl = async (...args: string[]): Promise<string> => {
    const { stdout } = await execFileP(bins.vsctl, [`--db=unix:${sock}`, '--timeout=20', ...args], { env });
    return stdout.trim();
  };

  const stopDaemon = async (d: Daemon | undefined, ctl: string): Promise<void> => {
    if (!d) return;
    if (d.child.exitCode === null && d.child.signalCode === null) {
      await execFileP(bins.appctl, ['-t', join(dir, ctl), 'exit'], { env, timeout: 5000 }).catch(() => undefined);
      const t = setTimeout(() => d.child.kill('SIGKILL'), 5000);
      await d.exited;
      clearTimeout(t);
    }
  };

  const startServer = async (): Promise<Daemon> => {
    await execFileP(bins.tool, ['create', db, SCHEMA]);
    const d = startDaemon(
      bins.server,
      [
        db,
        `--remote=punix:${sock}`,
        `--pidfile=${join(dir, 'ovsdb.pid')}`,
        `--unixctl=${join(dir, 'ovsdb.ctl')}`,
        `--log-file=${join(dir, 'ovsdb.log')}`,
      ],
      { env },
    );
    try {
      await waitFor('ovsdb-server to accept connections', async () => {
        if (d.child.exitCode !== null) throw new Error(`ovsdb-server exited: ${d.output()}`);
        if (!existsSync(sock)) return false;
        await vsctl('--no-wait', 'init');
        return true;
      });
    } catch (err) {
      await d.kill();
      throw err;
    }
    return d;
  };

  // Best effort if the test process ends without calling stop() (an uncaught error).
  const onExit = (): void => {
    for (const d of [vswitchd, ovsdb]) d?.child.kill('SIGKILL');
    try {
      execFileSync(bins.ip, ['netns', 'del', netns], { stdio: 'ignore' });
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // nothing more can be done while exiting
    }
  };
  process.once('exit', onExit);

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    process.off('exit', onExit);
    await stopDaemon(vswitchd, 'vswitchd.ctl');
    await stopDaemon(ovsdb, 'ovsdb.ctl');
    await execFileP(bins.ip, ['netns', 'del', netns]).catch(() => undefined);
    await removeDir(dir);
  };

  try {
    await execFileP(bins.ip, ['netns', 'add', netns]);
    await execFileP(bins.ip, ['-n', netns, 'link', 'set', 'lo', 'up']);
    ovsdb = await startServer();
    const vd = startDaemon(
      bins.ip,
      [
        'netns',
        'exec',
        netns,
        bins.vswitchd,
        `unix:${sock}`,
        `--pidfile=${join(dir, 'vswitchd.pid')}`,
        `--unixctl=${join(dir, 'vswitchd.ctl')}`,
        `--log-file=${join(dir, 'vswitchd.log')}`,
      ],
      { env },
    );
    vswitchd = vd;
    // Without --no-wait, ovs-vsctl returns only once vswitchd has applied the change.
    await waitFor('ovs-vswitchd to apply its configuration', async () => {
      if (vd.child.exitCode !== null) throw new Error(`ovs-vswitchd exited: ${vd.output()}`);
      await vsctl('--timeout=2', 'set', 'Open_vSwitch', '.', 'external_ids:stratus-test=ready');
      return true;
    });
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    dir,
    dbSocket: `unix:${sock}`,
    netns,
    ovsdbPid: () => ovsdb?.pid ?? 0,
    vswitchdPid: vswitchd.pid,
    vsctl,
    stop,
    async settle() {
      // With no bridge there is no datapath and nothing cached (vswitchd then answers
      // "can't wait on multiple udpifs": it counts zero).
      if ((await vsctl('--no-wait', 'list-br')) === '') return;
      for (let i = 0; i < 2; i++) {
        await execFileP(bins.appctl, ['-t', join(dir, 'vswitchd.ctl'), '--timeout=10', 'revalidator/wait'], { env });
      }
    },
    async restartEmpty() {
      await stopDaemon(ovsdb, 'ovsdb.ctl');
      await rm(db, { force: true });
      ovsdb = await startServer();
    },
  };
}
