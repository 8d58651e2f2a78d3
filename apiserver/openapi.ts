/**
 * OpenAPI documents generated from the CRD schemas: v3 per group-version (what `kubectl
 * explain` and kubectl's field-validation probe read) and one v2 (swagger) document as JSON.
 *
 * The PATCH operations carry `x-kubernetes-group-version-kind` and a `fieldValidation` query
 * parameter: that is how kubectl decides to leave validation to the server.
 */
import { createHash } from 'node:crypto';
import type { JSONSchemaProps } from './schema/types.js';
import { groupVersion, type Resource, type ResourceCatalog, type ResourceVersion } from './resources.js';

const objectMetaName = 'io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta';
const objectMetaSchema = {
  description: 'ObjectMeta is metadata that all persisted resources must have, which includes all objects users must create.',
  type: 'object',
  properties: {
    name: { type: 'string', description: 'Name must be unique within a namespace.' },
    generateName: { type: 'string', description: 'An optional prefix used by the server to generate a unique name.' },
    namespace: { type: 'string', description: 'Namespace defines the space within which each name must be unique.' },
    uid: { type: 'string', description: 'UID is the unique in time and space value for this object.' },
    resourceVersion: { type: 'string', description: 'An opaque value that represents the internal version of this object.' },
    generation: { type: 'integer', format: 'int64', description: 'A sequence number representing a specific generation of the desired state.' },
    creationTimestamp: { type: 'string', format: 'date-time', description: 'When this object was created.' },
    deletionTimestamp: { type: 'string', format: 'date-time', description: 'When this object will be deleted.' },
    deletionGracePeriodSeconds: { type: 'integer', format: 'int64' },
    labels: { type: 'object', additionalProperties: { type: 'string', default: '' }, description: 'Map of string keys and values for selecting objects.' },
    annotations: { type: 'object', additionalProperties: { type: 'string', default: '' }, description: 'Unstructured key value map.' },
    finalizers: { type: 'array', items: { type: 'string', default: '' }, 'x-kubernetes-list-type': 'set', description: 'Must be empty before the object is deleted from the registry.' },
    ownerReferences: {
      type: 'array',
      items: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
      'x-kubernetes-list-map-keys': ['uid'],
      'x-kubernetes-list-type': 'map',
      description: 'List of objects depended by this object.',
    },
    managedFields: { type: 'array', items: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
  },
};

/** `dev.stratus.compute.v1alpha1.Instance` — Kubernetes' reversed-group naming. */
export function definitionName(r: Resource, version: string): string {
  const group = r.group ? r.group.split('.').reverse().join('.') : 'io.k8s.api.core';
  return `${group}.${version}.${r.kind}`;
}

function crdSchemaForDocs(v: ResourceVersion): Record<string, unknown> {
  const schema = structuredClone(v.schema ?? { type: 'object', 'x-kubernetes-preserve-unknown-fields': true }) as JSONSchemaProps & Record<string, unknown>;
  schema.properties = { ...(schema.properties ?? {}) };
  schema.properties.apiVersion ??= { type: 'string', description: 'APIVersion defines the versioned schema of this representation of an object.' };
  schema.properties.kind ??= { type: 'string', description: 'Kind is a string value representing the REST resource this object represents.' };
  const metaRef = { description: "Standard object's metadata.", allOf: [{ $ref: `#/components/schemas/${objectMetaName}` }] };
  (schema.properties as Record<string, unknown>).metadata = metaRef;
  return schema as Record<string, unknown>;
}

const params = {
  dryRun: { name: 'dryRun', in: 'query', description: 'When present, modifications are not persisted.', schema: { type: 'string', uniqueItems: true } },
  fieldManager: { name: 'fieldManager', in: 'query', description: 'The name of the actor making the change.', schema: { type: 'string', uniqueItems: true } },
  fieldValidation: {
    name: 'fieldValidation',
    in: 'query',
    description: 'How the server treats unknown or duplicate fields: Ignore, Warn (default) or Strict.',
    schema: { type: 'string', uniqueItems: true },
  },
  force: { name: 'force', in: 'query', description: 'Force apply requests to take conflicting fields.', schema: { type: 'boolean', uniqueItems: true } },
};

function operations(r: Resource, version: string, ref: string, item: boolean): Record<string, unknown> {
  const gvk = { group: r.group, version, kind: r.kind };
  const json = { 'application/json': { schema: { $ref: ref } } };
  const ok = { '200': { description: 'OK', content: json } };
  if (!item) {
    return {
      get: { operationId: `list${r.kind}`, 'x-kubernetes-action': 'list', 'x-kubernetes-group-version-kind': gvk, responses: { '200': { description: 'OK' } } },
      post: {
        operationId: `create${r.kind}`,
        'x-kubernetes-action': 'post',
        'x-kubernetes-group-version-kind': gvk,
        parameters: [params.dryRun, params.fieldManager, params.fieldValidation],
        requestBody: { content: json, required: true },
        responses: { ...ok, '201': { description: 'Created', content: json } },
      },
    };
  }
  return {
    get: { operationId: `read${r.kind}`, 'x-kubernetes-action': 'get', 'x-kubernetes-group-version-kind': gvk, responses: ok },
    put: {
      operationId: `replace${r.kind}`,
      'x-kubernetes-action': 'put',
      'x-kubernetes-group-version-kind': gvk,
      parameters: [params.dryRun, params.fieldManager, params.fieldValidation],
      requestBody: { content: json, required: true },
      responses: ok,
    },
    patch: {
      operationId: `patch${r.kind}`,
      'x-kubernetes-action': 'patch',
      'x-kubernetes-group-version-kind': gvk,
      parameters: [params.dryRun, params.fieldManager, params.fieldValidation, params.force],
      requestBody: {
        content: {
          'application/json-patch+json': { schema: { type: 'object' } },
          'application/merge-patch+json': { schema: { type: 'object' } },
          'application/apply-patch+yaml': { schema: { type: 'object' } },
        },
        required: true,
      },
      responses: ok,
    },
    delete: { operationId: `delete${r.kind}`, 'x-kubernetes-action': 'delete', 'x-kubernetes-group-version-kind': gvk, parameters: [params.dryRun], responses: ok },
  };
}

function pathsFor(r: Resource, version: string, ref: string, paths: Record<string, unknown>): void {
  const base = r.group ? `/apis/${r.group}/${version}` : `/api/${version}`;
  const coll = r.namespaced ? `${base}/namespaces/{namespace}/${r.plural}` : `${base}/${r.plural}`;
  const nsParam = r.namespaced ? [{ name: 'namespace', in: 'path', required: true, schema: { type: 'string', uniqueItems: true } }] : [];
  const nameParam = { name: 'name', in: 'path', required: true, schema: { type: 'string', uniqueItems: true } };
  paths[coll] = { ...operations(r, version, ref, false), parameters: nsParam };
  paths[`${coll}/{name}`] = { ...operations(r, version, ref, true), parameters: [nameParam, ...nsParam] };
  if (r.statusSubresource) paths[`${coll}/{name}/status`] = { ...operations(r, version, ref, true), parameters: [nameParam, ...nsParam] };
}

/**
 * Every served group-version. Built-in kinds get a permissive schema: enough for kubectl to
 * see that the server validates fields (so it never needs the protobuf-only v2 document), and
 * no strategic-merge media type, so kubectl computes those patches from its compiled-in types.
 */
function publishedGroupVersions(catalog: ResourceCatalog): Map<string, { resource: Resource; version: ResourceVersion }[]> {
  const out = new Map<string, { resource: Resource; version: ResourceVersion }[]>();
  for (const r of catalog.all()) {
    for (const v of r.versions) {
      const key = r.group ? `apis/${r.group}/${v.name}` : `api/${v.name}`;
      const list = out.get(key) ?? [];
      list.push({ resource: r, version: v });
      out.set(key, list);
    }
  }
  return out;
}

export function openApiV3Doc(catalog: ResourceCatalog, gvPath: string): object | undefined {
  const entries = publishedGroupVersions(catalog).get(gvPath);
  if (!entries) return undefined;
  const schemas: Record<string, unknown> = { [objectMetaName]: objectMetaSchema };
  const paths: Record<string, unknown> = {};
  for (const { resource: r, version: v } of entries) {
    const name = definitionName(r, v.name);
    schemas[name] = { ...crdSchemaForDocs(v), 'x-kubernetes-group-version-kind': [{ group: r.group, kind: r.kind, version: v.name }] };
    pathsFor(r, v.name, `#/components/schemas/${name}`, paths);
  }
  return { openapi: '3.0.0', info: { title: 'Kubernetes', version: 'v1.32.0' }, paths, components: { schemas } };
}

export function openApiV3Root(catalog: ResourceCatalog): object {
  const paths: Record<string, { serverRelativeURL: string }> = {};
  for (const gv of publishedGroupVersions(catalog).keys()) {
    const hash = createHash('sha512').update(JSON.stringify(openApiV3Doc(catalog, gv))).digest('hex').slice(0, 32).toUpperCase();
    paths[gv] = { serverRelativeURL: `/openapi/v3/${gv}?hash=${hash}` };
  }
  return { paths };
}

function toV2(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(toV2);
  if (typeof schema !== 'object' || schema === null) return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k === 'nullable' || k === 'anyOf' || k === 'oneOf' || k === 'not') continue;
    if (k === '$ref' && typeof v === 'string') out[k] = v.replace('#/components/schemas/', '#/definitions/');
    else out[k] = toV2(v);
  }
  return out;
}

