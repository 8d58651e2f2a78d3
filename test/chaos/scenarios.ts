/**
 * The chaos scenarios. Each starts what it needs (stratus, a Docker engine, an etcd cluster,
 * a small filesystem) in private temp dirs, runs the workload while injecting its faults,
 * checks the invariants, stops everything it started by PID, and returns a report whose
 * `violations` must be empty.
 *
 * - `processFaults`: a soak (steady mixed load; RSS, fds and event-loop lag of `stratus serve`
 *   and `stratus controller` back to baseline after it), then SIGKILL / SIGSTOP of both at
 *   random moments; every acknowledged write kept, every watch consistent, every Instance
 *   converged with exactly one container on the engine.
 * - `diskFull`: SQLite on a tmpfs that fills up: writes refused with 507/503, reads and the
 *   process alive, writes resume when space returns, nothing lost or corrupted.
 * - `etcdMembers`: a 3-member etcd cluster loses its leader, a follower, then quorum:
 *   never a 500, 503 only around the quorum loss, nothing acknowledged lost.
 */
import { join } from 'node:path';
import { statfsSync, writeFileSync, rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { startStratusServe, type StratusServe } from '../harness/apiserver.js';
import { importBusybox, makeCerts, startDockerd, type CertBundle, type Dockerd } from '../harness/dockerd.js';
import { startEtcdCluster, type EtcdCluster } from '../harness/etcd.js';
import { stratusBin } from '../harness/paths.js';
import { freePort, removeDir, startDaemon, tempDir, waitFor, type Daemon } from '../harness/process.js';
import { eventLoopLagP99Ms, etcdLeader, freeze, mountSmallFilesystem, percentile, randomSource, sampleProcess, type ProcessSample } from './faults.js';
import { Ledger } from './ledger.js';
import { NAMESPACE, Workload, type WorkloadOptions } from './workload.js';

export interface ChaosProfile {
  name: string;
  seed: number;
  /** Steady load before the faults, with the resource-growth check. */
  soakSeconds: number;
  /** Load with SIGKILL/SIGSTOP faults. */
  faultSeconds: number;
  /** Gap between two faults: uniform in [min, max] ms. */
  faultGapMs: [number, number];
  writers: number;
  watchers: number;
  instanceClients: number;
  /** Load per etcd phase (leader, follower, quorum). */
  etcdPhaseSeconds: number;
  /** Bound for every Instance to converge after the last fault. */
  convergeSeconds: number;
  /** How long dockerd stays killed (engine faults). */
  dockerDownSeconds: number;
  /** How long the GCE fake answers 500, then 429, then nothing (each). */
  gceFaultSeconds: number;
}

export interface FaultRecord {
  atSeconds: number;
  fault: string;
  /** Until the API (or the process) answered again. */
  recoverySeconds?: number;
}

export interface ScenarioReport {
  scenario: string;
  seconds: number;
  faults: FaultRecord[];
  figures: Record<string, unknown>;
  violations: string[];
}

/** Start-up (and restart after SIGKILL) of `stratus serve` on a loaded 2-core machine can take a while. */
export const READY_MS = 120_000;

export const round = (n: number, d = 1): number => Number(n.toFixed(d));

export function ledgerFigures(name: string, l: Ledger): Record<string, unknown> {
  const c = l.counts();
  return { [`${name}: objects`]: l.objects.size, [`${name}: acknowledged`]: c.acknowledgedWrites, [`${name}: unanswered requests`]: c.unanswered, [`${name}: answers`]: c.statuses };
}

export async function listJson<T>(serve: StratusServe, path: string): Promise<T[]> {
  const r = await serve.fetch(`${serve.url}${path}`);
  if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${(await r.text()).slice(0, 200)}`);
  return ((await r.json()) as { items: T[] }).items;
}

export interface InstanceView {
  metadata: { name: string; uid: string; generation?: number; deletionTimestamp?: string };
  spec: { powerState?: string };
  status?: { state?: string; observedGeneration?: number };
}

async function metricsText(url: string, fetcher: (u: string) => Promise<Response>): Promise<string> {
  try {
    const r = await fetcher(url);
    return r.ok ? await r.text() : '';
  } catch {
    return '';
  }
}

interface Probe {
  name: string;
  pid: () => number;
  metrics: () => Promise<string>;
}

interface ResourceSnapshot extends ProcessSample {
  lagP99Ms?: number;
}

async function snapshot(p: Probe): Promise<ResourceSnapshot> {
  const lag = eventLoopLagP99Ms(await p.metrics());
  return { ...sampleProcess(p.pid()), ...(lag !== undefined ? { lagP99Ms: round(lag) } : {}) };
}

/** Idle for a moment (prom-client's lag histogram resets on each scrape), then one snapshot. */
async function settledSnapshot(p: Probe): Promise<ResourceSnapshot> {
  await p.metrics();
  await sleep(3000);
  return snapshot(p);
}

export function workloadOptions(serve: StratusServe, profile: ChaosProfile, prefix: string, extra: Partial<WorkloadOptions> = {}): WorkloadOptions {
  return {
    url: () => serve.url,
    fetch: serve.fetch,
    writers: profile.writers,
    watchers: profile.watchers,
    instanceClients: 0,
    pauseMs: 40,
    prefix,
    ...extra,
  };
}

/** What a scenario accumulates: seconds since it started, its faults, figures and violations. */
export interface ScenarioLog {
  at(): number;
  faults: FaultRecord[];
  figures: Record<string, unknown>;
  violations: string[];
  report(scenario: string): ScenarioReport;
}

export function scenarioLog(): ScenarioLog {
  const started = Date.now();
  const at = (): number => round((Date.now() - started) / 1000);
  const log = { at, faults: [] as FaultRecord[], figures: {} as Record<string, unknown>, violations: [] as string[] };
  return { ...log, report: (scenario) => ({ scenario, seconds: at(), faults: log.faults, figures: log.figures, violations: log.violations }) };
}

/** POSTs an object as the admin; anything but 201 throws. */
export async function post(s: StratusServe, path: string, body: unknown): Promise<void> {
  const r = await s.fetch(`${s.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (r.status !== 201) throw new Error(`POST ${path}: ${r.status} ${await r.text()}`);
}

/**
 * A docker ComputeNode `name` on the engine at `address` (TLS from `certs`), heartbeat 1 s.
 * Its declared capacity (4096 CPUs) exceeds what the longest run creates: `make chaos` once
 * ran out of 256 (1,224 Instances accumulated over its 10-minute soak) and the Instances
 * beyond it stayed unscheduled — correct, but not the fault under test.
 */
export async function addDockerNode(s: StratusServe, name: string, address: string, certs: CertBundle): Promise<void> {
  await post(s, `/api/v1/namespaces/${NAMESPACE}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: `${name}-tls` }, stringData: { 'ca.pem': certs.ca, 'cert.pem': certs.cert, 'key.pem': certs.key } });
  await post(s, '/apis/compute.stratus.dev/v1alpha1/computenodes', {
    apiVersion: 'compute.stratus.dev/v1alpha1',
    kind: 'ComputeNode',
    metadata: { name },
    spec: { provider: 'docker', docker: { address, tlsSecretRef: { name: `${name}-tls`, namespace: NAMESPACE }, hostIP: '127.0.0.1' }, capacityOverride: { cpus: 4096, memoryMiB: 4 * 1024 * 1024 }, heartbeatSeconds: 1 },
  });
}

/** `stratus controller` against the server, its metrics on `metricsPort`. */
export function startStratusController(s: StratusServe, metricsPort: number): Daemon {
  return startDaemon(process.execPath, [stratusBin(), 'controller', '--kubeconfig', s.kubeconfig, '--metrics-listen', `127.0.0.1:${metricsPort}`], {
    env: { ...process.env, STRATUS_LOG_LEVEL: 'warn' },
  });
}

/** The status of a ComputeNode's Ready condition (undefined before the first heartbeat). */
export async function nodeReady(s: StratusServe, name: string): Promise<string | undefined> {
  const r = await s.fetch(`${s.url}/apis/compute.stratus.dev/v1alpha1/computenodes/${name}`);
  if (r.status !== 200) throw new Error(`GET computenode ${name}: ${r.status} ${(await r.text()).slice(0, 200)}`);
  const node = (await r.json()) as { status?: { conditions?: { type: string; status: string }[] } };
  return node.status?.conditions?.find((c) => c.type === 'Ready')?.status;
}

export const INSTANCES = `/apis/compute.stratus.dev/v1alpha1/namespaces/${NAMESPACE}/instances`;

/**
 * Waits (up to `convergeSeconds`) until every Instance is as declared — running or stopped,
 * its generation observed, none being deleted — and returns them; a timeout is a violation
 * (and the Instances as they are are returned).
 */
export async function convergedInstances(s: StratusServe, profile: ChaosProfile, violations: string[]): Promise<InstanceView[]> {
  const converged = await waitFor('every Instance to converge', async () => {
    const items = await listJson<InstanceView>(s, INSTANCES);
    const pending = items.filter((i) => {
      if (i.metadata.deletionTimestamp) return true;
      const want = i.spec.powerState === 'Stopped' ? 'stopped' : 'running';
      return i.status?.observedGeneration !== i.metadata.generation || i.status?.state !== want;
    });
    return pending.length === 0 ? items : undefined;
  }, profile.convergeSeconds * 1000, 500).catch((err: unknown) => {
    violations.push(`Instances did not converge within ${profile.convergeSeconds} s of the last fault: ${(err as Error).message}`);
    return undefined;
  });
  return converged ?? (await listJson<InstanceView>(s, INSTANCES));
}

/** The owner (the `stratus.dev/uid` label) of every stratus container on the engine, one entry per container. */
export async function containerOwners(engine: Dockerd): Promise<string[]> {
  const containers = await engine.client.listContainers({ all: true, filters: JSON.stringify({ label: ['stratus.dev/uid'] }) });
  return containers.map((c) => c.Labels['stratus.dev/uid']!);
}

/**
 * Exactly one machine per Instance and none without one: `owners` lists each machine's owner
 * key, `key` gives an Instance's. Returns the number of machines.
 */
export function checkOneMachineEach(items: InstanceView[], owners: string[], key: (i: InstanceView) => string, what: string, violations: string[]): number {
  const per = new Map<string, number>();
  for (const o of owners) per.set(o, (per.get(o) ?? 0) + 1);
  for (const i of items) {
    const n = per.get(key(i)) ?? 0;
    if (n !== 1) violations.push(`Instance ${i.metadata.name}: ${n} ${what}, expected exactly 1`);
  }
  const live = new Set(items.map(key));
  const leaked = [...per.keys()].filter((o) => !live.has(o));
  if (leaked.length) violations.push(`${leaked.length} ${what} belong to no Instance (leaked): ${leaked.slice(0, 5).join(', ')}`);
  return owners.length;
}

/** Stops the writers, lets the watchers catch up, and checks the ConfigMap history. */
export async function checkConfigMaps(w: Workload, label: string, violations: string[], figures: Record<string, unknown>): Promise<void> {
  await w.stopWriters();
  const watch = await w.settleWatchers(30_000);
  violations.push(...watch.violations.map((v) => `${label}: ${v}`));
  const final = await waitFor('a LIST of the ConfigMaps', () => w.finalConfigMaps().catch(() => undefined), 30_000, 200);
  violations.push(...w.configMaps.check(`${label} ConfigMap`, final.values));
  violations.push(...w.configMaps.internalErrors.map((e) => `${label}: ${e}`));
  violations.push(...w.legacyInternalErrors.map((e) => `${label}: legacy ${e}`));
  Object.assign(figures, ledgerFigures(`${label} ConfigMaps`, w.configMaps));
  figures[`${label} watch events seen`] = watch.watchers.reduce((n, x) => n + x.events, 0);
  figures[`${label} watch relists (410 or restart)`] = watch.watchers.reduce((n, x) => n + x.relists, 0);
  figures[`${label} watch (re)connections`] = watch.watchers.reduce((n, x) => n + x.resumes, 0);
  if (w.legacyStatuses.size) figures[`${label} legacy answers`] = Object.fromEntries(w.legacyStatuses);
}

/**
 * Soak, then SIGKILL/SIGSTOP of `stratus serve` and `stratus controller` at random moments,
 * with Instances on a real Docker engine.
 */
export async function processFaults(profile: ChaosProfile): Promise<ScenarioReport> {
  const { at, violations, figures, faults, report } = scenarioLog();
  const random = randomSource(profile.seed);
  const work = await tempDir('chaos');
  let engine: Dockerd | undefined;
  let serve: StratusServe | undefined;
  let controller: Daemon | undefined;
  const workloads: Workload[] = [];
  try {
    const certs = await makeCerts(join(work, 'certs'));
    engine = await startDockerd({ certs });
    const image = await importBusybox(engine);
    const legacyPort = await freePort();
    serve = await startStratusServe({ readyTimeoutMs: READY_MS, args: ['--legacy-listen', `127.0.0.1:${legacyPort}`, '--legacy-anonymous', 'clementine'] });
    const s = serve;
    await addDockerNode(s, 'chaos-engine', engine.address, certs);
    const metricsPort = await freePort();
    const startController = (): Daemon => startStratusController(s, metricsPort);
    controller = startController();
    await waitFor('the engine node Ready', async () => (await nodeReady(s, 'chaos-engine')) === 'True', 60_000, 200);
    const instanceSpec = { provider: 'docker', image, command: ['/bin/busybox', 'sleep', '3600'], cpus: 1, memoryMiB: 16 };
    const probes: Probe[] = [
      { name: 'stratus serve', pid: () => s.pid, metrics: () => metricsText(`${s.url}/metrics`, (u) => s.fetch(u)) },
      { name: 'stratus controller', pid: () => controller!.pid, metrics: () => metricsText(`http://127.0.0.1:${metricsPort}/metrics`, (u) => fetch(u)) },
    ];
    figures['setup seconds'] = at();

    // 1. Soak: steady mixed load, then everything back to baseline.
    if (profile.soakSeconds > 0) {
      const warm = new Workload(workloadOptions(s, profile, 'warm', { instanceClients: profile.instanceClients, instanceSpec }));
      warm.start();
      await sleep(Math.min(10_000, profile.soakSeconds * 250));
      await warm.close();
      const baseline = await Promise.all(probes.map(settledSnapshot));
      const soak = new Workload(workloadOptions(s, profile, 'soak', { instanceClients: profile.instanceClients, instanceSpec, legacyUrl: `http://127.0.0.1:${legacyPort}` }));
      workloads.push(soak);
      soak.start();
      const samples: ResourceSnapshot[][] = [];
      const soakEnd = Date.now() + profile.soakSeconds * 1000;
      while (Date.now() < soakEnd) {
        await sleep(Math.min(5000, soakEnd - Date.now()));
        samples.push(await Promise.all(probes.map(snapshot)));
      }
      await checkConfigMaps(soak, 'soak', violations, figures);
      const after = await Promise.all(probes.map(settledSnapshot));
      probes.forEach((p, i) => {
        const b = baseline[i]!;
        const a = after[i]!;
        const during = samples.map((x) => x[i]!);
        figures[`${p.name}: baseline`] = b;
        figures[`${p.name}: after the soak`] = a;
        figures[`${p.name}: peak RSS during the soak (MiB)`] = round(Math.max(...during.map((x) => x.rssMiB)));
        figures[`${p.name}: event-loop lag p99 during the soak, median of scrapes (ms)`] = round(percentile(during.map((x) => x.lagP99Ms ?? 0), 50));
        // Allowances: V8 keeps some heap after a load it has seen (not a leak); a leak grows with the run.
        if (a.fds > b.fds + 16) violations.push(`soak: ${p.name} holds ${a.fds} file descriptors after the load, ${b.fds} before`);
        if (a.rssMiB > b.rssMiB * 1.5 + 64) violations.push(`soak: ${p.name} RSS ${round(a.rssMiB)} MiB after the load, ${round(b.rssMiB)} MiB before`);
        if ((a.lagP99Ms ?? 0) > Math.max(250, (b.lagP99Ms ?? 0) * 3)) violations.push(`soak: ${p.name} event-loop lag p99 ${a.lagP99Ms} ms idle after the load, ${b.lagP99Ms} ms before`);
      });
    }

    // 2. Faults at random moments while the load runs.
    const chaos = new Workload(workloadOptions(s, profile, 'chaos', { instanceClients: profile.instanceClients, instanceSpec, legacyUrl: `http://127.0.0.1:${legacyPort}` }));
    workloads.push(chaos);
    chaos.start();
    const kinds = ['SIGKILL stratus serve', 'SIGSTOP stratus serve', 'SIGKILL stratus controller', 'SIGSTOP stratus controller'];
    const faultEnd = Date.now() + profile.faultSeconds * 1000;
    const [gapMin, gapMax] = profile.faultGapMs;
    // until the time is up and every kind has been injected at least once
    while (Date.now() < faultEnd || kinds.length > 0) {
      await sleep(gapMin + random() * (gapMax - gapMin));
      // every kind once, in a random order, then random kinds
      const kind = kinds.length > 0 ? kinds.splice(Math.floor(random() * kinds.length), 1)[0]! : ['SIGKILL stratus serve', 'SIGSTOP stratus serve', 'SIGKILL stratus controller', 'SIGSTOP stratus controller'][Math.floor(random() * 4)]!;
      const record: FaultRecord = { atSeconds: at(), fault: kind };
      const t0 = Date.now();
      if (kind === 'SIGKILL stratus serve') {
        await s.kill();
        await sleep(random() * 500);
        await s.restart();
      } else if (kind === 'SIGSTOP stratus serve') {
        const ms = 1000 + random() * 2000;
        record.fault += ` for ${round(ms / 1000)} s`;
        await freeze(s.pid, ms);
        await waitFor('the API after SIGCONT', async () => (await s.fetch(`${s.url}/readyz`)).status === 200, 30_000, 50);
      } else if (kind === 'SIGKILL stratus controller') {
        await controller.kill();
        await sleep(random() * 500);
        controller = startController();
      } else {
        const ms = 1000 + random() * 2000;
        record.fault += ` for ${round(ms / 1000)} s`;
        await freeze(controller.pid, ms);
      }
      record.recoverySeconds = round((Date.now() - t0) / 1000);
      faults.push(record);
    }
    const lastFault = Date.now();
    await checkConfigMaps(chaos, 'faults', violations, figures);
    for (const w of workloads) await w.close();

    // 3. Every Instance converges, with exactly one container each.
    const expected = new Map<string, string>();
    const instanceLedgers = workloads.map((w) => w.instances);
    // the warm-up's Instances too: they hold containers on the same engine
    const items = await convergedInstances(s, profile, violations);
    figures['Instances converged, seconds after the last fault'] = round((Date.now() - lastFault) / 1000);
    for (const i of items) expected.set(i.metadata.name, i.spec.powerState ?? 'Running');
    workloads.forEach((w, k) => {
      const mine = new Map([...expected].filter(([n]) => n.startsWith(`${w === chaos ? 'chaos' : 'soak'}-`)));
      violations.push(...instanceLedgers[k]!.check(`${w === chaos ? 'faults' : 'soak'} Instance`, mine));
      violations.push(...instanceLedgers[k]!.internalErrors);
    });
    for (const [k, w] of workloads.entries()) Object.assign(figures, ledgerFigures(`${w === chaos ? 'faults' : 'soak'} Instances`, instanceLedgers[k]!));
    figures['Instances at the end'] = items.length;
    figures['containers at the end'] = await checkOneMachineEach(items, await containerOwners(engine), (i) => i.metadata.uid, 'containers on the engine', violations);
    return report('process-faults');
  } finally {
    for (const w of workloads) await w.close().catch(() => undefined);
    await controller?.stop(10_000);
    await serve?.stop();
    await engine?.stop();
    await removeDir(work);
  }
}

/** SQLite on a tmpfs that fills up, then gets its space back. */
export async function diskFull(_profile: ChaosProfile): Promise<ScenarioReport> {
  const { at, violations, figures, faults, report } = scenarioLog();
  const work = await tempDir('chaos-disk');
  const fs = join(work, 'fs');
  const unmount = await mountSmallFilesystem(fs, 24);
  let serve: StratusServe | undefined;
  try {
    serve = await startStratusServe({ readyTimeoutMs: READY_MS, dataDir: join(fs, 'data') });
    const s = serve;
    const ledger = new Ledger();
    const cm = `/api/v1/namespaces/${NAMESPACE}/configmaps`;
    const payload = 'x'.repeat(16 * 1024);
    const create = async (name: string): Promise<{ status: number; text: string }> => {
      const r = await s.fetch(`${s.url}${cm}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ metadata: { name }, data: { v: name, pad: payload } }) });
      return { status: r.status, text: await r.text() };
    };
    // Leave ~3 MiB free: the ballast is what is given back later.
    const ballast = join(fs, 'ballast');
    const free = (): number => {
      const st = statfsSync(fs);
      return st.bavail * st.bsize;
    };
    writeFileSync(ballast, Buffer.alloc(Math.max(0, free() - 3 * 1024 * 1024)));
    figures['free bytes before the fill'] = free();
    const refusals = new Map<number, string>();
    let n = 0;
    for (; n < 5000 && refusals.size === 0; n++) {
      const name = `fill-${n}`;
      let out: ReturnType<Ledger['classify']>;
      try {
        const r = await create(name);
        out = ledger.classify(`create ${name}`, r.status, r.text);
        if (r.status >= 500 || r.status === 507) refusals.set(r.status, r.text.slice(0, 300));
        else if (r.status !== 201) violations.push(`disk full: a valid create was answered ${r.status}: ${r.text.slice(0, 200)}`);
      } catch (err) {
        out = ledger.classify(`create ${name}`, err as Error);
        violations.push(`disk full: create ${name} got no answer (${(err as Error).message}): the server must answer, not drop the connection`);
        break;
      }
      ledger.wrote(name, 'create', out, name);
    }
    faults.push({ atSeconds: at(), fault: `filesystem full after ${n} creates` });
    figures['creates accepted before the filesystem was full'] = n - 1;
    figures['answer when full'] = Object.fromEntries(refusals);
    for (const [code, text] of refusals) {
      if (code !== 507 && code !== 503) violations.push(`disk full: a write was answered ${code} (expected 507 or 503): ${text}`);
      else if (!/space|full/i.test(text)) violations.push(`disk full: the ${code} does not say the storage is full: ${text}`);
    }
    // While full: the server lives, reads answer, writes keep being refused cleanly.
    const alive = async (): Promise<void> => {
      const get = await s.fetch(`${s.url}${cm}/fill-0`);
      if (get.status !== 200) violations.push(`disk full: GET of an existing object answered ${get.status}`);
      await get.text();
      const list = await s.fetch(`${s.url}${cm}`);
      if (list.status !== 200) violations.push(`disk full: LIST answered ${list.status}`);
      await list.text();
    };
    for (let i = 0; i < 20; i++) {
      try {
        const r = await create(`full-${i}`);
        ledger.wrote(`full-${i}`, 'create', ledger.classify(`create full-${i}`, r.status, r.text), `full-${i}`);
        if (r.status === 500) violations.push(`disk full: create answered 500: ${r.text.slice(0, 200)}`);
      } catch (err) {
        violations.push(`disk full: the server stopped answering while full (${(err as Error).message})`);
        break;
      }
    }
    await alive().catch((err: unknown) => violations.push(`disk full: reads failed: ${(err as Error).message}`));
    // Space comes back: writes resume without a restart.
    rmSync(ballast);
    const t0 = Date.now();
    await waitFor('a write after space came back', async () => {
      const r = await create(`resumed-${Date.now()}`);
      return r.status === 201;
    }, 30_000, 200).catch(() => violations.push('disk full: writes did not resume within 30 s of space coming back'));
    figures['writes resumed, seconds after space came back'] = round((Date.now() - t0) / 1000);
    faults.push({ atSeconds: at(), fault: 'space given back', recoverySeconds: round((Date.now() - t0) / 1000) });
    const values = async (): Promise<Map<string, string>> => {
      const items = await listJson<{ metadata: { name: string }; data?: { v?: string } }>(s, cm);
      return new Map(items.filter((i) => /^(fill|full)-/.test(i.metadata.name)).map((i) => [i.metadata.name, i.data?.v ?? '']));
    };
    violations.push(...ledger.check('disk full: ConfigMap', await values()));
    // A restart on the once-full filesystem: everything acknowledged is still there, the file is sound.
    await s.restart();
    violations.push(...ledger.check('disk full, after a restart: ConfigMap', await values()));
    await s.terminate();
    const db = new Database(join(s.dataDir, 'stratus.db'), { readonly: true });
    try {
      const check = db.pragma('integrity_check', { simple: true });
      figures['SQLite integrity_check'] = check;
      if (check !== 'ok') violations.push(`disk full: SQLite integrity_check says ${String(check)}`);
    } finally {
      db.close();
    }
    Object.assign(figures, ledgerFigures('disk full ConfigMaps', ledger));
    violations.push(...ledger.internalErrors.map((e) => `disk full: ${e}`));
    return report('disk-full');
  } finally {
    await serve?.stop();
    await unmount();
    await removeDir(work);
  }
}

/** A 3-member etcd cluster loses its leader, a follower, then quorum, under load. */
export async function etcdMembers(profile: ChaosProfile): Promise<ScenarioReport> {
  const { at, violations, figures, faults, report } = scenarioLog();
  let cluster: EtcdCluster | undefined;
  let serve: StratusServe | undefined;
  let w: Workload | undefined;
  try {
    cluster = await startEtcdCluster(3);
    const c = cluster;
    serve = await startStratusServe({ readyTimeoutMs: READY_MS, etcdServers: c.endpoints });
    // 5xx answers outside the quorum loss (and a grace for the election after each fault)
    const outside: string[] = [];
    let quorumLost = false;
    let graceUntil = 0;
    const s = serve;
    const original = s.fetch;
    const watched: typeof s.fetch = async (u, init) => {
      const r = await original(u, init);
      if (r.status >= 500 && !quorumLost && Date.now() > graceUntil && !u.includes('watch=true')) outside.push(`${init?.method ?? 'GET'} ${u.replace(s.url, '')} → ${r.status} at ${at()} s`);
      return r;
    };
    w = new Workload({ ...workloadOptions(serve, profile, 'etcd', { requestTimeoutMs: 8000 }), fetch: watched });
    w.start();
    const phase = profile.etcdPhaseSeconds * 1000;
    const grace = 5000;
    await sleep(phase);
    const memberOf = (endpoint: string) => c.members.find((m) => m.endpoint === endpoint)!;
    const leader = await etcdLeader(c.endpoints);
    if (!leader) throw new Error('the etcd cluster has no leader');
    let t0 = Date.now();
    graceUntil = Date.now() + grace;
    await memberOf(leader).kill();
    faults.push({ atSeconds: at(), fault: 'SIGKILL etcd leader' });
    await sleep(phase);
    await memberOf(leader).restart();
    graceUntil = Date.now() + grace;
    faults[faults.length - 1]!.recoverySeconds = round((Date.now() - t0) / 1000);
    await sleep(phase);
    const newLeader = await waitFor('an etcd leader', () => etcdLeader(c.endpoints), 30_000, 100);
    const follower = c.endpoints.find((e) => e !== newLeader)!;
    t0 = Date.now();
    await memberOf(follower).kill();
    faults.push({ atSeconds: at(), fault: 'SIGKILL etcd follower' });
    await sleep(phase);
    await memberOf(follower).restart();
    faults[faults.length - 1]!.recoverySeconds = round((Date.now() - t0) / 1000);
    await sleep(phase);
    // Quorum gone: two members stopped (SIGSTOP: a partitioned member, still holding its ports).
    const stopped = c.members.slice(0, 2);
    quorumLost = true;
    t0 = Date.now();
    for (const m of stopped) process.kill(m.pid, 'SIGSTOP');
    faults.push({ atSeconds: at(), fault: 'SIGSTOP two etcd members (quorum lost)' });
    const duringLoss = new Map<string, number>();
    const lossEnd = Date.now() + phase;
    while (Date.now() < lossEnd) {
      const r = await s
        .fetch(`${s.url}/api/v1/namespaces/${NAMESPACE}/configmaps`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ metadata: { generateName: 'probe-' } }), signal: AbortSignal.timeout(15_000) })
        .then(async (x) => {
          await x.text();
          return String(x.status);
        })
        .catch((err: Error) => (err.name === 'TimeoutError' ? 'TIMEOUT' : 'ERROR'));
      duringLoss.set(r, (duringLoss.get(r) ?? 0) + 1);
      await sleep(250);
    }
    for (const m of stopped) process.kill(m.pid, 'SIGCONT');
    graceUntil = Date.now() + grace;
    quorumLost = false;
    faults[faults.length - 1]!.recoverySeconds = round((Date.now() - t0) / 1000);
    figures['probe creates while quorum was lost'] = Object.fromEntries(duringLoss);
    if (duringLoss.has('500')) violations.push('etcd quorum lost: a create was answered 500 (expected 503)');
    if (duringLoss.has('201')) violations.push('etcd quorum lost: a create was acknowledged while no quorum existed');
    // The server bounds each etcd call (--etcd-request-timeout, 5 s): no answer within the probe's 15 s is a hang.
    for (const hung of ['TIMEOUT', 'ERROR']) if (duringLoss.has(hung)) violations.push(`etcd quorum lost: ${duringLoss.get(hung)} create(s) got no answer (${hung}) instead of a prompt 503`);
    await sleep(phase);
    await checkConfigMaps(w, 'etcd', violations, figures);
    figures['5xx answers outside the quorum loss (after a 5 s election grace)'] = outside.length;
    violations.push(...outside.slice(0, 10).map((o) => `etcd: 5xx while the cluster had quorum: ${o}`));
    return report('etcd-members');
  } finally {
    await w?.close().catch(() => undefined);
    await serve?.stop();
    await cluster?.stop();
  }
}
