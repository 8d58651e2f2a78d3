/**
 * `LibvirtMachines`: the MachineProvider for libvirt domains on one node.
 *
 * Guarantees:
 * - Keyed by `spec.uid`, which is the domain UUID: `create` first looks the UUID up, so a
 *   crash between define and the controller's status write never yields two domains.
 * - Bad input (`InvalidSpec`) and a missing base image (`ImageNotFound`) are reported before
 *   anything is created; if defining fails, the volumes made by that call are removed again.
 * - Nothing blocks on the guest: power-off sends an ACPI shutdown and records when; a later
 *   `update` destroys the domain once the shutdown timeout has passed. The record is kept in
 *   memory, so after a controller restart the timeout starts again.
 * - Changes that need a restart — `memoryMiB`, `cpus`, added `disks`, `networks` — redefine
 *   the domain (`update`), then a running domain is shut down (graceful, then destroy) and
 *   started again. Removed disks are detached but their volumes kept until the machine is deleted.
 *
 * Volumes (boot clone, data disks, seed ISO) live in the node's image pool, named
 * `<uid>-...`, so `delete` finds every one of them, including leftovers of a failed create.
 */
import { readdir, readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { ReconcileError } from '../../runtime/errors.js';
import type { MachineAddress, MachineChange, MachineObservation, MachineProvider, MachineSpec, MachineState } from '../machine.js';
import { log } from '../../runtime/log.js';
import type { VirshShell } from './virsh-shell.js';
import type { DomainBackend, DomainRunState } from './domains.js';
import { asProviderError } from './domains.js';
import { validateSpec, type LibvirtSettings } from './validate.js';
import {
  buildDomainXml,
  bootVolumeName,
  dataVolumeName,
  derivedMac,
  domainName,
  libvirtNetworkName,
  readOwnedDomain,
  seedVolumeName,
  installVolumeName,
  volumePrefix,
  vlanPortgroup,
  type DomainPlan,
} from './domain-xml.js';
import { buildSeedIso, seedFiles } from './cloud-init.js';
import { createCowClone, createVolume, deleteVolume, listVolumes, uploadVolume, volumeInfo, type VolumeInfo } from './storage.js';
import { ensureOvsNetworkCarries } from './networks.js';
import { fetchInstaller } from './install-tree.js';
import { parseXml, child, childrenNamed } from './xml.js';
import { GracefulShutdown, type ShutdownOutcome } from './shutdown.js';
import { probeSsh } from './guest-ready.js';

/** What the provider needs from its connection (a `LibvirtNodeConnection`). */
export interface MachineHost {
  readonly uri: string;
  readonly imagePool: string;
  shell(): VirshShell;
  domains(): DomainBackend;
  domainType(): Promise<string>;
}

const GiB = 1024 ** 3;

/** What of a domain's definition must match the spec (restart-relevant fields only). */
interface Shape {
  memoryMiB: number;
  cpus: number;
  disks: string[];
  nics: string[];
}

function shapeOf(xml: string): Shape {
  const root = parseXml(xml);
  const mem = child(root, 'memory');
  const unit = (mem?.attrs.unit ?? 'KiB').toLowerCase();
  const kib = Number(mem?.text.trim() ?? 0) * ({ b: 1 / 1024, bytes: 1 / 1024, kib: 1, k: 1, mib: 1024, m: 1024, gib: 1024 ** 2, g: 1024 ** 2 }[unit] ?? 1);
  const devices = child(root, 'devices');
  return {
    memoryMiB: Math.round(kib / 1024),
    cpus: Number(child(root, 'vcpu')?.text.trim() ?? 0),
    disks: childrenNamed(devices, 'disk')
      .filter((d) => d.attrs.device === 'disk')
      .map((d) => basename(child(d, 'source')?.attrs.file ?? '')),
    nics: childrenNamed(devices, 'interface').map((i) => `${child(i, 'source')?.attrs.network ?? ''}/${child(i, 'source')?.attrs.portgroup ?? ''}`),
  };
}

function desiredShape(spec: MachineSpec, bootName: string | undefined): Shape {
  const uid = spec.uid.toLowerCase();
  return {
    memoryMiB: spec.memoryMiB,
    cpus: spec.cpus,
    disks: [...(bootName ? [bootName] : []), ...spec.disks.map((d) => dataVolumeName(uid, d.name))],
    nics: spec.networks.map((n) => `${libvirtNetworkName(n.name)}/${vlanPortgroup(n.vlan)}`),
  };
}

function shapeDiff(have: Shape, want: Shape, defaultNetwork: string | null): string[] {
  const diff: string[] = [];
  // A machine without networks may sit on the node's default network (if it existed at create).
  const onDefault = !want.nics.length && defaultNetwork !== null && have.nics.join(',') === `${defaultNetwork}/`;
  if (have.memoryMiB !== want.memoryMiB) diff.push(`memoryMiB ${have.memoryMiB} → ${want.memoryMiB}`);
  if (have.cpus !== want.cpus) diff.push(`cpus ${have.cpus} → ${want.cpus}`);
  if (have.disks.join(',') !== want.disks.join(',')) diff.push('disks');
  if (have.nics.join(',') !== want.nics.join(',') && !onDefault) diff.push('networks');
  return diff;
}

const ACTIVE: DomainRunState[] = ['running', 'blocked', 'paused', 'shutdown', 'pmsuspended', 'crashed', 'nostate'];

function isLocalUri(uri: string): boolean {
  try {
    const u = new URL(uri);
    return /^qemu/.test(u.protocol) && !u.hostname;
  } catch {
    return false;
  }
}

/** PID of the local qemu process running domain `uuid` (its command line carries `-uuid <uuid>`). */
export async function findQemuPid(uuid: string): Promise<number | undefined> {
  const needle = `\0-uuid\0${uuid.toLowerCase()}\0`;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = await readFile(`/proc/${entry}/cmdline`, 'latin1');
      if (cmdline.includes(needle)) return Number(entry);
    } catch {
      // ended while we looked
    }
  }
  return undefined;
}

