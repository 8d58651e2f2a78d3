/**
 * The model behind the fake Compute API: one project with zones, regions (with quotas),
 * machine types, images (in the project and in public image projects), VPC networks,
 * instances and zonal operations.
 *
 * Time is a `Timeline`: every asynchronous effect (an operation going RUNNING or DONE, an
 * instance going STAGING or RUNNING) is scheduled at a due time and applied lazily whenever
 * the model is read, so a request always sees the state "as of now". `advance(ms)` moves the
 * fake's clock forward, which lets a test step through states without sleeping.
 *
 * Errors the real API returns synchronously are thrown as `ApiError` (the HTTP layer turns
 * them into the `{"error": {...}}` body); errors the real API reports through an operation
 * (quota) end the operation with `error.errors[]`.
 */
import { createHash, randomBytes } from 'node:crypto';

export const API_BASE = 'https://www.googleapis.com/compute/v1';

/** The HTTP status → canonical status name used in error bodies. */
const STATUS_NAMES: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  409: 'ALREADY_EXISTS',
  412: 'FAILED_PRECONDITION',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  502: 'UNAVAILABLE',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

/** An error the API answers synchronously, in the Compute API's error shape. */
export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly domain = 'global',
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  body(): Record<string, unknown> {
    return {
      error: {
        code: this.code,
        message: this.message,
        errors: [{ message: this.message, domain: this.domain, reason: this.reason }],
        status: STATUS_NAMES[this.code] ?? 'UNKNOWN',
      },
    };
  }
}

export const notFound = (resource: string): ApiError => new ApiError(404, 'notFound', `The resource '${resource}' was not found`);
export const invalid = (field: string, value: unknown, why: string): ApiError =>
  new ApiError(400, 'invalid', `Invalid value for field '${field}': '${String(value)}'. ${why}`);

interface Scheduled {
  at: number;
  seq: number;
  run: (at: number) => void;
}

/** Scheduled effects applied in time order when the model is read. */
export class Timeline {
  private queue: Scheduled[] = [];
  private seq = 0;
  private offset = 0;
  private readonly listeners = new Set<() => void>();

  now(): number {
    return Date.now() + this.offset;
  }

  at(at: number, run: (at: number) => void): void {
    this.queue.push({ at, seq: this.seq++, run });
    this.queue.sort((a, b) => a.at - b.at || a.seq - b.seq);
    this.notify();
  }

  /** Applies every effect that is due; effects may schedule more (relative to their own due time). */
  settle(): void {
    const now = this.now();
    for (;;) {
      const next = this.queue[0];
      if (!next || next.at > now) return;
      this.queue.shift();
      next.run(next.at);
    }
  }

  /** When the next effect is due (fake clock), if any. */
  nextDue(): number | undefined {
    return this.queue[0]?.at;
  }

  /** Moves the fake clock forward; blocked waiters re-check. */
  advance(ms: number): void {
    this.offset += ms;
    this.notify();
  }

  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private notify(): void {
    for (const fn of [...this.listeners]) fn();
  }
}

export interface MachineTypeInfo {
  name: string;
  guestCpus: number;
  memoryMb: number;
  isSharedCpu: boolean;
  description: string;
}

/** The predefined machine types every fake zone offers (a subset of the real catalogue). */
export const MACHINE_TYPES: MachineTypeInfo[] = [
  { name: 'e2-micro', guestCpus: 2, memoryMb: 1024, isSharedCpu: true, description: 'Efficient Instance, 2 vCPU (1/8 shared physical core) and 1 GB RAM' },
  { name: 'e2-small', guestCpus: 2, memoryMb: 2048, isSharedCpu: true, description: 'Efficient Instance, 2 vCPU (1/4 shared physical core) and 2 GB RAM' },
  { name: 'e2-medium', guestCpus: 2, memoryMb: 4096, isSharedCpu: true, description: 'Efficient Instance, 2 vCPU (1/2 shared physical core) and 4 GB RAM' },
  ...[2, 4, 8, 16, 32].flatMap((n) => [
    { name: `e2-highcpu-${n}`, guestCpus: n, memoryMb: n * 1024, isSharedCpu: false, description: `Efficient Instance, ${n} vCPUs, ${n} GB RAM` },
    { name: `e2-standard-${n}`, guestCpus: n, memoryMb: n * 4096, isSharedCpu: false, description: `Efficient Instance, ${n} vCPUs, ${n * 4} GB RAM` },
  ]),
  ...[2, 4, 8, 16].map((n) => ({ name: `e2-highmem-${n}`, guestCpus: n, memoryMb: n * 8192, isSharedCpu: false, description: `Efficient Instance, ${n} vCPUs, ${n * 8} GB RAM` })),
  ...[48, 64, 80, 96, 128].flatMap((n) => [
    { name: `n2-standard-${n}`, guestCpus: n, memoryMb: n * 4096, isSharedCpu: false, description: `${n} vCPUs ${n * 4} GB RAM` },
    { name: `n2-highmem-${n}`, guestCpus: n, memoryMb: Math.min(n * 8192, 864 * 1024), isSharedCpu: false, description: `${n} vCPUs ${Math.min(n * 8, 864)} GB RAM` },
  ]),
];

const CUSTOM_TYPE = /^(?:(e2|n2|n1|n2d)-)?custom-(\d+)-(\d+)(-ext)?$/;

export interface FakeImage {
  project: string;
  name: string;
  id: string;
  family?: string;
  diskSizeGb: number;
  status: 'READY' | 'PENDING' | 'FAILED';
  deprecated?: 'DEPRECATED' | 'OBSOLETE' | 'DELETED';
  creationTimestamp: string;
}

export type InstanceStatus =
  | 'PROVISIONING'
  | 'STAGING'
  | 'RUNNING'
  | 'STOPPING'
  | 'SUSPENDING'
  | 'SUSPENDED'
  | 'REPAIRING'
  | 'TERMINATED';

export interface FakeAccessConfig {
  type: string;
  name: string;
  natIP?: string;
  networkTier: string;
  /** The natIP is a static address of the region (kept across stop/start, not re-allocated). */
  static?: boolean;
}

/** A regional static external address (addresses.insert). */
export interface FakeAddress {
  id: string;
  name: string;
  region: string;
  address: string;
  description?: string;
  networkTier: string;
  creationTimestamp: string;
  /** selfLinks of the instances using it (IN_USE when non-empty). */
  users: string[];
}

