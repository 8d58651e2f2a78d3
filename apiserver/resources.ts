/**
 * What the server serves: one `Resource` per group/plural, built in (namespaces, secrets, ...)
 * or derived from a CustomResourceDefinition. The catalog is the single place discovery,
 * OpenAPI and routing read from; it changes at run time as CRDs are created, updated and
 * deleted, and tells its listeners.
 */
import type { ObjectMeta as CrdObjectMeta } from '../crds/types.js';
import type { CustomResourceDefinition, JSONSchemaProps, PrinterColumn, ScaleSubresource } from './schema/types.js';
import { compileSchema } from './schema/validate.js';
import { listTypesFromSchema, type ListTypeResolver } from './apply/index.js';

export type KubeObject = Record<string, unknown> & {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
};

export type { OwnerReference } from '../crds/types.js';

/** Object metadata as the server stores it: the generated shape, plus whatever clients send. */
export type ObjectMeta = CrdObjectMeta & { [k: string]: unknown };

type Compiled = ReturnType<typeof compileSchema>;

/** Converts between the stored form and a served version (events.k8s.io/v1 over core/v1 Events). */
export interface VersionConversion {
  fromStorage(obj: KubeObject): KubeObject;
  toStorage(obj: KubeObject): KubeObject;
}

export interface ResourceVersion {
  name: string;
  /** The OpenAPI schema of the whole object (CRDs), for validation and /openapi. */
  schema?: JSONSchemaProps;
  compiled?: Compiled;
  /** List semantics (atomic/set/map and keys) for server-side apply, from the schema. */
  listTypes?: ListTypeResolver;
  columns: PrinterColumn[];
  /** Extra field-selector fields beyond metadata.name / metadata.namespace, with JSON paths. */
  selectableFields: Record<string, string>;
  conversion?: VersionConversion;
}

export interface Resource {
  group: string;
  /** Served versions, the preferred (storage) one first. */
  versions: ResourceVersion[];
  kind: string;
  listKind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  categories: string[];
  namespaced: boolean;
  /** A `status` subresource exists: main writes ignore status, /status writes ignore the rest. */
  statusSubresource: boolean;
  /** The CRD's `scale` subresource: where `/scale` reads and writes replicas (autoscaling/v1 Scale). */
  scale?: ScaleSubresource;
  /** Built-in kinds accept strategic merge patch (treated as a merge patch); custom ones answer 415. */
  builtin: boolean;
  /** Where the objects live: `/registry/<group|core>/<plural>/`. */
  keyPrefix: string;
  /** The CRD that defines it (for custom resources). */
  crd?: CustomResourceDefinition;
  /** The spec-like parts whose change bumps metadata.generation; undefined: all but metadata/status. */
  generationIgnores?: string[];
}

export function groupVersion(group: string, version: string): string {
  return group ? `${group}/${version}` : version;
}

export function resourceKey(r: Resource, namespace: string | undefined, name: string): string {
  return r.namespaced ? `${r.keyPrefix}${namespace}/${name}` : `${r.keyPrefix}${name}`;
}

export function resourceListPrefix(r: Resource, namespace: string | undefined): string {
  return r.namespaced && namespace ? `${r.keyPrefix}${namespace}/` : r.keyPrefix;
}

export function findVersion(r: Resource, version: string): ResourceVersion | undefined {
  return r.versions.find((v) => v.name === version);
}

export function storageVersion(r: Resource): ResourceVersion {
  const v = r.versions[0];
  if (!v) throw new Error(`resource ${r.plural} has no served version`);
  return v;
}

function keyPrefixFor(group: string, plural: string): string {
  return `/registry/${group || 'core'}/${plural}/`;
}

const ageColumn: PrinterColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };

