/**
 * The REST coordinates of every kind the controllers read or write — the stratus kinds
 * generated from crds/*.yaml (`CrdResources`), the core ones from the runtime — and the
 * cache indexes they share. One table, so a controller never spells a group or plural itself.
 */
import type { ResourceRef } from '../runtime/client.js';
import { CoreResources } from '../runtime/client.js';
import { CrdResources } from '../crds/types.js';

export const Resources = {
  ...CrdResources,
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
  /** ElasticIPs by `namespace/instance` for `spec.instanceRef` and `status.boundTo`. */
  elasticIPsByInstance: 'elasticIPInstance',
} as const;
