/**
 * Builds the libvirt domain XML for a machine and reads back what stratus put in it.
 * Every value that reaches the XML goes through `escapeXml`; names that libvirt uses as
 * identifiers (domain, volume, network) are derived and sanitised here.
 */
import { createHash } from 'node:crypto';
import type { MachineSpec } from '../machine.js';
import { escapeXml, parseXml, child, childrenNamed, type XmlElement } from './xml.js';
import type { LibvirtSettings } from './validate.js';

/** The XML namespace of stratus's `<metadata>` element; marks a domain as owned by stratus. */
export const STRATUS_XMLNS = 'https://stratus.dev/xmlns/libvirt/instance/v1';

/** `<namespace>-<name>-<uid8>`, limited to characters libvirt and qemu accept, at most 64. */
export function domainName(spec: Pick<MachineSpec, 'namespace' | 'name' | 'uid'>): string {
  const clean = (s: string): string => s.replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/^[-.]+/, '');
  const suffix = spec.uid.slice(0, 8).toLowerCase();
  const base = [clean(spec.namespace), clean(spec.name)].filter(Boolean).join('-').slice(0, 64 - suffix.length - 1);
  return base ? `${base}-${suffix}` : `stratus-${suffix}`;
}

/** The libvirt network that carries a stratus Network on a node (see `ensureOvsNetwork`). */
export function libvirtNetworkName(networkName: string): string {
  return `stratus-${networkName}`.replace(/[^A-Za-z0-9_.-]+/g, '-').slice(0, 100);
}

/** The portgroup of a libvirt network that tags traffic with `vlan`. */
export function vlanPortgroup(vlan: number): string {
  return `vlan-${vlan}`;
}

/** Volumes stratus makes for a machine all start with its uid, so delete finds leftovers too. */
export function volumePrefix(uid: string): string {
  return `${uid.toLowerCase()}-`;
}
export function bootVolumeName(uid: string): string {
  return `${volumePrefix(uid)}boot.qcow2`;
}
export function dataVolumeName(uid: string, disk: string): string {
  return `${volumePrefix(uid)}disk-${disk}.qcow2`;
}
export function seedVolumeName(uid: string): string {
  return `${volumePrefix(uid)}seed.iso`;
}
export function installVolumeName(uid: string, what: 'kernel' | 'initrd'): string {
  return `${volumePrefix(uid)}install-${what}`;
}

/** `52:54:00:xx:xx:xx` from the uid and the interface's index: stable across redefinitions. */
export function derivedMac(uid: string, index: number): string {
  const h = createHash('sha256').update(`${uid.toLowerCase()}/${index}`).digest();
  return ['52', '54', '00', ...[h[0], h[1], h[2]].map((b) => (b ?? 0).toString(16).padStart(2, '0'))].join(':');
}

/** sda, sdb, ..., sdz, sdaa, ... */
export function scsiDiskName(index: number): string {
  let n = index;
  let s = '';
  do {
    s = String.fromCharCode(97 + (n % 26)) + s;
    n = Math.floor(n / 26) - 1;
  } while (n >= 0);
  return `sd${s}`;
}

export interface DiskFile {
  path: string;
  format: 'qcow2' | 'raw';
}

export interface DomainPlan {
  /** libvirt domain type: `kvm`, `qemu` (TCG) or `test`. */
  type: string;
  name: string;
  boot?: DiskFile;
  data: DiskFile[];
  seed?: DiskFile;
  /**
   * One per spec network, in order (OVS: portgroup + openvswitch virtualport); or a single
   * plain interface on the node's default network (no portgroup) when the spec has none.
   */
  interfaces: { network: string; portgroup?: string; mac: string; fullChecksums?: boolean }[];
  settings: LibvirtSettings;
  /**
   * Install-tree boot (first boot only): the fetched installer's kernel and initrd volumes.
   * The domain gets `on_reboot=destroy` and an install mark in its metadata.
   */
  install?: { kernel: string; initrd: string; cmdline: string };
}

/**
 * Disk `slot` is SCSI target `slot` (LUN 0) and named `scsiDiskName(slot)`. One target per
 * disk, not one LUN per disk on target 0: the guest kernel scans targets in ascending order,
 * while the order of LUNs comes from the device's REPORT LUNS answer — with LUNs a Debian
 * guest was seen to name the second data disk sdb. So the guest's sda, sdb, ... usually follow
 * the spec's disk order (DataCentred's promise) — usually: the guest's sd driver probes
 * asynchronously, and a heavily loaded TCG guest was seen to swap two letters. The SCSI
 * address (`/dev/disk/by-path/*-scsi-0:0:<slot>:0`) is the stable name.
 */