/** Loopback and link-local addresses: a guest reports them, but nobody outside reaches it there. */
const UNREACHABLE = /^(127\.|169\.254\.|::1$|fe[89ab][0-9a-f]:)/i;

/** Parses `virsh domifaddr` output into addresses (without prefix length). */
export function parseDomIfAddr(out: string): string[] {
  const found: string[] = [];
  for (const line of out.split('\n')) {
    const m = /\s(ipv4|ipv6)\s+(\S+)\s*$/.exec(line);
    const addr = m?.[2]?.split('/')[0];
    if (addr) found.push(addr);
  }
  return found;
}

/** True when the live domain's qemu guest agent channel is connected (a guest OS runs and answers). */
export function guestAgentConnected(liveXml: string | undefined): boolean {
  if (!liveXml) return false;
  return childrenNamed(child(parseXml(liveXml), 'devices'), 'channel').some((c) => {
    const t = child(c, 'target');
    return t?.attrs.name === 'org.qemu.guest_agent.0' && t.attrs.state === 'connected';
  });
}

/** How long one `delete` call waits for a guest to power off before returning to the caller. */
const DELETE_WAIT_MS = 10_000;

function shutdownChange(o: ShutdownOutcome): MachineChange {
  return o.kind === 'clean' ? { reason: 'ShutDown', message: o.message } : { reason: 'ForcedOff', message: o.message, warning: true };
}

export class LibvirtMachines implements MachineProvider {
  private readonly shutdown = new GracefulShutdown(() => this.host.domains());

  constructor(
    private readonly host: MachineHost,
    private readonly options: { shutdownTimeoutMs: number; defaultNetwork: string | null },
  ) {}

  private get domains(): DomainBackend {
    return this.host.domains();
  }

