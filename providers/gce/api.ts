/**
 * The Compute API as the GCE provider uses it: the official `@google-cloud/compute` clients
 * (REST transport) behind one call wrapper that
 *
 * - gives every request a deadline (`requestTimeoutMs`; `zoneOperations.wait`, which the
 *   server may hold for up to 2 minutes, gets `waitTimeoutMs`) and turns off the client's own
 *   retries (by default get/list retry for up to 600 s, which would stall a reconcile);
 * - aborts everything in flight on `close()`;
 * - translates failures into `ReconcileError`s: 429 → `Throttled`, 5xx → `ProviderUnavailable`,
 *   transport failures → `NodeUnreachable` (all retryable, with backoff), 403 `quotaExceeded` /
 *   `rateLimitExceeded` → `QuotaExceeded` (retryable, ~30 s), other 403 / 401 →
 *   `PermissionDenied` (not retryable), 400 → `InvalidSpec`; 404 / 409 / 412 reach the caller
 *   as `GceApiError` to interpret (absent instance, adoption, stale fingerprint);
 * - backs off: after a 429, a 5xx or an unreachable endpoint no request is sent until the
 *   server's `Retry-After` (else an exponential delay) has passed — calls in that window fail
 *   at once with the same reason and the remaining delay as `retryAfterMs`.
 *
 * The client classes are loaded from the package's `v1` module rather than its root: the root
 * also loads the `v1beta` and `v1small` surfaces (30 MB of generated code, ~5 s at start-up).
 */
import { readFileSync } from 'node:fs';
import type { AuthClient, JWTInput } from 'google-auth-library';
import type { protos } from '@google-cloud/compute';
import type { AddressesClient, DisksClient, ImagesClient, InstancesClient, MachineTypesClient, RegionOperationsClient, RegionsClient, ZoneOperationsClient, ZonesClient } from '@google-cloud/compute/build/src/v1/index.js';
import { AsyncLocalStorage } from 'node:async_hooks';
import { DEADLINE_EXCEEDED, ReconcileError } from '../../runtime/errors.js';
import { GceApiError, describeFailure, parseEndpoint, type TransportError } from './http.js';
import type { Instance, Operation } from './spec.js';

export type Image = protos.google.cloud.compute.v1.IImage;
export type Zone = protos.google.cloud.compute.v1.IZone;
export type Region = protos.google.cloud.compute.v1.IRegion;
export type MachineType = protos.google.cloud.compute.v1.IMachineType;
export type Address = protos.google.cloud.compute.v1.IAddress;
export type AccessConfig = protos.google.cloud.compute.v1.IAccessConfig;
export type Disk = protos.google.cloud.compute.v1.IDisk;

/** Where Google's client libraries send the JWT-bearer grant of a service-account key. */
export const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';

type ClientOptions = NonNullable<ConstructorParameters<typeof InstancesClient>[0]>;

/** Compute, and Cloud Monitoring's read scope for the autoscaler's CPU metric (`cpuUsagePoints`). */
const SCOPES = ['https://www.googleapis.com/auth/compute', 'https://www.googleapis.com/auth/monitoring.read'];

/** Where Cloud Monitoring lives when no `endpoint` is given. */
export const MONITORING_URL = 'https://monitoring.googleapis.com';

/** One DELTA point of `compute.googleapis.com/instance/cpu/usage_time`: vCPU seconds used in `[start, end]` (ms). */
export interface CpuUsagePoint {
  start: number;
  end: number;
  seconds: number;
}

interface TimeSeriesList {
  timeSeries?: { points?: { interval?: { startTime?: string; endTime?: string }; value?: { doubleValue?: number | string; int64Value?: string } }[] }[];
  nextPageToken?: string;
}

export interface ComputeApiOptions {
  project: string;
  zone: string;
  endpoint?: string;
  credentialsJson?: string;
  requestTimeoutMs: number;
  waitTimeoutMs: number;
}

interface Clients {
  /** The OAuth2 client itself, for the REST calls outside Compute (Cloud Monitoring). */
  auth: AuthClient;
  instances: InstancesClient;
  operations: ZoneOperationsClient;
  zones: ZonesClient;
  regions: RegionsClient;
  images: ImagesClient;
  machineTypes: MachineTypesClient;
  addresses: AddressesClient;
  regionOperations: RegionOperationsClient;
  disks: DisksClient;
}

