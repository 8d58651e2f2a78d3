/**
 * A private *system-mode* libvirtd (`qemu:///system` semantics: it runs as root, creates tap
 * devices and plugs them into Open vSwitch with `ovs-vsctl`), for tests where a guest must
 * join a real OVS bridge. A session libvirtd (test/harness/libvirtd.ts) cannot: it has no
 * right to create taps.
 *
 * Isolation: the daemon runs inside the given network namespace (the test switch's, so its
 * taps land where ovs-vswitchd opens them) and in a private mount namespace in which
 * `/run` is a fresh tmpfs and `/etc/libvirt`, `/var/{lib,cache,log}/libvirt` are directories
 * of this harness's temp dir; `/run/openvswitch` is the test switch's run dir, so libvirt's
 * `ovs-vsctl` talks to the test's ovsdb-server. `/etc/passwd` and `/etc/group` are private
 * copies that add the `libvirt-qemu` user the Debian build expects (the machine has no
 * libvirt-daemon-system). qemu runs as root with no security driver and no cgroups, under TCG
 * (`/dev/kvm` is hidden in the namespace). Nothing of
 * the machine's own libvirt or OVS is touched.
 *
 * The socket is reachable from the host namespace at `<dir>/run/libvirt/libvirt-sock`.
 */
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { awaitLibvirtd, stopLibvirtdIn } from './libvirtd.js';
import { requireBinary, startDaemon, type Daemon } from './process.js';

export interface SystemLibvirtd {
  /** `qemu+unix:///system?socket=...`. */
  uri: string;
  /** Temp dir holding the daemon's state; put storage pools under it (its qemu processes are found by it). */
  dir: string;
  pid: number;
  /** Log lines of the daemon (for failure messages). */
  output(): string;
  /** Stops libvirtd, kills its qemu processes by PID, removes `dir`. */
  stop(): Promise<void>;
}

const QEMU_CONF = [
  'user = "root"',
  'group = "root"',
  'dynamic_ownership = 0',
  'remember_owner = 0',
  'security_driver = "none"',
  'cgroup_controllers = [ ]',
  // No virtlogd in the namespace: qemu writes its log file directly.
  'stdio_handler = "file"',
  '',
].join('\n');

export async function startSystemLibvirtd(opts: { netns: string; ovsRunDir: string }): Promise<SystemLibvirtd> {
  requireBinary('libvirtd');
  requireBinary('unshare');
  requireBinary('qemu-system-x86_64');
  // Short: qemu's monitor socket paths must stay under 108 bytes.
  const dir = await mkdtemp(join(tmpdir(), 'slv-'));
  const sub = (n: string): string => join(dir, n);
  for (const d of ['run', 'etc', 'lib', 'cache', 'log']) await mkdir(sub(d));
  await writeFile(join(sub('etc'), 'qemu.conf'), QEMU_CONF);
  await writeFile(join(sub('etc'), 'libvirtd.conf'), '');
  await writeFile(sub('passwd'), `${await readFile('/etc/passwd', 'utf8')}libvirt-qemu:x:64055:64055:Libvirt Qemu:/var/lib/libvirt:/usr/sbin/nologin\n`);
  await writeFile(sub('group'), `${await readFile('/etc/group', 'utf8')}libvirt-qemu:x:64055:\n`);
  const script = [
    'set -e',
    'mount --make-rprivate /',
    'mount -t tmpfs tmpfs /run',
    // /run/lock: libvirtd locks a console's pty there (`virsh console`).
    'mkdir -p /run/libvirt /run/openvswitch /run/lock /var/lib/libvirt /var/cache/libvirt /var/log/libvirt',
    `mount --bind '${sub('run')}' /run/libvirt`,
    `mount --bind '${opts.ovsRunDir}' /run/openvswitch`,
    `mount --bind '${sub('etc')}' /etc/libvirt`,
    `mount --bind '${sub('lib')}' /var/lib/libvirt`,
    `mount --bind '${sub('cache')}' /var/cache/libvirt`,
    `mount --bind '${sub('log')}' /var/log/libvirt`,
    `mount --bind '${sub('passwd')}' /etc/passwd`,
    `mount --bind '${sub('group')}' /etc/group`,
    // Guests run under TCG, deterministically: where /dev/kvm exists but cannot run a guest (here:
    // nested KVM stops SeaBIOS with "KVM internal error. Suberror: 1", leaving the domain paused)
    // libvirt would still pick kvm. Over /dev/kvm lies /dev/null, so qemu's probe finds no KVM.
    '[ ! -e /dev/kvm ] || mount --bind /dev/null /dev/kvm',
    'exec libvirtd',
  ].join('\n');
  await writeFile(sub('start.sh'), script);
  const socket = join(sub('run'), 'libvirt-sock');
  const uri = `qemu+unix:///system?socket=${socket}`;
  // `ip netns exec` and `unshare` (without --fork) exec in place: the PID is libvirtd's.
  const daemon: Daemon = startDaemon(requireBinary('ip'), ['netns', 'exec', opts.netns, 'unshare', '--mount', 'sh', sub('start.sh')], {
    env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LIBVIRT_LOG_OUTPUTS: `3:file:${join(dir, 'libvirtd.log')}` },
  });
  const stop = (): Promise<void> => stopLibvirtdIn(dir, daemon);
  try {
    await awaitLibvirtd(daemon, socket, uri, 30_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return { uri, dir, pid: daemon.pid, output: () => daemon.output(), stop };
}
