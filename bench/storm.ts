/**
 * Apply storm: N Instances created through the API by 32 concurrent clients (like many
 * `kubectl apply`s) onto ComputeNodes on libvirt's test driver; measures the time until every
 * one is `running`, instances/s, create→running latency p50/p99 (from sending the create to
 * the watch event that shows `running`), the API server's peak RSS (VmHWM) and the store
 * writes it made (creates, status writes, bindings, finalizers, events — counted by the
 * server's `stratus_storage_requests_total`).
 *
 * The controllers run in this process against `stratus serve --no-controllers` (what
 * `stratus controller` does), so the server's RSS and CPU are the API server's alone and
 * the test driver's domains live here, with the controllers that opened them. They run
 * with the defaults `stratus serve` uses (instance concurrency 8, transition poll 1 s).
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { readFileSync } from 'node:fs';
import type { ComputeNode, Instance } from '../crds/types.js';
import { KubeClient, type KubeObject } from '../runtime/client.js';
import { Manager } from '../runtime/manager.js';
import { registerControllers, type ControllerSettings } from '../controllers/index.js';
import { Resources } from '../controllers/resources.js';
import { connectLibvirt, simNodeUri, seedFiles } from '../providers/libvirt/index.js';
import { buildSeedIso } from '../providers/libvirt/cloud-init.js';
import { machineSpecFor } from '../controllers/machinespec.js';
import { startStratusServe, type StratusServe } from '../test/harness/apiserver.js';
import { removeDir, tempDir, waitFor } from '../test/harness/process.js';
import { median, percentile, quantiles } from './report.js';
import { benchWarn, progress } from './progress.js';
import { markPhase, profileThisProcess } from './cpu-profiler.js';
import { memoryOf, storeWrites, apiWrites, type BenchAccess } from './proc.js';
import { createAccessToken } from '../legacy/tokens.js';

export const STORM_CLIENTS = 32;
const NODES = 4;
/** `registerControllers`' default. */
const DEFAULT_INSTANCE_CONCURRENCY = 8;

export interface StormOptions {
  backend: 'sqlite' | 'etcd';
  n: number;
  etcdServers?: string[];
  /** Give up waiting for `running` after this long (the figures then say how many made it). */
  deadlineMs: number;
  /** Extra environment of the server (e.g. NODE_OPTIONS=--cpu-prof). */
  serverEnv?: Record<string, string>;
  /** Controller settings (default: what `stratus serve` runs). */
  controllers?: ControllerSettings;
  /** Write a CPU profile of this process (the controllers) during the storm here. */
  controllersProfile?: string;
  /** As `ApiBenchOptions.phases`: set only when the server runs under bench/cpu-profiler.ts. */
  phases?: string[];
  /** Runs once every Instance is running, before the server stops (memory measurements). */
  whileLoaded?: (loaded: LoadedServer) => Promise<void>;
}

export interface LoadedServer {
  serve: StratusServe;
  access: BenchAccess;
  /** Server RSS (MiB) after the nodes were ready and before the first Instance. */
  baselineRssMiB: number;
}

export interface StormResult {
  n: number;
  running: number;
  seconds: number;
  instancesPerSec: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  peakRssMiB: number;
  storeWrites: number;
  apiWrites: number;
  storeWritesPerSec: number;
  /** Seconds the 32 clients took to create all N (the API's create throughput). */
  createSeconds: number;
  /** Median ms of building one cloud-init seed ISO (in-process), done once per Instance created. */
  seedIsoMs: number;
  /**
   * The provider floor: machines/s the libvirt provider alone reaches on fresh test-driver
   * nodes (as many as the storm's), `instanceConcurrency` creates at once, each until it runs.
   */
  providerPerSec: number;
  /** Instance reconciles the controllers run at once. */
  instanceConcurrency: number;
  /** create→running latencies, 0th..100th percentile (ms). */
  latencyQuantilesMs: number[];
}

/**
 * The provider floor, same run: `n` machines created straight through the libvirt provider
 * (`LibvirtMachines.create`, then observed until running) on `NODES` fresh test-driver nodes,
 * `concurrency` at once — what the controllers could reach with no API server, no queue and no
 * status writes.
 */