/** Backoff after a throttled or failed call; shared by every call on the connection. */
interface Gate {
  until: number;
  reason: string;
  message: string;
  failures: number;
}

export class ComputeApi {
  private readonly caller = new AsyncLocalStorage<AbortSignal>();
  readonly project: string;
  readonly zone: string;
  private readonly closing = new AbortController();
  private clients?: Promise<Clients>;
  private gate: Gate = { until: 0, reason: '', message: '', failures: 0 };

  constructor(private readonly options: ComputeApiOptions) {
    this.project = options.project;
    this.zone = options.zone;
    if (options.endpoint) parseEndpoint(options.endpoint);
  }

  get closed(): boolean {
    return this.closing.signal.aborted;
  }

  /** Aborts every request in flight and releases the clients; later calls fail with `NodeUnreachable`. */
  close(): void {
    this.closing.abort();
    const clients = this.clients;
    this.clients = undefined;
    void clients?.then(
      (c) => Promise.allSettled([c.instances.close(), c.operations.close(), c.zones.close(), c.regions.close(), c.images.close(), c.machineTypes.close(), c.addresses.close(), c.regionOperations.close(), c.disks.close()]),
      () => undefined,
    );
  }

  /** ms until the backoff window closes (0 when calls may go out). */
  backoffRemainingMs(): number {
    return Math.max(0, this.gate.until - performance.now());
  }

  /**
   * The service-account key (from the node's Secret, else the file Application Default
   * Credentials name in `GOOGLE_APPLICATION_CREDENTIALS`), or undefined for the other ADC
   * sources (gcloud's user credentials, the metadata server).
   */
  private keyJson(): { json: string; source: string } | undefined {
    if (this.options.credentialsJson) return { json: this.options.credentialsJson, source: 'the service-account key' };
    const file = process.env.GOOGLE_APPLICATION_CREDENTIALS;
    if (!file) return undefined;
    try {
      return { json: readFileSync(file, 'utf8'), source: `GOOGLE_APPLICATION_CREDENTIALS (${file})` };
    } catch (err) {
      throw new ReconcileError('InvalidCredentials', `cannot read GOOGLE_APPLICATION_CREDENTIALS (${file}): ${(err as Error).message}`, false);
    }
  }

  /**
   * An OAuth2 client for the key (JWT-bearer grant for a service account) or Application
   * Default Credentials. A key's `token_uri` is honoured, as Google's Go and Python libraries
   * do: google-auth-library always posts the grant to Google's token URL, so a request to it
   * is redirected to the key's own `token_uri` (a private or test OAuth endpoint).
   */
  private async authClient(timeoutMs: number): Promise<AuthClient> {
    // Loaded on a GCE node's first connection: the Google libraries cost about a second of
    // CPU to load, which every `stratus` command and every node kind would otherwise pay.
    const { GoogleAuth } = await import('google-auth-library');
    let client: AuthClient;
    const key = this.keyJson();
    let tokenUri: string | undefined;
    if (key) {
      let credentials: JWTInput & { token_uri?: string };
      try {
        credentials = JSON.parse(key.json) as JWTInput & { token_uri?: string };
      } catch (err) {
        throw new ReconcileError('InvalidCredentials', `${key.source} is not JSON: ${(err as Error).message}`, false);
      }
      if (typeof credentials !== 'object' || credentials === null || typeof credentials.type !== 'string') {
        throw new ReconcileError('InvalidCredentials', `${key.source} has no "type" (expected a key file of type service_account)`, false);
      }
      if (typeof credentials.token_uri === 'string' && credentials.token_uri !== GOOGLE_TOKEN_URL) tokenUri = credentials.token_uri;
      try {
        client = (await new GoogleAuth({ credentials, scopes: SCOPES }).getClient()) as AuthClient;
      } catch (err) {
        throw new ReconcileError('InvalidCredentials', `cannot use ${key.source}: ${(err as Error).message}`, false);
      }
    } else {
      try {
        client = (await new GoogleAuth({ scopes: SCOPES }).getClient()) as AuthClient;
      } catch (err) {
        throw new ReconcileError('InvalidCredentials', `no credentials: give the ComputeNode a service-account key Secret or run with Application Default Credentials (${(err as Error).message})`, false);
      }
    }
    const transporter = client.transporter;
    transporter.defaults = { ...transporter.defaults, timeout: timeoutMs, retry: false };
    const closing = this.closing.signal;
    transporter.interceptors.request.add({
      resolved: async (config) => {
        config.signal = config.signal ? AbortSignal.any([config.signal, closing]) : closing;
        if (tokenUri && String(config.url) === GOOGLE_TOKEN_URL) config.url = new URL(tokenUri);
        return config;
      },
    });
    return client;
  }

