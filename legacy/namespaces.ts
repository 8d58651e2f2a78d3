/** Namespaces the legacy commands write into are created on first use. */
import { CoreResources, isAlreadyExists, type KubeClient, type KubeObject } from '../runtime/client.js';

export async function ensureNamespace(client: KubeClient, namespace: string): Promise<void> {
  const namespaces = client.resource<KubeObject>(CoreResources.namespaces);
  if (await namespaces.get(undefined, namespace)) return;
  try {
    await namespaces.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
  }
}