async function providerFloor(simDir: string, n: number, concurrency: number): Promise<number> {
  const conns = Array.from({ length: NODES }, (_, i) => connectLibvirt({ uri: simNodeUri(join(simDir, `floor-${i}`)), imagePool: 'default' }));
  try {
    let next = 0;
    const start = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let i = next++; i < n; i = next++) {
          const name = `floor-${i}`;
          const inst: Instance = { ...instance(name), metadata: { name, namespace: 'default', uid: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}` } };
          const spec = machineSpecFor(inst, { sshKey: () => undefined, network: () => undefined });
          const machines = conns[i % NODES]!.machines();
          await machines.create(spec);
          for (let tries = 0; (await machines.observe(spec)).state !== 'running'; tries++) {
            if (tries > 100) throw new Error(`provider floor: ${name} does not run`);
            await new Promise((r) => setTimeout(r, 10));
          }
        }
      }),
    );
    return n / ((performance.now() - start) / 1000);
  } finally {
    await Promise.all(conns.map((c) => c.close()));
  }
}

/** Median wall time of building one seed ISO (once per Instance created). */
async function seedIsoMs(): Promise<number> {
  const inst: Instance = { ...instance('seed-probe'), metadata: { name: 'seed-probe', namespace: 'default', uid: '00000000-0000-4000-8000-000000000000' } };
  const spec = machineSpecFor(inst, { sshKey: () => undefined, network: () => undefined });
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    await buildSeedIso(seedFiles(spec));
    times.push(performance.now() - t0);
  }
  return median(times);
}

/**
 * An AccessToken for user `stratus-bench`, bound to `cluster-admin` by a ClusterRoleBinding
 * (not `system:masters`): every bench request is authenticated by token and authorized by
 * RBAC, as a user's would be.
 */
export async function benchAccessOf(serve: StratusServe): Promise<BenchAccess> {
  const client = KubeClient.fromFile(serve.kubeconfig);
  try {
    const { token } = await createAccessToken(client, 'default', 'bench', { user: 'stratus-bench' });
    await client.resource({ group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'clusterrolebindings', namespaced: false, kind: 'ClusterRoleBinding' }).create({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'stratus-bench' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'stratus-bench' }],
    } as KubeObject);
    return { token, ca: readFileSync(join(serve.dataDir, 'pki', 'ca.crt'), 'utf8') };
  } finally {
    client.close();
  }
}

function instance(name: string): Instance {
  return {
    apiVersion: 'compute.stratus.dev/v1alpha1',
    kind: 'Instance',
    metadata: { name, namespace: 'default' },
    spec: { provider: 'libvirt', image: 'debian-12', cpus: 1, memoryMiB: 64 },
  };
}

export async function runStorm(opts: StormOptions): Promise<StormResult> {
  const simDir = await tempDir('bench-sim');
  let serve: StratusServe;
  try {
    serve = await startStratusServe({
      ...(opts.etcdServers ? { etcdServers: opts.etcdServers } : {}),
      ...(opts.serverEnv ? { env: opts.serverEnv } : {}),
    });
  } catch (err) {
    await removeDir(simDir);
    throw err;
  }
  const client = KubeClient.fromFile(serve.kubeconfig);
  const mgr = new Manager({ client: KubeClient.fromFile(serve.kubeconfig) });
  const held = registerControllers(mgr, opts.controllers ?? {});
  const abort = new AbortController();
  let watching: Promise<void> | undefined;
  try {
    const access = await benchAccessOf(serve);
    const nodes = client.resource<ComputeNode>(Resources.computeNodes);
    for (let i = 0; i < NODES; i++) {
      await nodes.create({
        apiVersion: 'compute.stratus.dev/v1alpha1',
        kind: 'ComputeNode',
        metadata: { name: `sim-${i}` },
        // capacity for any N: the storm measures the control plane, not the scheduler's refusals
        spec: { provider: 'libvirt', libvirt: { uri: simNodeUri(join(simDir, `n${i}`)), imagePool: 'default' }, capacityOverride: { cpus: 65536, memoryMiB: 1 << 30 } },
      });
    }
    await mgr.start();
    await waitFor(
      'Ready sim nodes',
      async () => (await nodes.list()).filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length === NODES,
      30_000,
    );
    const baselineRssMiB = memoryOf(serve.pid).rssMiB;
    const phase = (name: string): void => {
      if (!opts.phases) return;
      opts.phases.push(name);
      markPhase(serve.pid);
    };
    phase('startup');
    const isoMs = await seedIsoMs();
    const floorShown = progress('provider floor (libvirt alone)', undefined, '', 30);
    const instanceConcurrency = opts.controllers?.instanceConcurrency ?? DEFAULT_INSTANCE_CONCURRENCY;
    const providerPerSec = await providerFloor(simDir, 64, instanceConcurrency);
    floorShown.end(`${providerPerSec.toFixed(1)} machines/s`);
    const stopProfile = opts.controllersProfile ? profileThisProcess(opts.controllersProfile) : undefined;

    const instances = client.resource<Instance>(Resources.instances);
    const sentAt = new Map<string, number>();
    const runningAt = new Map<string, number>();
    let allRunning: () => void = () => undefined;
    const done = new Promise<void>((r) => (allRunning = r));
    const { resourceVersion } = await instances.listWithVersion('default');
    const shown = progress(`apply storm ${opts.backend}: running`, opts.n, 'Instances');
    watching = (async () => {
      let rv = resourceVersion;
      while (!abort.signal.aborted) {
        await instances
          .watch('default', { resourceVersion: rv, signal: abort.signal, timeoutSeconds: 600 }, (_type, obj) => {
            rv = obj.metadata?.resourceVersion ?? rv;
            const name = obj.metadata?.name ?? '';
            if (obj.status?.state === 'running' && !runningAt.has(name)) {
              runningAt.set(name, performance.now());
              shown.set(runningAt.size);
              if (runningAt.size === opts.n) allRunning();
            }
          })
          .catch((err: unknown) => {
            if (!abort.signal.aborted) benchWarn(`storm ${opts.backend}: watch restarts after ${String(err)}`);
          });
      }
    })();

    const writes0 = await storeWrites(serve.url, access);
    const api0 = await apiWrites(serve.url, access);
    const start = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: STORM_CLIENTS }, async () => {
        const c = KubeClient.fromFile(serve.kubeconfig);
        const res = c.resource<Instance>(Resources.instances);
        try {
          for (let i = next++; i < opts.n; i = next++) {
            const name = `storm-${i}`;
            sentAt.set(name, performance.now());
            await res.create(instance(name));
          }
        } finally {
          c.close();
        }
      }),
    );
    const createSeconds = (performance.now() - start) / 1000;
    const created = `${opts.n} created in ${createSeconds.toFixed(1)} s`;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([done, new Promise<void>((r) => (timer = setTimeout(r, Math.max(0, opts.deadlineMs - (performance.now() - start)))))]);
    clearTimeout(timer);
    const end = runningAt.size === opts.n ? Math.max(...runningAt.values()) : performance.now();
    const seconds = (end - start) / 1000;
    shown.end(runningAt.size === opts.n ? created : `${created}; ${runningAt.size} of ${opts.n} running at the ${opts.deadlineMs / 1000} s deadline`);
    stopProfile?.();
    phase('storm');
    const writes = (await storeWrites(serve.url, access)) - writes0;
    const api = (await apiWrites(serve.url, access)) - api0;
    const latencies = [...runningAt].map(([name, at]) => at - (sentAt.get(name) ?? at));
    const result: StormResult = {
      n: opts.n,
      running: runningAt.size,
      seconds,
      instancesPerSec: runningAt.size / seconds,
      latencyP50Ms: percentile(latencies, 50),
      latencyP99Ms: percentile(latencies, 99),
      peakRssMiB: memoryOf(serve.pid).peakMiB,
      storeWrites: writes,
      apiWrites: api,
      storeWritesPerSec: writes / seconds,
      createSeconds,
      seedIsoMs: isoMs,
      providerPerSec,
      instanceConcurrency,
      latencyQuantilesMs: quantiles(latencies),
    };
    if (opts.whileLoaded) {
      await opts.whileLoaded({ serve, access, baselineRssMiB });
      phase('after the storm (legacy benchmark)');
    }
    return result;
  } finally {
    abort.abort();
    await mgr.stop();
    await held.close();
    await watching;
    client.close();
    await serve.stop();
    await removeDir(simDir);
  }
}