  async observe(spec: MachineSpec): Promise<MachineObservation> {
    const uid = spec.uid.toLowerCase();
    try {
      const run = await this.domains.state(uid);
      if (!run) {
        this.shutdown.forget(uid);
        return { exists: false, state: 'pending', addresses: [], upToDate: false, message: 'no domain with this uid on the node' };
      }
      const live = await this.domains.xml(uid);
      const persistent = await this.domains.xml(uid, true);
      if (!live || !persistent) {
        return { exists: false, state: 'pending', addresses: [], upToDate: false, message: 'domain vanished while observed' };
      }
      const owned = readOwnedDomain(live);
      const want = desiredShape(spec, spec.image ? bootVolumeName(uid) : undefined);
      const definitionDiff = shapeDiff(shapeOf(persistent), want, this.options.defaultNetwork);
      const restartDiff = ACTIVE.includes(run) && run !== 'crashed' ? shapeDiff(shapeOf(live), want, this.options.defaultNetwork) : [];
      let { state, detail } = this.machineState(uid, run, spec);
      const installDone = !!owned?.installing && run === 'shutoff';
      if (owned?.installing && !installDone) {
        // Installing counts as starting: the machine is not what the spec asked for until it boots its disk.
        detail = [detail, 'running the installer from the install tree'].filter(Boolean).join('; ');
        if (state === 'running') state = 'starting';
      }
      if (installDone) {
        detail = 'installation finished; the next update makes the machine boot its disk';
        if (spec.powerState === 'Running') state = 'starting';
      }
      const powerOk = !owned?.installing && (spec.powerState === 'Running' ? state === 'running' : state === 'stopped');
      // A guest that answered a shutdown request is off: the outcome is reported once.
      const answered = run === 'shutoff' ? this.shutdown.observeOff(uid) : undefined;
      const messages = [detail];
      const lastShutdown = run === 'shutoff' ? this.shutdown.last(uid) : undefined;
      if (lastShutdown) messages.push(lastShutdown.message);
      if (definitionDiff.length) messages.push(`definition differs from the spec: ${definitionDiff.join(', ')}`);
      else if (restartDiff.length) messages.push(`restart needed to apply ${restartDiff.join(', ')}`);
      if (!owned) messages.push('domain carries no stratus metadata');

      const addresses: MachineAddress[] = [];
      const seen = new Set<string>();
      const add = (a: string): void => {
        if (seen.has(a)) return;
        seen.add(a);
        addresses.push({ type: 'InternalIP', address: a });
      };
      for (const a of owned?.addresses ?? []) add(a.cidr.split('/')[0] ?? a.cidr);
      let pid: number | undefined;
      if (run === 'running' || run === 'blocked' || run === 'shutdown') {
        for (const a of await this.discoverAddresses(uid, live)) add(a);
        if (isLocalUri(this.host.uri)) pid = await findQemuPid(uid);
      }
      const obs: MachineObservation = {
        exists: true,
        state,
        providerID: `libvirt://${uid}`,
        addresses,
        upToDate: powerOk && !definitionDiff.length && !restartDiff.length,
      };
      if (answered) obs.change = shutdownChange(answered);
      if (addresses[0]) obs.ipAddress = addresses[0].address;
      if ((await this.host.domainType()) !== 'test') {
        // The test driver has no guests; everywhere else the guest is ready once sshd answers.
        const probe = state !== 'running' ? undefined : obs.ipAddress ? await probeSsh(obs.ipAddress, 22, 2000) : undefined;
        obs.guestReady = probe?.ready ?? false;
        obs.guestMessage = probe ? (probe.ready ? `SSH answers on ${obs.ipAddress ?? ''}: ${probe.banner}` : probe.message) : state === 'running' ? 'the guest has reported no address yet' : `the machine is ${state}`;
      }
      const message = messages.filter(Boolean).join('; ');
      if (message) obs.message = message;
      if (pid !== undefined) obs.pid = pid;
      return obs;
    } catch (err) {
      throw asProviderError(err, 'cannot observe the domain');
    }
  }

  private machineState(uid: string, run: DomainRunState, spec: MachineSpec): { state: MachineState; detail?: string } {
    switch (run) {
      case 'running':
      case 'blocked':
        return this.shutdown.requested(uid) ? { state: 'stopping', detail: 'graceful shutdown requested' } : { state: 'running' };
      case 'shutdown':
        return { state: 'stopping' };
      case 'shutoff':
        return { state: 'stopped' };
      case 'paused':
        return { state: 'stopped', detail: 'domain is paused' };
      case 'pmsuspended':
        return { state: 'stopped', detail: 'guest is suspended (power management)' };
      case 'crashed':
        return { state: 'failed', detail: 'domain crashed' };
      case 'nostate':
        return { state: spec.powerState === 'Running' ? 'starting' : 'pending', detail: 'libvirt reports no state' };
    }
  }

