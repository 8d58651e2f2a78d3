/**
 * The API server's HTTP semantics, over real HTTP against an in-process server on SQLite:
 * preconditions, generation, dry runs, patches, watch details (bookmarks, initial events,
 * selector transitions, Table form), the body limit, events in both API groups, leases.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startApiServer, type ApiServer } from '../../../apiserver/server.js';
import { repoRoot } from '../../harness/paths.js';
import { removeDir, tempDir, waitFor } from '../../harness/process.js';
import { kubeFetch, type KubeFetch } from '../../harness/kubefetch.js';

type Obj = Record<string, unknown> & { metadata: Record<string, unknown> };

const instances = '/apis/compute.stratus.dev/v1alpha1/namespaces/default/instances';

function instance(name: string, extra: Record<string, unknown> = {}): Obj {
  return {
    apiVersion: 'compute.stratus.dev/v1alpha1',
    kind: 'Instance',
    metadata: { name, ...extra },
    spec: { provider: 'docker', image: 'busybox', cpus: 1, memoryMiB: 128 },
  };
}

/** Reads newline-delimited watch events from a streaming response. */
class EventReader {
  private buf = '';
  readonly events: { type: string; object: Obj }[] = [];
  private readonly done: Promise<void>;
  constructor(private readonly res: Response) {
    const reader = res.body?.getReader();
    if (!reader) throw new Error('no body');
    this.done = (async () => {
      for (;;) {
        const r = await reader.read().catch(() => ({ done: true, value: undefined }));
        if (r.done) return;
        this.buf += new TextDecoder().decode(r.value);
        let i: number;
        while ((i = this.buf.indexOf('\n')) >= 0) {
          const line = this.buf.slice(0, i).trim();
          this.buf = this.buf.slice(i + 1);
          if (line) this.events.push(JSON.parse(line) as { type: string; object: Obj });
        }
      }
    })();
  }
  async until(what: string, pred: (e: { type: string; object: Obj }[]) => boolean): Promise<void> {
    await waitFor(what, () => pred(this.events), 10_000, 10);
  }
  ended(): Promise<void> {
    return this.done;
  }
}

