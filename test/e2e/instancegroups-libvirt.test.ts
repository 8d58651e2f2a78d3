/**
 * InstanceGroups of VMs on libvirt's test driver (`stratus serve --sim-node`), driven with the
 * real kubectl: `kubectl scale` up and down, a rolling update of the image, and the
 * autoscaler reading the domains' CPU time through the libvirt provider (test-driver domains
 * use no CPU, so it lowers the group to minReplicas after its window).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Instance, InstanceGroup } from '../../crds/types.js';
import { KubeClient } from '../../runtime/client.js';
import { Resources } from '../../controllers/resources.js';
import { kubectl, startStratusServe, type StratusServe } from '../harness/apiserver.js';
import { waitFor } from '../harness/process.js';

let serve: StratusServe | undefined;
let client: KubeClient;

async function kubectlOk(args: string[], stdin?: string): Promise<string> {
  const r = await kubectl(serve!.kubeconfig, join(serve!.dataDir, 'kubectl-cache'), args, stdin);
  assert.equal(r.code, 0, `kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const groups = () => client.resource<InstanceGroup>(Resources.instanceGroups);
const owned = async (): Promise<Instance[]> =>
  (await client.resource<Instance>(Resources.instances).list('default')).filter((i) => !i.metadata?.deletionTimestamp && i.metadata?.ownerReferences?.some((r) => r.name === 'vms'));

before(async () => {
  serve = await startStratusServe({ controllers: true, args: ['--sim-node'] });
  client = KubeClient.fromFile(serve.kubeconfig);
  await kubectlOk(['wait', '--for=condition=Ready', 'computenode/sim', '--timeout=30s']);
});

after(async () => {
  client?.close();
  await serve?.stop();
});

describe('InstanceGroup of libvirt VMs (test driver)', () => {
  test('kubectl scale 0 → 3 → 1, a rolling update of the image, and the autoscaler lowering idle VMs to minReplicas', async () => {
    await kubectlOk(['apply', '-f', '-'], JSON.stringify({
      apiVersion: 'compute.stratus.dev/v1alpha1',
      kind: 'InstanceGroup',
      metadata: { name: 'vms', namespace: 'default' },
      spec: {
        replicas: 0,
        selector: { matchLabels: { app: 'vms' } },
        template: { metadata: { labels: { app: 'vms' } }, spec: { provider: 'libvirt', image: 'debian-12', cpus: 1, memoryMiB: 256 } },
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      },
    }));
    await kubectlOk(['scale', 'ig/vms', '--replicas=3']);
    await kubectlOk(['wait', '--for=jsonpath={.status.availableReplicas}=3', 'ig/vms', '--timeout=60s']);
    assert.equal((await owned()).length, 3);
    await kubectlOk(['scale', 'ig/vms', '--replicas=1']);
    await waitFor('one VM left', async () => (await owned()).length === 1, 60_000, 100);

    await kubectlOk(['patch', 'ig', 'vms', '--type=merge', '-p', JSON.stringify({ spec: { replicas: 2, template: { spec: { image: 'alpine-3.20' } } } })]);
    await kubectlOk(['wait', '--for=jsonpath={.status.conditions[?(@.type=="Progressing")].reason}=NewInstancesAvailable', 'ig/vms', '--timeout=90s']);
    await kubectlOk(['wait', '--for=condition=Ready', 'ig/vms', '--timeout=60s']);
    await waitFor('two VMs of the new image', async () => {
      const vms = await owned();
      return vms.length === 2 && vms.every((i) => i.spec.image === 'alpine-3.20');
    }, 60_000, 100);
    assert.match(await kubectlOk(['get', 'ig', 'vms', '--no-headers']), /^vms\s+2\s+2\s+2\s+2\s+2\s+/);

    await kubectlOk(['patch', 'ig', 'vms', '--type=merge', '-p', JSON.stringify({ spec: { autoscaling: { minReplicas: 1, maxReplicas: 3, targetCPUUtilizationPercentage: 50, syncPeriodSeconds: 1, scaleDownStabilizationSeconds: 3 } } })]);
    const down = await waitFor('scaled down to minReplicas', async () => {
      const g = (await groups().get('default', 'vms'))!;
      return g.spec.replicas === 1 && g.status?.autoscaling?.desiredReplicas === 1 ? g : undefined;
    }, 60_000, 200);
    assert.equal(down.status?.autoscaling?.currentCPUUtilizationPercentage, 0);
    assert.match(down.status?.autoscaling?.lastScaleReason ?? '', /^average CPU 0% of 2 Instance\(s\), target 50%: 2 → 1$/);
    await waitFor('one VM left', async () => (await owned()).length === 1, 60_000, 100);
    await kubectlOk(['delete', 'ig', 'vms', '--wait=true']);
    await waitFor('VMs deleted with their group', async () => (await owned()).length === 0, 60_000, 100);
  });
});
