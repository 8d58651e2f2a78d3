/**
 * A fake of the Compute Engine v1 REST API on 127.0.0.1, faithful wherever the official
 * `@google-cloud/compute` client (REST transport) can tell: the same paths and query
 * parameters, resources with the real field names and URL-valued references, asynchronous
 * zonal operations (PENDING → RUNNING → DONE) with `wait` blocking until DONE or a deadline,
 * instance status progression, labels with `labelFingerprint`, ephemeral `natIP` only for an
 * access config (released on stop), list pagination and `filter`, `aggregatedList`, region
 * quotas that the operations enforce (`QUOTA_EXCEEDED` inside the operation's error), and the
 * API's error body `{"error": {code, message, errors: [{message, domain, reason}], status}}`.
 *
 * ```ts
 * const gce = await startFakeGce({ project: 'demo-project', stepMs: 20 });
 * // point the client (or connectGce({ endpoint: gce.endpoint, ... })) at it
 * gce.inject.quota('us-central1', 'CPUS', 0);        // inserts fail with QUOTA_EXCEEDED
 * gce.inject.rateLimit({ count: 5, retryAfterSeconds: 2 }); // next 5 requests: 429 + Retry-After
 * gce.requests.filter((r) => r.method === 'POST');  // every request, recorded
 * await gce.close();
 * ```
 *
 * Authenticated as Google's: `POST /token` takes the JWT-bearer grant of the service-account
 * key in `serviceAccountKey` and mints expiring bearer tokens; a Compute request without a
 * live one is a 401 `UNAUTHENTICATED`.
 *
 * Served: instances insert/get/list/aggregatedList/delete/start/stop/resume/setLabels, disks
 * get/resize (the data disks of the VMs; a resize completes one step later),
 * zoneOperations get/wait, machineTypes list/get, images get/getFromFamily, zones get,
 * regions get, addresses insert/get/list/delete (regional operations; regionOperations
 * get/wait), instances addAccessConfig/deleteAccessConfig; and Cloud Monitoring's
 * `GET /v3/projects/P/timeSeries` for `compute.googleapis.com/instance/cpu/usage_time`
 * (monitoring.ts: a per-instance load the test sets, `gce.monitoring.setLoad(name, vcpus)`).
 * Anything else is a 404 in the same error shape.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { compileFilter, FilterSyntaxError } from './filter.js';
import { FakeOAuth, OAuthError } from './oauth.js';
import { FakeMonitoring } from './monitoring.js';
import { API_BASE, ApiError, FakeGceModel, MACHINE_TYPES, invalid, notFound, type FakeGceModelOptions } from './state.js';

export { ApiError, FakeGceModel, MACHINE_TYPES, regionOf, type FakeAddress, type FakeInstance, type FakeOperation, type FakeImage, type InstanceStatus } from './state.js';

export interface FakeGceOptions extends Partial<FakeGceModelOptions> {
  /** Port on 127.0.0.1 (default: any free one). */
  port?: number;
  /** How long `zoneOperations.wait` blocks before answering with a not-yet-DONE operation. Default 2000 ms (the real API: 2 minutes). */
  waitDeadlineMs?: number;
  /** Cloud Monitoring's sampling period of `instance/cpu/usage_time`. Default 60000 ms (Google's). */
  cpuSamplePeriodMs?: number;
}

export interface RecordedRequest {
  method: string;
  /** Path without the query string, e.g. `/compute/v1/projects/p/zones/z/instances`. */
  path: string;
  /** Decoded query parameters (the client's `$alt` included). */
  query: Record<string, string>;
  /** Parsed JSON body, if any. */
  body: unknown;
  /** Status the fake answered with (0 while in flight). */
  status: number;
  /** Fake-clock time the request arrived. */
  at: number;
}

/** A one-shot or timed failure the fake answers with instead of serving a request. */
export interface InjectedFault {
  status: number;
  reason: string;
  message: string;
  domain?: string;
  /** Seconds for the `Retry-After` header. */
  retryAfterSeconds?: number;
  /** How many matching requests fail (default: unlimited while `untilMs` holds). */
  count?: number;
  /** Wall-clock time (Date.now()) after which the fault stops. */
  untilMs?: number;
  /** Only requests this returns true for. */
  match?: (r: RecordedRequest) => boolean;
}

