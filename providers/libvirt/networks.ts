/**
 * libvirt networks on Open vSwitch bridges: `<forward mode='bridge'/>` onto an existing OVS
 * bridge, with one portgroup `vlan-N` per VLAN tag. A domain's interface names the network
 * and the portgroup (`libvirtNetworkName`, `vlanPortgroup`), libvirt adds the port to the
 * bridge with `tag=N`. The bridge itself belongs to the OVS provider.
 *
 * Naming: one libvirt network per stratus Network, `libvirtNetworkName(network.name)`, so
 * two Networks on one bridge never rewrite each other's definition.
 */
import { ReconcileError } from '../../runtime/errors.js';
import { VirshError, type VirshShell } from './virsh-shell.js';
import { escapeXml, parseXml, child, childrenNamed } from './xml.js';
import { withTempFile } from './storage.js';
import { vlanPortgroup } from './domain-xml.js';

const NETWORK_ABSENT = /Network not found|no network with matching|failed to get network/i;
const BRIDGE = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,14}$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;

/** What a connection must offer for network management (a `LibvirtNodeConnection` does). */
export interface VirshAccess {
  shell(): VirshShell;
}

export interface OvsNetworkSpec {
  /** libvirt network name (see `libvirtNetworkName`). */
  name: string;
  /** The Open vSwitch bridge, which must exist when a domain starts on the network. */
  bridge: string;
  vlans: number[];
}

export interface OvsNetworkObservation extends OvsNetworkSpec {
  uuid: string;
  active: boolean;
  autostart: boolean;
  /** True when the definition is a bridge-mode network with an openvswitch virtualport. */
  ovs: boolean;
}

function check(spec: OvsNetworkSpec): number[] {
  if (!NAME.test(spec.name)) throw new ReconcileError('InvalidSpec', `network name ${JSON.stringify(spec.name)} is not valid`, false);
  if (!BRIDGE.test(spec.bridge)) throw new ReconcileError('InvalidSpec', `bridge ${JSON.stringify(spec.bridge)} is not valid`, false);
  for (const v of spec.vlans) {
    if (!Number.isInteger(v) || v < 1 || v > 4094) throw new ReconcileError('InvalidSpec', `VLAN ${v} is not from 1 to 4094`, false);
  }
  return [...new Set(spec.vlans)].sort((a, b) => a - b);
}

/** The network's XML; `uuid` keeps the identity of an existing definition when redefining it. */
export function ovsNetworkXml(spec: OvsNetworkSpec, uuid?: string): string {
  const vlans = check(spec);
  return (
    `<network>\n  <name>${escapeXml(spec.name)}</name>\n` +
    (uuid ? `  <uuid>${escapeXml(uuid)}</uuid>\n` : '') +
    `  <forward mode='bridge'/>\n` +
    `  <bridge name='${escapeXml(spec.bridge)}'/>\n  <virtualport type='openvswitch'/>\n` +
    vlans.map((v) => `  <portgroup name='${vlanPortgroup(v)}'>\n    <vlan>\n      <tag id='${v}'/>\n    </vlan>\n  </portgroup>\n`).join('') +
    `</network>\n`
  );
}

function parseNetworkXml(xml: string): Omit<OvsNetworkObservation, 'active' | 'autostart'> {
  const root = parseXml(xml);
  const vlans: number[] = [];
  for (const pg of childrenNamed(root, 'portgroup')) {
    const tag = child(pg, 'vlan/tag')?.attrs.id;
    if (tag !== undefined && pg.attrs.name === vlanPortgroup(Number(tag))) vlans.push(Number(tag));
  }
  return {
    name: child(root, 'name')?.text.trim() ?? '',
    uuid: child(root, 'uuid')?.text.trim() ?? '',
    bridge: child(root, 'bridge')?.attrs.name ?? '',
    vlans: vlans.sort((a, b) => a - b),
    ovs: child(root, 'forward')?.attrs.mode === 'bridge' && child(root, 'virtualport')?.attrs.type === 'openvswitch',
  };
}

