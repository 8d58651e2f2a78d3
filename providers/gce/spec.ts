/**
 * Pure translation between `MachineSpec` and Compute Engine resources: instance names,
 * labels, the machine type chosen for cpus/memory, image references, the `instances.insert`
 * body, and GCE instance statuses → `MachineState`. No I/O here.
 */
import type { protos } from '@google-cloud/compute';
import { ReconcileError } from '../../runtime/errors.js';
import type { MachineSpec, MachineState } from '../machine.js';

export type Instance = protos.google.cloud.compute.v1.IInstance;
export type Operation = protos.google.cloud.compute.v1.IOperation;

export const LABEL_UID = 'stratus-uid';
export const LABEL_NAMESPACE = 'stratus-namespace';
export const LABEL_NAME = 'stratus-name';

/** GCE caps a resource at 64 labels. */
const MAX_LABELS = 64;

/**
 * The instance name of a uid: `st-` + the uid's 32 hex digits (dashes dropped). It matches
 * `[a-z]([-a-z0-9]{0,61}[a-z0-9])?`, is unique per uid and stable, so create is idempotent.
 */
export function instanceName(uid: string): string {
  const core = uid.toLowerCase().replace(/[^a-z0-9]/g, '').slice(0, 60);
  if (core === '') throw new ReconcileError('InvalidSpec', 'the Instance has no uid to name its VM after', false);
  return `st-${core}`;
}

/**
 * A label value GCE accepts: lowercase letters, digits, `_` and `-`, at most 63 characters.
 * Other characters (upper case, `.`, `/`) become `_`; longer values are cut.
 */
export function labelValue(value: string): string {
  return value.toLowerCase().replace(/[^a-z0-9_-]/g, '_').slice(0, 63);
}

/** A label key GCE accepts (a value that also starts with a lowercase letter). */
export function labelKey(key: string): string {
  const v = labelValue(key);
  return /^[a-z]/.test(v) ? v : `l${v}`.slice(0, 63);
}

/**
 * The labels a VM carries: the Instance's labels (keys and values made GCE-safe, e.g.
 * `app.kubernetes.io/name` → `app_kubernetes_io_name`) and stratus's identity labels, which
 * win. At most 64 in all; user labels beyond that are dropped in key order.
 */
export function labelsFor(spec: MachineSpec): Record<string, string> {
  const own: Record<string, string> = {
    [LABEL_UID]: labelValue(spec.uid),
    [LABEL_NAMESPACE]: labelValue(spec.namespace),
    [LABEL_NAME]: labelValue(spec.name),
  };
  const user = Object.entries(spec.labels)
    .map(([k, v]) => [labelKey(k), labelValue(v)] as const)
    .filter(([k]) => !(k in own))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .slice(0, MAX_LABELS - Object.keys(own).length);
  return { ...Object.fromEntries(user), ...own };
}

/**
 * The labels a VM should end up with: `want`, plus the `goog-*` labels Google's own services
 * put on VMs (ops agent policies, GKE, backups), which stratus must not fight over.
 */
export function reconciledLabels(current: Record<string, string>, want: Record<string, string>): Record<string, string> {
  const google = Object.entries(current).filter(([k]) => k.startsWith('goog-'));
  return { ...Object.fromEntries(google), ...want };
}

export function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => b[k] === a[k]);
}

export interface MachineTypeChoice {
  name: string;
  guestCpus: number;
  memoryMiB: number;
  /** Shared-core types give a fraction of a core; chosen only for `cpus: 1`. */
  sharedCore: boolean;
}

const e2 = (name: string, guestCpus: number, memoryGiB: number, sharedCore = false): MachineTypeChoice => ({
  name,
  guestCpus,
  memoryMiB: memoryGiB * 1024,
  sharedCore,
});

/**
 * The predefined machine types stratus picks from, cheapest first (on-demand list price:
 * one vCPU costs about as much as 7.5 GiB of memory). The first one with at least `cpus`
 * vCPUs and `memoryMiB` memory wins. E2 covers up to 32 vCPUs / 128 GiB; N2 goes to
 * 128 vCPUs / 864 GiB. Anything larger needs `spec.gce.machineType`.
 */