function scsiAddress(slot: number): string {
  return `      <address type='drive' controller='0' bus='0' target='${slot}' unit='0'/>\n`;
}

function diskXml(d: DiskFile, slot: number, device: 'disk' | 'cdrom'): string {
  return (
    `    <disk type='file' device='${device}'>\n` +
    `      <driver name='qemu' type='${escapeXml(d.format)}'/>\n` +
    `      <source file='${escapeXml(d.path)}'/>\n` +
    `      <target dev='${scsiDiskName(slot)}' bus='scsi'/>\n` +
    (device === 'cdrom' ? `      <readonly/>\n` : '') +
    scsiAddress(slot) +
    `    </disk>\n`
  );
}

/** The complete domain XML. Pure: the same spec and plan give the same document. */
export function buildDomainXml(spec: MachineSpec, plan: DomainPlan): string {
  const s = plan.settings;
  const meta =
    `    <stratus:instance xmlns:stratus='${STRATUS_XMLNS}'>\n` +
    `      <stratus:uid>${escapeXml(spec.uid.toLowerCase())}</stratus:uid>\n` +
    `      <stratus:namespace>${escapeXml(spec.namespace)}</stratus:namespace>\n` +
    `      <stratus:name>${escapeXml(spec.name)}</stratus:name>\n` +
    `      <stratus:hostname>${escapeXml(spec.hostname)}</stratus:hostname>\n` +
    (plan.install ? `      <stratus:install phase='installing'/>\n` : '') +
    (s.osVariant ? `      <stratus:osVariant>${escapeXml(s.osVariant)}</stratus:osVariant>\n` : '') +
    spec.networks
      .map((n) => (n.address ? `      <stratus:address network='${escapeXml(n.name)}' cidr='${escapeXml(n.address)}'/>\n` : ''))
      .join('') +
    Object.entries(spec.labels ?? {})
      .map(([k, v]) => `      <stratus:label key='${escapeXml(k)}'>${escapeXml(v)}</stratus:label>\n`)
      .join('') +
    `    </stratus:instance>\n`;

  const boots: string[] = [];
  const isoInstall = s.location && s.locationKind !== 'tree';
  if (isoInstall) boots.push('cdrom');
  boots.push('hd');
  if (!spec.image && !s.location && !s.kernel && spec.networks.length) boots.push('network');
  const kernel = plan.install ?? (s.kernel ? { kernel: s.kernel, initrd: s.initrd, cmdline: s.cmdline } : undefined);
  const os =
    `  <os>\n    <type arch='x86_64'${s.machine ? ` machine='${escapeXml(s.machine)}'` : ''}>hvm</type>\n` +
    (kernel
      ? `    <kernel>${escapeXml(kernel.kernel)}</kernel>\n` +
        (kernel.initrd ? `    <initrd>${escapeXml(kernel.initrd)}</initrd>\n` : '') +
        (kernel.cmdline ? `    <cmdline>${escapeXml(kernel.cmdline)}</cmdline>\n` : '')
      : boots.map((b) => `    <boot dev='${b}'/>\n`).join('')) +
    `  </os>\n`;

  let slot = 0;
  let disks = '';
  if (plan.boot) disks += diskXml(plan.boot, slot++, 'disk');
  for (const d of plan.data) disks += diskXml(d, slot++, 'disk');
  if (isoInstall && s.location) {
    const u = s.location;
    const port = u.port || { 'http:': '80', 'https:': '443', 'ftp:': '21', 'ftps:': '990', 'nfs:': '2049' }[u.protocol] || '';
    disks +=
      `    <disk type='network' device='cdrom'>\n` +
      `      <driver name='qemu' type='raw'/>\n` +
      `      <source protocol='${escapeXml(u.protocol.replace(':', ''))}' name='${escapeXml(decodeURIComponent(u.pathname) + u.search)}'>\n` +
      `        <host name='${escapeXml(u.hostname.replace(/^\[|\]$/g, ''))}' port='${escapeXml(port)}'/>\n` +
      `      </source>\n` +
      `      <target dev='${scsiDiskName(slot)}' bus='scsi'/>\n` +
      `      <readonly/>\n` +
      scsiAddress(slot++) +
      `    </disk>\n`;
  }
  if (plan.seed) disks += diskXml(plan.seed, slot++, 'cdrom');

  const nics = plan.interfaces
    .map(
      (i) =>
        `    <interface type='network'>\n` +
        `      <mac address='${escapeXml(i.mac)}'/>\n` +
        (i.portgroup
          ? `      <source network='${escapeXml(i.network)}' portgroup='${escapeXml(i.portgroup)}'/>\n` +
            `      <virtualport type='openvswitch'/>\n`
          : `      <source network='${escapeXml(i.network)}'/>\n`) +
        `      <model type='virtio'/>\n` +
        // No checksum/segmentation offload from the guest: the virtio device does not offer it,
        // so the guest sends finished frames (see MachineNetwork.userspaceDatapath).
        (i.fullChecksums ? `      <driver>\n        <host csum='off' gso='off' tso4='off' tso6='off' ecn='off' ufo='off'/>\n      </driver>\n` : '') +
        `    </interface>\n`,
    )
    .join('');

  const console = s.console
    ? `    <serial type='pty'>\n      <target port='0'/>\n    </serial>\n` +
      `    <console type='pty'>\n      <target type='serial' port='0'/>\n    </console>\n`
    : '';
  const agent =
    plan.type === 'test' ? '' : `    <channel type='unix'>\n      <target type='virtio' name='org.qemu.guest_agent.0'/>\n    </channel>\n`;

  return (
    `<domain type='${escapeXml(plan.type)}'>\n` +
    `  <name>${escapeXml(plan.name)}</name>\n` +
    `  <uuid>${escapeXml(spec.uid.toLowerCase())}</uuid>\n` +
    `  <title>${escapeXml(`${spec.namespace}/${spec.name}`)}</title>\n` +
    `  <metadata>\n${meta}  </metadata>\n` +
    `  <memory unit='MiB'>${escapeXml(spec.memoryMiB)}</memory>\n` +
    `  <vcpu>${escapeXml(spec.cpus)}</vcpu>\n` +
    os +
    `  <features>\n    <acpi/>\n    <apic/>\n  </features>\n` +
    `  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>${plan.install ? 'destroy' : 'restart'}</on_reboot>\n  <on_crash>destroy</on_crash>\n` +
    `  <devices>\n` +
    `    <controller type='scsi' index='0' model='virtio-scsi'/>\n` +
    disks +
    nics +
    console +
    agent +
    `  </devices>\n` +
    `</domain>\n`
  );
}