  private async build(): Promise<Clients> {
    const { AddressesClient, DisksClient, ImagesClient, InstancesClient, MachineTypesClient, RegionOperationsClient, RegionsClient, ZoneOperationsClient, ZonesClient } = await import('@google-cloud/compute/build/src/v1/index.js');
    const [quick, waiting] = await Promise.all([this.authClient(this.options.requestTimeoutMs), this.authClient(this.options.waitTimeoutMs)]);
    const where = this.options.endpoint ? parseEndpoint(this.options.endpoint) : {};
    // google-gax bundles its own google-auth-library; the AuthClient interface is the same.
    const opts = (authClient: AuthClient): ClientOptions => ({ ...where, authClient: authClient as unknown as ClientOptions['authClient'] });
    return {
      auth: quick,
      instances: new InstancesClient(opts(quick)),
      operations: new ZoneOperationsClient(opts(waiting)),
      zones: new ZonesClient(opts(quick)),
      regions: new RegionsClient(opts(quick)),
      images: new ImagesClient(opts(quick)),
      machineTypes: new MachineTypesClient(opts(quick)),
      addresses: new AddressesClient(opts(quick)),
      regionOperations: new RegionOperationsClient(opts(waiting)),
      disks: new DisksClient(opts(quick)),
    };
  }

  private api(): Promise<Clients> {
    this.clients ??= this.build().catch((err: unknown) => {
      this.clients = undefined;
      throw err;
    });
    return this.clients;
  }

  /** Per-call options: no client-side retries (the controller retries), no auto-pagination. */
  private static readonly CALL = { retry: null, autoPaginate: false } as const;

  /**
   * Runs one API call under the backoff gate. Throws `ReconcileError` for what the caller cannot
   * act on, and `GceApiError` for HTTP answers it may interpret (404, 409, 412, 400).
   */
  /**
   * Runs `fn` on behalf of a caller whose `signal` (the reconcile's deadline, the controller
   * stopping) ends the wait of every `call` inside it with `DeadlineExceeded`. The Google
   * client cannot cancel a request in flight: its late answer is ignored (mutations carry a
   * `requestId`, so repeating one is safe).
   */
  forCaller<T>(signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    return signal ? this.caller.run(signal, fn) : fn();
  }

  /** Runs `fn` detached from any caller (background operation polls outlive the call that started them). */
  detached<T>(fn: () => Promise<T>): Promise<T> {
    return this.caller.exit(fn);
  }

