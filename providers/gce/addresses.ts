/**
 * The `elasticIPs` capability of GCE nodes: an ElasticIP is a regional static external
 * address (`addresses.insert`, named `stratus-eip-<uid>`) carried as the bound VM's access
 * config on its first interface (`nic0`). GCE allows one access config per interface, so
 * binding replaces whatever the VM has (an ephemeral address) with one whose `natIP` is the
 * static address; moving is `deleteAccessConfig` on the old VM then `addAccessConfig` on the
 * new one; unbinding deletes the access config and leaves the VM with no external address
 * (no ephemeral one comes back: a VM that had an ElasticIP is reachable only through one,
 * and `instances.addAccessConfig` by hand restores an ephemeral address); `release`
 * deletes the static address (unbinding it first).
 *
 * The address comes from Google, not from an AddressPool: `reserve` returns it.
 *
 * ```ts
 * const address = await gceElasticIPs.reserve(conn, spec, uid, signal); // 203.0.113.12
 * await gceElasticIPs.bind(conn, spec, { uid, address, machine: { uid: instUid, name: 'web' } }, signal);
 * await gceElasticIPs.unbind(conn, spec, uid, signal);
 * await gceElasticIPs.release(conn, spec, uid, signal);
 * ```
 *
 * Every step waits for its operation; a failed one is a `ReconcileError` (quota:
 * `QuotaExceeded`, retryable). Bindings live per zone (`gce:<project>/<zone>`): access
 * configs are zonal, while the address is regional.
 */
import type { ComputeNodeSpec } from '../../crds/types.js';
import { ReconcileError } from '../../runtime/errors.js';
import type { ElasticIPBinding, ElasticIPCarrier } from '../registry.js';
import type { ComputeApi } from './api.js';
import type { GceNodeConnection } from './index.js';
import { operationFailure } from './operations.js';
import { instanceName, lastSegment, type Operation, type PendingKind } from './spec.js';

/** The access config stratus adds (GCE's default name). */
export const ACCESS_CONFIG_NAME = 'External NAT';
const NIC = 'nic0';

/** The static address's name for ElasticIP `uid` (a GCE name: lowercase, at most 63 characters). */
export function addressName(uid: string): string {
  const core = uid.toLowerCase().replace(/[^a-z0-9-]/g, '').slice(0, 50).replace(/-+$/, '');
  if (core === '') throw new ReconcileError('InvalidSpec', 'the ElasticIP has no uid to name its address after', false);
  return `stratus-eip-${core}`;
}

/** `us-central1` of `us-central1-a`. */
export function regionOfZone(zone: string): string {
  return zone.replace(/-[a-z]$/, '');
}

/** Waits for a zonal (or, with `region`, regional) operation; its failure as a `ReconcileError`. */
async function finish(api: ComputeApi, op: Operation, kind: PendingKind, signal: AbortSignal, region?: string): Promise<void> {
  let cur = op;
  while (cur.status !== 'DONE') {
    signal.throwIfAborted();
    cur = region ? await api.waitRegionOperation(region, cur.name ?? '') : await api.waitOperation(cur.name ?? '');
  }
  const failure = operationFailure(cur, kind);
  if (failure) throw failure;
}

function settingsOf(spec: ComputeNodeSpec): { project: string; zone: string } {
  if (!spec.gce) throw new ReconcileError('InvalidSpec', 'spec.gce is required when spec.provider is gce', false);
  return spec.gce;
}

/** Names of the instances of `zone` among an address's `users` (instance URLs). */
function usersIn(users: readonly string[] | null | undefined, zone: string): string[] {
  return (users ?? []).filter((u) => u.includes(`/zones/${zone}/instances/`)).map(lastSegment);
}

async function deleteConfigsWith(conn: GceNodeConnection, instance: string, address: string, signal: AbortSignal): Promise<void> {
  const vm = await conn.api.getInstance(instance);
  const nic = vm?.networkInterfaces?.find((n) => n.name === NIC);
  for (const a of nic?.accessConfigs ?? []) {
    if (a.natIP !== address) continue;
    await finish(conn.api, await conn.api.deleteAccessConfig(instance, NIC, a.name ?? ACCESS_CONFIG_NAME), 'accessConfig', signal);
  }
}

