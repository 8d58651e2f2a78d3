/**
 * The `engine-faults` scenario (`make chaos` only: its outage is a minute long): the machines'
 * back ends fail under a stratus that keeps serving.
 *
 * - dockerd SIGKILLed for `dockerDownSeconds`, then restarted on the same data root: the
 *   docker ComputeNode goes NotReady within its heartbeats and Ready again after the restart;
 *   while the engine is down stratus's connection attempts stay at a bounded rate (a counting
 *   relay sits in front of the engine, so a hot loop would show).
 * - the GCE fake answering 500, then 429 with Retry-After, then not at all (requests held
 *   until cut), `gceFaultSeconds` each: a bounded request rate in every window, the node
 *   Ready again afterwards.
 *
 * Then every Instance (docker and GCE, created, flipped and deleted by the workload throughout)
 * converges as declared, with exactly one container or GCE VM each and none leaked; every
 * acknowledged ConfigMap write is kept and every watch is consistent.
 */
import { chown, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startStratusServe, type StratusServe } from '../harness/apiserver.js';
import { importBusybox, makeCerts, startDockerd, type Dockerd } from '../harness/dockerd.js';
import { processesMentioning, startLibvirtd, type PrivateLibvirtd } from '../harness/libvirtd.js';
import { execFileP, freePort, removeDir, requireBinary, tempDir, waitFor, type Daemon } from '../harness/process.js';
import { startFakeGce, type FakeGce } from '../fakes/gce/index.js';
import { instanceName } from '../../providers/gce/spec.js';
import { countingProxy, type CountingProxy } from './faults.js';
import {
  INSTANCES,
  READY_MS,
  addDockerNode,
  checkConfigMaps,
  checkOneMachineEach,
  containerOwners,
  convergedInstances,
  ledgerFigures,
  nodeReady,
  post,
  round,
  scenarioLog,
  startStratusController,
  workloadOptions,
  type ChaosProfile,
  type FaultRecord,
  type InstanceView,
  type ScenarioReport,
} from './scenarios.js';
import { NAMESPACE, Workload } from './workload.js';

/** Requests (or connection attempts) per second a back end may see while it fails: a hot loop makes hundreds. */
const MAX_RATE_WHILE_FAILING = 10;
const GCE_PROJECT = 'chaos-gce';

