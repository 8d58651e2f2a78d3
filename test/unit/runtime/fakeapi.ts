/**
 * A small in-memory Kubernetes API server for the runtime's unit tests: enough of the REST
 * contract (CRUD, /status, merge and JSON patch, resourceVersion preconditions, finalizers
 * and deletionTimestamp, list + watch from a resourceVersion, 410 after compaction) to
 * exercise the real client, informer and helpers without an external process.
 *
 * Test controls: `compact()` (old resourceVersions become 410), `dropWatches()` (cut every
 * watch stream), `failNext(n, code)` (the next n collection GETs — lists and watches —
 * fail), `requests` (a log).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';

type Obj = { apiVersion?: string; kind?: string; metadata: Record<string, unknown> & { name: string; namespace?: string; resourceVersion?: string; finalizers?: string[]; deletionTimestamp?: string; generation?: number }; [k: string]: unknown };

interface Parsed {
  coll: string;
  namespace: string | undefined;
  name: string | undefined;
  sub: string | undefined;
}

interface HistoryEntry {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  coll: string;
  obj: Obj;
}

interface Watcher {
  coll: string;
  namespace: string | undefined;
  res: ServerResponse;
}

export class FakeApiServer {
  private server: Server | undefined;
  private rv = 100;
  private compactedBefore = 0;
  /** coll → key(ns/name) → object */
  private readonly store = new Map<string, Map<string, Obj>>();
  private history: HistoryEntry[] = [];
  private readonly watchers = new Set<Watcher>();
  private failures: Array<number> = [];
  private conflicts: string[] = [];
  readonly requests: string[] = [];
  /** While true every request answers 503 (an API server that is down but reachable). */
  unavailable = false;
  url = '';

  /** `Authorization` header and client certificate CN of the last request. */
  lastAuth: { authorization?: string; clientCN?: string } = {};

  /** Plain HTTP, or HTTPS requiring a client certificate signed by `tls.ca`. */
  async start(tls?: { key: string; cert: string; ca: string }): Promise<void> {
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      const peer = (req.socket as Partial<TLSSocket>).getPeerCertificate?.();
      const cn = peer?.subject?.CN;
      this.lastAuth = { authorization: req.headers.authorization, clientCN: Array.isArray(cn) ? cn[0] : cn };
      void this.handle(req, res).catch((err: unknown) => this.send(res, 500, { kind: 'Status', code: 500, reason: 'InternalError', message: String(err) }));
    };
    this.server = tls ? createTlsServer({ ...tls, requestCert: true, rejectUnauthorized: true }, handler) : createServer(handler);
    await new Promise<void>((r) => this.server?.listen(0, '127.0.0.1', r));
    this.url = `${tls ? 'https' : 'http'}://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.dropWatches();
    this.server?.closeAllConnections();
    await new Promise<void>((r) => this.server?.close(() => r()) ?? r());
  }

  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromClusterAndUser({ name: 'fake', server: this.url, skipTLSVerify: true }, { name: 'fake' });
    return kc;
  }

  writeKubeconfig(dir: string): string {
    const path = join(dir, 'kubeconfig');
    writeFileSync(
      path,
      `apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: ${this.url}\n    insecure-skip-tls-verify: true\nusers:\n- name: fake\n  user: {token: t}\ncontexts:\n- name: fake\n  context: {cluster: fake, user: fake}\ncurrent-context: fake\n`,
    );
    return path;
  }

  compact(): void {
    this.compactedBefore = this.rv + 1;
    this.history = [];
  }

  dropWatches(): void {
    for (const w of this.watchers) w.res.destroy();
    this.watchers.clear();
  }

  get watchCount(): number {
    return this.watchers.size;
  }

  /** The next PUT/PATCH whose path contains `pathPart` answers 409 Conflict. */
  conflictNext(pathPart: string): void {
    this.conflicts.push(pathPart);
  }

  clearFailures(): void {
    this.failures = [];
  }

  failNext(n: number, code = 500): void {
    for (let i = 0; i < n; i++) this.failures.push(code);
  }

  /** Direct store access for assertions. */
  objects(coll: string): Obj[] {
    return [...(this.store.get(coll)?.values() ?? [])];
  }

  private parse(pathname: string): Parsed | undefined {
    const parts = pathname.split('/').filter(Boolean).map(decodeURIComponent);
    let gv: string;
    let rest: string[];
    if (parts[0] === 'api' && parts.length >= 3) {
      gv = parts[1] as string;
      rest = parts.slice(2);
    } else if (parts[0] === 'apis' && parts.length >= 4) {
      gv = `${parts[1]}/${parts[2]}`;
      rest = parts.slice(3);
    } else return undefined;
    let namespace: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    const [plural, name, sub] = rest;
    if (!plural) return undefined;
    return { coll: `${gv}/${plural}`, namespace, name, sub };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    this.requests.push(`${req.method} ${url.pathname}${url.search}`);
    if (this.unavailable) return this.status(res, 503, 'ServiceUnavailable', 'injected outage');
    const p = this.parse(url.pathname);
    if (!p) return this.status(res, 404, 'NotFound', `no route ${url.pathname}`);
    if (req.method === 'GET' && !p.name) {
      const fail = this.failures.shift();
      if (fail !== undefined) return this.status(res, fail, 'InternalError', 'injected failure');
    }
    const body = await readBody(req);
    const ci = req.method === 'PUT' || req.method === 'PATCH' ? this.conflicts.findIndex((c) => url.pathname.includes(c)) : -1;
    if (ci >= 0) {
      this.conflicts.splice(ci, 1);
      return this.status(res, 409, 'Conflict', 'injected conflict: the object has been modified');
    }
    const coll = this.collection(p.coll);
    const key = `${p.namespace ?? ''}/${p.name ?? ''}`;
    switch (req.method) {
      case 'GET': {
        if (p.name) {
          const o = coll.get(key);
          return o ? this.send(res, 200, o) : this.status(res, 404, 'NotFound', `${p.name} not found`);
        }
        if (url.searchParams.get('watch') === 'true') return this.watch(p, url, res);
        const items = [...coll.values()].filter((o) => !p.namespace || o.metadata.namespace === p.namespace);
        return this.send(res, 200, { kind: 'List', apiVersion: 'v1', metadata: { resourceVersion: String(this.rv) }, items });
      }
      case 'POST': {
        const o = JSON.parse(body) as Obj;
        o.metadata ??= { name: '' };
        if (!o.metadata.name && typeof o.metadata.generateName === 'string') o.metadata.name = o.metadata.generateName + randomUUID().slice(0, 5);
        if (p.namespace) o.metadata.namespace = p.namespace;
        const k = `${p.namespace ?? ''}/${o.metadata.name}`;
        if (coll.has(k)) return this.status(res, 409, 'AlreadyExists', `${o.metadata.name} already exists`);
        o.metadata.uid = randomUUID();
        o.metadata.generation = 1;
        o.metadata.creationTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
        return this.send(res, 201, this.commit(p.coll, coll, k, o, 'ADDED'));
      }
      case 'PUT':
      case 'PATCH': {
        const cur = coll.get(key);
        if (!cur) return this.status(res, 404, 'NotFound', `${p.name} not found`);
        let next: Obj;
        let wantRv: string | undefined;
        const ct = req.headers['content-type'] ?? '';
        if (req.method === 'PUT') {
          next = JSON.parse(body) as Obj;
          wantRv = next.metadata?.resourceVersion;
        } else if (ct.startsWith('application/merge-patch+json')) {
          const patch = JSON.parse(body) as { metadata?: { resourceVersion?: string } };
          wantRv = patch.metadata?.resourceVersion;
          next = mergePatch(structuredClone(cur), patch) as Obj;
        } else if (ct.startsWith('application/json-patch+json')) {
          const r = jsonPatch(structuredClone(cur), JSON.parse(body) as Array<{ op: string; path: string; value?: unknown }>);
          if (!r) return this.status(res, 422, 'Invalid', 'json patch test failed');
          next = r as Obj;
        } else return this.status(res, 415, 'UnsupportedMediaType', `content type ${ct}`);
        if (wantRv && wantRv !== cur.metadata.resourceVersion) return this.status(res, 409, 'Conflict', 'the object has been modified; please apply your changes to the latest version and try again');
        if (p.sub === 'status') {
          next = { ...structuredClone(cur), status: next.status };
        } else {
          next.status = cur.status;
          next.metadata = { ...next.metadata, uid: cur.metadata.uid, name: cur.metadata.name, namespace: cur.metadata.namespace, creationTimestamp: cur.metadata.creationTimestamp, deletionTimestamp: cur.metadata.deletionTimestamp };
          const specChanged = JSON.stringify(stripMeta(next)) !== JSON.stringify(stripMeta(cur));
          next.metadata.generation = (cur.metadata.generation ?? 1) + (specChanged ? 1 : 0);
        }
        if (next.metadata.deletionTimestamp && !(next.metadata.finalizers ?? []).length) {
          coll.delete(key);
          return this.send(res, 200, this.commit(p.coll, coll, key, next, 'DELETED', false));
        }
        return this.send(res, 200, this.commit(p.coll, coll, key, next, 'MODIFIED'));
      }
      case 'DELETE': {
        const cur = coll.get(key);
        if (!cur) return this.status(res, 404, 'NotFound', `${p.name} not found`);
        if ((cur.metadata.finalizers ?? []).length) {
          if (!cur.metadata.deletionTimestamp) {
            const next = structuredClone(cur);
            next.metadata.deletionTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
            return this.send(res, 200, this.commit(p.coll, coll, key, next, 'MODIFIED'));
          }
          return this.send(res, 200, cur);
        }
        coll.delete(key);
        return this.send(res, 200, this.commit(p.coll, coll, key, structuredClone(cur), 'DELETED', false));
      }
      default:
        return this.status(res, 405, 'MethodNotAllowed', String(req.method));
    }
  }

  private collection(coll: string): Map<string, Obj> {
    let m = this.store.get(coll);
    if (!m) this.store.set(coll, (m = new Map()));
    return m;
  }

  private commit(coll: string, m: Map<string, Obj>, key: string, obj: Obj, type: HistoryEntry['type'], keep = true): Obj {
    this.rv++;
    obj.metadata.resourceVersion = String(this.rv);
    if (keep) m.set(key, obj);
    const entry: HistoryEntry = { rv: this.rv, type, coll, obj: structuredClone(obj) };
    this.history.push(entry);
    for (const w of this.watchers) if (w.coll === coll && (!w.namespace || w.namespace === obj.metadata.namespace)) writeEvent(w.res, entry);
    return obj;
  }

  private watch(p: Parsed, url: URL, res: ServerResponse): void {
    const from = Number(url.searchParams.get('resourceVersion') ?? '0');
    res.writeHead(200, { 'content-type': 'application/json' });
    res.flushHeaders();
    if (from && from < this.compactedBefore - 1) {
      res.end(JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired', message: `too old resource version: ${from}` } }) + '\n');
      return;
    }
    for (const e of this.history) if (e.rv > from && e.coll === p.coll && (!p.namespace || p.namespace === e.obj.metadata.namespace)) writeEvent(res, e);
    const w: Watcher = { coll: p.coll, namespace: p.namespace, res };
    this.watchers.add(w);
    res.on('close', () => this.watchers.delete(w));
  }

  private status(res: ServerResponse, code: number, reason: string, message: string): void {
    this.send(res, code, { kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message });
  }

  private send(res: ServerResponse, code: number, body: unknown): void {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }
}

function writeEvent(res: ServerResponse, e: HistoryEntry): void {
  res.write(JSON.stringify({ type: e.type, object: e.obj }) + '\n');
}

function stripMeta(o: Obj): unknown {
  const { metadata: _m, status: _s, ...rest } = o;
  return rest;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let s = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (s += c));
    req.on('end', () => resolve(s));
    req.on('error', reject);
  });
}

function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const t = (typeof target === 'object' && target !== null && !Array.isArray(target) ? target : {}) as Record<string, unknown>;
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === null) delete t[k];
    else t[k] = mergePatch(t[k], v);
  }
  return t;
}

function jsonPatch(doc: unknown, ops: Array<{ op: string; path: string; value?: unknown }>): unknown {
  for (const op of ops) {
    const parts = op.path.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = parts.pop() as string;
    let parent = doc as Record<string, unknown> | unknown[];
    for (const part of parts) parent = (parent as Record<string, unknown>)[part] as Record<string, unknown>;
    const get = (): unknown => (Array.isArray(parent) ? parent[Number(last)] : parent[last]);
    if (op.op === 'test') {
      if (JSON.stringify(get()) !== JSON.stringify(op.value)) return undefined;
    } else if (op.op === 'add' || op.op === 'replace') {
      if (Array.isArray(parent)) {
        if (last === '-') parent.push(op.value);
        else if (op.op === 'add') parent.splice(Number(last), 0, op.value);
        else parent[Number(last)] = op.value;
      } else parent[last] = op.value;
    } else if (op.op === 'remove') {
      if (Array.isArray(parent)) parent.splice(Number(last), 1);
      else delete parent[last];
    }
  }
  return doc;
}
