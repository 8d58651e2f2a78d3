/**
 * InstanceGroups on a real Docker engine through `stratus serve`, driven with the real
 * kubectl: `kubectl scale` through the /scale subresource (0 → 5 → 2, victims not Ready
 * first, then newest), a rolling update (maxSurge 1, maxUnavailable 0) that never has fewer
 * than `replicas` Ready Instances, a template the provider cannot run and one the schema
 * refuses halting the rollout (Progressing=False) with the old Instances kept, the garbage
 * collector (`--cascade=orphan` keeps the Instances, the default deletes them), and the
 * autoscaler raising replicas under CPU load made inside the containers and lowering them
 * after its window.
 *
 * `kubectl rollout status` only knows Deployments, DaemonSets and StatefulSets, so a
 * rollout's end is awaited with `kubectl wait --for=condition=Ready` and read from the
 * `kubectl get` columns.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import type { Instance, InstanceGroup } from '../../crds/types.js';
import { KubeClient } from '../../runtime/client.js';
import { Resources } from '../../controllers/resources.js';
import { kubectl as runKubectl, startStratusServe, type KubectlResult, type StratusServe } from '../harness/apiserver.js';
import { importBusybox, makeCerts, registerDockerNode, startDockerd, type CertBundle, type Dockerd } from '../harness/dockerd.js';
import { removeDir, requireBinary, tempDir, waitFor } from '../harness/process.js';

const execFileP = promisify(execFile);

let serve: StratusServe | undefined;
let engine: Dockerd | undefined;
let work = '';
let certs: CertBundle;
let client: KubeClient;
let image = '';

const groups = () => client.resource<InstanceGroup>(Resources.instanceGroups);
const instances = () => client.resource<Instance>(Resources.instances);
const ready = (i: Instance): boolean => i.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
const owned = async (group: string): Promise<Instance[]> =>
  (await instances().list('default')).filter((i) => i.metadata?.ownerReferences?.some((r) => r.kind === 'InstanceGroup' && r.name === group));

async function kubectl(args: string[], stdin?: string): Promise<KubectlResult> {
  return runKubectl(serve!.kubeconfig, join(work, 'kubectl-cache'), args, stdin);
}

async function kubectlOk(args: string[], stdin?: string): Promise<string> {
  const r = await kubectl(args, stdin);
  assert.equal(r.code, 0, `kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** The containers stratus runs on the engine, as the docker CLI lists them. */
async function dockerPs(): Promise<string[]> {
  const { stdout } = await execFileP(requireBinary('docker'), ['-H', `unix://${engine!.socket}`, 'ps', '--filter', 'label=stratus.dev/uid', '--format', '{{.Label "stratus.dev/name"}}']);
  return stdout.split('\n').filter(Boolean).sort();
}

before(async () => {
  work = await tempDir('groups');
  certs = await makeCerts(join(work, 'certs'));
  engine = await startDockerd({ certs });
  image = await importBusybox(engine);
  serve = await startStratusServe({ controllers: true });
  client = KubeClient.fromFile(serve.kubeconfig);
  await registerDockerNode(client, engine, certs, { capacity: { cpus: 64, memoryMiB: 65536 }, heartbeatSeconds: 1 });
  await kubectlOk(['wait', '--for=condition=Ready', 'computenode/engine-1', '--timeout=30s']);
});

after(async () => {
  try {
    if (client) {
      for (const g of await groups().list('default').catch(() => [])) await groups().delete('default', g.metadata?.name ?? '').catch(() => undefined);
      for (const i of await instances().list('default').catch(() => [])) await instances().delete('default', i.metadata?.name ?? '').catch(() => undefined);
      await waitFor('instances gone', async () => (await instances().list('default')).length === 0, 60_000, 200).catch(() => undefined);
    }
  } finally {
    client?.close();
    await serve?.stop();
    await engine?.stop();
    if (work) await removeDir(work);
  }
});

function groupManifest(name: string, extra: Record<string, unknown> = {}, templateSpec: Record<string, unknown> = {}): string {
  return JSON.stringify({
    apiVersion: 'compute.stratus.dev/v1alpha1',
    kind: 'InstanceGroup',
    metadata: { name, namespace: 'default' },
    spec: {
      replicas: 0,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { provider: 'docker', image, command: ['/bin/busybox', 'sleep', '3600'], cpus: 1, memoryMiB: 32, ...templateSpec },
      },
      ...extra,
    },
  });
}

