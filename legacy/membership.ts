/**
 * `groupsOf`'s source of Groups for code outside the API server (the legacy proxy, the CLI):
 * the Group objects read through a Kubernetes client. A cluster without the Group kind has
 * no Groups.
 */
import type { Group } from '../crds/types.js';
import { isNotFound, type KubeClient } from '../runtime/client.js';
import { Resources } from '../controllers/resources.js';
import type { GroupSource } from '../apiserver/auth/membership.js';

export function clientGroupSource(client: KubeClient): GroupSource {
  const groups = client.resource<Group>(Resources.groups);
  return async () =>
    groups.list().catch((err: unknown) => {
      if (isNotFound(err)) return [];
      throw err;
    });
}
