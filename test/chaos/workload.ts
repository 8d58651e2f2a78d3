/**
 * The chaos workload: concurrent clients of a running stratus, each recording what it was
 * told in a `Ledger`, while faults are injected around them.
 *
 * - ConfigMap writers: create, merge-patch a counter a few times, delete half of them.
 * - Instance clients (when a node is given): create Instances, flip `powerState`, delete some.
 * - Watchers: list + watch of the writers' ConfigMaps, resuming from the last
 *   resourceVersion after a broken stream and relisting on 410; each keeps its own copy of
 *   the collection and records any resourceVersion that goes backwards.
 * - Legacy pollers: `GET /apiv1/engines` (clementine) through the legacy proxy.
 *
 * Every request has a deadline, so a stopped server makes answers unknown, never hangs.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeFetch } from '../harness/kubefetch.js';
import { Ledger } from './ledger.js';

export const NAMESPACE = 'default';
const CM = `/api/v1/namespaces/${NAMESPACE}/configmaps`;
const INST = `/apis/compute.stratus.dev/v1alpha1/namespaces/${NAMESPACE}/instances`;

export interface WorkloadOptions {
  /** The API server's URL (read again on every request: it may move to a new process). */
  url: () => string;
  fetch: KubeFetch;
  writers: number;
  watchers: number;
  /** Instance clients (0: none); their Instances run `image` on `provider`. */
  instanceClients: number;
  instanceSpec?: Record<string, unknown>;
  /** URL of the legacy proxy, for the legacy pollers (none when absent). */
  legacyUrl?: string;
  /** Pause between a client's requests (ms), so the load is steady rather than maximal. */
  pauseMs: number;
  requestTimeoutMs?: number;
  /** Prefix of every object name, unique per run. */
  prefix: string;
}

interface WatchState {
  id: number;
  /** name → resourceVersion, the watcher's view of the collection. */
  cache: Map<string, string>;
  lastRv: bigint;
  events: number;
  relists: number;
  resumes: number;
  violations: string[];
}

export class Workload {
  readonly configMaps = new Ledger();
  readonly instances = new Ledger();
  readonly legacyStatuses = new Map<string, number>();
  readonly legacyInternalErrors: string[] = [];
  private readonly watches: WatchState[] = [];
  private stopping = false;
  private closingWatches = false;
  /** The watchers. */
  private readonly running: Promise<void>[] = [];
  /** Every other client. */
  private readonly writing: Promise<void>[] = [];
  private readonly aborts = new Set<AbortController>();

  constructor(private readonly o: WorkloadOptions) {}

  start(): void {
    for (let i = 0; i < this.o.watchers; i++) {
      const w: WatchState = { id: i, cache: new Map(), lastRv: 0n, events: 0, relists: 0, resumes: 0, violations: [] };
      this.watches.push(w);
      this.running.push(this.watchLoop(w));
    }
    for (let i = 0; i < this.o.writers; i++) this.writing.push(this.writerLoop(i));
    for (let i = 0; i < this.o.instanceClients; i++) this.writing.push(this.instanceLoop(i));
    if (this.o.legacyUrl) this.writing.push(this.legacyLoop());
  }