export async function engineFaults(profile: ChaosProfile): Promise<ScenarioReport> {
  const log = scenarioLog();
  const { at, violations, figures, faults } = log;
  const work = await tempDir('chaos-engines');
  let engine: Dockerd | undefined;
  let relay: CountingProxy | undefined;
  let gce: FakeGce | undefined;
  let serve: StratusServe | undefined;
  let controller: Daemon | undefined;
  const workloads: Workload[] = [];
  try {
    const certs = await makeCerts(join(work, 'certs'));
    engine = await startDockerd({ certs });
    const image = await importBusybox(engine);
    relay = await countingProxy(engine.port);
    gce = await startFakeGce({ project: GCE_PROJECT, stepMs: 50, cpusQuota: 100_000, instancesQuota: 100_000 });
    serve = await startStratusServe({ readyTimeoutMs: READY_MS });
    const s = serve;
    await addDockerNode(s, 'chaos-docker', `tcp://127.0.0.1:${relay.port}`, certs);
    await post(s, `/api/v1/namespaces/${NAMESPACE}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'chaos-gce-key' }, stringData: { 'key.json': gce.serviceAccountKey } });
    await post(s, '/apis/compute.stratus.dev/v1alpha1/computenodes', {
      apiVersion: 'compute.stratus.dev/v1alpha1',
      kind: 'ComputeNode',
      metadata: { name: 'chaos-gce' },
      spec: { provider: 'gce', gce: { project: GCE_PROJECT, zone: 'us-central1-a', endpoint: gce.endpoint, imageProject: 'debian-cloud', credentialsSecretRef: { name: 'chaos-gce-key', namespace: NAMESPACE } }, heartbeatSeconds: 2 },
    });
    controller = startStratusController(s, await freePort());
    const ready = (node: string, want: string, what: string, ms: number): Promise<unknown> => waitFor(what, async () => (await nodeReady(s, node)) === want, ms, 200);
    await ready('chaos-docker', 'True', 'the docker node Ready', 60_000);
    await ready('chaos-gce', 'True', 'the GCE node Ready', 60_000);
    figures['setup seconds'] = at();

    const docker = new Workload(workloadOptions(s, profile, 'eng', { instanceClients: profile.instanceClients, instanceSpec: { provider: 'docker', image, command: ['/bin/busybox', 'sleep', '3600'], cpus: 1, memoryMiB: 16 } }));
    const vms = new Workload({ ...workloadOptions(s, profile, 'gvm', { instanceClients: profile.instanceClients, instanceSpec: { provider: 'gce', image: 'projects/debian-cloud/global/images/family/debian-12', cpus: 2, memoryMiB: 2048 } }), writers: 0, watchers: 0 });
    workloads.push(docker, vms);
    for (const w of workloads) w.start();
    await sleep(Math.min(10_000, profile.gceFaultSeconds * 1000));

    // 1. dockerd killed, down for a while, restarted.
    const down = profile.dockerDownSeconds * 1000;
    let t0 = Date.now();
    await engine.kill();
    const record: FaultRecord = { atSeconds: at(), fault: `SIGKILL dockerd for ${profile.dockerDownSeconds} s, then restart` };
    const attemptsBefore = relay.connections;
    await ready('chaos-docker', 'False', 'the docker node NotReady while dockerd is down', down + 60_000)
      .then(() => (figures['docker node NotReady, seconds after the SIGKILL'] = round((Date.now() - t0) / 1000)))
      .catch(() => violations.push(`dockerd down: the docker node never went NotReady within ${profile.dockerDownSeconds + 60} s`));
    const left = t0 + down - Date.now();
    if (left > 0) await sleep(left);
    const downSeconds = (Date.now() - t0) / 1000;
    const attemptRate = (relay.connections - attemptsBefore) / downSeconds;
    figures['connections to the dead engine per second'] = round(attemptRate, 2);
    if (attemptRate > MAX_RATE_WHILE_FAILING) violations.push(`dockerd down: ${round(attemptRate, 1)} connection attempts per second to the dead engine (a hot loop; at most ${MAX_RATE_WHILE_FAILING})`);
    const t1 = Date.now();
    await engine.restart();
    await ready('chaos-docker', 'True', 'the docker node Ready after the restart', 120_000)
      .then(() => (figures['docker node Ready, seconds after dockerd restarted'] = round((Date.now() - t1) / 1000)))
      .catch(() => violations.push('dockerd restarted: the docker node did not become Ready within 120 s'));
    record.recoverySeconds = round((Date.now() - t0) / 1000);
    faults.push(record);

    // 2. The GCE API failing three ways, one after the other.
    const g = gce;
    const window = profile.gceFaultSeconds * 1000;
    const gceFaults: [string, () => void][] = [
      ['GCE answers 500', () => g.inject.serverError({ status: 500, forMs: window })],
      ['GCE answers 429 (Retry-After: 2)', () => g.inject.rateLimit({ forMs: window, retryAfterSeconds: 2 })],
      ['GCE does not answer (requests held, then cut)', () => g.inject.stall({ forMs: window })],
    ];
    for (const [name, inject] of gceFaults) {
      t0 = Date.now();
      const before = g.requests.length;
      inject();
      const rec: FaultRecord = { atSeconds: at(), fault: `${name} for ${profile.gceFaultSeconds} s` };
      await sleep(window);
      const rate = (g.requests.length - before) / ((Date.now() - t0) / 1000);
      figures[`${name}: requests per second`] = round(rate, 2);
      if (rate > MAX_RATE_WHILE_FAILING) violations.push(`${name}: ${round(rate, 1)} requests per second while it failed (a hot loop; at most ${MAX_RATE_WHILE_FAILING})`);
      figures[`${name}: GCE node Ready at the end of the window`] = await nodeReady(s, 'chaos-gce');
      await ready('chaos-gce', 'True', 'the GCE node Ready after the fault', 120_000).catch(() => violations.push(`${name}: the GCE node did not become Ready within 120 s of the fault's end`));
      rec.recoverySeconds = round((Date.now() - t0) / 1000);
      faults.push(rec);
    }
    const lastFault = Date.now();
    await checkConfigMaps(docker, 'engines', violations, figures);
    for (const w of workloads) await w.close();

    // 3. Every Instance converged, with exactly one machine each and none leaked.
    const items = await convergedInstances(s, profile, violations);
    figures['Instances converged, seconds after the last fault'] = round((Date.now() - lastFault) / 1000);
    for (const [label, w] of [['docker', docker], ['GCE', vms]] as const) {
      const prefix = label === 'docker' ? 'eng-' : 'gvm-';
      const mine = new Map(items.filter((i) => i.metadata.name.startsWith(prefix)).map((i) => [i.metadata.name, i.spec.powerState ?? 'Running']));
      violations.push(...w.instances.check(`${label} Instance`, mine), ...w.instances.internalErrors);
      Object.assign(figures, ledgerFigures(`${label} Instances`, w.instances));
    }
    const dockerItems = items.filter((i) => i.metadata.name.startsWith('eng-'));
    const gceItems = items.filter((i) => i.metadata.name.startsWith('gvm-'));
    figures['Instances at the end (docker, GCE)'] = [dockerItems.length, gceItems.length];
    figures['machines at the end (containers, GCE VMs)'] = [
      checkOneMachineEach(dockerItems, await containerOwners(engine), (i) => i.metadata.uid, 'containers on the engine', violations),
      checkOneMachineEach(gceItems, g.state.listInstances().map((v) => v.name), (i) => instanceName(i.metadata.uid), 'VMs on the GCE fake', violations),
    ];
    figures['GCE requests in all'] = g.requests.length;
    return log.report('engine-faults');
  } finally {
    for (const w of workloads) await w.close().catch(() => undefined);
    await controller?.stop(10_000);
    await serve?.stop();
    await relay?.close();
    await gce?.close();
    await engine?.stop();
    await removeDir(work);
  }
}

