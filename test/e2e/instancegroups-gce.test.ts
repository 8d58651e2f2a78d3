/**
 * InstanceGroup autoscaling on GCE through stratus serve and its controllers, against the fake
 * Compute API and its Cloud Monitoring (`GET /v3/projects/P/timeSeries`,
 * `compute.googleapis.com/instance/cpu/usage_time`, authenticated like Compute: a bearer token
 * from the service-account key's JWT grant). Each VM's CPU use is a load the test sets in the
 * fake (`monitoring.setLoad`); the fake's sampling period is shortened to 500 ms (Google's is
 * 60 s). Proves the GCE `cpuUsage` capability returns rising CPU seconds at the VM's rate, that
 * Monitoring refuses an unauthenticated read, and that the autoscaler raises a GCE group's
 * replicas under load and lowers them when it stops, seen through kubectl.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Instance, InstanceGroup } from '../../crds/types.js';
import { KubeClient } from '../../runtime/client.js';
import { Resources } from '../../controllers/resources.js';
import { connectGce, instanceName, type GceNodeConnection } from '../../providers/gce/index.js';
import { kubectl as runKubectl, startStratusServe, type StratusServe } from '../harness/apiserver.js';
import { startFakeGce, type FakeGce } from '../fakes/gce/index.js';
import { registerGceNode } from '../harness/gce.js';
import { removeDir, tempDir, waitFor } from '../harness/process.js';

const PROJECT = 'acme-metrics';
const ZONE = 'us-central1-a';

let fake: FakeGce;
let serve: StratusServe;
let client: KubeClient;
let work = '';
let conn: GceNodeConnection | undefined;

const groups = () => client.resource<InstanceGroup>(Resources.instanceGroups);
const owned = async (group: string): Promise<Instance[]> =>
  (await client.resource<Instance>(Resources.instances).list('default')).filter((i) => !i.metadata?.deletionTimestamp && i.metadata?.ownerReferences?.some((r) => r.kind === 'InstanceGroup' && r.name === group));

async function kubectlOk(args: string[], stdin?: string): Promise<string> {
  const r = await runKubectl(serve.kubeconfig, join(work, 'kubectl-cache'), args, stdin);
  assert.equal(r.code, 0, `kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

before(async () => {
  work = await tempDir('groups-gce');
  fake = await startFakeGce({ project: PROJECT, stepMs: 50, cpuSamplePeriodMs: 500 });
  serve = await startStratusServe({ controllers: true });
  client = KubeClient.fromFile(serve.kubeconfig);
  // The service-account key, as a user stores it: a Secret the ComputeNode names.
  await registerGceNode(client, fake, { project: PROJECT, zone: ZONE, imageProject: 'debian-cloud' });
});

after(async () => {
  await conn?.close();
  client?.close();
  await serve?.stop();
  await fake?.close();
  if (work) await removeDir(work);
});

test('the GCE cpuUsage capability reads rising CPU seconds from Cloud Monitoring, and the autoscaler scales a GCE group up and down', async () => {
  await kubectlOk(
    ['apply', '-f', '-'],
    JSON.stringify({
      apiVersion: 'compute.stratus.dev/v1alpha1',
      kind: 'InstanceGroup',
      metadata: { name: 'crunch', namespace: 'default' },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: 'crunch' } },
        template: { metadata: { labels: { app: 'crunch' } }, spec: { provider: 'gce', image: 'projects/debian-cloud/global/images/family/debian-12', cpus: 2, memoryMiB: 2048 } },
      },
    }),
  );
  await kubectlOk(['wait', '--for=condition=Ready', 'instancegroup/crunch', '--timeout=60s']);
  const vms = await owned('crunch');
  assert.equal(vms.length, 2);
  // Both VMs busy on both vCPUs: 100 % against a 50 % target.
  for (const i of vms) fake.monitoring.setLoad(instanceName(i.metadata!.uid!), 2);

  // The capability itself, on a connection of its own with the node's key.
  conn = connectGce({ project: PROJECT, zone: ZONE, endpoint: fake.endpoint, credentialsJson: fake.serviceAccountKey, requestTimeoutMs: 5000 });
  const uid = vms[0]!.metadata!.uid!;
  const first = await waitFor('a first CPU reading', async () => {
    const s = await conn!.cpuSeconds(uid);
    return s !== undefined && s > 0 ? { s, at: Date.now() } : undefined;
  }, 10_000, 100);
  await new Promise((r) => setTimeout(r, 2000));
  const second = await conn.cpuSeconds(uid);
  assert.ok(second !== undefined && second > first.s, `CPU seconds rise: ${first.s} then ${String(second)}`);
  const rate = (second - first.s) / ((Date.now() - first.at) / 1000);
  assert.ok(rate > 1 && rate < 3, `about 2 vCPU-seconds per second (the load set): ${rate}`);
  const reads = fake.requests.filter((r) => r.path === `/v3/projects/${PROJECT}/timeSeries`);
  assert.ok(reads.length >= 2 && reads.every((r) => r.status === 200), 'Monitoring was read with a bearer token');
  assert.match(reads[0]!.query.filter ?? '', /metric\.type = "compute\.googleapis\.com\/instance\/cpu\/usage_time"/);
  const anonymous = await fetch(`${fake.endpoint}/v3/projects/${PROJECT}/timeSeries?filter=${encodeURIComponent('metric.type = "compute.googleapis.com/instance/cpu/usage_time"')}&interval.endTime=${new Date().toISOString()}`);
  assert.equal(anonymous.status, 401, 'Monitoring needs a token like Compute');

  // The autoscaler, through the GCE capability: 2 VMs at ~100 % against 50 % (the reading moves
  // one 500 ms period at a time, so a 2 s sample sees 75-125 %: 3 or 4 replicas).
  await kubectlOk(['patch', 'ig', 'crunch', '--type=merge', '-p', JSON.stringify({ spec: { autoscaling: { minReplicas: 1, maxReplicas: 4, targetCPUUtilizationPercentage: 50, syncPeriodSeconds: 2, scaleDownStabilizationSeconds: 4 } } })]);
  const up = await waitFor('scaled up', async () => {
    const g = (await groups().get('default', 'crunch'))!;
    return (g.spec.replicas ?? 0) >= 3 && g.spec.replicas === g.status?.autoscaling?.desiredReplicas ? g : undefined;
  }, 30_000, 200).catch(async (err: unknown) => {
    throw new Error(`${String(err)}\n${await kubectlOk(['get', 'ig', 'crunch', '-o', 'yaml'])}\n${serve.output().slice(-3000)}`);
  });
  assert.match(up.status?.autoscaling?.lastScaleReason ?? '', /^average CPU \d+% of 2 Instance\(s\), target 50%: 2 → [34]$/);
  assert.match(await kubectlOk(['get', 'events', '--field-selector', 'involvedObject.name=crunch,reason=ScaledUp', '-o', 'jsonpath={.items[*].message}']), /average CPU/);

  // The load stops: after the 4 s window the group goes down to minReplicas.
  for (const i of await owned('crunch')) fake.monitoring.setLoad(instanceName(i.metadata!.uid!), 0);
  await waitFor('scaled down to 1', async () => (await groups().get('default', 'crunch'))!.spec.replicas === 1, 30_000, 200);
  await kubectlOk(['wait', '--for=jsonpath={.status.replicas}=1', 'instancegroup/crunch', '--timeout=60s']);
  await kubectlOk(['delete', 'ig', 'crunch', '--wait=true']);
});