export interface FakeGceInject {
  /** Sets a regional quota limit; operations that would exceed it end with `QUOTA_EXCEEDED`. */
  quota(region: string, metric: 'CPUS' | 'INSTANCES' | 'STATIC_ADDRESSES' | 'IN_USE_ADDRESSES', limit: number): void;
  /** 429 RESOURCE_EXHAUSTED (`rateLimitExceeded`) with `Retry-After`. */
  rateLimit(options: { count?: number; forMs?: number; retryAfterSeconds: number; match?: (r: RecordedRequest) => boolean }): void;
  /** 5xx answers (`backendError`). */
  serverError(options: { status?: 500 | 502 | 503; count?: number; forMs?: number; retryAfterSeconds?: number; match?: (r: RecordedRequest) => boolean }): void;
  /** 403 forbidden (a missing IAM permission). */
  forbidden(options: { count?: number; match?: (r: RecordedRequest) => boolean }): void;
  /** Any fault. */
  fault(fault: InjectedFault): void;
  /**
   * Requests arriving within the next `forMs` get no answer: each is held until the window
   * ends, then its connection is cut (a backend that hangs; the client sees its timeout).
   */
  stall(options: { forMs: number; match?: (r: RecordedRequest) => boolean }): void;
  /** Operations and status changes take `stepMs` per step from now on. */
  slowOperations(stepMs: number): void;
  /** Removes every injected fault. */
  clear(): void;
}

export interface FakeGce {
  /** `http://127.0.0.1:<port>`, for `connectGce({ endpoint })`. */
  endpoint: string;
  port: number;
  state: FakeGceModel;
  inject: FakeGceInject;
  requests: RecordedRequest[];
  /**
   * A service-account key (JSON) for this fake: its `token_uri` is the fake's `/token`, where
   * the JWT-bearer grant signed with it mints access tokens. Every Compute request needs one.
   */
  serviceAccountKey: string;
  /** The OAuth side: minted-token count, `revokeAll()`, `issueToken()`. */
  oauth: FakeOAuth;
  /** Cloud Monitoring's `instance/cpu/usage_time` (`GET /v3/projects/P/timeSeries`): `setLoad(name, vcpus)`. */
  monitoring: FakeMonitoring;
  /** Moves the fake clock forward by `ms` and applies what became due. */
  advance(ms: number): void;
  close(): Promise<void>;
}

const JSON_TYPE = 'application/json; charset=UTF-8';

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

interface Page<T> {
  items: T[];
  nextPageToken?: string;
}

/** `maxResults` / `pageToken` as the API applies them (500 per page at most). */
function paginate<T>(all: T[], query: Record<string, string>, filter: string | undefined): Page<T> {
  const max = query.maxResults === undefined ? 500 : Number(query.maxResults);
  if (!Number.isInteger(max) || max < 0 || max > 500) throw invalid('maxResults', query.maxResults, 'Must be less than or equal to 500');
  let offset = 0;
  if (query.pageToken) {
    try {
      const t = JSON.parse(Buffer.from(query.pageToken, 'base64url').toString()) as { o: number; f: string };
      if (!Number.isInteger(t.o) || t.f !== (filter ?? '')) throw new Error('mismatch');
      offset = t.o;
    } catch {
      throw invalid('pageToken', query.pageToken, 'The page token is invalid or does not match the request.');
    }
  }
  const size = max === 0 ? 500 : max;
  const items = all.slice(offset, offset + size);
  const next = offset + size < all.length ? Buffer.from(JSON.stringify({ o: offset + size, f: filter ?? '' })).toString('base64url') : undefined;
  return { items, ...(next ? { nextPageToken: next } : {}) };
}

function filtered(items: Record<string, unknown>[], filter: string | undefined): Record<string, unknown>[] {
  let predicate;
  try {
    predicate = compileFilter(filter);
  } catch (err) {
    if (err instanceof FilterSyntaxError) throw invalid('filter', filter, `Invalid list filter expression: ${err.message}`);
    throw err;
  }
  return items.filter(predicate);
}