/** A CRD's resource, or undefined when it serves no version. */
export function resourceFromCrd(crd: CustomResourceDefinition): Resource | undefined {
  const spec = crd.spec;
  const served = spec.versions.filter((v) => v.served);
  if (served.length === 0) return undefined;
  served.sort((a, b) => Number(b.storage) - Number(a.storage));
  const versions: ResourceVersion[] = served.map((v) => {
    const schema = v.schema?.openAPIV3Schema;
    // No columns: the table module serves kube's default (Age).
    const columns = v.additionalPrinterColumns ? [...v.additionalPrinterColumns] : [];
    const selectableFields: Record<string, string> = {};
    const sf = (v as { selectableFields?: { jsonPath: string }[] }).selectableFields ?? [];
    for (const f of sf) selectableFields[f.jsonPath.replace(/^\./, '')] = f.jsonPath;
    const rv: ResourceVersion = { name: v.name, columns, selectableFields };
    if (schema) {
      rv.schema = schema;
      rv.compiled = compileSchema(schema);
      rv.listTypes = listTypesFromSchema(schema);
    }
    return rv;
  });
  const statusSubresource = served.some((v) => v.subresources?.status !== undefined);
  const scale = served.find((v) => v.subresources?.scale)?.subresources?.scale;
  return {
    group: spec.group,
    versions,
    kind: spec.names.kind,
    listKind: spec.names.listKind ?? `${spec.names.kind}List`,
    plural: spec.names.plural,
    singular: spec.names.singular ?? spec.names.kind.toLowerCase(),
    shortNames: spec.names.shortNames ?? [],
    categories: spec.names.categories ?? [],
    namespaced: spec.scope === 'Namespaced',
    statusSubresource,
    ...(scale ? { scale } : {}),
    builtin: false,
    keyPrefix: keyPrefixFor(spec.group, spec.names.plural),
    crd,
  };
}

function builtin(
  group: string,
  version: string,
  kind: string,
  plural: string,
  namespaced: boolean,
  extra: Partial<Resource> & { columns?: PrinterColumn[]; selectableFields?: Record<string, string> } = {},
): Resource {
  const { columns, selectableFields, ...rest } = extra;
  return {
    group,
    versions: [{ name: version, columns: columns ?? [ageColumn], selectableFields: selectableFields ?? {} }],
    kind,
    listKind: `${kind}List`,
    plural,
    singular: kind.toLowerCase(),
    shortNames: [],
    categories: [],
    namespaced,
    statusSubresource: false,
    builtin: true,
    keyPrefix: keyPrefixFor(group, plural),
    ...rest,
  };
}

/** Core events and events.k8s.io/v1 events are the same objects in two shapes. */
const eventsV1Conversion: VersionConversion = {
  fromStorage(obj) {
    const o = { ...obj } as Record<string, unknown>;
    const out: Record<string, unknown> = { apiVersion: 'events.k8s.io/v1', kind: 'Event', metadata: o.metadata };
    const map: [string, string][] = [
      ['involvedObject', 'regarding'],
      ['related', 'related'],
      ['message', 'note'],
      ['reason', 'reason'],
      ['type', 'type'],
      ['action', 'action'],
      ['eventTime', 'eventTime'],
      ['series', 'series'],
      ['reportingComponent', 'reportingController'],
      ['reportingInstance', 'reportingInstance'],
      ['source', 'deprecatedSource'],
      ['firstTimestamp', 'deprecatedFirstTimestamp'],
      ['lastTimestamp', 'deprecatedLastTimestamp'],
      ['count', 'deprecatedCount'],
    ];
    for (const [from, to] of map) if (o[from] !== undefined && o[from] !== null && o[from] !== '') out[to] = o[from];
    return out as KubeObject;
  },
  toStorage(obj) {
    const o = obj as Record<string, unknown>;
    const out: Record<string, unknown> = { apiVersion: 'v1', kind: 'Event', metadata: o.metadata };
    const map: [string, string][] = [
      ['regarding', 'involvedObject'],
      ['related', 'related'],
      ['note', 'message'],
      ['reason', 'reason'],
      ['type', 'type'],
      ['action', 'action'],
      ['eventTime', 'eventTime'],
      ['series', 'series'],
      ['reportingController', 'reportingComponent'],
      ['reportingInstance', 'reportingInstance'],
      ['deprecatedSource', 'source'],
      ['deprecatedFirstTimestamp', 'firstTimestamp'],
      ['deprecatedLastTimestamp', 'lastTimestamp'],
      ['deprecatedCount', 'count'],
    ];
    for (const [from, to] of map) if (o[from] !== undefined) out[to] = o[from];
    if (out.involvedObject === undefined) out.involvedObject = {};
    return out as KubeObject;
  },
};