export interface GceElasticIPCarrier extends ElasticIPCarrier<GceNodeConnection> {
  /** The static address of ElasticIP `uid`, reserved when missing. */
  reserve(conn: GceNodeConnection, spec: ComputeNodeSpec, uid: string, signal: AbortSignal): Promise<string>;
  reserved(conn: GceNodeConnection, spec: ComputeNodeSpec, uid: string, signal: AbortSignal): Promise<string | undefined>;
  release(conn: GceNodeConnection, spec: ComputeNodeSpec, uid: string, signal: AbortSignal): Promise<void>;
}

export const gceElasticIPs: GceElasticIPCarrier = {
  locate(spec) {
    const g = spec.gce;
    return g ? { location: `gce:${g.project}/${g.zone}` } : { unavailable: 'the ComputeNode has no spec.gce' };
  },

  async reserve(conn, spec, uid, signal) {
    const region = regionOfZone(settingsOf(spec).zone);
    const name = addressName(uid);
    let found = await conn.api.getAddress(region, name);
    if (!found) {
      const op = await conn.api.insertAddress(region, { name, addressType: 'EXTERNAL', networkTier: 'PREMIUM', description: `stratus ElasticIP ${uid}` });
      await finish(conn.api, op, 'address', signal, region);
      found = await conn.api.getAddress(region, name);
    }
    if (!found?.address) throw new ReconcileError('AddressNotReserved', `GCE reserved no address ${name} in ${region}`);
    return found.address;
  },

  async reserved(conn, spec, uid) {
    const found = await conn.api.getAddress(regionOfZone(settingsOf(spec).zone), addressName(uid));
    return found?.address ?? undefined;
  },

  async observe(conn, spec, uid, want: ElasticIPBinding | undefined) {
    const { zone } = settingsOf(spec);
    const found = await conn.api.getAddress(regionOfZone(zone), addressName(uid));
    const users = found ? usersIn(found.users, zone) : [];
    const present = users.length > 0;
    const upToDate = want ? users.length === 1 && users[0] === instanceName(want.machine.uid) : !present;
    return { present, upToDate, ...(users[0] ? { target: users[0] } : {}) };
  },

  async bind(conn, spec, b, signal) {
    const { zone } = settingsOf(spec);
    const address = await gceElasticIPs.reserve(conn, spec, b.uid, signal);
    const vmName = instanceName(b.machine.uid);
    const found = await conn.api.getAddress(regionOfZone(zone), addressName(b.uid));
    // Off its previous VM first: GCE refuses an address in use by another resource.
    for (const user of found?.users ?? []) {
      if (lastSegment(user) === vmName) continue;
      if (!user.includes(`/zones/${zone}/`)) throw new ReconcileError('AddressInUse', `${address} is in use by ${user} (another zone)`);
      await deleteConfigsWith(conn, lastSegment(user), address, signal);
    }
    const vm = await conn.api.getInstance(vmName);
    if (!vm) throw new ReconcileError('InstanceHasNoAddress', `Instance "${b.machine.name}" has no GCE VM ${vmName} yet`);
    const configs = vm.networkInterfaces?.find((n) => n.name === NIC)?.accessConfigs ?? [];
    if (configs.length === 1 && configs[0]?.natIP === address) return;
    // One access config per interface: the ephemeral one goes, the static one comes.
    for (const a of configs) await finish(conn.api, await conn.api.deleteAccessConfig(vmName, NIC, a.name ?? ACCESS_CONFIG_NAME), 'accessConfig', signal);
    await finish(conn.api, await conn.api.addAccessConfig(vmName, NIC, { name: ACCESS_CONFIG_NAME, type: 'ONE_TO_ONE_NAT', natIP: address }), 'accessConfig', signal);
  },

  async unbind(conn, spec, uid, signal) {
    const { zone } = settingsOf(spec);
    const found = await conn.api.getAddress(regionOfZone(zone), addressName(uid));
    if (!found?.address) return;
    for (const vm of usersIn(found.users, zone)) await deleteConfigsWith(conn, vm, found.address, signal);
  },

  async release(conn, spec, uid, signal) {
    const region = regionOfZone(settingsOf(spec).zone);
    const name = addressName(uid);
    const found = await conn.api.getAddress(region, name);
    if (!found) return;
    await gceElasticIPs.unbind(conn, spec, uid, signal);
    await finish(conn.api, await conn.api.deleteAddress(region, name), 'address', signal, region);
  },
};