/** The documented victim order, written out again: not Ready first, then newest (creationTimestamp, then name). */
function expectedSurvivors(all: Instance[], keep: number): string[] {
  const sorted = [...all].sort((a, b) => {
    if (ready(a) !== ready(b)) return ready(a) ? 1 : -1;
    const ta = a.metadata!.creationTimestamp!;
    const tb = b.metadata!.creationTimestamp!;
    if (ta !== tb) return ta < tb ? 1 : -1;
    return a.metadata!.name! < b.metadata!.name! ? 1 : -1;
  });
  return sorted
    .slice(sorted.length - keep)
    .map((i) => i.metadata!.name!)
    .sort();
}

describe('InstanceGroup on a Docker engine', () => {
  test('kubectl scale 0 → 5 → 2: owned Instances with the template hash; not Ready ones go first, then the newest', async () => {
    await kubectlOk(['apply', '-f', '-'], groupManifest('web'));
    await kubectlOk(['scale', 'instancegroup/web', '--replicas=5']);
    await kubectlOk(['wait', '--for=jsonpath={.status.readyReplicas}=5', 'instancegroup/web', '--timeout=90s']);
    const five = await owned('web');
    assert.equal(five.length, 5);
    const group = (await groups().get('default', 'web'))!;
    for (const i of five) {
      assert.equal(i.metadata?.labels?.['stratus.dev/template-hash'], group.status?.templateHash);
      assert.match(i.metadata!.name!, new RegExp(`^web-${group.status?.templateHash}-[a-z0-9]{5}$`));
      assert.deepEqual(i.metadata?.ownerReferences?.map((r) => [r.kind, r.name, r.uid, r.controller]), [['InstanceGroup', 'web', group.metadata?.uid, true]]);
    }
    assert.deepEqual(await dockerPs(), five.map((i) => i.metadata!.name!).sort(), 'the engine runs the five (docker ps)');

    // One old Instance stops being Ready: it is the first victim, then the newest ones go.
    const sortedByAge = [...five].sort((a, b) => (a.metadata!.creationTimestamp! < b.metadata!.creationTimestamp! ? -1 : 1));
    const stopped = sortedByAge[1]!.metadata!.name!;
    await instances().mergePatch('default', stopped, { spec: { powerState: 'Stopped' } });
    await waitFor(`${stopped} not Ready`, async () => !ready((await instances().get('default', stopped))!), 60_000, 100);
    const before = await owned('web');
    const want = expectedSurvivors(before, 2);
    assert.ok(!want.includes(stopped));

    const scaled = await kubectlOk(['scale', 'instancegroup/web', '--replicas=2']);
    assert.match(scaled, /instancegroup.compute.stratus.dev\/web scaled/);
    await waitFor('two Instances left', async () => (await owned('web')).length === 2, 60_000, 100);
    assert.deepEqual((await owned('web')).map((i) => i.metadata!.name!).sort(), want);
    await kubectlOk(['wait', '--for=condition=Ready', 'instancegroup/web', '--timeout=60s']);
    const row = await kubectlOk(['get', 'ig', 'web', '--no-headers']);
    assert.match(row, /^web\s+2\s+2\s+2\s+2\s+2\s+/);
    const scale = JSON.parse(await kubectlOk(['get', '--raw', '/apis/compute.stratus.dev/v1alpha1/namespaces/default/instancegroups/web/scale'])) as { kind: string; spec: { replicas: number }; status: { replicas: number; selector: string } };
    assert.deepEqual([scale.kind, scale.spec.replicas, scale.status.replicas, scale.status.selector], ['Scale', 2, 2, 'app=web']);
    await waitFor('the engine runs two', async () => (await dockerPs()).length === 2, 30_000, 100);
  });

  test('a rolling update with maxSurge 1 / maxUnavailable 0 never has fewer than replicas Ready, and ends on the new template', async () => {
    await kubectlOk(['patch', 'ig', 'web', '--type=merge', '-p', JSON.stringify({ spec: { minReadySeconds: 1, strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } } } })]);
    await kubectlOk(['wait', '--for=condition=Ready', 'instancegroup/web', '--timeout=60s']);
    const oldHash = (await groups().get('default', 'web'))!.status!.templateHash!;
    let minReady = Infinity;
    let maxTotal = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const live = (await owned('web')).filter((i) => !i.metadata?.deletionTimestamp);
        minReady = Math.min(minReady, live.filter(ready).length);
        maxTotal = Math.max(maxTotal, live.length);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    await kubectlOk(['patch', 'ig', 'web', '--type=merge', '-p', JSON.stringify({ spec: { template: { spec: { env: [{ name: 'RELEASE', value: '2' }] } } } })]);
    await kubectlOk(['wait', '--for=jsonpath={.status.conditions[?(@.type=="Progressing")].reason}=NewInstancesAvailable', 'instancegroup/web', '--timeout=120s']);
    await kubectlOk(['wait', '--for=condition=Ready', 'instancegroup/web', '--timeout=60s']);
    sampling = false;
    await sampler;
    const g = (await groups().get('default', 'web'))!;
    assert.notEqual(g.status?.templateHash, oldHash);
    const live = (await owned('web')).filter((i) => !i.metadata?.deletionTimestamp);
    assert.equal(live.length, 2);
    for (const i of live) assert.equal(i.metadata?.labels?.['stratus.dev/template-hash'], g.status?.templateHash);
    assert.ok(minReady >= 2, `Ready Instances dropped to ${minReady} during the rollout`);
    assert.ok(maxTotal <= 3, `${maxTotal} Instances existed at once (replicas 2 + maxSurge 1)`);
    const events = await kubectlOk(['get', 'events', '--field-selector', 'involvedObject.name=web,involvedObject.kind=InstanceGroup', '-o', 'jsonpath={.items[*].reason}']);
    assert.match(events, /SuccessfulCreate/);
    assert.match(events, /SuccessfulDelete/);
  });

  test('a template the engine cannot run halts the rollout (Progressing=False) and keeps the old Instances; fixing it resumes', async () => {
    const goodHash = (await groups().get('default', 'web'))!.status!.templateHash!;
    await kubectlOk(['patch', 'ig', 'web', '--type=merge', '-p', JSON.stringify({ spec: { template: { spec: { image: 'stratus.invalid/missing:1' } } } })]);
    await kubectlOk(['wait', '--for=condition=Progressing=false', 'instancegroup/web', '--timeout=90s']);
    const g = (await groups().get('default', 'web'))!;
    const progressing = g.status!.conditions!.find((c) => c.type === 'Progressing')!;
    assert.equal(progressing.reason, 'InstanceFailed');
    assert.match(progressing.message ?? '', /Instance "web-[a-z0-9]+-[a-z0-9]{5}"/);
    const live = (await owned('web')).filter((i) => !i.metadata?.deletionTimestamp);
    const old = live.filter((i) => i.metadata?.labels?.['stratus.dev/template-hash'] === goodHash);
    assert.equal(old.length, 2, 'both old Instances stay');
    assert.ok(old.every(ready));
    assert.equal(live.length, 3, 'one surge Instance, no more');
    const wide = await kubectlOk(['get', 'ig', 'web', '-o', 'wide', '--no-headers']);
    assert.match(wide, /InstanceFailed/);

    // A template the Instance schema refuses: the create fails, the old ones stay.
    await kubectlOk(['patch', 'ig', 'web', '--type=merge', '-p', JSON.stringify({ spec: { template: { spec: { image, cpus: 0 } } } })]);
    await kubectlOk(['wait', '--for=jsonpath={.status.conditions[?(@.type=="Progressing")].reason}=FailedCreate', 'instancegroup/web', '--timeout=60s']);
    const refused = (await groups().get('default', 'web'))!.status!.conditions!.find((c) => c.type === 'Progressing')!;
    assert.equal(refused.status, 'False');
    assert.match(refused.message ?? '', /spec\.cpus/);
    assert.equal((await owned('web')).filter((i) => !i.metadata?.deletionTimestamp && ready(i)).length, 2);

    // Back to a good template: the rollout completes.
    await kubectlOk(['patch', 'ig', 'web', '--type=merge', '-p', JSON.stringify({ spec: { template: { spec: { cpus: 1 } } } })]);
    await kubectlOk(['wait', '--for=jsonpath={.status.conditions[?(@.type=="Progressing")].reason}=NewInstancesAvailable', 'instancegroup/web', '--timeout=120s']);
    await kubectlOk(['wait', '--for=condition=Ready', 'instancegroup/web', '--timeout=60s']);
    await waitFor('two Instances', async () => (await owned('web')).length === 2, 60_000, 100);
  });

  test('the autoscaler raises replicas under CPU load made inside the containers and lowers them after its window', async () => {
    await kubectlOk(['apply', '-f', '-'], groupManifest('busy', { replicas: 2 }));
    await kubectlOk(['wait', '--for=condition=Ready', 'instancegroup/busy', '--timeout=90s']);
    const loaded = await owned('busy');
    const docker = (args: string[]) => execFileP(requireBinary('docker'), ['-H', `unix://${engine!.socket}`, ...args]);
    const containerOf = async (i: Instance): Promise<string> =>
      (await docker(['ps', '-q', '--filter', `label=stratus.dev/uid=${i.metadata!.uid!}`])).stdout.trim();
    const ids = await Promise.all(loaded.map(containerOf));
    // A busy loop in each container (its pid kept so it can be stopped again).
    for (const id of ids) await docker(['exec', '-d', id, '/bin/busybox', 'sh', '-c', 'echo $$ > /tmp/load.pid; while :; do :; done']);
    // The target is low because the machine running the tests is shared: a busy loop gets
    // what the other processes leave it (10-100 % of a CPU); an idle container uses ~0 %.
    await kubectlOk(['patch', 'ig', 'busy', '--type=merge', '-p', JSON.stringify({ spec: { autoscaling: { minReplicas: 1, maxReplicas: 4, targetCPUUtilizationPercentage: 5, syncPeriodSeconds: 2, scaleDownStabilizationSeconds: 8 } } })]);
    const up = await waitFor('scaled up', async () => {
      const g = (await groups().get('default', 'busy'))!;
      return (g.status?.autoscaling?.desiredReplicas ?? 0) > 2 && g.spec.replicas === g.status?.autoscaling?.desiredReplicas ? g : undefined;
    }, 60_000, 200).catch(async (err: unknown) => {
      const why = await kubectl(['get', 'ig', 'busy', '-o', 'yaml']);
      const events = await kubectl(['get', 'events', '--field-selector', 'involvedObject.name=busy']);
      throw new Error(`${String(err)}\n${why.stdout}\n${events.stdout}\n${serve!.output().slice(-3000)}`);
    });
    assert.match(up.status?.autoscaling?.lastScaleReason ?? '', /^average CPU \d+% of 2 Instance\(s\), target 5%: 2 → [34]$/);
    assert.ok((up.status?.autoscaling?.currentCPUUtilizationPercentage ?? 0) > 5);
    await kubectlOk(['wait', '--for=jsonpath={.status.readyReplicas}=' + String(up.spec.replicas), 'instancegroup/busy', '--timeout=60s']);
    const events = await kubectlOk(['get', 'events', '--field-selector', 'involvedObject.name=busy,reason=ScaledUp', '-o', 'jsonpath={.items[*].message}']);
    assert.match(events, /average CPU/);

    for (const id of ids) await docker(['exec', id, '/bin/busybox', 'sh', '-c', 'kill $(cat /tmp/load.pid)']);
    const stoppedAt = Date.now();
    const down = await waitFor('scaled down to minReplicas', async () => {
      // The autoscaler writes spec.replicas (the scale) before its status, as the HPA does:
      // wait for both, or a read between the two writes sees the old reason.
      const g = (await groups().get('default', 'busy'))!;
      return g.spec.replicas === 1 && /→ 1$/.test(g.status?.autoscaling?.lastScaleReason ?? '') ? g : undefined;
    }, 90_000, 200);
    const firstDown = Date.parse(down.status?.autoscaling?.lastScaleTime ?? '');
    assert.match(down.status?.autoscaling?.lastScaleReason ?? '', /→ 1$/);
    assert.ok(firstDown - stoppedAt >= 6000, `scaled down ${firstDown - stoppedAt} ms after the load stopped, inside the 8 s window`);
    await kubectlOk(['wait', '--for=condition=Ready', 'instancegroup/busy', '--timeout=60s']);
    const wide = await kubectlOk(['get', 'ig', 'busy', '-o', 'wide', '--no-headers']);
    assert.match(wide, /^busy\s+1\s+1\s+1\s+1\s+1\s+/);
    await kubectlOk(['delete', 'ig', 'busy', '--wait=true']);
    await waitFor('busy Instances gone', async () => (await owned('busy')).length === 0, 60_000, 100);
  });

  test('kubectl delete --cascade=orphan keeps the Instances (ownerReference removed); the default cascade deletes them', async () => {
    const names = (await owned('web')).map((i) => i.metadata!.name!).sort();
    await kubectlOk(['delete', 'ig', 'web', '--cascade=orphan', '--wait=true']);
    await waitFor('ownerReferences removed', async () => {
      const left = (await instances().list('default')).filter((i) => names.includes(i.metadata!.name!));
      return left.length === 2 && left.every((i) => (i.metadata?.ownerReferences ?? []).length === 0);
    }, 30_000, 100);
    for (const n of names) await instances().delete('default', n);

    await kubectlOk(['apply', '-f', '-'], groupManifest('cache', { replicas: 2 }));
    await kubectlOk(['wait', '--for=condition=Ready', 'instancegroup/cache', '--timeout=90s']);
    assert.equal((await owned('cache')).length, 2);
    await kubectlOk(['delete', 'ig', 'cache', '--wait=true']);
    await waitFor('owned Instances deleted by the garbage collector', async () => (await instances().list('default')).filter((i) => i.metadata?.name?.startsWith('cache-')).length === 0, 60_000, 100);
    await waitFor('no containers left', async () => (await dockerPs()).length === 0, 30_000, 100);
  });
});
