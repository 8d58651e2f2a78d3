/**
 * API discovery documents, legacy (one request per group-version) and aggregated
 * (`apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`: kubectl needs `/api` + `/apis` only).
 */
import { createHash } from 'node:crypto';
import { groupVersion, isAlias, type Resource, type ResourceCatalog } from './resources.js';

const verbs = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];
const statusVerbs = ['get', 'patch', 'update'];
const scaleKind = { group: 'autoscaling', version: 'v1', kind: 'Scale' };

function storageVersionHash(r: Resource, version: string): string {
  return createHash('sha256').update(`${r.group}/${version}/${r.kind}`).digest('base64').slice(0, 11);
}

export function apiVersions(serverAddress: string): object {
  return {
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }],
  };
}

function apiGroup(name: string, versions: string[]): object {
  const vs = versions.map((v) => ({ groupVersion: `${name}/${v}`, version: v }));
  return { name, versions: vs, preferredVersion: vs[0] };
}

export function apiGroupList(catalog: ResourceCatalog): object {
  const groups = [...catalog.groups()].map(([name, vs]) => apiGroup(name, vs));
  return { kind: 'APIGroupList', apiVersion: 'v1', groups };
}

export function apiGroupDoc(catalog: ResourceCatalog, group: string): object | undefined {
  const vs = catalog.groups().get(group);
  if (!vs) return undefined;
  return { kind: 'APIGroup', apiVersion: 'v1', ...apiGroup(group, vs) };
}

export function apiResourceList(catalog: ResourceCatalog, group: string, version: string): object | undefined {
  const entries = catalog.inGroupVersion(group, version);
  if (entries.length === 0) return undefined;
  const resources: object[] = [];
  for (const { resource: r } of entries) {
    resources.push({
      name: r.plural,
      singularName: r.singular,
      namespaced: r.namespaced,
      kind: r.kind,
      verbs,
      ...(r.shortNames.length ? { shortNames: r.shortNames } : {}),
      ...(r.categories.length ? { categories: r.categories } : {}),
      storageVersionHash: storageVersionHash(r, version),
    });
    if (r.statusSubresource) {
      resources.push({ name: `${r.plural}/status`, singularName: '', namespaced: r.namespaced, kind: r.kind, verbs: statusVerbs });
    }
    if (r.scale) {
      resources.push({ name: `${r.plural}/scale`, singularName: '', namespaced: r.namespaced, group: scaleKind.group, version: scaleKind.version, kind: scaleKind.kind, verbs: statusVerbs });
    }
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: groupVersion(group, version), resources };
}

function discoveryResource(r: Resource, version: string): object {
  const responseKind = { group: r.group, version, kind: r.kind };
  return {
    resource: r.plural,
    responseKind,
    scope: r.namespaced ? 'Namespaced' : 'Cluster',
    singularResource: r.singular,
    verbs,
    ...(r.shortNames.length ? { shortNames: r.shortNames } : {}),
    ...(r.categories.length ? { categories: r.categories } : {}),
    ...(r.statusSubresource || r.scale
      ? {
          subresources: [
            ...(r.statusSubresource ? [{ subresource: 'status', responseKind, verbs: statusVerbs }] : []),
            ...(r.scale ? [{ subresource: 'scale', responseKind: scaleKind, verbs: statusVerbs }] : []),
          ],
        }
      : {}),
  };
}

/** The aggregated document for `/api` (core) or `/apis` (every named group). */
export function aggregatedDiscovery(catalog: ResourceCatalog, core: boolean, apiVersion: string): object {
  const items: object[] = [];
  if (core) {
    const resources = catalog.inGroupVersion('', 'v1').map(({ resource }) => discoveryResource(resource, 'v1'));
    items.push({ metadata: { creationTimestamp: null }, versions: [{ version: 'v1', resources, freshness: 'Current' }] });
  } else {
    for (const [group, vs] of catalog.groups()) {
      const versions = vs.map((v) => ({
        version: v,
        resources: catalog
          .inGroupVersion(group, v)
          .filter(({ resource }) => resource.group === group)
          .map(({ resource }) => discoveryResource(resource, v)),
        freshness: 'Current',
      }));
      items.push({ metadata: { name: group, creationTimestamp: null }, versions });
    }
  }
  return { kind: 'APIGroupDiscoveryList', apiVersion, metadata: {}, items };
}

/** Resources kubectl can address, for tests and diagnostics. */
export function servedResourceNames(catalog: ResourceCatalog): string[] {
  return catalog
    .all()
    .filter((r) => !isAlias(r))
    .map((r) => (r.group ? `${r.plural}.${r.group}` : r.plural));
}