export function openApiV2Doc(catalog: ResourceCatalog): object {
  const definitions: Record<string, unknown> = { [objectMetaName]: objectMetaSchema };
  const paths: Record<string, unknown> = {};
  for (const r of catalog.all()) {
    if (r.builtin) continue;
    for (const v of r.versions) {
      const name = definitionName(r, v.name);
      definitions[name] = toV2({ ...crdSchemaForDocs(v), 'x-kubernetes-group-version-kind': [{ group: r.group, kind: r.kind, version: v.name }] });
      const base = `/apis/${groupVersion(r.group, v.name)}`;
      const coll = r.namespaced ? `${base}/namespaces/{namespace}/${r.plural}` : `${base}/${r.plural}`;
      paths[`${coll}/{name}`] = {
        patch: {
          'x-kubernetes-action': 'patch',
          'x-kubernetes-group-version-kind': { group: r.group, version: v.name, kind: r.kind },
          parameters: [
            { name: 'fieldValidation', in: 'query', type: 'string', uniqueItems: true },
            { name: 'dryRun', in: 'query', type: 'string', uniqueItems: true },
            { name: 'fieldManager', in: 'query', type: 'string', uniqueItems: true },
          ],
          responses: { '200': { description: 'OK', schema: { $ref: `#/definitions/${name}` } } },
        },
      };
    }
  }
  return { swagger: '2.0', info: { title: 'Kubernetes', version: 'v1.32.0' }, paths, definitions };
}