const LIBVIRT_POOL = 'stratus-chaos-images';

/**
 * The `libvirtd-restart` scenario (`make chaos` only): a private libvirtd (qemu:///session
 * under TCG) SIGKILLed while two Instances run on it, one of them told to stop while the
 * daemon is down, then restarted. The node goes NotReady and back; the running VM keeps its
 * qemu process (a libvirtd restart does not touch its guests); the stop is carried out once
 * libvirtd is back; exactly one domain per Instance throughout.
 */
export async function libvirtdRestart(profile: ChaosProfile): Promise<ScenarioReport> {
  const log = scenarioLog();
  const { at, violations, figures, faults } = log;
  let daemon: PrivateLibvirtd | undefined;
  let serve: StratusServe | undefined;
  let controller: Daemon | undefined;
  let w: Workload | undefined;
  try {
    requireBinary('qemu-img');
    daemon = await startLibvirtd();
    const d = daemon;
    const virsh = async (...args: string[]): Promise<string> => (await execFileP(requireBinary('virsh'), ['-q', '-c', d.uri, ...args])).stdout;
    const poolDir = join(d.dir, 'images');
    await mkdir(poolDir);
    await execFileP('qemu-img', ['create', '-q', '-f', 'qcow2', join(poolDir, 'tiny.qcow2'), '64M']);
    for (const p of [poolDir, join(poolDir, 'tiny.qcow2')]) await chown(p, 65534, 65534);
    await virsh('pool-define-as', '--name', LIBVIRT_POOL, '--type', 'dir', '--target', poolDir);
    await virsh('pool-start', LIBVIRT_POOL);
    serve = await startStratusServe({ readyTimeoutMs: READY_MS });
    const s = serve;
    await post(s, '/apis/compute.stratus.dev/v1alpha1/computenodes', {
      apiVersion: 'compute.stratus.dev/v1alpha1',
      kind: 'ComputeNode',
      metadata: { name: 'chaos-qemu' },
      spec: { provider: 'libvirt', libvirt: { uri: d.uri, imagePool: LIBVIRT_POOL }, heartbeatSeconds: 2 },
    });
    controller = startStratusController(s, await freePort());
    const ready = (want: string, what: string, ms: number): Promise<unknown> => waitFor(what, async () => (await nodeReady(s, 'chaos-qemu')) === want, ms, 200);
    await ready('True', 'the libvirt node Ready', 60_000);
    const names = ['vm-keep', 'vm-stop'];
    for (const name of names) {
      await post(s, INSTANCES, {
        apiVersion: 'compute.stratus.dev/v1alpha1',
        kind: 'Instance',
        metadata: { name },
        spec: { provider: 'libvirt', image: 'tiny', cpus: 1, memoryMiB: 64, libvirt: { shutdownTimeoutSeconds: 1 } },
      });
    }
    const state = async (name: string): Promise<InstanceView | undefined> => {
      const r = await s.fetch(`${s.url}${INSTANCES}/${name}`);
      return r.status === 200 ? ((await r.json()) as InstanceView) : undefined;
    };
    const settled = (name: string, want: string, ms: number): Promise<InstanceView> =>
      waitFor(`${name} ${want}`, async () => {
        const i = await state(name);
        return i?.status?.state === want && i.status.observedGeneration === i.metadata.generation ? i : undefined;
      }, ms, 200);
    const keep = await settled('vm-keep', 'running', 120_000);
    await settled('vm-stop', 'running', 120_000);
    const qemuBefore = await processesMentioning(keep.metadata.uid);
    figures['setup seconds'] = at();
    w = new Workload(workloadOptions(s, profile, 'virt'));
    w.start();

    const t0 = Date.now();
    await d.kill();
    const record: FaultRecord = { atSeconds: at(), fault: 'SIGKILL libvirtd; an Instance told to stop meanwhile; restart' };
    const patch = await s.fetch(`${s.url}${INSTANCES}/vm-stop`, { method: 'PATCH', headers: { 'content-type': 'application/merge-patch+json' }, body: JSON.stringify({ spec: { powerState: 'Stopped' } }) });
    if (patch.status !== 200) violations.push(`libvirtd down: patching an Instance answered ${patch.status}`);
    await patch.text();
    await ready('False', 'the libvirt node NotReady while libvirtd is down', 60_000)
      .then(() => (figures['libvirt node NotReady, seconds after the SIGKILL'] = round((Date.now() - t0) / 1000)))
      .catch(() => violations.push('libvirtd down: the node never went NotReady within 60 s'));
    const t1 = Date.now();
    await d.restart();
    await ready('True', 'the libvirt node Ready after the restart', 120_000)
      .then(() => (figures['libvirt node Ready, seconds after libvirtd restarted'] = round((Date.now() - t1) / 1000)))
      .catch(() => violations.push('libvirtd restarted: the node did not become Ready within 120 s'));
    record.recoverySeconds = round((Date.now() - t0) / 1000);
    faults.push(record);

    await settled('vm-stop', 'stopped', profile.convergeSeconds * 1000)
      .then(() => (figures['the stop asked while libvirtd was down done, seconds after the restart'] = round((Date.now() - t1) / 1000)))
      .catch(() => violations.push(`libvirtd restarted: vm-stop did not stop within ${profile.convergeSeconds} s`));
    await settled('vm-keep', 'running', profile.convergeSeconds * 1000).catch(() => violations.push('libvirtd restarted: vm-keep is no longer running'));
    const qemuAfter = await processesMentioning(keep.metadata.uid);
    figures['vm-keep qemu PIDs before, after'] = [qemuBefore, qemuAfter];
    if (qemuAfter.length !== 1 || qemuAfter[0] !== qemuBefore[0]) violations.push(`libvirtd restarted: vm-keep's qemu changed (${qemuBefore.join(',')} → ${qemuAfter.join(',')}): the guest was restarted or doubled`);
    const domains = (await virsh('list', '--all', '--uuid')).split('\n').map((x) => x.trim()).filter(Boolean);
    figures['domains at the end'] = domains.length;
    for (const name of names) {
      const uid = (await state(name))?.metadata.uid ?? '';
      const n = domains.filter((u) => u === uid).length;
      if (n !== 1) violations.push(`libvirtd restarted: Instance ${name} has ${n} domains, expected exactly 1`);
    }
    if (domains.length !== names.length) violations.push(`libvirtd restarted: ${domains.length} domains for ${names.length} Instances`);
    await checkConfigMaps(w, 'libvirtd', violations, figures);
    return log.report('libvirtd-restart');
  } finally {
    await w?.close().catch(() => undefined);
    await controller?.stop(10_000);
    await serve?.stop();
    await daemon?.stop();
  }
}