export const MACHINE_TYPES: readonly MachineTypeChoice[] = [
  e2('e2-micro', 2, 1, true),
  e2('e2-small', 2, 2, true),
  e2('e2-medium', 2, 4, true),
  e2('e2-highcpu-2', 2, 2),
  e2('e2-standard-2', 2, 8),
  e2('e2-highmem-2', 2, 16),
  e2('e2-highcpu-4', 4, 4),
  e2('e2-standard-4', 4, 16),
  e2('e2-highmem-4', 4, 32),
  e2('e2-highcpu-8', 8, 8),
  e2('e2-standard-8', 8, 32),
  e2('e2-highmem-8', 8, 64),
  e2('e2-highcpu-16', 16, 16),
  e2('e2-standard-16', 16, 64),
  e2('e2-highmem-16', 16, 128),
  e2('e2-highcpu-32', 32, 32),
  e2('e2-standard-32', 32, 128),
  e2('n2-standard-48', 48, 192),
  e2('n2-highmem-48', 48, 384),
  e2('n2-standard-64', 64, 256),
  e2('n2-highmem-64', 64, 512),
  e2('n2-standard-80', 80, 320),
  e2('n2-highmem-80', 80, 640),
  e2('n2-standard-96', 96, 384),
  e2('n2-highmem-96', 96, 768),
  e2('n2-standard-128', 128, 512),
  e2('n2-highmem-128', 128, 864),
];

/** `spec.gce.machineType`, else the cheapest predefined type that fits cpus and memory. */
export function machineTypeFor(spec: MachineSpec): string {
  const explicit = spec.providerSpec.machineType;
  if (typeof explicit === 'string' && explicit !== '') return explicit;
  const fit = MACHINE_TYPES.find(
    (t) => t.guestCpus >= spec.cpus && t.memoryMiB >= spec.memoryMiB && (!t.sharedCore || spec.cpus <= 1),
  );
  if (!fit) {
    throw new ReconcileError(
      'InvalidSpec',
      `no predefined GCE machine type has ${spec.cpus} vCPUs and ${spec.memoryMiB} MiB; set spec.gce.machineType (e.g. a custom type n2-custom-CPUS-MEMORY_MB)`,
      false,
    );
  }
  return fit.name;
}

/** Where an `image` points: a complete reference, or a short name to look up in the image project. */
export type ImageRef =
  | { kind: 'url'; url: string; project: string; name?: string; family?: string }
  | { kind: 'short'; project: string; name: string };

const IMAGE_PATH = /^(?:https:\/\/(?:www|compute)\.googleapis\.com\/compute\/v1\/)?projects\/([a-z][-a-z0-9.:]*[a-z0-9])\/global\/images\/(?:family\/([a-z][-a-z0-9]*)|([a-z][-a-z0-9]*))$/;

/**
 * Parses `image`: a full URL or `projects/P/global/images/[family/]N` is used as given;
 * `P/N` names an image (or family) in project P; a bare `N` is an image or family in the
 * node's image project (`imageProject`, default the node's own project).
 */
export function parseImage(image: string | undefined, imageProject: string): ImageRef {
  if (!image) throw new ReconcileError('InvalidSpec', 'a GCE Instance needs spec.image (an image, a family, or an image URL)', false);
  const m = IMAGE_PATH.exec(image);
  if (m) {
    const [, project, family, name] = m as unknown as [string, string, string | undefined, string | undefined];
    return { kind: 'url', url: image, project, ...(family ? { family } : {}), ...(name ? { name } : {}) };
  }
  const short = /^(?:([a-z][-a-z0-9.:]*[a-z0-9])\/)?([a-z]([-a-z0-9]{0,61}[a-z0-9])?)$/.exec(image);
  if (!short) {
    throw new ReconcileError('InvalidSpec', `image "${image.slice(0, 200)}" is neither an image URL, projects/P/global/images/N, P/N nor an image name`, false);
  }
  return { kind: 'short', project: short[1] ?? imageProject, name: short[2] as string };
}

/** The OpenSSH public key's user for GCE's `ssh-keys` metadata: the comment's `user@`, else `stratus`. */
export function sshKeysMetadata(keys: string[]): string {
  return keys
    .map((k) => k.trim())
    .filter((k) => k !== '')
    .map((k) => {
      const comment = k.split(/\s+/)[2] ?? '';
      const user = /^([a-z_][a-z0-9_-]{0,31})@/.exec(comment)?.[1] ?? 'stratus';
      return `${user}:${k}`;
    })
    .join('\n');
}

export interface InsertContext {
  project: string;
  zone: string;
  /** The node's VPC network, e.g. `default`. */
  network: string;
  /** The resolved image's self link. */
  sourceImage: string;
  /** The image's own size: the boot disk is at least this big. */
  imageSizeGb: number;
}

/** GCE disk names of the Instance's extra disks: `<instance>-<index>-<disk name>`, cut to 63. */
export function dataDiskName(instance: string, index: number, disk: string): string {
  return `${instance}-${index}-${disk}`.slice(0, 63).replace(/-+$/, '');
}

/**
 * The `instances.insert` body. The boot disk and every extra disk are created with the
 * instance and deleted with it (`autoDelete`). The first NIC is on the node's network; it
 * gets an ephemeral external address (`ONE_TO_ONE_NAT`) only with `spec.gce.externalAddress`.
 * Each of `spec.networks` whose `bridge` names another VPC network adds a NIC there (with
 * the Network's static address, if any). `env`, `command` and `ports` have no VM meaning
 * and are ignored.
 */
