/**
 * 10,000 random and malformed requests against `bin/stratus serve`: malformed bodies, paths,
 * query parameters and content types all get a 4xx `Status`, nothing gets a 5xx, and the
 * server process is still up and serving afterwards. The generator is seeded; a failure
 * prints the seed and the offending requests.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startStratusServe, type StratusServe } from '../../harness/apiserver.js';
import { pidAlive } from '../../harness/process.js';

type Rand = () => number;

function mulberry32(seed: number): Rand {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;

function randomString(r: Rand, max = 12): string {
  const alphabet = 'abcXYZ019-._~%/:?#[]@!$&\'()*+,;= \u00e9\u4e2d\u0000\u{1f600}';
  let s = '';
  const n = Math.floor(r() * max);
  for (let i = 0; i < n; i++) s += pick(r, [...alphabet]);
  return s;
}

function randomJson(r: Rand, depth = 0): unknown {
  const k = Math.floor(r() * (depth > 3 ? 5 : 8));
  switch (k) {
    case 0:
      return null;
    case 1:
      return r() < 0.5;
    case 2:
      return pick(r, [0, -1, 1.5, 1e308, -2147483649, Number.MAX_SAFE_INTEGER]);
    case 3:
      return randomString(r, 20);
    case 4:
      return pick(r, ['', 'v1', 'Instance', 'default', '{}', '[]']);
    case 5:
      return Array.from({ length: Math.floor(r() * 4) }, () => randomJson(r, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      const keys = ['apiVersion', 'kind', 'metadata', 'spec', 'status', 'name', 'namespace', 'labels', 'finalizers', 'ownerReferences', 'managedFields', 'resourceVersion', 'cpus', 'disks', '__proto__', 'constructor', randomString(r, 6)];
      const n = Math.floor(r() * 5);
      for (let i = 0; i < n; i++) o[pick(r, keys)] = randomJson(r, depth + 1);
      return o;
    }
  }
}

/** A valid Instance with one field replaced by something random. */
function mutatedInstance(r: Rand): unknown {
  const obj: Record<string, unknown> = {
    apiVersion: 'compute.stratus.dev/v1alpha1',
    kind: 'Instance',
    metadata: { name: `fz-${Math.floor(r() * 50)}`, namespace: 'default', labels: { a: 'b' } },
    spec: { provider: 'docker', image: 'busybox', cpus: 1, memoryMiB: 128, disks: [{ name: 'root', sizeGiB: 1 }] },
  };
  const paths: [string, string][] = [
    ['', 'apiVersion'],
    ['', 'kind'],
    ['', 'metadata'],
    ['metadata', 'name'],
    ['metadata', 'labels'],
    ['metadata', 'finalizers'],
    ['metadata', 'ownerReferences'],
    ['metadata', 'managedFields'],
    ['metadata', 'resourceVersion'],
    ['metadata', 'namespace'],
    ['', 'spec'],
    ['spec', 'cpus'],
    ['spec', 'disks'],
    ['spec', 'provider'],
  ];
  const [parent, key] = pick(r, paths);
  const target = (parent ? obj[parent] : obj) as Record<string, unknown>;
  target[key] = randomJson(r);
  return obj;
}

interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** True when nothing about it can succeed: it must get a 4xx. */
  malformed: boolean;
}

const resourcePaths = [
  '/api/v1/namespaces/default/configmaps',
  '/api/v1/namespaces/default/secrets',
  '/api/v1/namespaces',
  '/apis/compute.stratus.dev/v1alpha1/namespaces/default/instances',
  '/apis/compute.stratus.dev/v1alpha1/computenodes',
  '/apis/coordination.k8s.io/v1/namespaces/default/leases',
  '/apis/events.k8s.io/v1/namespaces/default/events',
  '/apis/apiextensions.k8s.io/v1/customresourcedefinitions',
];

const contentTypes = [
  'application/json',
  'application/yaml',
  'application/merge-patch+json',
  'application/json-patch+json',
  'application/strategic-merge-patch+json',
  'application/apply-patch+yaml',
  'application/vnd.kubernetes.protobuf',
  'text/plain',
  'application/json; charset=utf-8',
  '',
];