export async function startFakeGce(options: FakeGceOptions = {}): Promise<FakeGce> {
  const model = new FakeGceModel({
    project: options.project ?? 'stratus-test',
    zones: options.zones ?? ['us-central1-a', 'us-central1-b', 'europe-west1-b'],
    stepMs: options.stepMs ?? 20,
    cpusQuota: options.cpusQuota ?? 24,
    instancesQuota: options.instancesQuota ?? 100,
    networks: options.networks ?? ['default'],
  });
  const waitDeadlineMs = options.waitDeadlineMs ?? 2000;
  const monitoring = new FakeMonitoring(model, options.cpuSamplePeriodMs ?? 60_000);
  const requests: RecordedRequest[] = [];
  let faults: InjectedFault[] = [];
  let stalls: { untilMs: number; match?: (r: RecordedRequest) => boolean }[] = [];
  const held = new Set<NodeJS.Timeout>();

  /** Holds a stalled request until its window ends, then cuts the connection; false when no stall applies. */
  function stalled(r: RecordedRequest, res: ServerResponse): boolean {
    const now = Date.now();
    stalls = stalls.filter((x) => x.untilMs > now);
    const st = stalls.find((x) => !x.match || x.match(r));
    if (!st) return false;
    const t = setTimeout(() => {
      held.delete(t);
      res.destroy();
    }, st.untilMs - now);
    held.add(t);
    return true;
  }

  function injectedFault(r: RecordedRequest): ApiError | undefined {
    const now = Date.now();
    faults = faults.filter((f) => (f.count === undefined || f.count > 0) && (f.untilMs === undefined || f.untilMs > now));
    const f = faults.find((x) => !x.match || x.match(r));
    if (!f) return undefined;
    if (f.count !== undefined) f.count--;
    const headers: Record<string, string> = f.retryAfterSeconds !== undefined ? { 'retry-after': String(f.retryAfterSeconds) } : {};
    return new ApiError(f.status, f.reason, f.message, f.domain ?? 'global', headers);
  }

  /** zoneOperations.wait: blocks until DONE or the deadline, like the real API (which waits up to 2 minutes). */
  async function waitFor(zone: string, name: string, res: ServerResponse, regional = false): Promise<Record<string, unknown>> {
    const deadline = Date.now() + waitDeadlineMs;
    for (;;) {
      model.timeline.settle();
      const op = regional ? model.getRegionOperation(zone, name) : model.getOperation(zone, name);
      if (op.status === 'DONE' || Date.now() >= deadline || res.destroyed) return model.operationJson(op);
      const due = model.timeline.nextDue();
      const sleep = Math.max(1, Math.min(deadline - Date.now(), due === undefined ? Infinity : due - model.timeline.now()));
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, sleep);
        const off = model.timeline.onChange(done);
        // The response's close, not the request's: a request closes once its body is read.
        res.once('close', done);
        function done(): void {
          clearTimeout(t);
          off();
          res.off('close', done);
          resolve();
        }
      });
    }
  }

  async function route(method: string, parts: string[], query: Record<string, string>, body: Record<string, unknown>, res: ServerResponse): Promise<unknown> {
    // parts: ['compute', 'v1', 'projects', P, ...rest]
    if (parts[0] !== 'compute' || parts[1] !== 'v1' || parts[2] !== 'projects' || !parts[3]) throw new ApiError(404, 'notFound', `Not Found: /${parts.join('/')}`);
    const project = parts[3];
    const rest = parts.slice(4);
    const [a, b, c, d, e] = rest;
    // Images live in any project (public image projects included).
    if (a === 'global' && b === 'images' && method === 'GET') {
      if (c === 'family' && d && rest.length === 4) return model.imageJson(model.imageFromFamily(project, d));
      if (c && rest.length === 3) return model.imageJson(model.getImage(project, c));
    }
    model.requireProject(project);
    if (a === 'zones' && b) {
      const zone = b;
      if (rest.length === 2 && method === 'GET') return model.zoneJson(zone);
      if (c === 'instances') {
        model.requireZone(zone);
        if (rest.length === 3 && method === 'GET') {
          const all = filtered(model.listInstances(zone).map((i) => model.instanceJson(i)), query.filter);
          const page = paginate(all, query, query.filter);
          return {
            kind: 'compute#instanceList',
            id: `projects/${project}/zones/${zone}/instances`,
            ...(page.items.length > 0 ? { items: page.items } : {}),
            ...(page.nextPageToken ? { nextPageToken: page.nextPageToken } : {}),
            selfLink: `${model.zoneUrl(zone)}/instances`,
          };
        }
        if (rest.length === 3 && method === 'POST') return model.operationJson(model.insertInstance(zone, body, query.requestId));
        if (d && rest.length === 4 && method === 'GET') return model.instanceJson(model.getInstance(zone, d));
        if (d && rest.length === 4 && method === 'DELETE') return model.operationJson(model.deleteInstance(zone, d));
        if (d && rest.length === 5 && method === 'POST') {
          if (e === 'stop') return model.operationJson(model.stopInstance(zone, d));
          if (e === 'start') return model.operationJson(model.startInstance(zone, d, 'start'));
          if (e === 'resume') return model.operationJson(model.startInstance(zone, d, 'resume'));
          if (e === 'setLabels') return model.operationJson(model.setLabels(zone, d, body));
          if (e === 'addAccessConfig') return model.operationJson(model.addAccessConfig(zone, d, query.networkInterface, body));
          if (e === 'deleteAccessConfig') return model.operationJson(model.deleteAccessConfig(zone, d, query.networkInterface, query.accessConfig));
        }
      }
      if (c === 'disks' && d) {
        if (rest.length === 4 && method === 'GET') return model.diskJson(zone, d);
        if (rest.length === 5 && e === 'resize' && method === 'POST') return model.operationJson(model.resizeDisk(zone, d, body, query.requestId));
      }
      if (c === 'operations' && d) {
        model.requireZone(zone);
        if (rest.length === 4 && method === 'GET') return model.operationJson(model.getOperation(zone, d));
        if (rest.length === 5 && e === 'wait' && method === 'POST') return waitFor(zone, d, res);
      }
      if (c === 'machineTypes' && method === 'GET') {
        model.requireZone(zone);
        if (rest.length === 3) {
          const all = filtered(MACHINE_TYPES.map((t) => model.machineTypeJson(zone, t)), query.filter);
          const page = paginate(all, query, query.filter);
          return {
            kind: 'compute#machineTypeList',
            id: `projects/${project}/zones/${zone}/machineTypes`,
            ...(page.items.length > 0 ? { items: page.items } : {}),
            ...(page.nextPageToken ? { nextPageToken: page.nextPageToken } : {}),
            selfLink: `${model.zoneUrl(zone)}/machineTypes`,
          };
        }
        if (d && rest.length === 4) return model.machineTypeJson(zone, model.machineType(zone, d));
      }
    }
    if (a === 'regions' && b && rest.length === 2 && method === 'GET') return model.regionJson(b);
    if (a === 'regions' && b && c === 'addresses') {
      const region = b;
      if (rest.length === 3 && method === 'GET') {
        const all = filtered(model.listAddresses(region).map((x) => model.addressJson(x)), query.filter);
        const page = paginate(all, query, query.filter);
        return {
          kind: 'compute#addressList',
          id: `projects/${project}/regions/${region}/addresses`,
          ...(page.items.length > 0 ? { items: page.items } : {}),
          ...(page.nextPageToken ? { nextPageToken: page.nextPageToken } : {}),
          selfLink: `${model.regionUrl(region)}/addresses`,
        };
      }
      if (rest.length === 3 && method === 'POST') return model.operationJson(model.insertAddress(region, body));
      if (d && rest.length === 4 && method === 'GET') return model.addressJson(model.getAddress(region, d));
      if (d && rest.length === 4 && method === 'DELETE') return model.operationJson(model.deleteAddress(region, d));
    }
    if (a === 'regions' && b && c === 'operations' && d) {
      model.requireRegion(b);
      if (rest.length === 4 && method === 'GET') return model.operationJson(model.getRegionOperation(b, d));
      if (rest.length === 5 && e === 'wait' && method === 'POST') return waitFor(b, d, res, true);
    }
    if (a === 'aggregated' && b === 'instances' && rest.length === 2 && method === 'GET') {
      // Pagination runs over the instances of all zones in zone order; each page groups its
      // instances by scope, and zones without instances on the page carry a warning.
      const all = filtered(
        model.options.zones.flatMap((z) => model.listInstances(z).map((i) => model.instanceJson(i))),
        query.filter,
      );
      const page = paginate(all, query, query.filter);
      const items: Record<string, unknown> = {};
      for (const zone of model.options.zones) {
        const here = page.items.filter((i) => i.zone === model.zoneUrl(zone));
        items[`zones/${zone}`] =
          here.length > 0
            ? { instances: here }
            : {
                warning: {
                  code: 'NO_RESULTS_ON_PAGE',
                  message: 'There are no results for scope \'zones/' + zone + '\' on this page.',
                  data: [{ key: 'scope', value: `zones/${zone}` }],
                },
              };
      }
      return {
        kind: 'compute#instanceAggregatedList',
        id: `projects/${project}/aggregated/instances`,
        items,
        ...(page.nextPageToken ? { nextPageToken: page.nextPageToken } : {}),
        selfLink: `${API_BASE}/projects/${project}/aggregated/instances`,
      };
    }
    throw notFound(`projects/${project}/${rest.join('/')}`);
  }

  let port = 0;
  const oauth = new FakeOAuth(model.project, () => `http://127.0.0.1:${port}/token`);

  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const query: Record<string, string> = {};
      for (const [k, v] of url.searchParams) query[k] = v;
      const text = await readBody(req);
      if (url.pathname === '/token') {
        try {
          if (req.method !== 'POST') throw new OAuthError(405, 'invalid_request', 'POST required');
          send(res, 200, oauth.grant(text));
        } catch (err) {
          const e = err instanceof OAuthError ? err : new OAuthError(500, 'server_error', String(err));
          send(res, e.status, e.body());
        }
        return;
      }
      let body: unknown;
      const record: RecordedRequest = { method: req.method ?? 'GET', path: url.pathname, query, body: undefined, status: 0, at: model.timeline.now() };
      requests.push(record);
      try {
        oauth.authenticate(req.headers.authorization);
        if (text.trim() !== '') {
          try {
            body = JSON.parse(text);
          } catch {
            throw new ApiError(400, 'parseError', 'This API does not support parsing form-encoded input.');
          }
        }
        record.body = body;
        if (stalled(record, res)) return;
        const fault = injectedFault(record);
        if (fault) throw fault;
        monitoring.advance(); // CPU used at the rates that held until now
        model.timeline.settle();
        const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
        if (parts[0] === 'v3' && parts[1] === 'projects' && parts[2] && parts[3] === 'timeSeries' && parts.length === 4 && record.method === 'GET') {
          const result = monitoring.listTimeSeries(parts[2], query);
          record.status = 200;
          send(res, 200, result);
          return;
        }
        const bodyObject = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
        const result = await route(record.method, parts, query, bodyObject, res);
        record.status = 200;
        send(res, 200, result);
      } catch (err) {
        const apiErr = err instanceof ApiError ? err : new ApiError(500, 'backendError', `Internal error: ${err instanceof Error ? err.message : String(err)}`);
        record.status = apiErr.code;
        send(res, apiErr.code, apiErr.body(), apiErr.headers);
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  port = (server.address() as AddressInfo).port;

  const inject: FakeGceInject = {
    quota(region, metric, limit) {
      model.setQuota(region, metric, limit);
    },
    rateLimit({ count, forMs, retryAfterSeconds, match }) {
      faults.push({
        status: 429,
        reason: 'rateLimitExceeded',
        domain: 'usageLimits',
        message: `Quota exceeded for quota metric 'Queries' and limit 'Queries per minute' of service 'compute.googleapis.com' for consumer 'project_number:${model.project}'.`,
        retryAfterSeconds,
        ...(count !== undefined ? { count } : {}),
        ...(forMs !== undefined ? { untilMs: Date.now() + forMs } : {}),
        ...(match ? { match } : {}),
      });
    },
    serverError({ status = 503, count, forMs, retryAfterSeconds, match }) {
      faults.push({
        status,
        reason: 'backendError',
        message: status === 503 ? 'The service is currently unavailable.' : 'Internal error. Please try again or contact Google Support.',
        ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}),
        ...(count !== undefined ? { count } : {}),
        ...(forMs !== undefined ? { untilMs: Date.now() + forMs } : {}),
        ...(match ? { match } : {}),
      });
    },
    forbidden({ count, match }) {
      faults.push({
        status: 403,
        reason: 'forbidden',
        message: `Required 'compute.instances.create' permission for 'projects/${model.project}'`,
        ...(count !== undefined ? { count } : {}),
        ...(match ? { match } : {}),
      });
    },
    fault(f) {
      faults.push({ ...f });
    },
    stall({ forMs, match }) {
      stalls.push({ untilMs: Date.now() + forMs, ...(match ? { match } : {}) });
    },
    slowOperations(stepMs) {
      model.stepMs = stepMs;
    },
    clear() {
      faults = [];
      stalls = [];
    },
  };

  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    state: model,
    inject,
    requests,
    serviceAccountKey: oauth.serviceAccountKey(),
    oauth,
    monitoring,
    advance(ms) {
      monitoring.advance();
      model.timeline.advance(ms);
      model.timeline.settle();
    },
    async close() {
      for (const t of held) clearTimeout(t);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