  async call<T>(what: string, fn: (c: Clients) => Promise<T>): Promise<T> {
    const caller = this.caller.getStore();
    if (!caller) return this.callNow(what, fn);
    const gaveUp = (): ReconcileError => new ReconcileError(DEADLINE_EXCEEDED, `cannot ${what}: the caller stopped waiting (its deadline passed or the controller is stopping)`);
    if (caller.aborted) throw gaveUp();
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_resolve, reject) => {
      onAbort = () => reject(gaveUp());
      caller.addEventListener('abort', onAbort, { once: true });
    });
    const work = this.callNow(what, fn);
    work.catch(() => undefined); // a late failure after the caller gave up is nobody's to handle
    try {
      return await Promise.race([work, aborted]);
    } finally {
      caller.removeEventListener('abort', onAbort!);
    }
  }

  private async callNow<T>(what: string, fn: (c: Clients) => Promise<T>): Promise<T> {
    if (this.closed) throw new ReconcileError('NodeUnreachable', `cannot ${what}: the connection is closed`);
    const remaining = this.backoffRemainingMs();
    if (remaining > 0) {
      throw new ReconcileError(this.gate.reason, `cannot ${what}: backing off for ${remaining} ms after: ${this.gate.message}`, true, remaining);
    }
    const clients = await this.api();
    try {
      const result = await fn(clients);
      this.gate.failures = 0;
      return result;
    } catch (err) {
      if (err instanceof ReconcileError) throw err;
      throw this.translate(err, what);
    }
  }

  private backoff(reason: string, message: string, serverDelayMs: number | undefined, baseMs: number, maxMs: number): ReconcileError {
    this.gate.failures++;
    const delay = serverDelayMs ?? Math.min(maxMs, baseMs * 2 ** (this.gate.failures - 1));
    this.gate = { ...this.gate, until: performance.now() + delay, reason, message };
    return new ReconcileError(reason, message, true, delay);
  }

  private translate(err: unknown, what: string): Error {
    const f = describeFailure(err);
    const text = `cannot ${what}: ${f.message}`;
    if (f.status === 0) {
      if (this.closed) return new ReconcileError('NodeUnreachable', `cannot ${what}: the connection is closed`);
      const e = err as TransportError;
      const timedOut = e.name === 'AbortError' || e.name === 'TimeoutError' || /aborted|timeout/i.test(String(e.message));
      const where = this.options.endpoint ?? 'compute.googleapis.com';
      return this.backoff(
        'NodeUnreachable',
        timedOut ? `cannot ${what}: ${where} did not answer in time` : `cannot ${what}: ${where} is unreachable (${String(e.code ?? e.message)})`,
        undefined,
        1000,
        30_000,
      );
    }
    if (f.status === 429) return this.backoff('Throttled', `GCE throttled the request to ${what}: ${f.message}`, f.retryAfterMs, 1000, 60_000);
    if (f.status >= 500) return this.backoff('ProviderUnavailable', `GCE failed to ${what} (HTTP ${f.status}): ${f.message}`, f.retryAfterMs, 1000, 30_000);
    // A 403 rate limit is throttling like a 429 (Compute answers some per-minute limits so).
    if (f.status === 403 && (f.reason === 'rateLimitExceeded' || f.reason === 'userRateLimitExceeded')) {
      return this.backoff('Throttled', `GCE throttled the request to ${what}: ${f.message}`, f.retryAfterMs, 1000, 60_000);
    }
    if (f.status === 403 && f.reason === 'quotaExceeded') return new ReconcileError('QuotaExceeded', text, true, f.retryAfterMs ?? 30_000);
    // The OAuth token endpoint's answer to a bad key (RFC 6749 error codes), before any API call.
    if (f.status === 400 && /^(invalid_grant|invalid_scope|invalid_client|unauthorized_client)\b/.test(f.message)) {
      return new ReconcileError('InvalidCredentials', `${text} (the token endpoint refused the service-account key)`, false);
    }
    if (f.status === 401) return new ReconcileError('PermissionDenied', `${text} (the credentials were refused)`, false);
    if (f.status === 403) return new ReconcileError('PermissionDenied', text, false);
    return new GceApiError(f.status, f.reason, text, f.retryAfterMs);
  }

  // ----- the calls the provider makes -------------------------------------------------------

  /** instances.get; undefined when the instance does not exist. */
  async getInstance(name: string): Promise<Instance | undefined> {
    try {
      return await this.call(`get instance ${name}`, async (c) => (await c.instances.get({ project: this.project, zone: this.zone, instance: name }, ComputeApi.CALL))[0]);
    } catch (err) {
      if (err instanceof GceApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  /**
   * Cloud Monitoring `projects.timeSeries.list` of `compute.googleapis.com/instance/cpu/usage_time`
   * for VM `name` with points ending in `(startMs, endMs]`, every page, oldest first: a plain
   * REST GET with the connection's OAuth2 client (no Monitoring client library).
   */
  async cpuUsagePoints(name: string, startMs: number, endMs: number): Promise<CpuUsagePoint[]> {
    const base = (this.options.endpoint ?? MONITORING_URL).replace(/\/$/, '');
    const out: CpuUsagePoint[] = [];
    let pageToken: string | undefined;
    do {
      const params: Record<string, string> = {
        filter: `metric.type = "compute.googleapis.com/instance/cpu/usage_time" AND resource.type = "gce_instance" AND metric.labels.instance_name = "${name}" AND resource.labels.zone = "${this.zone}"`,
        'interval.startTime': new Date(startMs).toISOString(),
        'interval.endTime': new Date(endMs).toISOString(),
        ...(pageToken ? { pageToken } : {}),
      };
      const page = await this.call(`read the CPU usage of instance ${name}`, async (c) => (await c.auth.request<TimeSeriesList>({ url: `${base}/v3/projects/${encodeURIComponent(this.project)}/timeSeries`, method: 'GET', params })).data);
      for (const ts of page.timeSeries ?? []) {
        for (const p of ts.points ?? []) {
          const start = Date.parse(p.interval?.startTime ?? '');
          const end = Date.parse(p.interval?.endTime ?? '');
          const seconds = Number(p.value?.doubleValue ?? p.value?.int64Value);
          if (!Number.isNaN(start) && !Number.isNaN(end) && Number.isFinite(seconds)) out.push({ start, end, seconds });
        }
      }
      pageToken = page.nextPageToken || undefined;
    } while (pageToken);
    return out.sort((a, b) => a.end - b.end);
  }

  /** instances.list in the zone, every page. */
  async listInstances(filter?: string): Promise<Instance[]> {
    const out: Instance[] = [];
    let pageToken: string | undefined;
    do {
      const [items, , raw] = await this.call('list instances', (c) =>
        c.instances.list(
          { project: this.project, zone: this.zone, maxResults: 500, ...(filter ? { filter } : {}), ...(pageToken ? { pageToken } : {}) },
          ComputeApi.CALL,
        ),
      );
      out.push(...items);
      pageToken = raw?.nextPageToken ?? undefined;
    } while (pageToken);
    return out;
  }

  async insertInstance(body: Instance, requestId: string): Promise<Operation> {
    return this.call(`insert instance ${body.name}`, async (c) => {
      const [lro, raw] = await c.instances.insert({ project: this.project, zone: this.zone, instanceResource: body, requestId }, ComputeApi.CALL);
      return raw ?? (lro.latestResponse as unknown as Operation);
    });
  }

  async instanceAction(action: 'start' | 'stop' | 'resume' | 'delete', name: string): Promise<Operation> {
    return this.call(`${action} instance ${name}`, async (c) => {
      const req = { project: this.project, zone: this.zone, instance: name };
      const [lro, raw] =
        action === 'start'
          ? await c.instances.start(req, ComputeApi.CALL)
          : action === 'stop'
            ? await c.instances.stop(req, ComputeApi.CALL)
            : action === 'resume'
              ? await c.instances.resume(req, ComputeApi.CALL)
              : await c.instances.delete(req, ComputeApi.CALL);
      return raw ?? (lro.latestResponse as unknown as Operation);
    });
  }

  async setLabels(name: string, labels: Record<string, string>, labelFingerprint: string): Promise<Operation> {
    return this.call(`set labels of instance ${name}`, async (c) => {
      const [lro, raw] = await c.instances.setLabels(
        { project: this.project, zone: this.zone, instance: name, instancesSetLabelsRequestResource: { labels, labelFingerprint } },
        ComputeApi.CALL,
      );
      return raw ?? (lro.latestResponse as unknown as Operation);
    });
  }

  /** disks.get in the zone; undefined when the disk does not exist. */
  async getDisk(name: string): Promise<Disk | undefined> {
    try {
      return await this.call(`get disk ${name}`, async (c) => (await c.disks.get({ project: this.project, zone: this.zone, disk: name }, ComputeApi.CALL))[0]);
    } catch (err) {
      if (err instanceof GceApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  /** disks.resize: POST .../disks/NAME/resize {"sizeGb": "N"} (a disk only grows). */
  async resizeDisk(name: string, sizeGb: number, requestId: string): Promise<Operation> {
    return this.call(`resize disk ${name}`, async (c) => {
      const [lro, raw] = await c.disks.resize({ project: this.project, zone: this.zone, disk: name, disksResizeRequestResource: { sizeGb: String(sizeGb) }, requestId }, ComputeApi.CALL);
      return raw ?? (lro.latestResponse as unknown as Operation);
    });
  }

  /** zoneOperations.wait: returns when the operation is DONE or the server's deadline passes. */
  async waitOperation(name: string): Promise<Operation> {
    return this.call(`wait for operation ${name}`, async (c) => (await c.operations.wait({ project: this.project, zone: this.zone, operation: name }, ComputeApi.CALL))[0]);
  }

  async getOperation(name: string): Promise<Operation> {
    return this.call(`get operation ${name}`, async (c) => (await c.operations.get({ project: this.project, zone: this.zone, operation: name }, ComputeApi.CALL))[0]);
  }

  /** images.get, or images.getFromFamily with `family`; undefined when absent. */
  async getImage(project: string, name: string, family = false): Promise<Image | undefined> {
    try {
      return await this.call(`get image ${project}/${family ? 'family/' : ''}${name}`, async (c) =>
        family
          ? (await c.images.getFromFamily({ project, family: name }, ComputeApi.CALL))[0]
          : (await c.images.get({ project, image: name }, ComputeApi.CALL))[0],
      );
    } catch (err) {
      if (err instanceof GceApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  async getZone(): Promise<Zone> {
    return this.call(`get zone ${this.zone}`, async (c) => (await c.zones.get({ project: this.project, zone: this.zone }, ComputeApi.CALL))[0]);
  }

  /** machineTypes.list in the zone, every page. */
  async listMachineTypes(): Promise<MachineType[]> {
    const all: MachineType[] = [];
    let pageToken: string | undefined;
    do {
      const token = pageToken;
      const [items, , raw] = await this.call('list machine types', async (c) =>
        c.machineTypes.list({ project: this.project, zone: this.zone, maxResults: 500, ...(token ? { pageToken: token } : {}) }, ComputeApi.CALL),
      );
      all.push(...(items ?? []));
      pageToken = raw?.nextPageToken ?? undefined;
    } while (pageToken);
    return all;
  }

  async getRegion(region: string): Promise<Region> {
    return this.call(`get region ${region}`, async (c) => (await c.regions.get({ project: this.project, region }, ComputeApi.CALL))[0]);
  }

  // ----- static addresses and access configs (ElasticIPs) ----------------------------------

  /** addresses.get in `region`; undefined when absent. */
  async getAddress(region: string, name: string): Promise<Address | undefined> {
    try {
      return await this.call(`get address ${name}`, async (c) => (await c.addresses.get({ project: this.project, region, address: name }, ComputeApi.CALL))[0]);
    } catch (err) {
      if (err instanceof GceApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  /** addresses.insert: a regional operation (wait with `waitRegionOperation`). */
  async insertAddress(region: string, body: Address): Promise<Operation> {
    return this.call(`reserve address ${body.name}`, async (c) => {
      const [lro, raw] = await c.addresses.insert({ project: this.project, region, addressResource: body }, ComputeApi.CALL);
      return raw ?? (lro.latestResponse as unknown as Operation);
    });
  }

  async deleteAddress(region: string, name: string): Promise<Operation> {
    return this.call(`release address ${name}`, async (c) => {
      const [lro, raw] = await c.addresses.delete({ project: this.project, region, address: name }, ComputeApi.CALL);
      return raw ?? (lro.latestResponse as unknown as Operation);
    });
  }

  /** regionOperations.wait: returns when the operation is DONE or the server's deadline passes. */
  async waitRegionOperation(region: string, name: string): Promise<Operation> {
    return this.call(`wait for operation ${name}`, async (c) => (await c.regionOperations.wait({ project: this.project, region, operation: name }, ComputeApi.CALL))[0]);
  }

  async addAccessConfig(instance: string, networkInterface: string, accessConfig: AccessConfig): Promise<Operation> {
    return this.call(`add an access config to instance ${instance}`, async (c) => {
      const [lro, raw] = await c.instances.addAccessConfig(
        { project: this.project, zone: this.zone, instance, networkInterface, accessConfigResource: accessConfig },
        ComputeApi.CALL,
      );
      return raw ?? (lro.latestResponse as unknown as Operation);
    });
  }

  async deleteAccessConfig(instance: string, networkInterface: string, accessConfig: string): Promise<Operation> {
    return this.call(`delete the access config of instance ${instance}`, async (c) => {
      const [lro, raw] = await c.instances.deleteAccessConfig({ project: this.project, zone: this.zone, instance, networkInterface, accessConfig }, ComputeApi.CALL);
      return raw ?? (lro.latestResponse as unknown as Operation);
    });
  }
}