  /**
   * DHCP leases, then the host's ARP table, then the guest agent. On the test driver only for
   * domains without OVS interfaces: libvirt 9.0's test driver segfaults on `domifaddr` for
   * networks without an IP (bridge mode), which would take the shell — and its world — down.
   */
  private async discoverAddresses(uid: string, liveXml: string): Promise<string[]> {
    if ((await this.host.domainType()) === 'test') {
      const nics = childrenNamed(child(parseXml(liveXml), 'devices'), 'interface');
      if (!nics.length) return [];
      for (const n of nics) {
        const net = child(n, 'source')?.attrs.network;
        if (n.attrs.type !== 'network' || !net || child(n, 'virtualport')) return [];
        const netXml = await this.host.shell().runOrAbsent(['net-dumpxml', net], /Network not found|no network with matching|failed to get network/i);
        if (!netXml || !child(parseXml(netXml), 'ip')) return [];
      }
    }
    const sh = this.host.shell();
    for (const source of ['lease', 'arp', 'agent']) {
      try {
        // The agent reports every interface, `lo` included; loopback and link-local addresses do not reach the guest.
        const found = parseDomIfAddr(await sh.run(['domifaddr', '--domain', uid, '--source', source])).filter((a) => !UNREACHABLE.test(a));
        if (found.length) return found;
      } catch {
        // this source has nothing (no libvirt DHCP on the network, no agent in the guest)
      }
    }
    return [];
  }

  private async findImage(image: string): Promise<VolumeInfo> {
    const sh = this.host.shell();
    for (const name of [image, `${image}.qcow2`, `${image}.img`, `${image}.raw`]) {
      const v = await volumeInfo(sh, this.host.imagePool, name);
      if (v) return v;
    }
    throw new ReconcileError('ImageNotFound', `image ${JSON.stringify(image)} is not a volume in pool ${JSON.stringify(this.host.imagePool)} on the node`, false);
  }

  /**
   * Creates (idempotently) the networks and volumes the machine needs and returns the plan
   * of its domain XML. `created` collects the volumes this call made, for rollback.
   */
  private async prepare(spec: MachineSpec, settings: LibvirtSettings, created: string[], freshSeed: boolean, install = false): Promise<DomainPlan> {
    const sh = this.host.shell();
    const pool = this.host.imagePool;
    const uid = spec.uid.toLowerCase();
    const base = spec.image ? await this.findImage(spec.image) : undefined;
    const type = await this.host.domainType();
    const track = async (name: string, make: () => Promise<VolumeInfo>): Promise<VolumeInfo> => {
      const existed = await volumeInfo(sh, pool, name);
      if (existed) return existed;
      const v = await make();
      created.push(name);
      return v;
    };
    for (const n of spec.networks) {
      await ensureOvsNetworkCarries({ shell: () => sh }, { name: libvirtNetworkName(n.name), bridge: n.bridge, vlans: [n.vlan] });
    }
    const boot = base ? await track(bootVolumeName(uid), () => createCowClone(sh, pool, bootVolumeName(uid), base)) : undefined;
    const data: VolumeInfo[] = [];
    for (const d of spec.disks) {
      const name = dataVolumeName(uid, d.name);
      data.push(await track(name, () => createVolume(sh, pool, name, d.sizeGiB * GiB, 'qcow2')));
    }
    const seedName = seedVolumeName(uid);
    let seed = await volumeInfo(sh, pool, seedName);
    if (!seed || freshSeed) {
      const iso = await buildSeedIso(seedFiles(spec));
      if (seed) await deleteVolume(sh, pool, seedName);
      seed = await createVolume(sh, pool, seedName, iso.length, 'raw');
      created.push(seedName);
      // The test driver (domain type `test`) runs no guest, so nothing would read the seed, and it
      // has no volume data path: only there is the seed volume left empty. Anywhere else a seed
      // that cannot be written fails the create (a guest without its SSH keys must not look fine).
      if (type !== 'test') await uploadVolume(sh, pool, seedName, iso, { reason: 'SeedUploadFailed', what: 'the cloud-init seed (SSH keys, user data, network config)' });
    }
    let installPlan: DomainPlan['install'];
    if (install && settings.location && settings.locationKind === 'tree') {
      const installer = await fetchInstaller(settings.location, settings.cmdline);
      const paths: string[] = [];
      for (const [what, bytes] of [['kernel', installer.kernel], ['initrd', installer.initrd]] as const) {
        const name = installVolumeName(uid, what);
        await deleteVolume(sh, pool, name);
        const v = await createVolume(sh, pool, name, bytes.length, 'raw');
        created.push(name);
        // As for the seed: the test driver boots nothing and has no volume data path.
        if (type !== 'test') await uploadVolume(sh, pool, name, bytes, { reason: 'InstallerUploadFailed', what: `the installer ${what}` });
        paths.push(v.path);
      }
      installPlan = { kernel: paths[0] ?? '', initrd: paths[1] ?? '', cmdline: installer.cmdline };
    }
    const fmt = (v: VolumeInfo): 'qcow2' | 'raw' => (v.format === 'qcow2' ? 'qcow2' : 'raw');
    return {
      ...(installPlan ? { install: installPlan } : {}),
      type,
      name: domainName(spec),
      ...(boot ? { boot: { path: boot.path, format: fmt(boot) } } : {}),
      data: data.map((v) => ({ path: v.path, format: fmt(v) })),
      seed: { path: seed.path, format: 'raw' },
      interfaces: spec.networks.length
        ? spec.networks.map((n, i) => ({
            network: libvirtNetworkName(n.name),
            portgroup: vlanPortgroup(n.vlan),
            mac: (n.mac ?? derivedMac(uid, i)).toLowerCase(),
            ...(n.userspaceDatapath ? { fullChecksums: true } : {}),
          }))
        : (await this.defaultNetworkExists())
          ? [{ network: this.options.defaultNetwork ?? '', mac: derivedMac(uid, 0) }]
          : [],
      settings,
    };
  }

