/**
 * The roles and bindings every stratus server starts with (created when missing, never
 * overwritten, so an operator's edits stay): kube's `cluster-admin` (bound to
 * `system:masters`), the aggregated user-facing `admin`, `edit` and `view`, the
 * `system:discovery`, `system:basic-user` and `system:public-info-viewer` roles that let any
 * authenticated user run discovery, `kubectl auth whoami` and `kubectl auth can-i`, and
 * `stratus:tenant`, what a Brume or Cloud Brain user may do in its own namespace (bind it
 * with a RoleBinding there).
 *
 * The stratus kinds reach `admin`/`edit`/`view` through the `stratus:aggregate-to-*`
 * ClusterRoles and kube's aggregation labels. AccessTokens are deliberately in none of
 * them: a token acts as any `spec.user`, so creating one is cluster-admin's business.
 */
import { ApiError } from '../errors.js';
import type { Registry, Target } from '../registry.js';
import { storageVersion, type KubeObject, type ResourceCatalog } from '../resources.js';
import { RBAC_GROUP, type PolicyRule } from './rbac-rules.js';

const read = ['get', 'list', 'watch'];
const write = ['create', 'update', 'patch', 'delete', 'deletecollection'];
const aggregateLabel = (to: string): Record<string, string> => ({ [`rbac.authorization.k8s.io/aggregate-to-${to}`]: 'true' });
const defaults = { 'kubernetes.io/bootstrapping': 'rbac-defaults' };
const autoupdate = { 'rbac.authorization.kubernetes.io/autoupdate': 'true' };

/** What the object store asks RBAC about a bucket's objects (subresource `buckets/objects`). */
const bucketObjectVerbs = ['get', 'list', 'create', 'delete'];

const tenantKinds: PolicyRule[] = [
  { apiGroups: ['compute.stratus.dev'], resources: ['instances', 'sshkeys', 'elasticips', 'instancegroups', 'instancegroups/scale'], verbs: [...read, ...write] },
  { apiGroups: ['apps.stratus.dev'], resources: ['projects', 'deployments'], verbs: [...read, ...write] },
  { apiGroups: ['storage.stratus.dev'], resources: ['buckets'], verbs: [...read, ...write] },
  // S3 object access (objectstore/ asks with a SelfSubjectAccessReview as the caller)
  { apiGroups: ['storage.stratus.dev'], resources: ['buckets/objects'], verbs: bucketObjectVerbs },
];

function clusterRole(name: string, rules: PolicyRule[], labels: Record<string, string> = {}, aggregateFrom?: string): KubeObject {
  return {
    apiVersion: `${RBAC_GROUP}/v1`,
    kind: 'ClusterRole',
    metadata: { name, labels: { ...defaults, ...labels }, annotations: autoupdate },
    ...(aggregateFrom ? { aggregationRule: { clusterRoleSelectors: [{ matchLabels: aggregateLabel(aggregateFrom) }] } } : {}),
    rules,
  };
}

function clusterRoleBinding(name: string, role: string, groups: string[]): KubeObject {
  return {
    apiVersion: `${RBAC_GROUP}/v1`,
    kind: 'ClusterRoleBinding',
    metadata: { name, labels: defaults, annotations: autoupdate },
    roleRef: { apiGroup: RBAC_GROUP, kind: 'ClusterRole', name: role },
    subjects: groups.map((g) => ({ apiGroup: RBAC_GROUP, kind: 'Group', name: g })),
  };
}

