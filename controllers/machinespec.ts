/**
 * Translates an Instance (plus the SSHKeys and Networks it names) into the provider-neutral
 * `MachineSpec` providers consume. Lookups go through caches handed in by the caller; a
 * reference that does not resolve is a `ReconcileError` with a reason the user can act on.
 */
import type { Instance, Network, SSHKey } from '../crds/types.js';
import { isDnsLabel } from '../runtime/basics.js';
import { ReconcileError } from '../runtime/errors.js';
import type { MachineNetwork, MachineSpec } from '../providers/machine.js';

export interface Lookups {
  sshKey(namespace: string, name: string): SSHKey | undefined;
  network(namespace: string, name: string): Network | undefined;
}


/**
 * `lenient` (used on deletion) leaves out references that no longer resolve instead of
 * failing, so a deleted SSHKey or Network never blocks the removal of a machine.
 */
export function machineSpecFor(inst: Instance, lookups: Lookups, options: { lenient?: boolean } = {}): MachineSpec {
  const md = inst.metadata ?? {};
  const namespace = md.namespace ?? 'default';
  const name = md.name ?? '';
  const spec = inst.spec;
  const hostname = spec.hostname ?? name;
  if (!isDnsLabel(hostname)) {
    throw new ReconcileError(
      'InvalidHostname',
      `hostname "${hostname.slice(0, 80)}" is not a DNS-1123 label (set spec.hostname to one of at most 63 lowercase letters, digits and '-')`,
      false,
    );
  }
  const sshAuthorizedKeys: string[] = [];
  for (const keyName of spec.sshKeys ?? []) {
    const key = lookups.sshKey(namespace, keyName);
    if (key) sshAuthorizedKeys.push(key.spec.publicKey);
    else if (!options.lenient) throw new ReconcileError('SSHKeyNotFound', `SSHKey "${keyName}" does not exist in namespace "${namespace}"`);
  }
  const networks: MachineNetwork[] = [];
  for (const att of spec.networks ?? []) {
    const net = lookups.network(namespace, att.name);
    if (!net) {
      if (options.lenient) continue;
      throw new ReconcileError('NetworkNotFound', `Network "${att.name}" does not exist in namespace "${namespace}"`);
    }
    const prefix = net.spec.cidr?.split('/')[1];
    networks.push({
      name: att.name,
      ...(net.metadata?.uid ? { uid: net.metadata.uid } : {}),
      bridge: net.spec.bridge ?? 'br-stratus',
      vlan: net.spec.vlan,
      ...(att.ipAddress ? { address: prefix && !att.ipAddress.includes('/') ? `${att.ipAddress}/${prefix}` : att.ipAddress } : {}),
      ...(net.spec.gateway ? { gateway: net.spec.gateway } : {}),
      ...(att.mac ? { mac: att.mac } : {}),
      ...(net.spec.datapathType === 'netdev' ? { userspaceDatapath: true } : {}),
    });
  }
  const env: Record<string, string> = {};
  for (const e of spec.env ?? []) env[e.name] = e.value ?? '';
  const provider = spec.provider;
  const providerSection = (spec as unknown as Record<string, unknown>)[provider];
  return {
    uid: md.uid ?? '',
    namespace,
    name,
    hostname,
    ...(spec.image ? { image: spec.image } : {}),
    cpus: spec.cpus ?? 1,
    memoryMiB: spec.memoryMiB ?? 512,
    disks: (spec.disks ?? []).map((d) => ({ name: d.name, sizeGiB: d.sizeGiB })),
    networks,
    sshAuthorizedKeys,
    ...(spec.userData !== undefined ? { userData: spec.userData } : {}),
    env,
    ...(spec.command && spec.command.length > 0 ? { command: [...spec.command] } : {}),
    ports: (spec.ports ?? []).map((p) => ({
      containerPort: p.containerPort,
      ...(p.hostPort !== undefined ? { hostPort: p.hostPort } : {}),
      protocol: p.protocol ?? 'TCP',
      ...(p.hostIP ? { hostIP: p.hostIP } : {}),
    })),
    labels: { ...(md.labels ?? {}) },
    powerState: spec.powerState ?? 'Running',
    providerSpec: {
      ...(typeof providerSection === 'object' && providerSection !== null ? (providerSection as Record<string, unknown>) : {}),
      ...(spec.placement?.group ? { group: `${namespace}/${spec.placement.group}` } : {}),
    },
  };
}