/** The network as defined on the node, or undefined when there is none of that name. */
export async function observeOvsNetwork(conn: VirshAccess, name: string): Promise<OvsNetworkObservation | undefined> {
  const sh = conn.shell();
  let xml: string | undefined;
  try {
    xml = await sh.runOrAbsent(['net-dumpxml', '--inactive', name], NETWORK_ABSENT);
  } catch (err) {
    // The test driver has no separate inactive definition and rejects the flag.
    if (!(err instanceof VirshError) || !/unsupported flags/.test(err.message)) throw err;
    xml = await sh.runOrAbsent(['net-dumpxml', name], NETWORK_ABSENT);
  }
  if (xml === undefined) return undefined;
  const info = await sh.run(['net-info', name]);
  const flag = (key: string): boolean => new RegExp(`^${key}:\\s+yes\\s*$`, 'm').test(info);
  return { ...parseNetworkXml(xml), active: flag('Active'), autostart: flag('Autostart') };
}

/** Per shell (= per node) and network name: one ensure/remove at a time, in call order. */
const locks = new WeakMap<VirshShell, Map<string, Promise<unknown>>>();

function serialized<T>(sh: VirshShell, name: string, fn: () => Promise<T>): Promise<T> {
  let byName = locks.get(sh);
  if (!byName) locks.set(sh, (byName = new Map()));
  const prev = byName.get(name) ?? Promise.resolve();
  const next = prev.then(fn, fn);
  const tail = next.catch(() => undefined);
  byName.set(name, tail);
  void tail.then(() => {
    if (byName.get(name) === tail) byName.delete(name);
  });
  return next;
}

/**
 * Makes the network exist exactly as specified (bridge, openvswitch virtualport, one
 * portgroup per VLAN), started and autostarted. Idempotent; a changed definition is
 * applied by stopping, redefining and starting the network, which briefly takes it down.
 */
export function ensureOvsNetwork(conn: VirshAccess, spec: OvsNetworkSpec): Promise<void> {
  check(spec);
  return serialized(conn.shell(), spec.name, () => ensureUnlocked(conn, spec));
}

async function ensureUnlocked(conn: VirshAccess, spec: OvsNetworkSpec): Promise<void> {
  const vlans = check(spec);
  const sh = conn.shell();
  let cur = await observeOvsNetwork(conn, spec.name);
  const same = cur && cur.ovs && cur.bridge === spec.bridge && cur.vlans.join(',') === vlans.join(',');
  if (!same) {
    // Stop first, then define: an inactive network takes the new definition at once on every
    // driver (the test driver drops a definition staged for an active network).
    if (cur?.active) await sh.runOrAbsent(['net-destroy', spec.name], /not active|is not running/i);
    await withTempFile('network.xml', ovsNetworkXml({ ...spec, vlans }, cur?.uuid), (file) => sh.run(['net-define', '--file', file]));
    cur = await observeOvsNetwork(conn, spec.name);
  }
  if (!cur?.active) await sh.runOrAbsent(['net-start', spec.name], /already active/i);
  if (!cur?.autostart) await sh.run(['net-autostart', spec.name]);
}

/**
 * Adds the VLANs a machine needs to a network, creating it when absent; never removes VLANs.
 * Concurrent calls for one network (machines created in parallel) end with the union.
 */
export function ensureOvsNetworkCarries(conn: VirshAccess, spec: OvsNetworkSpec): Promise<void> {
  check(spec);
  return serialized(conn.shell(), spec.name, async () => {
    const cur = await observeOvsNetwork(conn, spec.name);
    const vlans = [...new Set([...(cur?.ovs && cur.bridge === spec.bridge ? cur.vlans : []), ...spec.vlans])];
    if (cur && cur.ovs && cur.bridge === spec.bridge && spec.vlans.every((v) => cur.vlans.includes(v)) && cur.active && cur.autostart) return;
    await ensureUnlocked(conn, { ...spec, vlans });
  });
}

/** Stops and undefines the network; absent is success. */
export function removeOvsNetwork(conn: VirshAccess, name: string): Promise<void> {
  const sh = conn.shell();
  return serialized(sh, name, async () => {
    await sh.runOrAbsent(['net-destroy', name], new RegExp(`${NETWORK_ABSENT.source}|not active|is not running`, 'i'));
    await sh.runOrAbsent(['net-undefine', name], NETWORK_ABSENT);
  });
}
