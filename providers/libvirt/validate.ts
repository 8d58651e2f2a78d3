/**
 * Checks a MachineSpec before anything is created on the node, so bad input ends as one
 * clear, non-retryable `ReconcileError('InvalidSpec', ...)` naming the field — never a
 * half-made domain. The CRD validates most of this too; the provider does not rely on it.
 */
import { ReconcileError } from '../../runtime/errors.js';
import type { MachineSpec } from '../machine.js';
import { isDnsLabel } from '../../runtime/basics.js';

export const LIMITS = {
  maxCpus: 256,
  minMemoryMiB: 16,
  maxMemoryMiB: 4 * 1024 * 1024,
  /** sdb..sdy: the boot disk is sda and cdroms follow the data disks. */
  maxDisks: 24,
  maxDiskGiB: 64 * 1024,
  /** Interfaces are PCI devices on the root bus (~30 free slots). */
  maxNetworks: 16,
  maxUserDataBytes: 1024 * 1024,
  maxShutdownTimeoutSeconds: 3600,
} as const;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const VOLUME_NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,199}$/;
const BRIDGE = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,14}$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
const IPV4_CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Settings read from `providerSpec` (`Instance.spec.libvirt`). */
export interface LibvirtSettings {
  /** Serial console on a pty (`virsh console`). */
  console: boolean;
  /**
   * Where to install from: an ISO URL (http, https, ftp, ftps, nfs; `…/x.iso`) attached as a
   * network cdrom and booted first, or an install tree (http, https) whose installer kernel
   * and initrd the provider fetches and boots once (see `install-tree.ts`).
   */
  location?: URL;
  locationKind?: 'iso' | 'tree';
  /** Machine type (`q35`, `pc-i440fx-7.2`, ...); libvirt's default when absent. */
  machine?: string;
  /** libosinfo short id, recorded in the domain's metadata (informational). */
  osVariant?: string;
  /** Direct kernel boot from files on the node (absolute paths). */
  kernel?: string;
  initrd?: string;
  cmdline?: string;
  /** How long a graceful shutdown may take before the domain is destroyed. */
  shutdownTimeoutMs?: number;
}

function invalid(field: string, why: string): never {
  throw new ReconcileError('InvalidSpec', `${field}: ${why}`, false);
}

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v);
}

function validIpv4(parts: string[]): boolean {
  return parts.every((p) => Number(p) <= 255);
}

function validAddress(a: string): boolean {
  const m4 = IPV4_CIDR.exec(a);
  if (m4) return validIpv4(m4.slice(1, 5)) && Number(m4[5]) <= 32;
  const [ip, prefix, extra] = a.split('/');
  return extra === undefined && !!ip && ip.includes(':') && /^[0-9a-f:.]+$/i.test(ip) && isInt(Number(prefix)) && Number(prefix) <= 128;
}

function validIp(a: string): boolean {
  const m4 = IPV4.exec(a);
  if (m4) return validIpv4(m4.slice(1, 5));
  return a.includes(':') && /^[0-9a-f:.]+$/i.test(a);
}