function malformedRequest(r: Rand): FuzzRequest {
  const kind = Math.floor(r() * 8);
  const base = pick(r, resourcePaths);
  switch (kind) {
    case 0: // a body that is not JSON/YAML at all
      return {
        method: pick(r, ['POST', 'PUT', 'PATCH']),
        path: `${base}/x`.replace(/\/x$/, pick(r, ['', '/x'])),
        headers: { 'content-type': 'application/json' },
        body: Buffer.from(pick(r, ['{', '{"a":', '[1,2', 'nul', '\u0000\u0001', '{"metadata": {"name": }', '}{'])),
        malformed: true,
      };
    case 1: // invalid YAML
      return {
        method: pick(r, ['POST', 'PATCH']),
        path: pick(r, [base, `${base}/fz-yaml`]),
        headers: { 'content-type': pick(r, ['application/yaml', 'application/apply-patch+yaml']) },
        body: Buffer.from(pick(r, ['a: b: c', 'key: [unclosed', '- a\nb: c', 'a: 1\na: 2', '\t- x', '*alias'])),
        malformed: true,
      };
    case 2: // unknown paths
      return {
        method: pick(r, ['GET', 'POST', 'DELETE', 'PUT']),
        path: pick(r, ['/apis/nope.example.com/v1/things', '/api/v2/pods', '/apis/compute.stratus.dev/v9/instances', `/api/v1/namespaces/default/${randomString(r, 6).replace(/[/?#%]/g, 'x') || 'x'}s/a`, '/apis/compute.stratus.dev/v1alpha1/namespaces/default/instances/a/b/c', '/apis/compute.stratus.dev/v1alpha1/namespaces/default/computenodes', '/api/v1/namespaces/default/configmaps/a/status']),
        headers: {},
        malformed: true,
      };
    case 3: // bad query parameters
      return {
        method: 'GET',
        path: `${base}?${pick(r, ['limit=abc', 'labelSelector=a%20in%20(', 'labelSelector=!!', 'fieldSelector=spec.secret=1', 'fieldSelector=metadata.name', 'resourceVersion=-1', 'resourceVersion=abc&watch=true', 'continue=notatoken', 'resourceVersionMatch=Sometimes', 'watch=maybe', 'timeoutSeconds=x&watch=1'])}`,
        headers: {},
        malformed: true,
      };
    case 4: // unsupported media types
      return {
        method: pick(r, ['POST', 'PATCH']),
        path: pick(r, [base, `${base}/fz-1`]),
        headers: { 'content-type': pick(r, ['application/vnd.kubernetes.protobuf', 'text/plain', 'application/xml', 'multipart/form-data']) },
        body: Buffer.from('{}'),
        malformed: true,
      };
    case 5: // a body over 3 MiB
      if (r() < 0.02) {
        return { method: 'POST', path: base, headers: { 'content-type': 'application/json' }, body: Buffer.alloc(3 * 1024 * 1024 + 10, 0x20), malformed: true };
      }
      return { method: 'PATCH', path: `${base}/fz-x`, headers: { 'content-type': 'application/json-patch+json' }, body: Buffer.from(JSON.stringify([{ op: 'explode', path: '/spec' }])), malformed: true };
    case 6: // wrong kind or apiVersion in the body
      return {
        method: 'POST',
        path: '/apis/compute.stratus.dev/v1alpha1/namespaces/default/instances',
        headers: { 'content-type': 'application/json' },
        body: Buffer.from(JSON.stringify({ apiVersion: pick(r, ['v1', 'compute.stratus.dev/v2', 7]), kind: pick(r, ['Pod', 'Instance', null]), metadata: { name: 'fz-kind' }, spec: { provider: 'docker', image: 'x' } })),
        malformed: true,
      };
    default: // bad dry-run / field validation / propagation policy / accept / table options
      if (r() < 0.3) return { method: 'DELETE', path: `${base}/fz-1?propagationPolicy=Sideways`, headers: {}, malformed: true };
      if (r() < 0.3) return { method: 'GET', path: `${base}?includeObject=All`, headers: { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' }, malformed: true };
      return {
        method: 'POST',
        path: `${base}?${pick(r, ['dryRun=Some', 'fieldValidation=Loose'])}`,
        headers: { 'content-type': 'application/json', accept: pick(r, ['application/json', 'application/vnd.kubernetes.protobuf']) },
        body: Buffer.from('{"metadata":{"name":"fz-q"}}'),
        malformed: true,
      };
  }
}

function randomRequest(r: Rand): FuzzRequest {
  if (r() < 0.6) return malformedRequest(r);
  const base = pick(r, resourcePaths);
  const method = pick(r, ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS']);
  const name = pick(r, ['fz-1', 'fz-2', 'default', encodeURIComponent(randomString(r, 8)) || 'x']);
  const path = pick(r, [base, `${base}/${name}`, `${base}/${name}/status`, `/${randomString(r, 20)}`]);
  const ct = pick(r, contentTypes);
  const body = r() < 0.5 ? mutatedInstance(r) : randomJson(r);
  const headers: Record<string, string> = {};
  if (ct) headers['content-type'] = ct;
  if (r() < 0.2) headers.accept = pick(r, ['application/json;as=Table;v=v1;g=meta.k8s.io', 'application/yaml', 'application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io', '*/*', 'image/png']);
  return { method, path, headers, ...(method === 'GET' || method === 'HEAD' ? {} : { body: Buffer.from(JSON.stringify(body) ?? 'null') }), malformed: false };
}

describe('fuzzing the API server', () => {
  let serve: StratusServe;
  before(async () => {
    serve = await startStratusServe();
  });
  after(async () => {
    await serve?.stop();
  });

  it('10,000 random or malformed requests get no 5xx, malformed ones a 4xx Status, and the server stays up', async () => {
    const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
    const r = mulberry32(seed);
    const requests = Array.from({ length: 10_000 }, () => randomRequest(r));
    const failures: string[] = [];
    const codes = new Map<number, number>();
    let next = 0;
    const worker = async (): Promise<void> => {
      for (;;) {
        const i = next++;
        const req = requests[i];
        if (!req) return;
        const controller = new AbortController();
        let status: number;
        let text = '';
        try {
          const res = await serve.fetch(serve.url + req.path, {
            method: req.method,
            headers: req.headers,
            ...(req.body ? { body: req.body } : {}),
            signal: controller.signal,
          });
          status = res.status;
          if (res.headers.get('content-type')?.startsWith('application/json') && !/watch=/.test(req.path)) text = await res.text();
          controller.abort();
        } catch (err) {
          if (req.body && req.body.length > 3 * 1024 * 1024) continue; // the server may close the socket on an oversized upload after answering 413
          failures.push(`#${i} ${req.method} ${req.path}: request failed: ${err instanceof Error ? err.message : String(err)}`);
          continue;
        }
        codes.set(status, (codes.get(status) ?? 0) + 1);
        if (status >= 500) failures.push(`#${i} ${req.method} ${req.path} [${req.headers['content-type'] ?? ''}] -> ${status} ${text.slice(0, 300)}`);
        else if (req.malformed && (status < 400 || status >= 500)) failures.push(`#${i} malformed ${req.method} ${req.path} -> ${status} ${text.slice(0, 200)}`);
        else if (status >= 400 && text) {
          const body = JSON.parse(text) as { kind?: string; code?: number };
          if (body.kind !== 'Status' || body.code !== status) failures.push(`#${i} ${req.method} ${req.path} -> ${status} without a Status body: ${text.slice(0, 200)}`);
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, () => worker()));
    assert.deepEqual(failures.slice(0, 20), [], `seed ${seed}: ${failures.length} bad responses; codes ${JSON.stringify([...codes])}\nserver output:\n${serve.output().slice(-3000)}`);
    assert.ok(pidAlive(serve.pid), 'the server process is still running');
    const health = await serve.fetch(`${serve.url}/healthz`);
    assert.equal(health.status, 200);
    const list = await serve.fetch(`${serve.url}/api/v1/namespaces`);
    assert.equal(list.status, 200);
    assert.ok((codes.get(400) ?? 0) > 0 && (codes.get(404) ?? 0) > 0 && (codes.get(415) ?? 0) > 0, `a spread of 4xx answers: ${JSON.stringify([...codes])}`);
  });
});
