/**
 * The REST coordinates of every kind the controllers read or write, and the cache indexes
 * they share. One table, so a controller never spells a group or plural itself.
 */
import type { ResourceRef } from '../runtime/client.js';
import { CoreResources } from '../runtime/client.js';

const compute = { group: 'compute.stratus.dev', version: 'v1alpha1' } as const;
const apps = { group: 'apps.stratus.dev', version: 'v1alpha1' } as const;
const iam = { group: 'iam.stratus.dev', version: 'v1alpha1' } as const;

export const Resources = {
  computeNodes: { ...compute, plural: 'computenodes', namespaced: false, kind: 'ComputeNode' },
  instances: { ...compute, plural: 'instances', namespaced: true, kind: 'Instance' },
  networks: { ...compute, plural: 'networks', namespaced: true, kind: 'Network' },
  sshKeys: { ...compute, plural: 'sshkeys', namespaced: true, kind: 'SSHKey' },
  elasticIPs: { ...compute, plural: 'elasticips', namespaced: true, kind: 'ElasticIP' },
  projects: { ...apps, plural: 'projects', namespaced: true, kind: 'Project' },
  deployments: { ...apps, plural: 'deployments', namespaced: true, kind: 'Deployment' },
  accessTokens: { ...iam, plural: 'accesstokens', namespaced: true, kind: 'AccessToken' },
  users: { ...iam, plural: 'users', namespaced: true, kind: 'User' },
  groups: { ...iam, plural: 'groups', namespaced: true, kind: 'Group' },
  quotas: { ...iam, plural: 'quotas', namespaced: true, kind: 'Quota' },
  ...CoreResources,
} as const satisfies Record<string, ResourceRef>;

/** Informer index names shared by controllers. */
export const Indexes = {
  /** Instances by `spec.nodeName`. */
  instancesByNode: 'nodeName',
  /** Instances by `namespace/network` for each entry of `spec.networks`. */
  instancesByNetwork: 'network',
  /** Instances by `namespace/sshkey` for each entry of `spec.sshKeys`. */
  instancesBySSHKey: 'sshKey',
} as const;
