/**
 * The Open vSwitch switch provider: a node with `spec.ovs` carries Networks as VLANs on a
 * bridge of its switch. One OVSDB session per database endpoint is shared by every
 * controller (`OvsSwitches`).
 */
import type { ComputeNodeSpec } from '../../crds/types.js';
import type { SwitchProviderDescriptor, SwitchSettings } from '../registry.js';
import { OvsSwitches } from './switches.js';

/** Where ovs-vswitchd's database listens when `spec.ovs.database` is not set. */
export const DEFAULT_OVS_DATABASE = 'unix:/var/run/openvswitch/db.sock';

export function ovsSwitchProvider(): SwitchProviderDescriptor {
  const sessions = new OvsSwitches();
  return {
    name: 'ovs',
    switchSettings(spec: ComputeNodeSpec): SwitchSettings | undefined {
      const ovs = spec.ovs;
      if (!ovs) return undefined;
      return { database: ovs.database ?? DEFAULT_OVS_DATABASE, ...(ovs.netns ? { netns: ovs.netns } : {}) };
    },
    connect: (settings) => sessions.get(settings.database),
    forget: (settings) => sessions.forget(settings.database),
    closeAll: () => sessions.closeAll(),
  };
}
