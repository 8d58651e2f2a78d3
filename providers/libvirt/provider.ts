/**
 * The libvirt provider's descriptor: VMs as libvirt domains on a hypervisor
 * (`ComputeNode.spec.libvirt`), Networks as libvirt networks on the node's Open vSwitch
 * bridge (VM interfaces join a `vlan-N` portgroup, so no attachment step is needed).
 */
import type { ComputeNodeSpec } from '../../crds/types.js';
import { nftablesElasticIPs } from '../nftables/carrier.js';
import { missingSection, type ProviderDescriptor } from '../registry.js';
import { closeLibvirtSessions, connectLibvirt, type LibvirtNodeConnection } from './connection.js';
import { domainCpuSeconds } from './cpu.js';
import { dataDiskSizes, growDataDisk } from './disks.js';
import { libvirtNetworkName } from './domain-xml.js';
import { ensureOvsNetwork, observeOvsNetwork, removeOvsNetwork } from './networks.js';
import { simNodeUri } from './sim.js';

export interface LibvirtNodeSettings {
  uri: string;
  imagePool: string;
}

export const libvirtProvider: ProviderDescriptor<LibvirtNodeSettings, LibvirtNodeConnection> = {
  name: 'libvirt',
  description: 'VMs as libvirt domains (qemu/KVM, or the test driver)',
  nodeSettings(spec: ComputeNodeSpec): LibvirtNodeSettings {
    if (!spec.libvirt) throw missingSection('libvirt');
    return { uri: spec.libvirt.uri, imagePool: spec.libvirt.imagePool ?? 'default' };
  },
  async connect(settings) {
    return connectLibvirt({ uri: settings.uri, imagePool: settings.imagePool });
  },
  // libvirt sessions (virsh shells, test-driver worlds) outlive single connections by design.
  shutdown: closeLibvirtSessions,
  capabilities: {
    machines: true,
    elasticIPs: nftablesElasticIPs,
    networks: {
      async observe(conn, net) {
        const name = libvirtNetworkName(net.name);
        const cur = await observeOvsNetwork(conn, name);
        const vlans = [...new Set(net.vlans)].sort((a, b) => a - b).join(',');
        // The same test `ensureOvsNetwork` makes before it redefines or starts anything.
        const upToDate = Boolean(cur && cur.ovs && cur.active && cur.autostart && cur.bridge === net.bridge && cur.vlans.join(',') === vlans);
        return { name, upToDate };
      },
      async ensure(conn, net) {
        const name = libvirtNetworkName(net.name);
        await ensureOvsNetwork(conn, { name, bridge: net.bridge, vlans: net.vlans });
        return name;
      },
      async remove(conn, networkName) {
        await removeOvsNetwork(conn, libvirtNetworkName(networkName));
      },
    },
    // blockresize on a running domain, vol-resize on a stopped one (disks.ts).
    diskResize: { sizes: (conn, spec) => dataDiskSizes(conn, spec), grow: (conn, spec, name, bytes) => growDataDisk(conn, spec, name, bytes) },
    metrics: true,
    cpuUsage: { cpuSeconds: (conn, uid) => domainCpuSeconds(conn, uid) },
    simulatedNode: (dataDir) => ({ provider: 'libvirt', libvirt: { uri: simNodeUri(dataDir), imagePool: 'default' } }),
  },
};
