/**
 * Namespaces the legacy commands write into are created on first use, and the identities
 * that act there (a token's user, a Brume user, `system:anonymous` under
 * `--legacy-anonymous`) get their rights there as RBAC RoleBindings, made with the
 * privileged client of whoever provisions them (the admin's CLI, the server's login
 * endpoint, the legacy proxy).
 */
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

/** An RBAC subject for a user name, as kube writes it (`system:serviceaccount:NS:NAME` is a ServiceAccount). */
export function rbacSubject(username: string): Record<string, string> {
  const sa = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(username);
  if (sa) return { kind: 'ServiceAccount', name: sa[2] ?? '', namespace: sa[1] ?? '' };
  return { kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: username };
}

const rbacResource = (plural: string, namespaced: boolean): { group: string; version: string; plural: string; namespaced: boolean } => ({
  group: 'rbac.authorization.k8s.io',
  version: 'v1',
  plural,
  namespaced,
});

/** A binding name that is a valid path segment whatever the user name holds. */
function bindingName(prefix: string, username: string): string {
  return `${prefix}:${username.replace(/[/%]/g, '_')}`.slice(0, 253);
}

interface Binding extends KubeObject {
  roleRef: Record<string, string>;
  subjects: Record<string, string>[];
}

async function ensureObject(client: KubeClient, namespaced: boolean, plural: string, obj: Binding): Promise<void> {
  const objects = client.resource<Binding>(rbacResource(plural, namespaced));
  const ns = namespaced ? obj.metadata?.namespace : undefined;
  if (await objects.get(ns, obj.metadata?.name ?? '')) return;
  try {
    await objects.create(obj);
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
  }
}

/**
 * Grants `username` the ClusterRole `role` in `namespace` (a RoleBinding named
 * `ROLE:USERNAME`), creating the namespace if needed. Idempotent.
 */
export async function ensureNamespaceRole(client: KubeClient, namespace: string, username: string, role: string): Promise<void> {
  await ensureNamespace(client, namespace);
  await ensureObject(client, true, 'rolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: bindingName(role, username), namespace, labels: { 'stratus.dev/granted-by': 'stratus' } },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
    subjects: [rbacSubject(username)],
  });
}

/** Grants `username` the ClusterRole `role` cluster-wide (a ClusterRoleBinding named `ROLE:USERNAME`). Idempotent. */
export async function ensureClusterRole(client: KubeClient, username: string, role: string): Promise<void> {
  await ensureObject(client, false, 'clusterrolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: bindingName(role, username), labels: { 'stratus.dev/granted-by': 'stratus' } },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
    subjects: [rbacSubject(username)],
  });
}
