/**
 * The `elasticIPs` capability of nodes whose machines have private addresses on the
 * controller's host (libvirt, Docker): NAT in the stratus-owned nftables table named by the
 * node's `spec.elasticIP` (see nat.ts). The node's connection is not used — the NAT runs where
 * the controller runs, or in `spec.elasticIP.netns`.
 */
import type { ComputeNodeSpec } from '../../crds/types.js';
import { ReconcileError } from '../../runtime/errors.js';
import type { ElasticIPCarrier } from '../registry.js';
import { NftablesNat, type NatSettings } from './nat.js';

export const DEFAULT_NAT_TABLE = 'stratus_eip';

/** The node's NAT settings, or undefined when it has no `spec.elasticIP`. */
export function natSettings(spec: ComputeNodeSpec): NatSettings | undefined {
  const e = spec.elasticIP;
  if (!e) return undefined;
  return { interface: e.interface, mode: e.mode ?? 'address', table: e.table ?? DEFAULT_NAT_TABLE, ...(e.netns ? { netns: e.netns } : {}) };
}

function natOf(spec: ComputeNodeSpec): NftablesNat {
  const s = natSettings(spec);
  if (!s) throw new ReconcileError('NoElasticIPSettings', 'the ComputeNode has no spec.elasticIP (the uplink to NAT elastic IPs on)', false);
  return new NftablesNat(s);
}

export const nftablesElasticIPs: ElasticIPCarrier = {
  locate(spec) {
    const s = natSettings(spec);
    return s ? { location: new NftablesNat(s).location } : { unavailable: 'the ComputeNode has no spec.elasticIP (the uplink to NAT elastic IPs on)' };
  },
  async observe(_conn, spec, uid, want, signal) {
    const o = await natOf(spec).observe(uid, signal);
    const present = o.rules !== undefined;
    const upToDate = want?.machine.privateAddress
      ? NftablesNat.matches(o, { address: want.address, privateAddress: want.machine.privateAddress })
      : !present;
    return { present, upToDate, ...(o.rules ? { target: o.rules.privateAddress } : {}) };
  },
  async bind(_conn, spec, b, signal) {
    if (!b.machine.privateAddress) throw new ReconcileError('InstanceHasNoAddress', `Instance "${b.machine.name}" has no private address yet`);
    await natOf(spec).bind({ uid: b.uid, address: b.address, privateAddress: b.machine.privateAddress }, signal);
  },
  async unbind(_conn, spec, uid, signal) {
    await natOf(spec).unbind(uid, signal);
  },
};
