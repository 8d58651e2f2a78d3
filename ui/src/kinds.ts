/**
 * The kinds the console lists, with the API coordinates and the columns of their tables.
 * Columns read fields the CRDs define (crds/*.yaml); nothing here is computed server-side.
 */
import type { Condition, KubeObject } from './api.js';

export interface Column {
  title: string;
  value: (o: KubeObject) => string;
}

export interface Kind {
  kind: string;
  /** Title of the list page. */
  title: string;
  group: string;
  version: string;
  plural: string;
  namespaced: boolean;
  /** Only shown in the navigation to users who may list it (Users, Groups, Quotas). */
  adminOnly?: boolean;
  columns: Column[];
}

const field = (o: KubeObject, path: string): unknown => {
  let v: unknown = o;
  for (const p of path.split('.')) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[p] : undefined;
  return v;
};
const str = (path: string) => (o: KubeObject): string => {
  const v = field(o, path);
  if (v === undefined || v === null) return '';
  return Array.isArray(v) ? v.join(', ') : typeof v === 'object' ? JSON.stringify(v) : String(v);
};

export function conditions(o: KubeObject): Condition[] {
  const c = o.status?.conditions;
  return Array.isArray(c) ? (c as Condition[]) : [];
}

export function condition(o: KubeObject, type: string): Condition | undefined {
  return conditions(o).find((c) => c.type === type);
}

/** Ready's status, or its reason when it is not True: what a human wants in a table. */
const ready = (o: KubeObject): string => {
  const c = condition(o, 'Ready');
  if (!c) return '';
  return c.status === 'True' ? 'Ready' : c.reason || 'NotReady';
};

export function age(o: KubeObject): string {
  const t = Date.parse(o.metadata?.creationTimestamp ?? '');
  if (Number.isNaN(t)) return '';
  const s = Math.max(0, Math.round((Date.now() - t) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

const name: Column = { title: 'Name', value: (o) => o.metadata?.name ?? '' };
const ns: Column = { title: 'Namespace', value: (o) => o.metadata?.namespace ?? '' };
const ageCol: Column = { title: 'Age', value: age };

export const kinds: Kind[] = [
  {
    kind: 'Instance', title: 'Instances', group: 'compute.stratus.dev', version: 'v1alpha1', plural: 'instances', namespaced: true,
    columns: [name, ns, { title: 'State', value: str('status.state') }, { title: 'Node', value: str('status.nodeName') }, { title: 'IP', value: str('status.ipAddress') }, { title: 'Provider', value: str('spec.provider') }, { title: 'Ready', value: ready }, ageCol],
  },
  {
    kind: 'ComputeNode', title: 'Compute nodes', group: 'compute.stratus.dev', version: 'v1alpha1', plural: 'computenodes', namespaced: false,
    columns: [name, { title: 'Provider', value: str('spec.provider') }, { title: 'CPUs', value: (o) => `${str('status.allocated.cpus')(o) || 0}/${str('status.allocatable.cpus')(o)}` }, { title: 'Memory MiB', value: (o) => `${str('status.allocated.memoryMiB')(o) || 0}/${str('status.allocatable.memoryMiB')(o)}` }, { title: 'Ready', value: ready }, ageCol],
  },
  {
    kind: 'Network', title: 'Networks', group: 'compute.stratus.dev', version: 'v1alpha1', plural: 'networks', namespaced: true,
    columns: [name, ns, { title: 'VLAN', value: str('spec.vlan') }, { title: 'CIDR', value: str('spec.cidr') }, { title: 'Ready', value: ready }, ageCol],
  },
  {
    kind: 'ElasticIP', title: 'Elastic IPs', group: 'compute.stratus.dev', version: 'v1alpha1', plural: 'elasticips', namespaced: true,
    columns: [name, ns, { title: 'Address', value: str('status.address') }, { title: 'Instance', value: str('spec.instanceRef.name') }, { title: 'Ready', value: ready }, ageCol],
  },
  {
    kind: 'SSHKey', title: 'SSH keys', group: 'compute.stratus.dev', version: 'v1alpha1', plural: 'sshkeys', namespaced: true,
    columns: [name, ns, { title: 'Fingerprint', value: str('status.fingerprint') }, ageCol],
  },
  {
    kind: 'Project', title: 'Projects', group: 'apps.stratus.dev', version: 'v1alpha1', plural: 'projects', namespaced: true,
    columns: [name, ns, { title: 'Mode', value: str('spec.mode') }, { title: 'Ready', value: ready }, ageCol],
  },
  {
    kind: 'Deployment', title: 'Deployments', group: 'apps.stratus.dev', version: 'v1alpha1', plural: 'deployments', namespaced: true,
    columns: [name, ns, { title: 'Project', value: str('spec.project') }, { title: 'Phase', value: str('status.phase') }, { title: 'Failed stage', value: str('status.failedStage') }, ageCol],
  },
  {
    kind: 'Quota', title: 'Quotas', group: 'iam.stratus.dev', version: 'v1alpha1', plural: 'quotas', namespaced: true, adminOnly: true,
    columns: [name, ns, ageCol],
  },
  {
    kind: 'User', title: 'Users', group: 'iam.stratus.dev', version: 'v1alpha1', plural: 'users', namespaced: false, adminOnly: true,
    columns: [name, { title: 'Namespace', value: str('spec.namespace') }, { title: 'Groups', value: str('status.groups') }, { title: 'Ready', value: ready }, ageCol],
  },
  {
    kind: 'Group', title: 'Groups', group: 'iam.stratus.dev', version: 'v1alpha1', plural: 'groups', namespaced: false, adminOnly: true,
    columns: [name, { title: 'Members', value: str('spec.members') }, ageCol],
  },
];

export const eventsKind: Kind = {
  kind: 'Event', title: 'Events', group: '', version: 'v1', plural: 'events', namespaced: true,
  columns: [],
};

export function kindByPlural(plural: string): Kind | undefined {
  return kinds.find((k) => k.plural === plural);
}

export function kindOf(kindName: string): Kind | undefined {
  return kinds.find((k) => k.kind === kindName);
}

/** The collection path (`/apis/G/V[/namespaces/NS]/PLURAL`); all namespaces when `namespace` is empty. */
export function collectionPath(k: Kind, namespace = ''): string {
  const base = k.group === '' ? `/api/${k.version}` : `/apis/${k.group}/${k.version}`;
  return k.namespaced && namespace ? `${base}/namespaces/${encodeURIComponent(namespace)}/${k.plural}` : `${base}/${k.plural}`;
}

export function objectPath(k: Kind, namespace: string, objName: string): string {
  return `${collectionPath(k, namespace)}/${encodeURIComponent(objName)}`;
}