  private async defaultNetworkExists(): Promise<boolean> {
    const name = this.options.defaultNetwork;
    if (name === null) return false;
    return (await this.host.shell().runOrAbsent(['net-info', name], /Network not found|no network with matching|failed to get network/i)) !== undefined;
  }

  async create(spec: MachineSpec): Promise<void> {
    const settings = validateSpec(spec);
    const uid = spec.uid.toLowerCase();
    try {
      if (await this.domains.state(uid)) return;
    } catch (err) {
      throw asProviderError(err, 'cannot look up the domain');
    }
    const created: string[] = [];
    try {
      // An install tree is booted once, when the machine is created Running.
      const plan = await this.prepare(spec, settings, created, true, spec.powerState === 'Running');
      await this.domains.define(buildDomainXml(spec, plan));
    } catch (err) {
      for (const name of created.reverse()) {
        await deleteVolume(this.host.shell(), this.host.imagePool, name).catch((e: unknown) =>
          log.warn({ component: 'libvirt', uid, volume: name, err: String(e) }, 'cannot roll back volume'),
        );
      }
      throw asProviderError(err, 'cannot define the domain');
    }
    if (spec.powerState === 'Running') {
      try {
        await this.domains.start(uid);
      } catch (err) {
        const e = asProviderError(err, 'cannot start the domain');
        throw e instanceof ReconcileError && e.reason === 'LibvirtError' ? new ReconcileError('StartFailed', e.message) : e;
      }
    }
  }