  /** Stops every client but the watchers, once its current request is answered or timed out. */
  async stopWriters(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.writing);
  }

  async close(): Promise<void> {
    this.stopping = true;
    this.closingWatches = true;
    for (const a of this.aborts) a.abort();
    await Promise.all([...this.writing, ...this.running]);
  }

  private async call(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; text: string } | Error> {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(new Error('request timed out')), this.o.requestTimeoutMs ?? 5000);
    try {
      const r = await this.o.fetch(`${this.o.url()}${path}`, {
        method,
        headers: { 'content-type': contentType },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: ac.signal,
      });
      return { status: r.status, text: await r.text() };
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      if (ac.signal.aborted && !(e as NodeJS.ErrnoException).code) Object.assign(e, { code: 'TIMEOUT' });
      return e;
    } finally {
      clearTimeout(timer);
    }
  }

  private async write(ledger: Ledger, what: string, method: string, path: string, body?: unknown, contentType?: string): Promise<ReturnType<Ledger['classify']>> {
    const r = await this.call(method, path, body, contentType);
    return r instanceof Error ? ledger.classify(what, r) : ledger.classify(what, r.status, r.text);
  }

  private async writerLoop(id: number): Promise<void> {
    const l = this.configMaps;
    for (let seq = 0; !this.stopping; seq++) {
      const name = `${this.o.prefix}-w${id}-${seq}`;
      const created = await this.write(l, `create configmap ${name}`, 'POST', CM, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { v: '0' } });
      l.wrote(name, 'create', created, '0');
      await sleep(this.o.pauseMs);
      const patches = 1 + (seq % 3);
      for (let k = 1; k <= patches && !this.stopping; k++) {
        const out = await this.write(l, `patch configmap ${name}`, 'PATCH', `${CM}/${name}`, { data: { v: String(k) } }, 'application/merge-patch+json');
        l.wrote(name, 'update', out, String(k));
        await sleep(this.o.pauseMs);
      }
      if (seq % 2 === 1) {
        l.deleted(name, await this.write(l, `delete configmap ${name}`, 'DELETE', `${CM}/${name}`));
        await sleep(this.o.pauseMs);
      }
    }
  }

  private async instanceLoop(id: number): Promise<void> {
    const l = this.instances;
    for (let seq = 0; !this.stopping; seq++) {
      const name = `${this.o.prefix}-i${id}-${seq}`;
      const created = await this.write(l, `create instance ${name}`, 'POST', INST, {
        apiVersion: 'compute.stratus.dev/v1alpha1',
        kind: 'Instance',
        metadata: { name },
        spec: { ...this.o.instanceSpec, powerState: 'Running' },
      });
      l.wrote(name, 'create', created, 'Running');
      await sleep(this.o.pauseMs * 4);
      if (seq % 3 === 1) {
        const out = await this.write(l, `patch instance ${name}`, 'PATCH', `${INST}/${name}`, { spec: { powerState: 'Stopped' } }, 'application/merge-patch+json');
        l.wrote(name, 'update', out, 'Stopped');
        await sleep(this.o.pauseMs * 4);
      }
      if (seq % 2 === 0) {
        l.deleted(name, await this.write(l, `delete instance ${name}`, 'DELETE', `${INST}/${name}`));
        await sleep(this.o.pauseMs * 4);
      }
    }
  }

  private async legacyLoop(): Promise<void> {
    while (!this.stopping) {
      const ac = new AbortController();
      const timer = setTimeout(() => ac.abort(), this.o.requestTimeoutMs ?? 5000);
      let key: string;
      try {
        const r = await fetch(`${this.o.legacyUrl}/apiv1/engines`, { signal: ac.signal });
        const text = await r.text();
        key = String(r.status);
        if (r.status === 500) this.legacyInternalErrors.push(`GET /apiv1/engines: 500 ${text.slice(0, 300)}`);
      } catch (err) {
        key = ac.signal.aborted ? 'TIMEOUT' : (((err as Error).cause as NodeJS.ErrnoException | undefined)?.code ?? 'ERROR');
      } finally {
        clearTimeout(timer);
      }
      this.legacyStatuses.set(key, (this.legacyStatuses.get(key) ?? 0) + 1);
      await sleep(this.o.pauseMs * 2);
    }
  }

  /** Only the writers' ConfigMaps: the watchers compare their view with these. */
  private mine(name: string): boolean {
    return name.startsWith(`${this.o.prefix}-w`);
  }

  private async relist(w: WatchState): Promise<boolean> {
    const r = await this.call('GET', CM);
    if (r instanceof Error || r.status !== 200) return false;
    const list = JSON.parse(r.text) as { metadata: { resourceVersion: string }; items: { metadata: { name: string; resourceVersion: string } }[] };
    const rv = BigInt(list.metadata.resourceVersion);
    if (rv < w.lastRv) w.violations.push(`watcher ${w.id}: a LIST answered resourceVersion ${rv}, older than ${w.lastRv} already seen`);
    w.cache = new Map(list.items.filter((i) => this.mine(i.metadata.name)).map((i) => [i.metadata.name, i.metadata.resourceVersion]));
    w.lastRv = rv;
    w.relists++;
    return true;
  }

  private async watchLoop(w: WatchState): Promise<void> {
    let listed = false;
    while (!this.closingWatches) {
      if (!listed) {
        listed = await this.relist(w);
        if (!listed) {
          await sleep(200);
          continue;
        }
      }
      if (await this.watchOnce(w)) listed = false;
      else if (!this.closingWatches) await sleep(100);
    }
  }

  /** One watch request from the watcher's last resourceVersion; true when it must relist (410). */
  private async watchOnce(w: WatchState): Promise<boolean> {
    const ac = new AbortController();
    this.aborts.add(ac);
    try {
      const r = await this.o.fetch(`${this.o.url()}${CM}?watch=true&resourceVersion=${w.lastRv}&timeoutSeconds=30&allowWatchBookmarks=true`, { signal: ac.signal });
      if (r.status === 410) {
        await r.text();
        return true;
      }
      if (r.status !== 200 || !r.body) {
        await r.text();
        return false;
      }
      w.resumes++;
      const decoder = new TextDecoder();
      let buf = '';
      for await (const chunk of r.body) {
        buf += decoder.decode(chunk as Uint8Array, { stream: true });
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (!line) continue;
          const ev = JSON.parse(line) as { type: string; object: { code?: number; metadata?: { name: string; resourceVersion: string } } };
          if (ev.type === 'ERROR') return ev.object.code === 410;
          const md = ev.object.metadata!;
          const rv = BigInt(md.resourceVersion);
          if (rv <= w.lastRv && ev.type !== 'BOOKMARK') w.violations.push(`watcher ${w.id}: ${ev.type} ${md.name} at resourceVersion ${rv} after ${w.lastRv}`);
          if (rv > w.lastRv) w.lastRv = rv;
          if (ev.type === 'BOOKMARK' || !this.mine(md.name)) continue;
          w.events++;
          if (ev.type === 'DELETED') w.cache.delete(md.name);
          else w.cache.set(md.name, md.resourceVersion);
        }
      }
      return false;
    } catch {
      return false;
    } finally {
      this.aborts.delete(ac);
    }
  }

  /**
   * After the writers stopped: waits until every watcher's view equals the collection as
   * LISTed (each must have seen every change, or relisted after a 410), then ends them.
   * Returns the violations (resourceVersions that went backwards, views that never matched).
   */
  async settleWatchers(timeoutMs: number): Promise<{ violations: string[]; watchers: { events: number; relists: number; resumes: number }[] }> {
    const deadline = Date.now() + timeoutMs;
    let truth: Map<string, string> | undefined;
    let mismatched: WatchState[] = [];
    while (Date.now() < deadline) {
      truth = await this.finalConfigMaps().then((m) => m.rvs).catch(() => undefined);
      if (truth) {
        mismatched = this.watches.filter((w) => !sameMap(w.cache, truth!));
        if (mismatched.length === 0) break;
      }
      await sleep(250);
    }
    this.closingWatches = true;
    for (const a of this.aborts) a.abort();
    const violations = this.watches.flatMap((w) => w.violations);
    for (const w of mismatched) violations.push(`watcher ${w.id}: its view (${w.cache.size} objects) never matched the LIST (${truth?.size ?? '?'} objects): ${describeDiff(w.cache, truth ?? new Map())}`);
    return { violations, watchers: this.watches.map(({ events, relists, resumes }) => ({ events, relists, resumes })) };
  }

  /** The writers' ConfigMaps as they are now: name → value of `data.v`, and name → resourceVersion. */
  async finalConfigMaps(): Promise<{ values: Map<string, string>; rvs: Map<string, string> }> {
    const r = await this.call('GET', CM);
    if (r instanceof Error || r.status !== 200) throw new Error(`LIST configmaps: ${r instanceof Error ? r.message : `${r.status} ${r.text.slice(0, 200)}`}`);
    const items = (JSON.parse(r.text) as { items: { metadata: { name: string; resourceVersion: string }; data?: { v?: string } }[] }).items.filter((i) => this.mine(i.metadata.name));
    return {
      values: new Map(items.map((i) => [i.metadata.name, i.data?.v ?? ''])),
      rvs: new Map(items.map((i) => [i.metadata.name, i.metadata.resourceVersion])),
    };
  }
}

function sameMap(a: Map<string, string>, b: Map<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

function describeDiff(seen: Map<string, string>, truth: Map<string, string>): string {
  const out: string[] = [];
  for (const [k, v] of truth) if (seen.get(k) !== v) out.push(`${k}@${v} seen as ${seen.get(k) ?? 'absent'}`);
  for (const k of seen.keys()) if (!truth.has(k)) out.push(`${k} seen but gone`);
  return out.slice(0, 5).join(', ');
}