export interface FakeNic {
  name: string;
  network: string;
  networkIP: string;
  accessConfigs: FakeAccessConfig[];
}

export interface FakeDisk {
  deviceName: string;
  boot: boolean;
  autoDelete: boolean;
  diskSizeGb: number;
  source: string;
  sourceImage?: string;
  type?: string;
}

export interface FakeInstance {
  id: string;
  name: string;
  zone: string;
  machineType: string;
  cpus: number;
  memoryMb: number;
  status: InstanceStatus;
  labels: Record<string, string>;
  labelFingerprint: string;
  metadata: { key: string; value: string }[];
  metadataFingerprint: string;
  disks: FakeDisk[];
  networkInterfaces: FakeNic[];
  scheduling: Record<string, unknown>;
  creationTimestamp: string;
  lastStartTimestamp?: string;
  lastStopTimestamp?: string;
  /** The raw insert body, for tests. */
  insertBody: Record<string, unknown>;
}

export interface FakeOperationError {
  code: string;
  message: string;
  errorDetails?: Record<string, unknown>[];
}

export interface FakeOperation {
  id: string;
  name: string;
  zone: string;
  /** Set for a regional operation (addresses); `zone` is then ''. */
  region?: string;
  operationType: string;
  targetLink: string;
  targetId: string;
  status: 'PENDING' | 'RUNNING' | 'DONE';
  progress: number;
  insertTime: string;
  startTime?: string;
  endTime?: string;
  error?: FakeOperationError[];
  httpErrorStatusCode?: number;
  httpErrorMessage?: string;
  requestId?: string;
}

export interface FakeGceModelOptions {
  project: string;
  zones: string[];
  /** Delay between the steps of an operation (PENDING → RUNNING → DONE) and of status changes. */
  stepMs: number;
  /** Regional CPUS quota (per region). */
  cpusQuota: number;
  /** Regional INSTANCES quota. */
  instancesQuota: number;
  networks: string[];
}

const NAME = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const LABEL_KEY = /^[a-z][a-z0-9_-]{0,62}$/;
const LABEL_VALUE = /^[a-z0-9_-]{0,63}$/;

function timestamp(ms: number): string {
  // The API's RFC 3339 text with a -07:00 style offset; UTC here.
  return new Date(ms).toISOString().replace('Z', '+00:00');
}

function numericId(): string {
  // uint64 ids, serialized as decimal strings like the real API.
  return (BigInt('0x' + randomBytes(8).toString('hex')) >> 1n).toString();
}

export function fingerprint(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest().subarray(0, 8).toString('base64');
}