describe('API server HTTP semantics', () => {
  let dir: string;
  let server: ApiServer;
  /** As the admin of the kubeconfig the server wrote. */
  let adminFetch: KubeFetch;
  const url = (p: string): string => server.url + p;
  const send = async (method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; body: Obj; headers: Headers }> => {
    const res = await adminFetch(url(path), {
      method,
      headers: { 'content-type': contentType },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as Obj, headers: res.headers };
  };

  before(async () => {
    dir = await tempDir('apiserver-http');
    server = await startApiServer({ dataDir: dir, listen: '127.0.0.1:0', crdDir: join(repoRoot(), 'crds'), heartbeatSeconds: 1 });
    adminFetch = kubeFetch(server.kubeconfigPath);
  });
  after(async () => {
    await server?.close();
    await removeDir(dir);
  });

  it('an update with a stale resourceVersion is a 409 Conflict Status', async () => {
    const created = await send('POST', instances, instance('stale'));
    assert.equal(created.status, 201);
    const rv = created.body.metadata.resourceVersion as string;
    const first = await send('PUT', `${instances}/stale`, { ...created.body, spec: { ...(created.body.spec as object), cpus: 2 } });
    assert.equal(first.status, 200);
    const stale = await send('PUT', `${instances}/stale`, { ...created.body, metadata: { ...created.body.metadata, resourceVersion: rv } });
    assert.equal(stale.status, 409);
    assert.equal(stale.body.kind, 'Status');
    assert.equal(stale.body.reason, 'Conflict');
  });

  it('generation bumps on spec changes only; status and metadata writes keep it', async () => {
    const c = await send('POST', instances, instance('gen'));
    assert.equal(c.body.metadata.generation, 1);
    const labelled = await send('PATCH', `${instances}/gen`, { metadata: { labels: { a: 'b' } } }, 'application/merge-patch+json');
    assert.equal(labelled.body.metadata.generation, 1);
    const status = await send('PATCH', `${instances}/gen/status`, { status: { state: 'running' } }, 'application/merge-patch+json');
    assert.equal(status.body.metadata.generation, 1);
    assert.equal((status.body.status as Record<string, unknown>).state, 'running');
    const spec = await send('PATCH', `${instances}/gen`, [{ op: 'replace', path: '/spec/cpus', value: 3 }], 'application/json-patch+json');
    assert.equal(spec.status, 200);
    assert.equal(spec.body.metadata.generation, 2);
    const failedTest = await send('PATCH', `${instances}/gen`, [{ op: 'test', path: '/spec/cpus', value: 99 }], 'application/json-patch+json');
    assert.equal(failedTest.status, 422);
  });

  it('dryRun=All validates and answers without storing', async () => {
    const dry = await send('POST', `${instances}?dryRun=All`, instance('dry'));
    assert.equal(dry.status, 201);
    assert.equal((await send('GET', `${instances}/dry`)).status, 404);
    const bad = await send('POST', `${instances}?dryRun=All`, { ...instance('dry'), spec: { provider: 'docker', image: 'x', cpus: 0 } });
    assert.equal(bad.status, 422);
    await send('POST', instances, instance('dry-del'));
    assert.equal((await send('DELETE', `${instances}/dry-del?dryRun=All`)).status, 200);
    assert.equal((await send('GET', `${instances}/dry-del`)).status, 200);
  });

  it('unknown fields are dropped with a Warning header under Warn and rejected under Strict', async () => {
    const body = { ...instance('fields'), spec: { provider: 'docker', image: 'x', extra: true } };
    const warn = await send('POST', instances, body);
    assert.equal(warn.status, 201);
    assert.match(warn.headers.get('warning') ?? '', /299 - "unknown field \\"spec\.extra\\""/);
    assert.equal((warn.body.spec as Record<string, unknown>).extra, undefined);
    const strict = await send('POST', `${instances}?fieldValidation=Strict`, { ...body, metadata: { name: 'fields-2' } });
    assert.equal(strict.status, 400);
    assert.match(String(strict.body.message), /unknown field "spec\.extra"/);
  });

  it('a body over 3 MiB is a 413 Status', async () => {
    const big = JSON.stringify({ ...instance('big'), spec: { provider: 'docker', image: 'x'.repeat(3 * 1024 * 1024) } });
    const r = await send('POST', instances, big);
    assert.equal(r.status, 413);
    assert.equal(r.body.reason, 'RequestEntityTooLarge');
  });

  it('strategic merge patch is 415 for custom resources and works for built-in kinds', async () => {
    await send('POST', instances, instance('smp'));
    const r = await send('PATCH', `${instances}/smp`, { spec: { cpus: 2 } }, 'application/strategic-merge-patch+json');
    assert.equal(r.status, 415);
    await send('POST', '/api/v1/namespaces/default/configmaps', { metadata: { name: 'smp' }, data: { a: '1', b: '2' } });
    const cm = await send('PATCH', '/api/v1/namespaces/default/configmaps/smp', { data: { a: null, c: '3' } }, 'application/strategic-merge-patch+json');
    assert.equal(cm.status, 200);
    assert.deepEqual(cm.body.data, { b: '2', c: '3' });
  });

  it('watch: initial events, bookmarks, selector transitions and a clean timeout', async () => {
    const res = await adminFetch(url(`${instances}?watch=true&labelSelector=team%3Dblue&allowWatchBookmarks=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&timeoutSeconds=4`));
    const w = new EventReader(res);
    await w.until('initial-events-end bookmark', (es) => es.some((e) => e.type === 'BOOKMARK' && (e.object.metadata.annotations as Record<string, string> | undefined)?.['k8s.io/initial-events-end'] === 'true'));
    await send('POST', instances, instance('sel', { labels: { team: 'red' } }));
    await send('PATCH', `${instances}/sel`, { metadata: { labels: { team: 'blue' } } }, 'application/merge-patch+json');
    await w.until('ADDED when the label starts matching', (es) => es.some((e) => e.type === 'ADDED' && e.object.metadata.name === 'sel'));
    await send('PATCH', `${instances}/sel`, { metadata: { labels: { team: 'green' } } }, 'application/merge-patch+json');
    await w.until('DELETED when it stops matching', (es) => es.some((e) => e.type === 'DELETED' && e.object.metadata.name === 'sel'));
    await w.until('a periodic bookmark', (es) => es.filter((e) => e.type === 'BOOKMARK').length >= 2);
    await w.ended();
    assert.ok(!w.events.some((e) => e.object.metadata.name === 'sel' && e.type === 'MODIFIED'), 'no MODIFIED for an object outside the selector');
  });

  it('watch from a resourceVersion replays later changes; Table watches carry rows', async () => {
    const c = await send('POST', instances, instance('replay'));
    await send('PATCH', `${instances}/replay`, { spec: { cpus: 2 } }, 'application/merge-patch+json');
    const res = await adminFetch(url(`${instances}?watch=true&resourceVersion=${c.body.metadata.resourceVersion as string}&timeoutSeconds=2`), {
      headers: { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' },
    });
    assert.match(res.headers.get('content-type') ?? '', /as=Table/);
    const w = new EventReader(res);
    await w.ended();
    const mod = w.events.find((e) => e.type === 'MODIFIED');
    assert.ok(mod, JSON.stringify(w.events));
    assert.equal(mod.object.kind, 'Table');
    const rows = mod.object.rows as { cells: unknown[] }[];
    assert.equal(rows[0]?.cells[0], 'replay');
  });

  it('lists paginate with limit/continue and serve Tables', async () => {
    for (let i = 0; i < 5; i++) await send('POST', '/api/v1/namespaces/default/secrets', { metadata: { name: `page-${i}` }, stringData: { k: 'v' } });
    const names: string[] = [];
    let cont = '';
    let pages = 0;
    do {
      const r = await send('GET', `/api/v1/namespaces/default/secrets?limit=2${cont ? `&continue=${encodeURIComponent(cont)}` : ''}`);
      pages++;
      for (const i of r.body.items as Obj[]) names.push(i.metadata.name as string);
      cont = ((r.body.metadata as Record<string, unknown>).continue as string | undefined) ?? '';
    } while (cont);
    assert.equal(pages, 3);
    assert.deepEqual(names.filter((n) => n.startsWith('page-')), ['page-0', 'page-1', 'page-2', 'page-3', 'page-4']);
    const secret = await send('GET', '/api/v1/namespaces/default/secrets/page-0');
    assert.deepEqual(secret.body.data, { k: Buffer.from('v').toString('base64') });
    assert.equal(secret.body.type, 'Opaque');
    const table = await adminFetch(url('/api/v1/namespaces'), { headers: { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' } });
    const t = (await table.json()) as { kind: string; columnDefinitions: { name: string }[]; rows: { cells: unknown[] }[] };
    assert.equal(t.kind, 'Table');
    assert.deepEqual(t.columnDefinitions.map((c) => c.name), ['Name', 'Status', 'Age']);
    assert.ok(t.rows.some((r) => r.cells[0] === 'default' && r.cells[1] === 'Active'));
  });

  it('events are served as core/v1 and events.k8s.io/v1 views of the same objects; leases work', async () => {
    const ev = await send('POST', '/apis/events.k8s.io/v1/namespaces/default/events', {
      metadata: { name: 'ev-1' },
      regarding: { kind: 'Instance', name: 'gen', namespace: 'default' },
      reason: 'Created',
      note: 'created the domain',
      type: 'Normal',
      action: 'Create',
      reportingController: 'stratus/instance',
      reportingInstance: 'stratus-0',
      eventTime: '2026-01-01T00:00:00.000000Z',
    });
    assert.equal(ev.status, 201, JSON.stringify(ev.body));
    const core = await send('GET', '/api/v1/namespaces/default/events/ev-1');
    assert.equal(core.body.message, 'created the domain');
    assert.equal((core.body.involvedObject as Record<string, unknown>).name, 'gen');
    const byField = await send('GET', '/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Dgen');
    assert.equal((byField.body.items as unknown[]).length, 1);
    const lease = await send('POST', '/apis/coordination.k8s.io/v1/namespaces/kube-system/leases', { metadata: { name: 'stratus-leader' }, spec: { holderIdentity: 'a', leaseDurationSeconds: 15 } });
    assert.equal(lease.status, 201);
    const renewed = await send('PUT', '/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/stratus-leader', { ...lease.body, spec: { holderIdentity: 'b', leaseDurationSeconds: 15 } });
    assert.equal(renewed.status, 200);
    assert.equal((renewed.body.spec as Record<string, unknown>).holderIdentity, 'b');
  });

  it('aggregated discovery and OpenAPI v3 describe the served kinds', async () => {
    const res = await adminFetch(url('/apis'), { headers: { accept: 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json' } });
    assert.match(res.headers.get('content-type') ?? '', /as=APIGroupDiscoveryList/);
    const doc = (await res.json()) as { kind: string; items: { metadata: { name: string }; versions: { resources: { resource: string; subresources?: { subresource: string }[] }[] }[] }[] };
    assert.equal(doc.kind, 'APIGroupDiscoveryList');
    const compute = doc.items.find((i) => i.metadata.name === 'compute.stratus.dev');
    const inst = compute?.versions[0]?.resources.find((r) => r.resource === 'instances');
    assert.deepEqual(inst?.subresources?.map((s) => s.subresource), ['status']);
    const root = (await (await adminFetch(url('/openapi/v3'))).json()) as { paths: Record<string, { serverRelativeURL: string }> };
    const gv = root.paths['apis/compute.stratus.dev/v1alpha1'];
    assert.ok(gv);
    const spec = (await (await adminFetch(url(gv.serverRelativeURL))).json()) as { components: { schemas: Record<string, { properties?: Record<string, unknown> }> } };
    assert.ok(spec.components.schemas['dev.stratus.compute.v1alpha1.Instance']?.properties?.spec);
    const v2 = (await (await adminFetch(url('/openapi/v2'), { headers: { accept: 'application/json' } })).json()) as { swagger: string; definitions: Record<string, unknown> };
    assert.equal(v2.swagger, '2.0');
    assert.ok(v2.definitions['dev.stratus.compute.v1alpha1.Instance']);
    const proto = await adminFetch(url('/openapi/v2'), { headers: { accept: 'application/com.github.proto-openapi.spec.v2@v1.0+protobuf' } });
    // The protobuf form kubectl 1.27/1.28 ask for (gnostic's Document: field 1 `swagger` = "2.0")
    assert.equal(proto.status, 200);
    assert.equal(proto.headers.get('content-type'), 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf');
    const bytes = Buffer.from(await proto.arrayBuffer());
    assert.deepEqual([...bytes.subarray(0, 5)], [0x0a, 0x03, 0x32, 0x2e, 0x30]);
    assert.ok(bytes.includes(Buffer.from('dev.stratus.compute.v1alpha1.Instance')), 'the Instance definition is in it');
    for (const probe of ['/healthz', '/livez', '/readyz']) assert.equal((await adminFetch(url(probe))).status, 200, probe);
  });

  it('/openapi/v2 carries an ETag per encoding, answers If-None-Match with 304, and a new CRD changes it', async () => {
    const PROTO = 'application/com.github.proto-openapi.spec.v2@v1.0+protobuf';
    const first = await adminFetch(url('/openapi/v2'), { headers: { accept: PROTO } });
    const etag = first.headers.get('etag') ?? '';
    assert.match(etag, /^"[0-9A-F]{32}"$/);
    await first.arrayBuffer();
    const again = await adminFetch(url('/openapi/v2'), { headers: { accept: PROTO, 'if-none-match': etag } });
    assert.equal(again.status, 304);
    assert.equal(again.headers.get('etag'), etag);
    const json = await adminFetch(url('/openapi/v2'), { headers: { accept: 'application/json', 'if-none-match': etag } });
    assert.equal(json.status, 200, 'the JSON form has its own ETag');
    assert.notEqual(json.headers.get('etag'), etag);
    await json.arrayBuffer();
    const crd = {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'gadgets.etag.stratus.dev' },
      spec: {
        group: 'etag.stratus.dev',
        scope: 'Namespaced',
        names: { plural: 'gadgets', singular: 'gadget', kind: 'Gadget', listKind: 'GadgetList' },
        versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', properties: { spec: { type: 'object', properties: { size: { type: 'integer' } } } } } } }],
      },
    };
    const created = await adminFetch(url('/apis/apiextensions.k8s.io/v1/customresourcedefinitions'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(crd) });
    assert.equal(created.status, 201);
    await waitFor('the new kind in /openapi/v2', async () => {
      const res = await adminFetch(url('/openapi/v2'), { headers: { accept: PROTO, 'if-none-match': etag } });
      const body = Buffer.from(await res.arrayBuffer());
      return res.status === 200 && res.headers.get('etag') !== etag && body.includes(Buffer.from('dev.stratus.etag.v1.Gadget'));
    }, 10_000, 100);
    assert.equal((await adminFetch(url('/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gadgets.etag.stratus.dev'), { method: 'DELETE' })).status, 200);
  });

  it('N watchers of a resource cost one store watch (the watch cache fans out)', async () => {
    const storeWatches = async (): Promise<number> => {
      const text = await (await adminFetch(url('/metrics'))).text();
      const m = /^stratus_storage_watches\{[^}]*\} (\d+)/m.exec(text);
      return Number(m?.[1] ?? 0);
    };
    const path = '/apis/compute.stratus.dev/v1alpha1/namespaces/default/networks';
    const warm = new EventReader(await adminFetch(url(`${path}?watch=true&timeoutSeconds=10`)));
    const before = await storeWatches();
    assert.ok(before >= 1, 'the cache holds a store watch for the resource');
    const readers = await Promise.all(Array.from({ length: 20 }, async () => new EventReader(await adminFetch(url(`${path}?watch=true&timeoutSeconds=10`)))));
    await send('POST', path, { apiVersion: 'compute.stratus.dev/v1alpha1', kind: 'Network', metadata: { name: 'fanout' }, spec: { vlan: 10 } });
    for (const r of [warm, ...readers]) await r.until('the event reaches every watcher', (es) => es.some((e) => e.object.metadata.name === 'fanout'));
    assert.equal(await storeWatches(), before, 'no store watch per HTTP watcher');
  });

  it('no client mistake on a route yields a 5xx; errors are Status objects', async () => {
    const cases: [string, string, unknown, string][] = [
      ['POST', instances, '{not json', 'application/json'],
      ['POST', instances, [1, 2], 'application/json'],
      ['POST', instances, { metadata: 'x' }, 'application/json'],
      ['POST', instances, { metadata: { name: 'UPPER' }, spec: { provider: 'docker', image: 'x' } }, 'application/json'],
      ['PUT', `${instances}/nope`, instance('nope'), 'application/json'],
      ['PATCH', `${instances}/nope`, {}, 'application/merge-patch+json'],
      ['GET', '/apis/compute.stratus.dev/v1alpha1/namespaces/default/instances?labelSelector=%3D%3D', undefined, 'application/json'],
      ['POST', '/api/v1/namespaces/missing/configmaps', { metadata: { name: 'x' } }, 'application/json'],
      ['DELETE', '/api/v1/namespaces/default', undefined, 'application/json'],
      ['POST', `${instances}?fieldManager=%07bell`, instance('manager'), 'application/json'],
    ];
    for (const [method, path, body, ct] of cases) {
      const r = await send(method, path, body, ct);
      assert.ok(r.status >= 400 && r.status < 500, `${method} ${path} -> ${r.status}`);
      assert.equal(r.body.kind, 'Status');
      assert.equal(r.body.code, r.status);
    }
  });
});
