/**
 * A lab for real guests, shared by test/e2e/real-guest.vm.ts and bench/guest-boot.ts: the
 * Debian 12 cloud image (content-addressed cache, built once per machine) imported with
 * `stratus image import` into ComputeNode `vm-1` — a private system-mode libvirtd whose taps
 * join a private Open vSwitch (userspace datapath) — an SSHKey `tester`, a Network `lan`
 * (VLAN 42) and a "client" network namespace on that VLAN which serves DHCP (dnsmasq,
 * 10.77.0.50–99) and runs the stratus controller (it must reach guests to see SSH answer).
 * `stratus serve` (no controllers) stays on the host's loopback; the client namespace
 * reaches it through a unix-socket forwarder. All traffic stays inside these namespaces.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ComputeNode, Network, SSHKey } from '../../crds/types.js';
import { KubeClient } from '../../runtime/client.js';
import { Resources } from '../../controllers/resources.js';
import { buildImage } from '../../providers/libvirt/image-build.js';
import { startStratusServe, type StratusServe } from './apiserver.js';
import { startOvs, type OvsInstance } from './ovs.js';
import { startSystemLibvirtd, type SystemLibvirtd } from './libvirtd-system.js';
import { forwardIntoNetns, type NetnsForward } from './netns-forward.js';
import { execFileP, removeDir, requireBinary, startDaemon, tempDir, waitFor, type Daemon } from './process.js';
import { stratusBin } from './paths.js';
import { NETWORK_KEY } from '../../providers/ovs/switch.js';

export const LAB_POOL = 'stratus-guests';
export const LAB_VLAN = 42;
/** dnsmasq's range on the lab VLAN. */
export const LAB_DHCP = /^10\.77\.0\.(5\d|[6-9]\d)$/;

export interface GuestLab {
  client: KubeClient;
  serve: StratusServe;
  libvirt: SystemLibvirtd;
  ovs: OvsInstance;
  clientNs: string;
  bridge: string;
  /** The kubeconfig that works inside the client namespace. */
  nsKubeconfig: string;
  /** The SSHKey's private key file. */
  keyFile: string;
  publicKey: string;
  work: string;
  /** dnsmasq's lease file (`expiry mac ip hostname clientid` lines). */
  leases: string;
  /** The client namespace's port on the switch: a port of Network `lan` (stratus retags it with the Network's VLAN). */
  clientPort: string;
  virsh(...args: string[]): Promise<string>;
  inClientNs(cmd: string, args: string[], timeoutMs?: number): Promise<{ stdout: string; stderr: string }>;
  stop(): Promise<void>;
}