function sortedLabels(labels: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** `region` of a zone name (`us-central1-a` → `us-central1`). */
export function regionOf(zone: string): string {
  return zone.replace(/-[a-z]$/, '');
}

/** The last path segment of a URL or partial resource path. */
function lastSegment(ref: string): string {
  return ref.split('/').filter(Boolean).pop() ?? '';
}

export class FakeGceModel {
  readonly timeline = new Timeline();
  readonly instances = new Map<string, FakeInstance>(); // key zone/name
  readonly operations = new Map<string, FakeOperation>(); // key zone/name (regional: region:<region>/name)
  readonly addresses = new Map<string, FakeAddress>(); // key region/name
  readonly images: FakeImage[] = [];
  readonly quotas = new Map<string, Map<string, number>>(); // region → metric → limit
  readonly networks: Set<string>;
  /** Names reserved by inserts whose operation has not finished yet. */
  private readonly reserved = new Set<string>();
  private readonly requestIds = new Map<string, string>(); // requestId → operation key
  private nextInternal = 2;
  private nextExternal = 10;
  stepMs: number;

  constructor(readonly options: FakeGceModelOptions) {
    this.stepMs = options.stepMs;
    this.networks = new Set(options.networks);
    for (const zone of options.zones) {
      const region = regionOf(zone);
      if (!this.quotas.has(region)) {
        this.quotas.set(region, new Map([['CPUS', options.cpusQuota], ['INSTANCES', options.instancesQuota], ['IN_USE_ADDRESSES', 8], ['STATIC_ADDRESSES', 8], ['DISKS_TOTAL_GB', 4096]]));
      }
    }
    const t = Date.parse('2024-11-12T00:00:00Z');
    this.addImage({ project: 'debian-cloud', name: 'debian-12-bookworm-v20241009', family: 'debian-12', diskSizeGb: 10, deprecated: 'DEPRECATED', creationTimestamp: timestamp(t - 30 * 86_400_000) });
    this.addImage({ project: 'debian-cloud', name: 'debian-12-bookworm-v20241112', family: 'debian-12', diskSizeGb: 10, creationTimestamp: timestamp(t) });
    this.addImage({ project: 'ubuntu-os-cloud', name: 'ubuntu-2404-noble-amd64-v20241115', family: 'ubuntu-2404-lts-amd64', diskSizeGb: 10, creationTimestamp: timestamp(t) });
  }

  get project(): string {
    return this.options.project;
  }

  // ----- references -------------------------------------------------------------------------

  zoneUrl(zone: string): string {
    return `${API_BASE}/projects/${this.project}/zones/${zone}`;
  }

  regionUrl(region: string): string {
    return `${API_BASE}/projects/${this.project}/regions/${region}`;
  }

  instanceUrl(i: FakeInstance): string {
    return `${this.zoneUrl(i.zone)}/instances/${i.name}`;
  }

  requireProject(project: string): void {
    if (project !== this.project) throw notFound(`projects/${project}`);
  }

  requireZone(zone: string): void {
    if (!this.options.zones.includes(zone)) throw invalid('zone', zone, 'Unknown zone.');
  }

  addImage(image: Omit<FakeImage, 'id' | 'status' | 'creationTimestamp'> & Partial<Pick<FakeImage, 'status' | 'creationTimestamp'>>): FakeImage {
    const full: FakeImage = { status: 'READY', creationTimestamp: timestamp(this.timeline.now()), ...image, id: numericId() };
    this.images.push(full);
    return full;
  }

  getImage(project: string, name: string): FakeImage {
    const img = this.images.find((i) => i.project === project && i.name === name);
    if (!img) throw notFound(`projects/${project}/global/images/${name}`);
    return img;
  }

  /** The newest image of a family that is not deprecated (the API's getFromFamily). */
  imageFromFamily(project: string, family: string): FakeImage {
    const candidates = this.images
      .filter((i) => i.project === project && i.family === family && !i.deprecated && i.status === 'READY')
      .sort((a, b) => (a.creationTimestamp < b.creationTimestamp ? 1 : -1));
    const img = candidates[0];
    if (!img) throw notFound(`projects/${project}/global/images/family/${family}`);
    return img;
  }

  imageJson(img: FakeImage): Record<string, unknown> {
    return {
      kind: 'compute#image',
      id: img.id,
      creationTimestamp: img.creationTimestamp,
      name: img.name,
      ...(img.family ? { family: img.family } : {}),
      sourceType: 'RAW',
      status: img.status,
      archiveSizeBytes: String(img.diskSizeGb * 120_000_000),
      diskSizeGb: String(img.diskSizeGb),
      architecture: 'X86_64',
      ...(img.deprecated ? { deprecated: { state: img.deprecated } } : {}),
      selfLink: `${API_BASE}/projects/${img.project}/global/images/${img.name}`,
    };
  }

  /** Resolves `sourceImage` as the API does: a URL or partial path to an image or a family. */
  resolveSourceImage(ref: string): FakeImage {
    const full = /(?:^|\/)projects\/([^/]+)\/global\/images\/(?:family\/([^/]+)|([^/]+))$/.exec(ref);
    const partial = full ? undefined : /^global\/images\/(?:family\/([^/]+)|([^/]+))$/.exec(ref);
    if (full) {
      const [, project, family, name] = full;
      return family ? this.imageFromFamily(project as string, family) : this.getImage(project as string, name as string);
    }
    if (partial) {
      const [, family, name] = partial;
      return family ? this.imageFromFamily(this.project, family) : this.getImage(this.project, name as string);
    }
    throw invalid('resource.disks[0].initializeParams.sourceImage', ref, 'The URL is malformed.');
  }

  machineType(zone: string, name: string): MachineTypeInfo {
    const predefined = MACHINE_TYPES.find((t) => t.name === name);
    if (predefined) return predefined;
    const custom = CUSTOM_TYPE.exec(name);
    if (custom) {
      const cpus = Number(custom[2]);
      const memoryMb = Number(custom[3]);
      if (cpus >= 1 && memoryMb >= 256 && memoryMb % 256 === 0) {
        return { name, guestCpus: cpus, memoryMb, isSharedCpu: false, description: `Custom created machine type.` };
      }
    }
    throw notFound(`projects/${this.project}/zones/${zone}/machineTypes/${name}`);
  }

  machineTypeJson(zone: string, t: MachineTypeInfo): Record<string, unknown> {
    return {
      kind: 'compute#machineType',
      id: String(1000 + MACHINE_TYPES.indexOf(t)),
      creationTimestamp: '2015-01-16T09:25:43.000-08:00',
      name: t.name,
      description: t.description,
      guestCpus: t.guestCpus,
      memoryMb: t.memoryMb,
      imageSpaceGb: 0,
      maximumPersistentDisks: 128,
      maximumPersistentDisksSizeGb: '263168',
      zone,
      isSharedCpu: t.isSharedCpu,
      selfLink: `${this.zoneUrl(zone)}/machineTypes/${t.name}`,
    };
  }

  // ----- quotas -----------------------------------------------------------------------------

  /** Current usage of a regional quota metric. */
  usage(region: string, metric: string): number {
    const live = [...this.instances.values()].filter((i) => regionOf(i.zone) === region);
    switch (metric) {
      case 'CPUS':
        return live.filter((i) => i.status !== 'TERMINATED' && i.status !== 'SUSPENDED').reduce((n, i) => n + i.cpus, 0);
      case 'INSTANCES':
        return live.length;
      case 'IN_USE_ADDRESSES':
        return live.reduce((n, i) => n + i.networkInterfaces.flatMap((x) => x.accessConfigs).filter((a) => a.natIP).length, 0);
      case 'STATIC_ADDRESSES':
        return [...this.addresses.values()].filter((a) => a.region === region).length;
      case 'DISKS_TOTAL_GB':
        return live.reduce((n, i) => n + i.disks.reduce((m, d) => m + d.diskSizeGb, 0), 0);
      default:
        return 0;
    }
  }

  setQuota(region: string, metric: string, limit: number): void {
    const q = this.quotas.get(region);
    if (!q) throw new Error(`no region ${region} in the fake`);
    q.set(metric, limit);
  }

  /** The operation error GCE reports when starting `cpus` more vCPUs would exceed the quota. */
  private quotaError(zone: string, cpus: number, instances: number): FakeOperationError | undefined {
    return this.regionQuotaError(regionOf(zone), [['CPUS', cpus], ['INSTANCES', instances]]);
  }

  /** The operation error GCE reports when `need` more of a regional metric would exceed its limit. */
  private regionQuotaError(region: string, needs: [string, number][]): FakeOperationError | undefined {
    const q = this.quotas.get(region);
    for (const [metric, need] of needs) {
      const limit = q?.get(metric) ?? Infinity;
      if (need > 0 && this.usage(region, metric) + need > limit) {
        return {
          code: 'QUOTA_EXCEEDED',
          message: `Quota '${metric}' exceeded.  Limit: ${limit.toFixed(1)} in region ${region}.`,
          errorDetails: [
            {
              quotaInfo: {
                metricName: `compute.googleapis.com/${metric.toLowerCase()}`,
                limitName: `${metric}-per-project-region`,
                dimensions: { region },
                limit,
              },
            },
          ],
        };
      }
    }
    return undefined;
  }

  regionJson(region: string): Record<string, unknown> {
    const q = this.quotas.get(region);
    if (!q) throw notFound(`projects/${this.project}/regions/${region}`);
    return {
      kind: 'compute#region',
      id: String(1000 + [...this.quotas.keys()].indexOf(region)),
      creationTimestamp: '1969-12-31T16:00:00.000-08:00',
      name: region,
      description: region,
      status: 'UP',
      zones: this.options.zones.filter((z) => regionOf(z) === region).map((z) => this.zoneUrl(z)),
      quotas: [...q.entries()].map(([metric, limit]) => ({ metric, limit, usage: this.usage(region, metric) })),
      selfLink: this.regionUrl(region),
      supportsPzs: false,
    };
  }

  zoneJson(zone: string): Record<string, unknown> {
    if (!this.options.zones.includes(zone)) throw notFound(`projects/${this.project}/zones/${zone}`);
    return {
      kind: 'compute#zone',
      id: String(2000 + this.options.zones.indexOf(zone)),
      creationTimestamp: '1969-12-31T16:00:00.000-08:00',
      name: zone,
      description: zone,
      status: 'UP',
      region: this.regionUrl(regionOf(zone)),
      selfLink: this.zoneUrl(zone),
      availableCpuPlatforms: ['Intel Cascade Lake', 'AMD Milan'],
      supportsPzs: false,
    };
  }

  // ----- operations -------------------------------------------------------------------------

  private newOperation(zone: string, type: string, targetLink: string, targetId: string, requestId?: string): FakeOperation {
    const now = this.timeline.now();
    const name = `operation-${now}-${randomBytes(6).toString('hex').slice(0, 13)}-${randomBytes(4).toString('hex')}`;
    const op: FakeOperation = {
      id: numericId(),
      name,
      zone,
      operationType: type,
      targetLink,
      targetId,
      status: 'PENDING',
      progress: 0,
      insertTime: timestamp(now),
      ...(requestId ? { requestId } : {}),
    };
    this.operations.set(`${zone}/${name}`, op);
    if (requestId) this.requestIds.set(requestId, `${zone}/${name}`);
    return op;
  }

  private running(op: FakeOperation, at: number): void {
    op.status = 'RUNNING';
    op.startTime = timestamp(at);
  }

  private done(op: FakeOperation, at: number, error?: FakeOperationError): void {
    op.status = 'DONE';
    op.progress = 100;
    op.endTime = timestamp(at);
    if (error) {
      op.error = [error];
      op.httpErrorStatusCode = error.code === 'QUOTA_EXCEEDED' ? 403 : 400;
      op.httpErrorMessage = error.code === 'QUOTA_EXCEEDED' ? 'FORBIDDEN' : 'BAD REQUEST';
    }
  }

  private newRegionOperation(region: string, type: string, targetLink: string, targetId: string): FakeOperation {
    const op = this.newOperation('', type, targetLink, targetId);
    this.operations.delete(`/${op.name}`);
    op.region = region;
    this.operations.set(`region:${region}/${op.name}`, op);
    return op;
  }

  getRegionOperation(region: string, name: string): FakeOperation {
    const op = this.operations.get(`region:${region}/${name}`);
    if (!op) throw notFound(`projects/${this.project}/regions/${region}/operations/${name}`);
    return op;
  }

  getOperation(zone: string, name: string): FakeOperation {
    const op = this.operations.get(`${zone}/${name}`);
    if (!op) throw notFound(`projects/${this.project}/zones/${zone}/operations/${name}`);
    return op;
  }

  operationJson(op: FakeOperation): Record<string, unknown> {
    return {
      kind: 'compute#operation',
      id: op.id,
      name: op.name,
      ...(op.region ? { region: this.regionUrl(op.region) } : { zone: this.zoneUrl(op.zone) }),
      operationType: op.operationType,
      targetLink: op.targetLink,
      targetId: op.targetId,
      status: op.status,
      user: 'stratus@example.iam.gserviceaccount.com',
      progress: op.progress,
      insertTime: op.insertTime,
      ...(op.startTime ? { startTime: op.startTime } : {}),
      ...(op.endTime ? { endTime: op.endTime } : {}),
      ...(op.error ? { error: { errors: op.error } } : {}),
      ...(op.httpErrorStatusCode ? { httpErrorStatusCode: op.httpErrorStatusCode, httpErrorMessage: op.httpErrorMessage } : {}),
      selfLink: `${op.region ? this.regionUrl(op.region) : this.zoneUrl(op.zone)}/operations/${op.name}`,
    };
  }

  // ----- instances --------------------------------------------------------------------------

  getInstance(zone: string, name: string): FakeInstance {
    const i = this.instances.get(`${zone}/${name}`);
    if (!i) throw notFound(`projects/${this.project}/zones/${zone}/instances/${name}`);
    return i;
  }

  listInstances(zone?: string): FakeInstance[] {
    return [...this.instances.values()].filter((i) => zone === undefined || i.zone === zone).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  instanceJson(i: FakeInstance): Record<string, unknown> {
    return {
      kind: 'compute#instance',
      id: i.id,
      creationTimestamp: i.creationTimestamp,
      name: i.name,
      machineType: `${this.zoneUrl(i.zone)}/machineTypes/${i.machineType}`,
      status: i.status,
      zone: this.zoneUrl(i.zone),
      canIpForward: false,
      networkInterfaces: i.networkInterfaces.map((n) => ({
        kind: 'compute#networkInterface',
        network: `${API_BASE}/projects/${this.project}/global/networks/${n.network}`,
        subnetwork: `${this.regionUrl(regionOf(i.zone))}/subnetworks/${n.network}`,
        networkIP: n.networkIP,
        name: n.name,
        ...(n.accessConfigs.length > 0
          ? {
              accessConfigs: n.accessConfigs.map((a) => ({
                kind: 'compute#accessConfig',
                type: a.type,
                name: a.name,
                ...(a.natIP ? { natIP: a.natIP } : {}),
                networkTier: a.networkTier,
              })),
            }
          : {}),
        fingerprint: fingerprint([n.name, n.networkIP]),
        stackType: 'IPV4_ONLY',
      })),
      disks: i.disks.map((d, index) => ({
        kind: 'compute#attachedDisk',
        type: 'PERSISTENT',
        mode: 'READ_WRITE',
        source: d.source,
        deviceName: d.deviceName,
        index,
        boot: d.boot,
        autoDelete: d.autoDelete,
        interface: 'SCSI',
        diskSizeGb: String(d.diskSizeGb),
        architecture: 'X86_64',
      })),
      metadata: { kind: 'compute#metadata', fingerprint: i.metadataFingerprint, ...(i.metadata.length > 0 ? { items: i.metadata } : {}) },
      selfLink: this.instanceUrl(i),
      scheduling: i.scheduling,
      cpuPlatform: i.status === 'RUNNING' ? 'Intel Cascade Lake' : 'Unknown CPU Platform',
      ...(Object.keys(i.labels).length > 0 ? { labels: sortedLabels(i.labels) } : {}),
      labelFingerprint: i.labelFingerprint,
      startRestricted: false,
      deletionProtection: false,
      fingerprint: fingerprint([i.id, i.status, i.labels]),
      ...(i.lastStartTimestamp ? { lastStartTimestamp: i.lastStartTimestamp } : {}),
      ...(i.lastStopTimestamp ? { lastStopTimestamp: i.lastStopTimestamp } : {}),
    };
  }

  private validateLabels(field: string, labels: unknown): Record<string, string> {
    if (labels === undefined || labels === null) return {};
    if (typeof labels !== 'object' || Array.isArray(labels)) throw invalid(field, JSON.stringify(labels), 'Labels must be a map.');
    const entries = Object.entries(labels as Record<string, unknown>);
    if (entries.length > 64) throw invalid(field, entries.length, 'Resources can have at most 64 labels.');
    for (const [k, v] of entries) {
      if (!LABEL_KEY.test(k)) throw invalid(`${field}.${k}`, k, 'Label keys must start with a lowercase letter and contain only lowercase letters, digits, underscores and dashes (at most 63 characters).');
      if (typeof v !== 'string' || !LABEL_VALUE.test(v)) {
        throw invalid(`${field}.${k}`, v, 'Label values may contain only lowercase letters, digits, underscores and dashes (at most 63 characters).');
      }
    }
    return Object.fromEntries(entries) as Record<string, string>;
  }

  private allocateInternal(): string {
    const n = this.nextInternal++;
    return `10.128.${Math.floor(n / 256)}.${n % 256}`;
  }

  private allocateExternal(): string {
    const n = this.nextExternal++;
    return `203.0.113.${n % 250}`;
  }

  /** instances.insert: validates like the API and starts the insert operation. */
  insertInstance(zone: string, body: Record<string, unknown>, requestId?: string): FakeOperation {
    this.requireZone(zone);
    if (requestId) {
      const prior = this.requestIds.get(requestId);
      const op = prior ? this.operations.get(prior) : undefined;
      if (op) return op;
    }
    const name = body.name;
    if (typeof name !== 'string' || !NAME.test(name)) {
      throw invalid('resource.name', name, "Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'");
    }
    const key = `${zone}/${name}`;
    if (this.instances.has(key) || this.reserved.has(key)) {
      throw new ApiError(409, 'alreadyExists', `The resource 'projects/${this.project}/zones/${zone}/instances/${name}' already exists`);
    }
    const mtRef = body.machineType;
    if (typeof mtRef !== 'string' || mtRef === '') throw invalid('resource.machineType', mtRef, 'Machine type must be specified.');
    let mt: MachineTypeInfo;
    try {
      mt = this.machineType(zone, lastSegment(mtRef));
    } catch {
      throw invalid('resource.machineType', mtRef, `Machine type with name '${lastSegment(mtRef)}' does not exist in zone '${zone}'.`);
    }
    const labels = this.validateLabels('resource.labels', body.labels);
    const disksIn = Array.isArray(body.disks) ? (body.disks as Record<string, unknown>[]) : [];
    const boot = disksIn.filter((d) => d.boot === true);
    if (boot.length !== 1) throw invalid('resource.disks', disksIn.length, 'Exactly one boot disk must be specified.');
    const disks: FakeDisk[] = disksIn.map((d, index) => {
      const init = (d.initializeParams ?? {}) as Record<string, unknown>;
      let size = init.diskSizeGb === undefined ? undefined : Number(init.diskSizeGb);
      let sourceImage: string | undefined;
      if (d.boot === true) {
        if (typeof init.sourceImage !== 'string') throw invalid(`resource.disks[${index}].initializeParams.sourceImage`, init.sourceImage, 'Boot disk must have a source image.');
        const img = this.resolveSourceImage(init.sourceImage);
        if (size !== undefined && size < img.diskSizeGb) {
          throw invalid(`resource.disks[${index}].initializeParams.diskSizeGb`, size, `Requested disk size cannot be smaller than the image size (${img.diskSizeGb} GB)`);
        }
        size ??= img.diskSizeGb;
        sourceImage = `${API_BASE}/projects/${img.project}/global/images/${img.name}`;
      }
      if (size === undefined || !Number.isInteger(size) || size < 1) throw invalid(`resource.disks[${index}].initializeParams.diskSizeGb`, init.diskSizeGb, 'Disk size must be a positive integer.');
      const diskName = typeof init.diskName === 'string' ? init.diskName : index === 0 ? name : `${name}-${index}`;
      const deviceName = typeof d.deviceName === 'string' ? d.deviceName : diskName;
      return {
        deviceName,
        boot: d.boot === true,
        autoDelete: d.autoDelete === true,
        diskSizeGb: size,
        source: `${this.zoneUrl(zone)}/disks/${diskName}`,
        ...(sourceImage ? { sourceImage } : {}),
        ...(typeof init.diskType === 'string' ? { type: init.diskType } : {}),
      };
    });
    const nicsIn = Array.isArray(body.networkInterfaces) ? (body.networkInterfaces as Record<string, unknown>[]) : [];
    if (nicsIn.length === 0) throw invalid('resource.networkInterfaces', '[]', 'At least one network interface is required.');
    const nics = nicsIn.map((n, index) => {
      const ref = typeof n.network === 'string' ? n.network : 'global/networks/default';
      const network = lastSegment(ref);
      if (!this.networks.has(network)) throw notFound(`projects/${this.project}/global/networks/${network}`);
      const access = Array.isArray(n.accessConfigs) ? (n.accessConfigs as Record<string, unknown>[]) : [];
      for (const a of access) {
        if (a.type !== undefined && a.type !== 'ONE_TO_ONE_NAT') throw invalid(`resource.networkInterfaces[${index}].accessConfigs[0].type`, a.type, 'Only ONE_TO_ONE_NAT is supported.');
      }
      return {
        name: `nic${index}`,
        network,
        networkIP: typeof n.networkIP === 'string' ? n.networkIP : '',
        accessConfigs: access.map((a) => ({
          type: 'ONE_TO_ONE_NAT',
          name: typeof a.name === 'string' ? a.name : 'External NAT',
          networkTier: typeof a.networkTier === 'string' ? a.networkTier : 'PREMIUM',
        })),
      };
    });
    const metadataIn = (body.metadata ?? {}) as { items?: { key?: unknown; value?: unknown }[] };
    const metadata = (metadataIn.items ?? []).map((m) => ({ key: String(m.key), value: String(m.value ?? '') }));
    const scheduling = (body.scheduling ?? { onHostMaintenance: 'MIGRATE', automaticRestart: true, preemptible: false, provisioningModel: 'STANDARD' }) as Record<string, unknown>;

    const op = this.newOperation(zone, 'insert', `${this.zoneUrl(zone)}/instances/${name}`, numericId(), requestId);
    this.reserved.add(key);
    const step = this.stepMs;
    const t0 = this.timeline.now();
    this.timeline.at(t0 + step, (at) => {
      this.running(op, at);
      const quota = this.quotaError(zone, mt.guestCpus, 1);
      if (quota) {
        this.timeline.at(at + step, (at2) => {
          this.reserved.delete(key);
          this.done(op, at2, quota);
        });
        return;
      }
      const instance: FakeInstance = {
        id: op.targetId,
        name,
        zone,
        machineType: mt.name,
        cpus: mt.guestCpus,
        memoryMb: mt.memoryMb,
        status: 'PROVISIONING',
        labels,
        labelFingerprint: fingerprint(sortedLabels(labels)),
        metadata,
        metadataFingerprint: fingerprint(metadata),
        disks,
        networkInterfaces: nics.map((n) => ({ ...n, networkIP: n.networkIP || this.allocateInternal() })),
        scheduling,
        creationTimestamp: timestamp(at),
        insertBody: body,
      };
      this.reserved.delete(key);
      this.instances.set(key, instance);
      op.progress = 50;
      this.timeline.at(at + step, (at2) => {
        if (this.instances.get(key) !== instance) return this.done(op, at2);
        instance.status = 'STAGING';
        for (const a of instance.networkInterfaces.flatMap((n) => n.accessConfigs)) a.natIP = this.allocateExternal();
        this.done(op, at2);
        this.timeline.at(at2 + step, (at3) => {
          if (instance.status !== 'STAGING') return;
          instance.status = 'RUNNING';
          instance.lastStartTimestamp = timestamp(at3);
        });
      });
    });
    return op;
  }

  /** A status change that needs the instance settled: the API refuses while another transition runs. */
  private requireSettled(i: FakeInstance, action: string): void {
    if (['PROVISIONING', 'STAGING', 'STOPPING', 'SUSPENDING', 'REPAIRING'].includes(i.status)) {
      throw new ApiError(400, 'resourceNotReady', `The resource 'projects/${this.project}/zones/${i.zone}/instances/${i.name}' is not ready (cannot ${action} while ${i.status})`);
    }
  }

  stopInstance(zone: string, name: string): FakeOperation {
    this.requireZone(zone);
    const i = this.getInstance(zone, name);
    const op = this.newOperation(zone, 'stop', this.instanceUrl(i), i.id);
    const step = this.stepMs;
    const t0 = this.timeline.now();
    if (i.status === 'TERMINATED') {
      this.timeline.at(t0 + step, (at) => this.done(op, at));
      return op;
    }
    this.requireSettled(i, 'stop');
    this.timeline.at(t0 + step, (at) => {
      this.running(op, at);
      i.status = 'STOPPING';
      this.timeline.at(at + step, (at2) => {
        i.status = 'TERMINATED';
        i.lastStopTimestamp = timestamp(at2);
        // Ephemeral external addresses are released when the instance stops.
        for (const a of i.networkInterfaces.flatMap((n) => n.accessConfigs)) if (!a.static) delete a.natIP;
        this.done(op, at2);
      });
    });
    return op;
  }

  startInstance(zone: string, name: string, type: 'start' | 'resume' = 'start'): FakeOperation {
    this.requireZone(zone);
    const i = this.getInstance(zone, name);
    const from = type === 'start' ? 'TERMINATED' : 'SUSPENDED';
    const op = this.newOperation(zone, type, this.instanceUrl(i), i.id);
    const step = this.stepMs;
    const t0 = this.timeline.now();
    if (i.status === 'RUNNING') {
      this.timeline.at(t0 + step, (at) => this.done(op, at));
      return op;
    }
    if (i.status !== from) {
      this.requireSettled(i, type);
      throw new ApiError(400, 'resourceNotReady', `The resource 'projects/${this.project}/zones/${zone}/instances/${name}' is not ready (${type} needs ${from}, it is ${i.status})`);
    }
    this.timeline.at(t0 + step, (at) => {
      this.running(op, at);
      const quota = this.quotaError(zone, i.cpus, 0);
      if (quota) {
        this.timeline.at(at + step, (at2) => this.done(op, at2, quota));
        return;
      }
      i.status = 'STAGING';
      for (const a of i.networkInterfaces.flatMap((n) => n.accessConfigs)) if (!a.static) a.natIP = this.allocateExternal();
      this.timeline.at(at + step, (at2) => {
        if (i.status !== 'STAGING') return this.done(op, at2);
        i.status = 'RUNNING';
        i.lastStartTimestamp = timestamp(at2);
        this.done(op, at2);
      });
    });
    return op;
  }

  deleteInstance(zone: string, name: string): FakeOperation {
    this.requireZone(zone);
    const i = this.getInstance(zone, name);
    const key = `${zone}/${name}`;
    const op = this.newOperation(zone, 'delete', this.instanceUrl(i), i.id);
    const step = this.stepMs;
    const t0 = this.timeline.now();
    this.timeline.at(t0 + step, (at) => {
      this.running(op, at);
      if (this.instances.get(key) !== i) return this.done(op, at);
      if (i.status !== 'TERMINATED') i.status = 'STOPPING';
      this.timeline.at(at + step, (at2) => {
        if (this.instances.get(key) === i) this.instances.delete(key);
        // Its static addresses go back to RESERVED.
        for (const a of this.addresses.values()) a.users = a.users.filter((u) => u !== this.instanceUrl(i));
        this.done(op, at2);
      });
    });
    return op;
  }

  setLabels(zone: string, name: string, body: Record<string, unknown>): FakeOperation {
    this.requireZone(zone);
    const i = this.getInstance(zone, name);
    if (body.labelFingerprint !== i.labelFingerprint) {
      throw new ApiError(412, 'conditionNotMet', 'Labels fingerprint either invalid or resource labels have changed', 'global');
    }
    const labels = this.validateLabels('labels', body.labels);
    const op = this.newOperation(zone, 'setLabels', this.instanceUrl(i), i.id);
    const t0 = this.timeline.now();
    this.timeline.at(t0 + this.stepMs, (at) => {
      i.labels = labels;
      i.labelFingerprint = fingerprint(sortedLabels(labels));
      this.done(op, at);
    });
    return op;
  }

  // ----- disks ------------------------------------------------------------------------------

  /** Disk `name` of the zone and the VM it is attached to (every disk here lives in a VM: autoDelete). */
  private findDisk(zone: string, name: string): { instance: FakeInstance; disk: FakeDisk } {
    this.requireZone(zone);
    const url = `${this.zoneUrl(zone)}/disks/${name}`;
    for (const instance of this.listInstances(zone)) {
      const disk = instance.disks.find((d) => d.source === url);
      if (disk) return { instance, disk };
    }
    throw notFound(`projects/${this.project}/zones/${zone}/disks/${name}`);
  }

  /** disks.get: the Disk resource as the Compute API returns it. */
  diskJson(zone: string, name: string): Record<string, unknown> {
    const { instance, disk } = this.findDisk(zone, name);
    return {
      kind: 'compute#disk',
      id: BigInt(`0x${createHash('sha256').update(disk.source).digest('hex').slice(0, 15)}`).toString(),
      creationTimestamp: instance.creationTimestamp,
      name,
      sizeGb: String(disk.diskSizeGb),
      zone: this.zoneUrl(zone),
      status: 'READY',
      selfLink: disk.source,
      type: `${this.zoneUrl(zone)}/diskTypes/${disk.type ? lastSegment(disk.type) : 'pd-standard'}`,
      ...(disk.sourceImage ? { sourceImage: disk.sourceImage } : {}),
      users: [this.instanceUrl(instance)],
      physicalBlockSizeBytes: '4096',
      architecture: 'X86_64',
    };
  }

  /**
   * disks.resize (POST .../disks/NAME/resize {"sizeGb": "N"}): the new size must be larger, as
   * GCE says; the size changes when the operation completes (one step later), online.
   */
  resizeDisk(zone: string, name: string, body: Record<string, unknown>, requestId?: string): FakeOperation {
    const { disk } = this.findDisk(zone, name);
    const size = Number(body.sizeGb);
    if (body.sizeGb === undefined || !Number.isInteger(size) || size < 1) throw invalid('sizeGb', body.sizeGb, 'Disk size must be a positive integer.');
    if (size <= disk.diskSizeGb) throw invalid('sizeGb', body.sizeGb, `New disk size '${size}' GB must be larger than existing size '${disk.diskSizeGb}' GB.`);
    const op = this.newOperation(zone, 'resizeDisk', disk.source, numericId(), requestId);
    const t0 = this.timeline.now();
    this.timeline.at(t0 + this.stepMs, (at) => {
      disk.diskSizeGb = size;
      this.done(op, at);
    });
    return op;
  }

  /** Puts an instance directly into the model (an instance created outside stratus, or by an earlier run). */
  addInstance(zone: string, instance: Partial<FakeInstance> & { name: string }): FakeInstance {
    const mt = this.machineType(zone, instance.machineType ?? 'e2-micro');
    const labels = instance.labels ?? {};
    const full: FakeInstance = {
      id: numericId(),
      zone,
      machineType: mt.name,
      cpus: mt.guestCpus,
      memoryMb: mt.memoryMb,
      status: 'RUNNING',
      labelFingerprint: fingerprint(sortedLabels(labels)),
      metadata: [],
      metadataFingerprint: fingerprint([]),
      disks: [{ deviceName: instance.name, boot: true, autoDelete: true, diskSizeGb: 10, source: `${this.zoneUrl(zone)}/disks/${instance.name}` }],
      networkInterfaces: [{ name: 'nic0', network: 'default', networkIP: this.allocateInternal(), accessConfigs: [] }],
      scheduling: { onHostMaintenance: 'MIGRATE', automaticRestart: true, preemptible: false },
      creationTimestamp: timestamp(this.timeline.now()),
      insertBody: {},
      ...instance,
      labels,
    };
    this.instances.set(`${zone}/${full.name}`, full);
    return full;
  }

  // ----- static addresses and access configs ------------------------------------------------

  requireRegion(region: string): void {
    if (!this.quotas.has(region)) throw notFound(`projects/${this.project}/regions/${region}`);
  }

  addressUrl(a: FakeAddress): string {
    return `${this.regionUrl(a.region)}/addresses/${a.name}`;
  }

  getAddress(region: string, name: string): FakeAddress {
    this.requireRegion(region);
    const a = this.addresses.get(`${region}/${name}`);
    if (!a) throw notFound(`projects/${this.project}/regions/${region}/addresses/${name}`);
    return a;
  }

  listAddresses(region: string): FakeAddress[] {
    this.requireRegion(region);
    return [...this.addresses.values()].filter((a) => a.region === region).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  addressJson(a: FakeAddress): Record<string, unknown> {
    return {
      kind: 'compute#address',
      id: a.id,
      creationTimestamp: a.creationTimestamp,
      name: a.name,
      ...(a.description ? { description: a.description } : {}),
      address: a.address,
      status: a.users.length > 0 ? 'IN_USE' : 'RESERVED',
      region: this.regionUrl(a.region),
      selfLink: this.addressUrl(a),
      ...(a.users.length > 0 ? { users: [...a.users] } : {}),
      networkTier: a.networkTier,
      labelFingerprint: fingerprint({}),
      addressType: 'EXTERNAL',
    };
  }

  /** addresses.insert: a regional operation; over the STATIC_ADDRESSES quota it ends with QUOTA_EXCEEDED. */
  insertAddress(region: string, body: Record<string, unknown>): FakeOperation {
    this.requireRegion(region);
    const name = body.name;
    if (typeof name !== 'string' || !NAME.test(name)) {
      throw invalid('resource.name', name, "Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'");
    }
    const key = `${region}/${name}`;
    if (this.addresses.has(key) || this.reserved.has(key)) {
      throw new ApiError(409, 'alreadyExists', `The resource 'projects/${this.project}/regions/${region}/addresses/${name}' already exists`);
    }
    if (body.addressType !== undefined && body.addressType !== 'EXTERNAL') throw invalid('resource.addressType', body.addressType, 'Only EXTERNAL addresses are supported by this fake.');
    const tier = typeof body.networkTier === 'string' ? body.networkTier : 'PREMIUM';
    if (tier !== 'PREMIUM' && tier !== 'STANDARD') throw invalid('resource.networkTier', tier, "Must be one of 'PREMIUM', 'STANDARD'.");
    const op = this.newRegionOperation(region, 'insert', `${this.regionUrl(region)}/addresses/${name}`, numericId());
    this.reserved.add(key);
    const t0 = this.timeline.now();
    this.timeline.at(t0 + this.stepMs, (at) => {
      this.running(op, at);
      this.reserved.delete(key);
      const quota = this.regionQuotaError(region, [['STATIC_ADDRESSES', 1]]);
      if (quota) return this.done(op, at, quota);
      this.addresses.set(key, {
        id: op.targetId,
        name,
        region,
        address: this.allocateExternal(),
        ...(typeof body.description === 'string' ? { description: body.description } : {}),
        networkTier: tier,
        creationTimestamp: timestamp(at),
        users: [],
      });
      this.done(op, at);
    });
    return op;
  }

  /** addresses.delete: refused while an instance uses the address, as the API does. */
  deleteAddress(region: string, name: string): FakeOperation {
    const a = this.getAddress(region, name);
    if (a.users.length > 0) {
      throw new ApiError(400, 'resourceInUseByAnotherResource', `The address resource '${this.addressUrl(a).replace(`${API_BASE}/`, '')}' is already being used by '${a.users[0]?.replace(`${API_BASE}/`, '') ?? ''}'`);
    }
    const op = this.newRegionOperation(region, 'delete', this.addressUrl(a), a.id);
    this.timeline.at(this.timeline.now() + this.stepMs, (at) => {
      if (this.addresses.get(`${region}/${name}`) === a) this.addresses.delete(`${region}/${name}`);
      this.done(op, at);
    });
    return op;
  }

  private nicOf(i: FakeInstance, networkInterface: string | undefined): FakeNic {
    if (!networkInterface) throw new ApiError(400, 'required', "Required parameter 'networkInterface' is missing.");
    const nic = i.networkInterfaces.find((n) => n.name === networkInterface);
    if (!nic) throw invalid('networkInterface', networkInterface, `The network interface '${networkInterface}' does not exist on instance '${i.name}'.`);
    return nic;
  }

  /**
   * instances.addAccessConfig: one access config per interface (the API's limit); a `natIP`
   * must be a static address reserved in the instance's region and not used by another
   * resource (else the operation fails with IP_IN_USE_BY_ANOTHER_RESOURCE); without one an
   * ephemeral address is taken. Either counts against IN_USE_ADDRESSES.
   */
  addAccessConfig(zone: string, name: string, networkInterface: string | undefined, body: Record<string, unknown>): FakeOperation {
    this.requireZone(zone);
    const i = this.getInstance(zone, name);
    const nic = this.nicOf(i, networkInterface);
    if (body.type !== undefined && body.type !== 'ONE_TO_ONE_NAT') throw invalid('resource.type', body.type, 'Only ONE_TO_ONE_NAT is supported.');
    if (nic.accessConfigs.length > 0) throw new ApiError(400, 'invalid', 'At most one access config currently supported.');
    const region = regionOf(zone);
    let address: FakeAddress | undefined;
    if (body.natIP !== undefined) {
      if (typeof body.natIP !== 'string') throw invalid('resource.natIP', body.natIP, 'Must be an IP address.');
      address = [...this.addresses.values()].find((a) => a.region === region && a.address === body.natIP);
      if (!address) throw invalid('resource.natIP', body.natIP, `The IP address is not a static address reserved in region '${region}'.`);
    }
    const config: FakeAccessConfig = {
      type: 'ONE_TO_ONE_NAT',
      name: typeof body.name === 'string' ? body.name : 'External NAT',
      networkTier: typeof body.networkTier === 'string' ? body.networkTier : (address?.networkTier ?? 'PREMIUM'),
    };
    const op = this.newOperation(zone, 'addAccessConfig', this.instanceUrl(i), i.id);
    this.timeline.at(this.timeline.now() + this.stepMs, (at) => {
      this.running(op, at);
      if (nic.accessConfigs.length > 0) return this.done(op, at, { code: 'INVALID_USAGE', message: 'At most one access config currently supported.' });
      if (address) {
        if (this.addresses.get(`${region}/${address.name}`) !== address) {
          return this.done(op, at, { code: 'RESOURCE_NOT_FOUND', message: `The resource '${this.addressUrl(address).replace(`${API_BASE}/`, '')}' was not found` });
        }
        if (address.users.some((u) => u !== this.instanceUrl(i))) {
          return this.done(op, at, { code: 'IP_IN_USE_BY_ANOTHER_RESOURCE', message: `IP '${address.address}' is already being used by another resource.` });
        }
      }
      const running = i.status !== 'TERMINATED' && i.status !== 'SUSPENDED';
      // A static address already counts while reserved only against STATIC_ADDRESSES; in use it counts against IN_USE_ADDRESSES too.
      const quota = address || running ? this.regionQuotaError(region, [['IN_USE_ADDRESSES', 1]]) : undefined;
      if (quota) return this.done(op, at, quota);
      if (address) {
        config.natIP = address.address;
        config.static = true;
        address.users = [this.instanceUrl(i)];
      } else if (running) {
        config.natIP = this.allocateExternal();
      }
      nic.accessConfigs.push(config);
      this.done(op, at);
    });
    return op;
  }

  /** instances.deleteAccessConfig: a static address it carried goes back to RESERVED. */
  deleteAccessConfig(zone: string, name: string, networkInterface: string | undefined, accessConfig: string | undefined): FakeOperation {
    this.requireZone(zone);
    const i = this.getInstance(zone, name);
    const nic = this.nicOf(i, networkInterface);
    if (!accessConfig) throw new ApiError(400, 'required', "Required parameter 'accessConfig' is missing.");
    if (!nic.accessConfigs.some((a) => a.name === accessConfig)) {
      throw invalid('accessConfig', accessConfig, `The access config '${accessConfig}' does not exist on network interface '${nic.name}'.`);
    }
    const op = this.newOperation(zone, 'deleteAccessConfig', this.instanceUrl(i), i.id);
    this.timeline.at(this.timeline.now() + this.stepMs, (at) => {
      this.running(op, at);
      const gone = nic.accessConfigs.filter((a) => a.name === accessConfig);
      nic.accessConfigs = nic.accessConfigs.filter((a) => a.name !== accessConfig);
      for (const a of gone) {
        if (!a.static) continue;
        for (const addr of this.addresses.values()) if (addr.address === a.natIP) addr.users = addr.users.filter((u) => u !== this.instanceUrl(i));
      }
      this.done(op, at);
    });
    return op;
  }
}
