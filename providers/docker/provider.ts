/**
 * The Docker provider's descriptor: containers on a Docker engine
 * (`ComputeNode.spec.docker`, unix socket or TCP+TLS with the client certificate from a
 * Secret). Containers join Networks through a veth pair per Network into the node's switch
 * (`networkAttachment`), and release commands run through Docker exec (`guestChannel`).
 */
import type { ComputeNodeSpec } from '../../crds/types.js';
import { ReconcileError } from '../../runtime/errors.js';
import { DockerExecChannel } from '../guest/docker.js';
import { attachNamespace } from '../ovs/netns.js';
import { missingSection, type NetworkAttachment, type ProviderDescriptor } from '../registry.js';
import { nftablesElasticIPs } from '../nftables/carrier.js';
import { connectDocker, type DockerNodeConnection } from './index.js';
import { parseDockerConfig } from './registry-auth.js';

export interface DockerNodeSettings {
  address: string;
  tlsSecretRef?: { namespace: string; name: string };
  registryAuthSecretRef?: { namespace: string; name: string };
  hostIP?: string;
}

/**
 * Containers join Networks through a veth pair per Network (`eth1`, `eth2`, ...): the host
 * end is an access port of the Network's VLAN, the other end is inside the container's
 * namespace with the Instance's address. VMs need none of this: libvirt plugs their
 * interfaces into the Network's portgroup.
 */
export const containerAttachment: NetworkAttachment = {
  async attach(sw, switchSettings, spec, observed) {
    if (spec.networks.length === 0 || observed.state !== 'running' || !observed.pid) return;
    for (const [i, n] of spec.networks.entries()) {
      await attachNamespace(sw, {
        bridge: n.bridge,
        vlan: n.vlan,
        ownerUid: spec.uid,
        ...(n.uid ? { networkUid: n.uid } : {}),
        target: { pid: observed.pid },
        ifName: `eth${i + 1}`,
        ...(n.address ? { address: n.address } : {}),
        ...(n.mac ? { mac: n.mac } : {}),
        ...(switchSettings.netns ? { switchNetns: switchSettings.netns } : {}),
      });
    }
  },
  async detach(sw, uid) {
    await sw.removePortsOwnedBy(uid);
  },
};

export const dockerProvider: ProviderDescriptor<DockerNodeSettings, DockerNodeConnection> = {
  name: 'docker',
  description: 'containers on Docker engines (unix socket or TCP+TLS)',
  nodeSettings(spec: ComputeNodeSpec): DockerNodeSettings {
    const d = spec.docker;
    if (!d) throw missingSection('docker');
    return {
      address: d.address,
      ...(d.tlsSecretRef ? { tlsSecretRef: { namespace: d.tlsSecretRef.namespace ?? 'default', name: d.tlsSecretRef.name } } : {}),
      ...(d.registryAuthSecretRef ? { registryAuthSecretRef: { namespace: d.registryAuthSecretRef.namespace ?? 'default', name: d.registryAuthSecretRef.name } } : {}),
      ...(d.hostIP ? { hostIP: d.hostIP } : {}),
    };
  },
  async connect(settings, secrets) {
    let tls;
    if (settings.tlsSecretRef) {
      const data = await secrets(settings.tlsSecretRef.namespace, settings.tlsSecretRef.name);
      const missing = ['ca.pem', 'cert.pem', 'key.pem'].filter((k) => !data[k]);
      if (missing.length > 0) {
        throw new ReconcileError('TLSError', `Secret "${settings.tlsSecretRef.name}" lacks ${missing.join(', ')}`, false);
      }
      tls = { ca: data['ca.pem']!, cert: data['cert.pem']!, key: data['key.pem']! };
    }
    let registryAuth;
    if (settings.registryAuthSecretRef) {
      const ref = settings.registryAuthSecretRef;
      const data = await secrets(ref.namespace, ref.name);
      const json = data['.dockerconfigjson'];
      if (!json) throw new ReconcileError('InvalidRegistryAuth', `Secret "${ref.name}" has no .dockerconfigjson (make it with kubectl create secret docker-registry)`, false);
      registryAuth = parseDockerConfig(json, `Secret "${ref.name}"`);
    }
    return connectDocker({
      address: settings.address,
      ...(tls ? { tls } : {}),
      ...(settings.hostIP ? { defaultHostIP: settings.hostIP } : {}),
      ...(registryAuth ? { registryAuth } : {}),
    });
  },
  capabilities: {
    machines: true,
    networkAttachment: containerAttachment,
    elasticIPs: nftablesElasticIPs,
    guestChannel: { open: (conn, guest) => new DockerExecChannel(guest.name, conn, guest.uid) },
    metrics: true,
    cpuUsage: { cpuSeconds: (conn, uid, signal) => conn.cpuSeconds(uid, signal) },
  },
};