function optionalString(ps: Record<string, unknown>, key: string): string | undefined {
  const v = ps[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') invalid(`libvirt.${key}`, 'must be a string');
  return v;
}

/** Reads and checks `providerSpec`. */
export function libvirtSettings(ps: Record<string, unknown>): LibvirtSettings {
  const settings: LibvirtSettings = { console: false };
  const console = ps.console;
  if (console !== undefined && console !== null) {
    if (typeof console === 'boolean') settings.console = console;
    else if (console === 'serial' || console === 'pty') settings.console = true;
    else if (console === 'none') settings.console = false;
    else invalid('libvirt.console', 'must be true, false, "serial", "pty" or "none"');
  }
  const location = optionalString(ps, 'location');
  if (location !== undefined) {
    let url: URL;
    try {
      url = new URL(location);
    } catch {
      return invalid('libvirt.location', `not a URL: ${JSON.stringify(location)}`);
    }
    if (url.username || url.password) invalid('libvirt.location', 'credentials in the URL are not supported');
    const iso = url.pathname.toLowerCase().endsWith('.iso');
    if (iso && !['http:', 'https:', 'ftp:', 'ftps:', 'nfs:'].includes(url.protocol)) {
      invalid('libvirt.location', 'an ISO location must be an http, https, ftp, ftps or nfs URL');
    }
    if (!iso && !['http:', 'https:'].includes(url.protocol)) {
      invalid('libvirt.location', 'an install tree must be an http or https URL (or name an ISO image, …/x.iso)');
    }
    settings.location = url;
    settings.locationKind = iso ? 'iso' : 'tree';
  }
  for (const key of ['kernel', 'initrd'] as const) {
    const v = optionalString(ps, key);
    if (v === undefined) continue;
    if (!v.startsWith('/') || v.includes('\0')) invalid(`libvirt.${key}`, 'must be an absolute path on the node');
    settings[key] = v;
  }
  const cmdline = optionalString(ps, 'cmdline');
  if (cmdline !== undefined) {
    if (!settings.kernel && settings.locationKind !== 'tree') invalid('libvirt.cmdline', 'needs libvirt.kernel or an install tree location');
    settings.cmdline = cmdline;
  }
  if (settings.initrd && !settings.kernel) invalid('libvirt.initrd', 'needs libvirt.kernel');
  if (settings.kernel && settings.location) invalid('libvirt.kernel', 'cannot be combined with libvirt.location');
  for (const key of ['machine', 'osVariant'] as const) {
    const v = optionalString(ps, key);
    if (v === undefined) continue;
    if (!/^[A-Za-z0-9][-A-Za-z0-9_.]{0,63}$/.test(v)) invalid(`libvirt.${key}`, `${JSON.stringify(v)} is not valid`);
    settings[key] = v;
  }
  const timeout = ps.shutdownTimeoutSeconds;
  if (timeout !== undefined && timeout !== null) {
    if (typeof timeout !== 'number' || !(timeout >= 0) || timeout > LIMITS.maxShutdownTimeoutSeconds) {
      invalid('libvirt.shutdownTimeoutSeconds', `must be a number from 0 to ${LIMITS.maxShutdownTimeoutSeconds}`);
    }
    settings.shutdownTimeoutMs = timeout * 1000;
  }
  return settings;
}

/** Throws `ReconcileError('InvalidSpec')` for the first problem found; returns the provider settings. */
export function validateSpec(spec: MachineSpec): LibvirtSettings {
  if (typeof spec.uid !== 'string' || !UUID.test(spec.uid)) invalid('metadata.uid', 'must be a UUID');
  if (typeof spec.name !== 'string' || !spec.name) invalid('metadata.name', 'must not be empty');
  if (typeof spec.namespace !== 'string') invalid('metadata.namespace', 'must be a string');
  if (typeof spec.hostname !== 'string' || !isDnsLabel(spec.hostname)) {
    invalid('hostname', `${JSON.stringify(spec.hostname)} is not a DNS-1123 label (a-z, 0-9, '-', at most 63)`);
  }
  if (spec.image !== undefined && (typeof spec.image !== 'string' || !VOLUME_NAME.test(spec.image))) {
    invalid('image', `${JSON.stringify(spec.image)} is not a volume name`);
  }
  if (!isInt(spec.cpus) || spec.cpus < 1 || spec.cpus > LIMITS.maxCpus) invalid('cpus', `must be an integer from 1 to ${LIMITS.maxCpus}`);
  if (!isInt(spec.memoryMiB) || spec.memoryMiB < LIMITS.minMemoryMiB || spec.memoryMiB > LIMITS.maxMemoryMiB) {
    invalid('memoryMiB', `must be an integer from ${LIMITS.minMemoryMiB} to ${LIMITS.maxMemoryMiB}, got ${String(spec.memoryMiB)}`);
  }
  if (!Array.isArray(spec.disks)) invalid('disks', 'must be a list');
  if (spec.disks.length > LIMITS.maxDisks) invalid('disks', `at most ${LIMITS.maxDisks} disks, got ${spec.disks.length}`);
  const diskNames = new Set<string>();
  spec.disks.forEach((d, i) => {
    if (typeof d.name !== 'string' || !isDnsLabel(d.name)) invalid(`disks[${i}].name`, `${JSON.stringify(d.name)} is not a DNS-1123 label`);
    if (diskNames.has(d.name)) invalid(`disks[${i}].name`, `duplicate disk name ${d.name}`);
    diskNames.add(d.name);
    if (!isInt(d.sizeGiB) || d.sizeGiB < 1 || d.sizeGiB > LIMITS.maxDiskGiB) {
      invalid(`disks[${i}].sizeGiB`, `must be an integer from 1 to ${LIMITS.maxDiskGiB}, got ${String(d.sizeGiB)}`);
    }
  });
  if (!Array.isArray(spec.networks)) invalid('networks', 'must be a list');
  if (spec.networks.length > LIMITS.maxNetworks) invalid('networks', `at most ${LIMITS.maxNetworks} networks, got ${spec.networks.length}`);
  const macs = new Set<string>();
  spec.networks.forEach((n, i) => {
    if (typeof n.name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$/.test(n.name)) {
      invalid(`networks[${i}].name`, `${JSON.stringify(n.name)} is not a network name`);
    }
    if (typeof n.bridge !== 'string' || !BRIDGE.test(n.bridge)) invalid(`networks[${i}].bridge`, `${JSON.stringify(n.bridge)} is not a bridge name`);
    if (!isInt(n.vlan) || n.vlan < 1 || n.vlan > 4094) invalid(`networks[${i}].vlan`, 'must be an integer from 1 to 4094');
    if (n.address !== undefined && (typeof n.address !== 'string' || !validAddress(n.address))) {
      invalid(`networks[${i}].address`, `${JSON.stringify(n.address)} is not an address in CIDR form`);
    }
    if (n.gateway !== undefined && (typeof n.gateway !== 'string' || !validIp(n.gateway))) {
      invalid(`networks[${i}].gateway`, `${JSON.stringify(n.gateway)} is not an IP address`);
    }
    if (n.mac !== undefined) {
      if (typeof n.mac !== 'string' || !MAC.test(n.mac)) invalid(`networks[${i}].mac`, `${JSON.stringify(n.mac)} is not a MAC address`);
      if (parseInt(n.mac.slice(0, 2), 16) & 1) invalid(`networks[${i}].mac`, 'must be a unicast address');
      if (macs.has(n.mac.toLowerCase())) invalid(`networks[${i}].mac`, 'duplicate MAC address');
      macs.add(n.mac.toLowerCase());
    }
  });
  if (!Array.isArray(spec.sshAuthorizedKeys)) invalid('sshKeys', 'must be a list');
  spec.sshAuthorizedKeys.forEach((k, i) => {
    if (typeof k !== 'string' || !k.trim() || /[\r\n\0]/.test(k)) invalid(`sshKeys[${i}]`, 'must be one line of OpenSSH public key');
  });
  if (spec.userData !== undefined) {
    if (typeof spec.userData !== 'string') invalid('userData', 'must be a string');
    if (Buffer.byteLength(spec.userData) > LIMITS.maxUserDataBytes) invalid('userData', `larger than ${LIMITS.maxUserDataBytes} bytes`);
  }
  if (spec.powerState !== 'Running' && spec.powerState !== 'Stopped') invalid('powerState', 'must be Running or Stopped');
  return libvirtSettings(spec.providerSpec ?? {});
}