export function insertBody(spec: MachineSpec, ctx: InsertContext): Instance {
  const name = instanceName(spec.uid);
  const ps = spec.providerSpec;
  const diskType = typeof ps.diskType === 'string' && ps.diskType !== '' ? `zones/${ctx.zone}/diskTypes/${ps.diskType}` : undefined;
  const bootSize = typeof ps.bootDiskSizeGiB === 'number' ? Math.max(ps.bootDiskSizeGiB, ctx.imageSizeGb) : ctx.imageSizeGb;
  const nics: protos.google.cloud.compute.v1.INetworkInterface[] = [
    {
      network: `projects/${ctx.project}/global/networks/${ctx.network}`,
      ...(ps.externalAddress === true ? { accessConfigs: [{ type: 'ONE_TO_ONE_NAT', name: 'External NAT' }] } : {}),
    },
  ];
  for (const n of spec.networks) {
    const vpc = n.bridge;
    if (!vpc || vpc === ctx.network || !/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/.test(vpc)) continue;
    nics.push({
      network: `projects/${ctx.project}/global/networks/${vpc}`,
      ...(n.address ? { networkIP: n.address.split('/')[0] as string } : {}),
    });
  }
  const metadata: protos.google.cloud.compute.v1.IItems[] = [];
  const keys = sshKeysMetadata(spec.sshAuthorizedKeys);
  if (keys) metadata.push({ key: 'ssh-keys', value: keys });
  if (spec.userData !== undefined) metadata.push({ key: 'user-data', value: spec.userData });
  const body: Instance = {
    name,
    machineType: `zones/${ctx.zone}/machineTypes/${machineTypeFor(spec)}`,
    labels: labelsFor(spec),
    disks: [
      {
        boot: true,
        autoDelete: true,
        initializeParams: { sourceImage: ctx.sourceImage, diskSizeGb: String(bootSize), ...(diskType ? { diskType } : {}) },
      },
      ...spec.disks.map((d, i) => ({
        boot: false,
        autoDelete: true,
        deviceName: d.name,
        initializeParams: { diskName: dataDiskName(name, i + 1, d.name), diskSizeGb: String(d.sizeGiB), ...(diskType ? { diskType } : {}) },
      })),
    ],
    networkInterfaces: nics,
    ...(metadata.length > 0 ? { metadata: { items: metadata } } : {}),
  };
  if (ps.preemptible === true) body.scheduling = { preemptible: true, automaticRestart: false, onHostMaintenance: 'TERMINATE' };
  return body;
}

/** What stratus has in flight on a VM (the operation it started and is waiting for). */
export type PendingKind = 'insert' | 'start' | 'stop' | 'resume' | 'delete' | 'setLabels' | 'address' | 'accessConfig' | 'resize';

/**
 * GCE status (plus the operation stratus is waiting for) → `MachineState`:
 * PROVISIONING → creating; STAGING, REPAIRING → starting; RUNNING → running;
 * STOPPING, SUSPENDING, PENDING_STOP, DEPROVISIONING → stopping; TERMINATED, SUSPENDED →
 * stopped (starting while our start/resume runs). A delete in flight is terminating.
 */
export function machineState(status: string | null | undefined, pending?: PendingKind): MachineState {
  if (pending === 'delete') return 'terminating';
  switch (status) {
    case 'PROVISIONING':
      return 'creating';
    case 'STAGING':
    case 'REPAIRING':
      return 'starting';
    case 'RUNNING':
      return pending === 'stop' ? 'stopping' : 'running';
    case 'STOPPING':
    case 'SUSPENDING':
    case 'PENDING_STOP':
    case 'DEPROVISIONING':
      return 'stopping';
    case 'TERMINATED':
    case 'SUSPENDED':
      return pending === 'start' || pending === 'resume' ? 'starting' : 'stopped';
    default:
      return 'failed';
  }
}

/** True when the VM is (or is headed to be) where `powerState` wants it. */
export function powerSettled(spec: MachineSpec, status: string | null | undefined, pending?: PendingKind): boolean {
  if (spec.powerState === 'Running') {
    return pending === 'start' || pending === 'resume' || pending === 'insert' || ['PROVISIONING', 'STAGING', 'RUNNING', 'REPAIRING'].includes(status ?? '');
  }
  return pending === 'stop' || ['STOPPING', 'SUSPENDING', 'PENDING_STOP', 'DEPROVISIONING', 'TERMINATED', 'SUSPENDED'].includes(status ?? '');
}

/** The last segment of a resource URL (`.../regions/us-central1` → `us-central1`). */
export function lastSegment(url: string | null | undefined): string {
  return (url ?? '').split('/').filter(Boolean).pop() ?? '';
}