const eventFields: Record<string, string> = {
  'involvedObject.kind': '.involvedObject.kind',
  'involvedObject.namespace': '.involvedObject.namespace',
  'involvedObject.name': '.involvedObject.name',
  'involvedObject.uid': '.involvedObject.uid',
  'involvedObject.apiVersion': '.involvedObject.apiVersion',
  'involvedObject.resourceVersion': '.involvedObject.resourceVersion',
  'involvedObject.fieldPath': '.involvedObject.fieldPath',
  reason: '.reason',
  reportingComponent: '.reportingComponent',
  source: '.source.component',
  type: '.type',
};

/** The core kinds controllers rely on, always served. */
export function builtinResources(): Resource[] {
  const coreEvents = builtin('', 'v1', 'Event', 'events', true, {
    shortNames: ['ev'],
    columns: [
      { name: 'Last Seen', type: 'string', jsonPath: '.lastTimestamp' },
      { name: 'Type', type: 'string', jsonPath: '.type' },
      { name: 'Reason', type: 'string', jsonPath: '.reason' },
      { name: 'Object', type: 'string', jsonPath: '.involvedObject.name' },
      { name: 'Message', type: 'string', jsonPath: '.message' },
    ],
    selectableFields: eventFields,
  });
  const eventsV1 = builtin('events.k8s.io', 'v1', 'Event', 'events', true, {
    shortNames: ['ev'],
    keyPrefix: coreEvents.keyPrefix,
    columns: [
      { name: 'Type', type: 'string', jsonPath: '.type' },
      { name: 'Reason', type: 'string', jsonPath: '.reason' },
      { name: 'Object', type: 'string', jsonPath: '.regarding.name' },
      { name: 'Note', type: 'string', jsonPath: '.note' },
      ageColumn,
    ],
  });
  const v0 = eventsV1.versions[0];
  if (v0) {
    v0.conversion = eventsV1Conversion;
    v0.selectableFields = eventFields;
  }
  return [
    builtin('', 'v1', 'Namespace', 'namespaces', false, {
      shortNames: ['ns'],
      statusSubresource: true,
      columns: [{ name: 'Status', type: 'string', jsonPath: '.status.phase' }, ageColumn],
      selectableFields: { 'status.phase': '.status.phase' },
    }),
    builtin('', 'v1', 'Secret', 'secrets', true, {
      columns: [{ name: 'Type', type: 'string', jsonPath: '.type' }, ageColumn],
      selectableFields: { type: '.type' },
    }),
    builtin('', 'v1', 'ConfigMap', 'configmaps', true, { shortNames: ['cm'] }),
    coreEvents,
    eventsV1,
    builtin('coordination.k8s.io', 'v1', 'Lease', 'leases', true, {
      columns: [{ name: 'Holder', type: 'string', jsonPath: '.spec.holderIdentity' }, ageColumn],
    }),
    // Kubernetes RBAC, served and enforced (apiserver/auth/).
    builtin('rbac.authorization.k8s.io', 'v1', 'Role', 'roles', true, {
      columns: [{ name: 'Created At', type: 'string', format: 'date-time', jsonPath: '.metadata.creationTimestamp' }],
    }),
    builtin('rbac.authorization.k8s.io', 'v1', 'ClusterRole', 'clusterroles', false, {
      columns: [{ name: 'Created At', type: 'string', format: 'date-time', jsonPath: '.metadata.creationTimestamp' }],
    }),
    builtin('rbac.authorization.k8s.io', 'v1', 'RoleBinding', 'rolebindings', true, {
      columns: [{ name: 'Role', type: 'string', jsonPath: '.roleRef.name' }, ageColumn],
    }),
    builtin('rbac.authorization.k8s.io', 'v1', 'ClusterRoleBinding', 'clusterrolebindings', false, {
      columns: [{ name: 'Role', type: 'string', jsonPath: '.roleRef.name' }, ageColumn],
    }),
    builtin('apiextensions.k8s.io', 'v1', 'CustomResourceDefinition', 'customresourcedefinitions', false, {
      shortNames: ['crd', 'crds'],
      categories: ['api-extensions'],
      statusSubresource: true,
      columns: [{ name: 'Created At', type: 'string', format: 'date-time', jsonPath: '.metadata.creationTimestamp' }],
    }),
  ];
}

