/**
 * The Google Compute Engine provider's descriptor: VMs in one zone of one project
 * (`ComputeNode.spec.gce`), with a service-account key from a Secret (or Application Default
 * Credentials); `endpoint` only says where the API lives.
 */
import type { ComputeNodeSpec } from '../../crds/types.js';
import { ReconcileError } from '../../runtime/errors.js';
import { missingSection, type ProviderDescriptor } from '../registry.js';
import { gceElasticIPs } from './addresses.js';
import { connectGce, type GceNodeConnection } from './index.js';

export interface GceNodeSettings {
  project: string;
  zone: string;
  endpoint?: string;
  credentialsSecretRef?: { namespace: string; name: string };
  imageProject?: string;
  network?: string;
}

export const gceProvider: ProviderDescriptor<GceNodeSettings, GceNodeConnection> = {
  name: 'gce',
  description: 'VMs on Google Compute Engine (one zone of one project)',
  nodeSettings(spec: ComputeNodeSpec): GceNodeSettings {
    const g = spec.gce;
    if (!g) throw missingSection('gce');
    return {
      project: g.project,
      zone: g.zone,
      ...(g.endpoint ? { endpoint: g.endpoint } : {}),
      ...(g.credentialsSecretRef ? { credentialsSecretRef: { namespace: g.credentialsSecretRef.namespace ?? 'default', name: g.credentialsSecretRef.name } } : {}),
      ...(g.imageProject ? { imageProject: g.imageProject } : {}),
      ...(g.network ? { network: g.network } : {}),
    };
  },
  async connect(settings, secrets) {
    let credentialsJson: string | undefined;
    if (settings.credentialsSecretRef) {
      const ref = settings.credentialsSecretRef;
      const data = await secrets(ref.namespace, ref.name);
      credentialsJson = data['key.json'] ?? data['credentials.json'];
      if (!credentialsJson) throw new ReconcileError('InvalidCredentials', `Secret "${ref.name}" has no key.json (a service-account key)`, false);
    }
    return connectGce({
      project: settings.project,
      zone: settings.zone,
      ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
      ...(credentialsJson ? { credentialsJson } : {}),
      ...(settings.imageProject ? { imageProject: settings.imageProject } : {}),
      ...(settings.network ? { network: settings.network } : {}),
    });
  },
  capabilities: {
    machines: true,
    elasticIPs: gceElasticIPs,
    // disks.resize, tracked like the VM's own operations (disks.ts).
    diskResize: { sizes: (conn, spec, signal) => conn.disks.sizes(spec, signal), grow: (conn, spec, name, bytes, signal) => conn.disks.grow(spec, name, bytes, signal) },
    metrics: true,
    // Cloud Monitoring's compute.googleapis.com/instance/cpu/usage_time, summed (index.ts).
    cpuUsage: { cpuSeconds: (conn, uid, signal) => conn.cpuSeconds(uid, signal) },
  },
};