  async update(spec: MachineSpec, observed: MachineObservation): Promise<MachineChange | void> {
    const settings = validateSpec(spec);
    const uid = spec.uid.toLowerCase();
    if (!observed.exists) return;
    try {
      let run = await this.domains.state(uid);
      if (!run) return;
      const want = desiredShape(spec, spec.image ? bootVolumeName(uid) : undefined);
      const persistent = await this.domains.xml(uid, true);
      const installing = persistent ? (readOwnedDomain(persistent)?.installing ?? false) : false;
      if (installing && run === 'shutoff') {
        // The installer rebooted (on_reboot=destroy): from now on the machine boots its disk.
        const plan = await this.prepare(spec, settings, [], false);
        await this.domains.define(buildDomainXml(spec, plan));
        for (const what of ['kernel', 'initrd'] as const) await deleteVolume(this.host.shell(), this.host.imagePool, installVolumeName(uid, what));
      } else if (!installing && persistent && shapeDiff(shapeOf(persistent), want, this.options.defaultNetwork).length) {
        const plan = await this.prepare(spec, settings, [], false);
        await this.domains.define(buildDomainXml(spec, plan));
      }
      const live = ACTIVE.includes(run) && run !== 'crashed' ? await this.domains.xml(uid) : undefined;
      const needsRestart = !!live && shapeDiff(shapeOf(live), want, this.options.defaultNetwork).length > 0;
      const power = needsRestart ? 'Stopped' : spec.powerState;
      if (power === 'Running') {
        if (run === 'crashed') {
          await this.domains.destroy(uid);
          run = 'shutoff';
        }
        // A request still pending here was answered (a restart applying a new shape): report it, then start.
        const answered = run === 'shutoff' ? this.shutdown.observeOff(uid) : undefined;
        this.shutdown.forget(uid);
        if (answered) {
          await this.domains.start(uid);
          return shutdownChange(answered);
        }
        if (run === 'shutoff') await this.domains.start(uid);
        else if (run === 'paused' || run === 'pmsuspended') await this.domains.resume(uid);
        return;
      }
      const step = await this.shutdown.step(uid, run, settings.shutdownTimeoutMs ?? this.options.shutdownTimeoutMs);
      return step.done && step.outcome ? shutdownChange(step.outcome) : undefined;
    } catch (err) {
      throw asProviderError(err, 'cannot update the domain');
    }
  }

  /**
   * Deletes in steps: a running guest whose agent is connected is first asked to shut down
   * (as for powerState Stopped, within `shutdownTimeoutSeconds`), waiting in this call at most `DELETE_WAIT_MS`;
   * while it has not, the call returns with the domain still there and the caller calls
   * again. Then undefine and remove every volume.
   */
  async delete(spec: MachineSpec): Promise<MachineChange | void> {
    const uid = spec.uid.toLowerCase();
    const sh = this.host.shell();
    let change: MachineChange | undefined;
    try {
      const run = await this.domains.state(uid);
      if (run && !guestAgentConnected(await this.domains.xml(uid))) {
        // No guest OS has said it runs (no agent: a guest still booting, an installer, a bare
        // disk): nothing to shut down cleanly, so the domain goes at once, as before.
        await this.domains.destroy(uid);
        await this.domains.undefine(uid);
      } else if (run) {
        let timeout = this.options.shutdownTimeoutMs;
        try {
          timeout = validateSpec(spec).shutdownTimeoutMs ?? timeout;
        } catch {
          // an invalid spec is still deleted, with the node's default budget
        }
        // Wait here a little (polling), so a guest that shuts down fast — or a timeout of a few
        // seconds — completes in one call; a slower guest is left to the caller's next call.
        const until = Date.now() + DELETE_WAIT_MS;
        let step = await this.shutdown.step(uid, run, timeout);
        while (!step.done && Date.now() < until) {
          await new Promise((r) => setTimeout(r, 250));
          const now = await this.domains.state(uid);
          if (!now) break;
          step = await this.shutdown.step(uid, now, timeout);
        }
        if (!step.done) return;
        if (step.outcome) change = shutdownChange(step.outcome);
        await this.domains.undefine(uid);
      }
      this.shutdown.forget(uid);
      let names: string[];
      try {
        names = await listVolumes(sh, this.host.imagePool);
      } catch (err) {
        if (err instanceof ReconcileError && err.reason === 'PoolNotFound') return change;
        throw err;
      }
      for (const name of names.filter((n) => n.startsWith(volumePrefix(uid)))) {
        await deleteVolume(sh, this.host.imagePool, name);
      }
      return change;
    } catch (err) {
      throw asProviderError(err, 'cannot delete the domain');
    }
  }

  async listOwned(): Promise<string[]> {
    try {
      const uids: string[] = [];
      for (const uuid of await this.domains.list()) {
        const xml = await this.domains.xml(uuid);
        const owned = xml ? readOwnedDomain(xml) : undefined;
        if (owned) uids.push(owned.uid);
      }
      return uids;
    } catch (err) {
      throw asProviderError(err, 'cannot list domains');
    }
  }
}