/** What stratus wrote into a domain's metadata, read back from its XML. */
export interface OwnedDomainInfo {
  uid: string;
  namespace: string;
  name: string;
  hostname: string;
  addresses: { network: string; cidr: string }[];
  labels: Record<string, string>;
  /** True while the domain still boots a fetched installer (install-tree location). */
  installing: boolean;
  memoryMiB: number;
  cpus: number;
}

function stratusMetadata(root: XmlElement): { el: XmlElement; prefix: string } | undefined {
  for (const el of child(root, 'metadata')?.children ?? []) {
    for (const [k, v] of Object.entries(el.attrs)) {
      if (v !== STRATUS_XMLNS) continue;
      if (k === 'xmlns') return { el, prefix: '' };
      if (k.startsWith('xmlns:')) return { el, prefix: `${k.slice(6)}:` };
    }
  }
  return undefined;
}

function memoryMiB(el: XmlElement | undefined): number {
  if (!el) return 0;
  const n = Number(el.text.trim());
  const unit = (el.attrs.unit ?? 'KiB').toLowerCase();
  const factor: Record<string, number> = { b: 1 / 1048576, bytes: 1 / 1048576, k: 1 / 1024, kib: 1 / 1024, kb: 1000 / 1048576, m: 1, mib: 1, mb: 1e6 / 1048576, g: 1024, gib: 1024, gb: 1e9 / 1048576 };
  return Math.round(n * (factor[unit] ?? 1 / 1024));
}

/** Reads stratus's metadata from a domain XML; undefined for domains stratus did not create. */
export function readOwnedDomain(xml: string): OwnedDomainInfo | undefined {
  const root = parseXml(xml);
  const meta = stratusMetadata(root);
  if (!meta) return undefined;
  const p = meta.prefix;
  const text = (n: string): string => child(meta.el, `${p}${n}`)?.text.trim() ?? '';
  const uid = text('uid');
  if (!uid) return undefined;
  const labels: Record<string, string> = {};
  for (const l of childrenNamed(meta.el, `${p}label`)) labels[l.attrs.key ?? ''] = l.text;
  return {
    uid,
    namespace: text('namespace'),
    name: text('name'),
    hostname: text('hostname'),
    addresses: childrenNamed(meta.el, `${p}address`).map((a) => ({ network: a.attrs.network ?? '', cidr: a.attrs.cidr ?? '' })),
    labels,
    installing: child(meta.el, `${p}install`)?.attrs.phase === 'installing',
    memoryMiB: memoryMiB(child(root, 'memory')),
    cpus: Number(child(root, 'vcpu')?.text.trim() ?? 0),
  };
}