export function bootstrapClusterRoles(): KubeObject[] {
  return [
    clusterRole('cluster-admin', [
      { apiGroups: ['*'], resources: ['*'], verbs: ['*'] },
      { nonResourceURLs: ['*'], verbs: ['*'] },
    ]),
    clusterRole('admin', [], {}, 'admin'),
    clusterRole('edit', [], aggregateLabel('admin'), 'edit'),
    clusterRole('view', [], aggregateLabel('edit'), 'view'),
    clusterRole('system:discovery', [
      { nonResourceURLs: ['/api', '/api/*', '/apis', '/apis/*', '/healthz', '/livez', '/openapi', '/openapi/*', '/readyz', '/version', '/version/'], verbs: ['get'] },
    ]),
    clusterRole('system:basic-user', [
      { apiGroups: ['authorization.k8s.io'], resources: ['selfsubjectaccessreviews', 'selfsubjectrulesreviews'], verbs: ['create'] },
      { apiGroups: ['authentication.k8s.io'], resources: ['selfsubjectreviews'], verbs: ['create'] },
    ]),
    clusterRole('system:public-info-viewer', [{ nonResourceURLs: ['/healthz', '/livez', '/readyz', '/version', '/version/'], verbs: ['get'] }]),
    clusterRole('stratus:aggregate-to-view', [
      { apiGroups: ['compute.stratus.dev'], resources: ['computenodes', 'instances', 'networks', 'sshkeys', 'elasticips', 'addresspools', 'instancegroups', 'instances/status', 'networks/status', 'elasticips/status', 'addresspools/status', 'instancegroups/status', 'instancegroups/scale'], verbs: read },
      { apiGroups: ['apps.stratus.dev'], resources: ['projects', 'deployments', 'projects/status', 'deployments/status'], verbs: read },
      { apiGroups: ['storage.stratus.dev'], resources: ['buckets', 'buckets/status'], verbs: read },
      { apiGroups: ['storage.stratus.dev'], resources: ['buckets/objects'], verbs: ['get', 'list'] },
      { apiGroups: ['iam.stratus.dev'], resources: ['quotas', 'users', 'groups'], verbs: read },
      { apiGroups: [''], resources: ['configmaps', 'events', 'namespaces'], verbs: read },
      { apiGroups: ['events.k8s.io'], resources: ['events'], verbs: read },
    ], aggregateLabel('view')),
    clusterRole('stratus:aggregate-to-edit', [
      { apiGroups: ['compute.stratus.dev'], resources: ['instances', 'networks', 'sshkeys', 'elasticips', 'instancegroups', 'instancegroups/scale'], verbs: write },
      { apiGroups: ['apps.stratus.dev'], resources: ['projects', 'deployments'], verbs: write },
      { apiGroups: ['storage.stratus.dev'], resources: ['buckets'], verbs: write },
      { apiGroups: ['storage.stratus.dev'], resources: ['buckets/objects'], verbs: ['create', 'delete'] },
      { apiGroups: [''], resources: ['configmaps', 'secrets'], verbs: write },
      { apiGroups: [''], resources: ['secrets'], verbs: read },
    ], aggregateLabel('edit')),
    clusterRole('stratus:aggregate-to-admin', [
      { apiGroups: [RBAC_GROUP], resources: ['roles', 'rolebindings'], verbs: [...read, ...write] },
      { apiGroups: ['iam.stratus.dev'], resources: ['quotas'], verbs: write },
    ], aggregateLabel('admin')),
    clusterRole('stratus:tenant', [
      ...tenantKinds,
      { apiGroups: ['compute.stratus.dev'], resources: ['instances/status', 'elasticips/status', 'sshkeys/status', 'networks'], verbs: read },
      { apiGroups: ['apps.stratus.dev'], resources: ['projects/status', 'deployments/status'], verbs: read },
      { apiGroups: ['storage.stratus.dev'], resources: ['buckets/status'], verbs: read },
      { apiGroups: ['iam.stratus.dev'], resources: ['quotas'], verbs: read },
      { apiGroups: [''], resources: ['events'], verbs: read },
    ]),
    // What a caller of the legacy APIs may do in its own namespace, as those APIs promised
    // (the legacy proxy binds it there for each caller): the tenant's kinds, plus DataCentred's
    // host networks and clementine's engine TLS Secret and saved image configs.
    clusterRole('stratus:legacy-caller', [
      ...tenantKinds,
      { apiGroups: ['compute.stratus.dev'], resources: ['networks'], verbs: [...read, ...write] },
      { apiGroups: [''], resources: ['configmaps', 'secrets'], verbs: [...read, ...write] },
      { apiGroups: ['compute.stratus.dev'], resources: ['instances/status', 'elasticips/status', 'sshkeys/status', 'networks/status', 'instancegroups/status'], verbs: read },
      { apiGroups: ['iam.stratus.dev'], resources: ['quotas'], verbs: read },
      { apiGroups: [''], resources: ['events'], verbs: read },
    ]),
    // clementine registers Docker engines and DataCentred reads its hosts: ComputeNodes are
    // cluster-scoped, so this one is a ClusterRoleBinding per caller of those two APIs.
    clusterRole('stratus:legacy-engines', [{ apiGroups: ['compute.stratus.dev'], resources: ['computenodes', 'computenodes/status'], verbs: [...read, ...write] }]),
  ];
}

export function bootstrapClusterRoleBindings(): KubeObject[] {
  return [
    clusterRoleBinding('cluster-admin', 'cluster-admin', ['system:masters']),
    clusterRoleBinding('system:discovery', 'system:discovery', ['system:authenticated']),
    clusterRoleBinding('system:basic-user', 'system:basic-user', ['system:authenticated']),
    clusterRoleBinding('system:public-info-viewer', 'system:public-info-viewer', ['system:authenticated', 'system:unauthenticated']),
  ];
}

/** Creates the bootstrap objects that do not exist yet. */
export async function bootstrapRbac(registry: Registry, catalog: ResourceCatalog): Promise<void> {
  const target = (plural: string): Target => {
    const r = catalog.all().find((x) => x.group === RBAC_GROUP && x.plural === plural);
    if (!r) throw new Error(`${plural}.${RBAC_GROUP} is not served`);
    return { resource: r, version: storageVersion(r) };
  };
  const put = async (t: Target, objects: KubeObject[]): Promise<void> => {
    for (const o of objects) {
      try {
        await registry.create(t, o, { fieldManager: 'stratus' });
      } catch (err) {
        if (!(err instanceof ApiError && err.reason === 'AlreadyExists')) throw err;
      }
    }
  };
  await put(target('clusterroles'), bootstrapClusterRoles());
  await put(target('clusterrolebindings'), bootstrapClusterRoleBindings());
}