export async function startGuestLab(opts: { controllerEnv?: Record<string, string> } = {}): Promise<GuestLab> {
  for (const b of ['qemu-img', 'dnsmasq', 'ssh', 'ssh-keygen', 'ip', 'ethtool']) requireBinary(b);
  const image = await buildImage();
  const hex = randomBytes(3).toString('hex');
  const clientNs = `stratus-rg-${hex}`;
  const bridge = `brg${hex}`;
  const vethClient = `rgc${hex}`;
  const vethSwitch = `rgs${hex}`;
  const work = await tempDir('guestlab');
  let ovs: OvsInstance | undefined;
  let libvirt: SystemLibvirtd | undefined;
  let serve: StratusServe | undefined;
  let forward: NetnsForward | undefined;
  let controller: Daemon | undefined;
  let dnsmasq: Daemon | undefined;
  let client: KubeClient | undefined;
  let nsMade = false;
  const stop = async (): Promise<void> => {
    await controller?.stop();
    await dnsmasq?.stop();
    client?.close();
    await forward?.stop();
    await serve?.stop();
    await libvirt?.stop();
    await ovs?.stop();
    if (nsMade) await execFileP('ip', ['netns', 'del', clientNs]).catch(() => undefined);
    await removeDir(work);
  };
  try {
    ovs = await startOvs();
    await execFileP('ip', ['netns', 'add', clientNs]);
    nsMade = true;
    await execFileP('ip', ['-n', clientNs, 'link', 'set', 'lo', 'up']);
    libvirt = await startSystemLibvirtd({ netns: ovs.netns, ovsRunDir: ovs.dir });
    const lv = libvirt;
    const virsh = async (...args: string[]): Promise<string> => (await execFileP('virsh', ['-q', '-c', lv.uri, ...args])).stdout;
    const poolDir = join(libvirt.dir, 'images');
    await mkdir(poolDir);
    await virsh('pool-define-as', '--name', LAB_POOL, '--type', 'dir', '--target', poolDir);
    await virsh('pool-start', LAB_POOL);

    serve = await startStratusServe();
    client = KubeClient.fromFile(serve.kubeconfig);
    const port = new URL(serve.url).port;
    forward = await forwardIntoNetns(clientNs, Number(port));
    const nsKubeconfig = join(work, 'kubeconfig');
    await writeFile(nsKubeconfig, (await readFile(serve.kubeconfig, 'utf8')).replaceAll(`127.0.0.1:${port}`, `127.0.0.1:${forward.port}`));

    await client.resource<ComputeNode>(Resources.computeNodes).create({
      apiVersion: 'compute.stratus.dev/v1alpha1',
      kind: 'ComputeNode',
      metadata: { name: 'vm-1' },
      spec: { provider: 'libvirt', libvirt: { uri: libvirt.uri, imagePool: LAB_POOL }, ovs: { database: ovs.dbSocket, netns: ovs.netns }, heartbeatSeconds: 2 },
    });
    const imported = await execFileP(process.execPath, [stratusBin(), 'image', 'import', image.path, '--node', 'vm-1', '--name', 'debian-12', '--kubeconfig', serve.kubeconfig]);
    if (!/image debian-12 imported into pool stratus-guests on vm-1 \(qcow2/.test(imported.stdout)) throw new Error(`unexpected import output: ${imported.stdout}`);

    const keyFile = join(work, 'id_ed25519');
    await execFileP('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'guest-lab', '-f', keyFile]);
    const publicKey = (await readFile(`${keyFile}.pub`, 'utf8')).trim();
    await client.resource<SSHKey>(Resources.sshKeys).create({
      apiVersion: 'compute.stratus.dev/v1alpha1',
      kind: 'SSHKey',
      metadata: { name: 'tester', namespace: 'default' },
      spec: { publicKey },
    });
    const lan = await client.resource<Network>(Resources.networks).create({
      apiVersion: 'compute.stratus.dev/v1alpha1',
      kind: 'Network',
      metadata: { name: 'lan', namespace: 'default' },
      spec: { bridge, vlan: LAB_VLAN, datapathType: 'netdev', cidr: '10.77.0.0/24' },
    });

    controller = startDaemon('ip', ['netns', 'exec', clientNs, process.execPath, stratusBin(), 'controller', '--kubeconfig', nsKubeconfig], {
      env: { ...process.env, STRATUS_LOG_LEVEL: 'warn', ...opts.controllerEnv },
    });
    const c = client;
    await waitFor('Network lan Ready (its bridge on the switch)', async () => {
      const n = await c.resource<Network>(Resources.networks).get('default', 'lan');
      return n?.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True');
    }, 60_000, 250);

    // The client namespace joins the VLAN. Its veth fills in checksums itself (tx offload off):
    // the userspace datapath forwards frames verbatim, and a guest drops a DHCP offer or a TCP
    // segment whose checksum was left to an offload that never happens.
    await execFileP('ip', ['-n', clientNs, 'link', 'add', vethClient, 'type', 'veth', 'peer', 'name', vethSwitch, 'netns', ovs.netns]);
    // Marked as a port of Network `lan` (as stratus marks container ports): a changed VLAN moves it too.
    await ovs.vsctl('add-port', bridge, vethSwitch, `tag=${LAB_VLAN}`, '--', 'set', 'port', vethSwitch, `external_ids:${NETWORK_KEY}=${lan.metadata?.uid ?? ''}`);
    await execFileP('ip', ['-n', ovs.netns, 'link', 'set', vethSwitch, 'up']);
    await execFileP('ip', ['netns', 'exec', clientNs, 'ethtool', '-K', vethClient, 'tx', 'off']);
    await execFileP('ip', ['-n', clientNs, 'addr', 'add', '10.77.0.1/24', 'dev', vethClient]);
    await execFileP('ip', ['-n', clientNs, 'link', 'set', vethClient, 'up']);
    const leases = join(work, 'leases');
    dnsmasq = startDaemon('ip', [
      'netns', 'exec', clientNs, requireBinary('dnsmasq'), '--keep-in-foreground', '--log-facility=-', '--conf-file=/dev/null', '--no-resolv', '--no-hosts',
      '--port=0', `--interface=${vethClient}`, '--bind-interfaces', '--dhcp-range=10.77.0.50,10.77.0.99,255.255.255.0,1h', '--dhcp-authoritative',
      `--dhcp-leasefile=${leases}`, `--pid-file=${join(work, 'dnsmasq.pid')}`, '--user=root',
    ]);
    return {
      client, serve, libvirt, ovs, clientNs, bridge, nsKubeconfig, keyFile, publicKey, work, leases, clientPort: vethSwitch, virsh, stop,
      inClientNs: (cmd, args, timeoutMs = 120_000) => execFileP('ip', ['netns', 'exec', clientNs, cmd, ...args], { timeout: timeoutMs }),
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The address dnsmasq leased to `mac`, if any. */
export async function leasedAddress(lab: GuestLab, mac: string): Promise<string | undefined> {
  const text = await readFile(lab.leases, 'utf8').catch(() => '');
  return text.split('\n').map((l) => l.split(' ')).find((f) => f[1]?.toLowerCase() === mac.toLowerCase())?.[2];
}

/** True once an SSH server answers on `address` from the client namespace (a host key is offered). */
export async function sshAnswers(lab: GuestLab, address: string): Promise<boolean> {
  const r = await lab.inClientNs('ssh-keyscan', ['-T', '2', '-t', 'ed25519', address], 10_000).catch(() => ({ stdout: '' }));
  return r.stdout.includes('ssh-ed25519');
}

/**
 * The systemd journal (`-o cat`) that a *stopped* guest left on its boot disk, read without
 * booting it: the root partition is copied out of the qcow2 chain (`qemu-img dd`, offset from
 * the partition table), its `/var/log/journal` dumped with `debugfs` and read by `journalctl`.
 */
export async function stoppedGuestJournal(lab: GuestLab, domain: string): Promise<string> {
  for (const b of ['debugfs', 'journalctl', 'sfdisk']) requireBinary(b);
  const disk = (await lab.virsh('domblklist', '--details', domain)).split('\n').map((l) => l.trim().split(/\s+/)).find((f) => f[1] === 'disk' && f[2] === 'sda')?.[3];
  if (!disk) throw new Error(`no sda disk in domain ${domain}`);
  const dir = join(lab.work, `journal-${randomBytes(3).toString('hex')}`);
  await mkdir(dir);
  try {
    const mbr = join(dir, 'mbr.raw');
    await execFileP('qemu-img', ['dd', '-f', 'qcow2', '-O', 'raw', 'bs=512', 'count=1', `if=${disk}`, `of=${mbr}`]);
    const table = JSON.parse((await execFileP('sfdisk', ['--json', mbr])).stdout) as { partitiontable: { partitions: { start: number; type: string }[] } };
    const root = table.partitiontable.partitions.find((p) => p.type === '83');
    if (!root) throw new Error(`no Linux partition on ${disk}: ${JSON.stringify(table)}`);
    const part = join(dir, 'root.raw');
    await execFileP('qemu-img', ['dd', '-f', 'qcow2', '-O', 'raw', 'bs=512', `skip=${root.start}`, `if=${disk}`, `of=${part}`], { timeout: 300_000 });
    await execFileP('debugfs', ['-R', `rdump /var/log/journal ${dir}`, part]);
    return (await execFileP('journalctl', ['--directory', join(dir, 'journal'), '--no-pager', '-o', 'cat'], { maxBuffer: 64 * 1024 * 1024 })).stdout;
  } finally {
    await removeDir(dir);
  }
}