export type CatalogListener = () => void;

/** The live set of served resources. */
export class ResourceCatalog {
  private readonly builtins: Resource[];
  private custom = new Map<string, Resource>(); // by CRD name
  private listeners: CatalogListener[] = [];
  private generationCounter = 0;

  constructor() {
    this.builtins = builtinResources();
  }

  /** Bumps on every change; discovery and OpenAPI use it as an ETag. */
  get generation(): number {
    return this.generationCounter;
  }

  onChange(l: CatalogListener): void {
    this.listeners.push(l);
  }

  all(): Resource[] {
    return [...this.builtins, ...this.custom.values()];
  }

  /** Registers or replaces the resource a CRD defines (or drops it if it serves nothing). */
  putCrd(crd: CustomResourceDefinition): Resource | undefined {
    const name = crd.metadata?.name ?? `${crd.spec.names.plural}.${crd.spec.group}`;
    const r = resourceFromCrd(crd);
    if (r) this.custom.set(name, r);
    else this.custom.delete(name);
    this.changed();
    return r;
  }

  removeCrd(name: string): void {
    if (this.custom.delete(name)) this.changed();
  }

  /** The resource served at group/version/plural, or undefined. */
  lookup(group: string, version: string, plural: string): { resource: Resource; version: ResourceVersion } | undefined {
    for (const r of this.all()) {
      if (r.group !== group || r.plural !== plural) continue;
      const v = findVersion(r, version);
      if (v) return { resource: r, version: v };
    }
    return undefined;
  }

  /** Every group and the versions it serves, preferred first (core group excluded). */
  groups(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const r of this.all()) {
      if (r.group === '') continue;
      const vs = out.get(r.group) ?? [];
      for (const v of r.versions) if (!vs.includes(v.name)) vs.push(v.name);
      out.set(r.group, vs);
    }
    for (const [g, vs] of out) out.set(g, sortVersions(vs));
    return out;
  }

  /** Resources served in one group/version. */
  inGroupVersion(group: string, version: string): { resource: Resource; version: ResourceVersion }[] {
    const out: { resource: Resource; version: ResourceVersion }[] = [];
    for (const r of this.all()) {
      if (r.group !== group) continue;
      const v = findVersion(r, version);
      if (v) out.push({ resource: r, version: v });
    }
    return out;
  }

  /** A resource found by kind within a group (for ownerReferences and GC). */
  byKind(group: string, kind: string): Resource | undefined {
    return this.all().find((r) => r.group === group && r.kind === kind && !isAlias(r));
  }

  /** Resources with distinct storage (aliases such as events.k8s.io events skipped). */
  stored(): Resource[] {
    return this.all().filter((r) => !isAlias(r));
  }

  private changed(): void {
    this.generationCounter++;
    for (const l of this.listeners) l();
  }
}

/** events.k8s.io/v1 shares storage with core events. */
export function isAlias(r: Resource): boolean {
  return r.group === 'events.k8s.io';
}

/** Kubernetes version priority: GA > beta > alpha, higher numbers first. */
export function sortVersions(vs: string[]): string[] {
  const rank = (v: string): [number, number, number] => {
    const m = /^v(\d+)(?:(alpha|beta)(\d+))?$/.exec(v);
    if (!m) return [0, 0, 0];
    const kindRank = m[2] === undefined ? 3 : m[2] === 'beta' ? 2 : 1;
    return [kindRank, Number(m[1]), Number(m[3] ?? 0)];
  };
  return [...vs].sort((a, b) => {
    const ra = rank(a);
    const rb = rank(b);
    for (let i = 0; i < 3; i++) if ((ra[i] ?? 0) !== (rb[i] ?? 0)) return (rb[i] ?? 0) - (ra[i] ?? 0);
    return a.localeCompare(b);
  });
}
