/**
 * A GCE ComputeNode on the fake Compute API, set up as a user would: the fake's service-account
 * key in a Secret `gce-key` (key `key.json`) of `default`, a ComputeNode naming it, and a wait
 * until the node is Ready.
 */
import type { ComputeNode } from '../../crds/types.js';
import { CoreResources, type KubeClient, type KubeObject } from '../../runtime/client.js';
import { Resources } from '../../controllers/resources.js';
import type { FakeGce } from '../fakes/gce/index.js';
import { waitFor } from './process.js';

export async function registerGceNode(client: KubeClient, fake: FakeGce, opts: { name?: string; project: string; zone?: string; imageProject?: string }): Promise<void> {
  const name = opts.name ?? 'gce-a';
  await client
    .resource<KubeObject & { stringData: Record<string, string> }>(CoreResources.secrets)
    .create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'gce-key', namespace: 'default' }, stringData: { 'key.json': fake.serviceAccountKey } });
  await client.resource<ComputeNode>(Resources.computeNodes).create({
    apiVersion: 'compute.stratus.dev/v1alpha1',
    kind: 'ComputeNode',
    metadata: { name },
    spec: {
      provider: 'gce',
      gce: { project: opts.project, zone: opts.zone ?? 'us-central1-a', endpoint: fake.endpoint, ...(opts.imageProject ? { imageProject: opts.imageProject } : {}), credentialsSecretRef: { name: 'gce-key', namespace: 'default' } },
      heartbeatSeconds: 2,
    },
  });
  await waitFor(`${name} Ready`, async () => (await client.resource<ComputeNode>(Resources.computeNodes).get(undefined, name))?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'), 30_000);
}
