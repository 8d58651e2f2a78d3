/**
 * The Instance controller scenarios on libvirt — lifecycle, drift, a missing image, and the
 * scheduler — shared by the file that runs them on libvirt's test driver (sim nodes, through
 * the virsh shell) and the one that runs them on real libvirtds (qemu:///session, TCG, through
 * the native binding). Each file starts the API server, three ComputeNodes `n1` (zone a),
 * `n2` (zone b), `n3` (zone b, disk ssd) with `capacityOverride` 8 CPUs / 8 GiB and an image
 * `debian-12` in their pools, and the controllers in its own process (so a test can reach
 * behind their back through the same node connections).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ComputeNode, Instance } from '../../../crds/types.js';
import { KubeClient, type KubeObject } from '../../../runtime/client.js';
import { Manager } from '../../../runtime/manager.js';
import { registerControllers, type ControllerResources } from '../../../controllers/index.js';
import { Resources } from '../../../controllers/resources.js';
import { machineSpecFor } from '../../../controllers/machinespec.js';
import { startStratusServe, type StratusServe } from '../../harness/apiserver.js';
import { waitFor } from '../../harness/process.js';

export interface ScenarioContext {
  client: KubeClient;
  held: ControllerResources;
  /** How long a state change may take (real qemu on a loaded machine is slower than the test driver). */
  timeoutMs: number;
}

export interface ControllerWorld {
  serve: StratusServe;
  client: KubeClient;
  held: ControllerResources;
  /** Deletes every Instance (waiting up to `timeoutMs`), stops the controllers and the API server. */
  stop(timeoutMs: number): Promise<void>;
}

export const NODE_NAMES = ['n1', 'n2', 'n3'] as const;

/**
 * `stratus serve --no-controllers`, the three ComputeNodes (`libvirtOf` gives each its URI and
 * image pool) and the controllers in this process, once all three nodes are Ready.
 */
export async function startControllerWorld(libvirtOf: (node: string) => { uri: string; imagePool: string }, readyTimeoutMs = 20_000): Promise<ControllerWorld> {
  const serve = await startStratusServe();
  const client = KubeClient.fromFile(serve.kubeconfig);
  const nodes = client.resource<ComputeNode>(Resources.computeNodes);
  const instances = client.resource<Instance>(Resources.instances);
  const labels: Record<string, Record<string, string>> = { n1: { zone: 'a' }, n2: { zone: 'b' }, n3: { zone: 'b', disk: 'ssd' } };
  let mgr: Manager | undefined;
  let held: ControllerResources | undefined;
  const stop = async (timeoutMs: number): Promise<void> => {
    try {
      for (const i of await instances.list().catch(() => [])) await instances.delete(i.metadata?.namespace, i.metadata?.name ?? '').catch(() => undefined);
      await waitFor('instances gone', async () => (await instances.list()).length === 0, timeoutMs).catch(() => undefined);
    } finally {
      await mgr?.stop();
      await held?.close();
      client.close();
      await serve.stop();
    }
  };
  try {
    for (const name of NODE_NAMES) {
      await nodes.create({
        apiVersion: 'compute.stratus.dev/v1alpha1',
        kind: 'ComputeNode',
        metadata: { name, labels: { ...labels[name] } },
        spec: { provider: 'libvirt', libvirt: libvirtOf(name), capacityOverride: { cpus: 8, memoryMiB: 8192 } },
      });
    }
    mgr = new Manager({ client: KubeClient.fromFile(serve.kubeconfig) });
    held = registerControllers(mgr, { instancePollMs: 300, instanceTransitionMs: 100, heartbeatMs: 500 });
    await mgr.start();
    await waitFor('three Ready nodes', async () => {
      const list = await nodes.list();
      return list.filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length === 3;
    }, readyTimeoutMs);
  } catch (err) {
    await stop(1000);
    throw err;
  }
  return { serve, client, held, stop };
}

export function vm(name: string, spec: Partial<Instance['spec']> = {}): Instance {
  return {
    apiVersion: 'compute.stratus.dev/v1alpha1',
    kind: 'Instance',
    metadata: { name, namespace: 'default' },
    // A blank disk never answers ACPI: stopping ends with a destroy after 1 s (no-op on the test driver).
    spec: { provider: 'libvirt', image: 'debian-12', cpus: 1, memoryMiB: 1024, libvirt: { shutdownTimeoutSeconds: 1 }, ...spec },
  };
}

export function libvirtInstanceScenarios(ctx: () => ScenarioContext): void {
  const nodes = () => ctx().client.resource<ComputeNode>(Resources.computeNodes);
  const instances = () => ctx().client.resource<Instance>(Resources.instances);


  async function waitState(name: string, state: string, timeoutMs = ctx().timeoutMs): Promise<Instance> {
    return waitFor(`${name} ${state}`, async () => {
      const i = await instances().get('default', name);
      return i?.status?.state === state && i.status.observedGeneration === i.metadata?.generation ? i : undefined;
    }, timeoutMs, 50);
  }

  async function ownedOn(nodeName: string): Promise<string[]> {
    const node = await nodes().get(undefined, nodeName);
    assert.ok(node);
    return (await ctx().held.connections.get(node)).machines().listOwned();
  }

  async function deleteAndWait(name: string): Promise<void> {
    await instances().delete('default', name);
    await waitFor(`${name} deleted`, async () => (await instances().get('default', name)) === undefined, ctx().timeoutMs, 50);
  }

  describe('an Instance on libvirt', () => {
    test('goes pending → running, stops and starts with powerState, and its deletion removes the domain first', async () => {
      await instances().create(vm('life', { disks: [{ name: 'data', sizeGiB: 2 }] }));
      const running = await waitState('life', 'running');
      const node = running.spec.nodeName!;
      assert.ok(['n1', 'n2', 'n3'].includes(node));
      assert.ok(running.metadata?.finalizers?.includes('compute.stratus.dev/instance'));
      assert.ok(running.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
      assert.ok(running.status?.conditions?.some((c) => c.type === 'Scheduled' && c.status === 'True'));
      assert.match(running.status?.providerID ?? '', new RegExp(running.metadata!.uid!));
      assert.deepEqual(await ownedOn(node), [running.metadata!.uid!]);

      await instances().mergePatch('default', 'life', { spec: { powerState: 'Stopped' } });
      const stopped = await waitState('life', 'stopped');
      assert.ok(stopped.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'False' && c.reason === 'Stopped'));
      await instances().mergePatch('default', 'life', { spec: { powerState: 'Running' } });
      await waitState('life', 'running');

      await deleteAndWait('life');
      assert.deepEqual(await ownedOn(node), []);
    });

    test('a domain removed behind stratus is recreated, and one stopped behind its back is started again', async () => {
      await instances().create(vm('drift'));
      const inst = await waitState('drift', 'running');
      const node = (await nodes().get(undefined, inst.spec.nodeName!))!;
      const machines = (await ctx().held.connections.get(node)).machines();
      const spec = machineSpecFor(inst, { sshKey: () => undefined, network: () => undefined });

      await machines.update({ ...spec, powerState: 'Stopped' }, await machines.observe(spec));
      await waitFor('stopped behind its back, then running again', async () => (await machines.observe(spec)).state === 'running', ctx().timeoutMs, 50);

      await machines.delete(spec);
      assert.equal((await machines.observe(spec)).exists, false);
      await waitFor('recreated', async () => {
        const o = await machines.observe(spec);
        return o.exists && o.state === 'running';
      }, ctx().timeoutMs, 50);
      const events = await ctx().client.resource<{ reason?: string; involvedObject?: { name?: string } } & KubeObject>(Resources.events).list('default');
      assert.ok(events.some((e) => e.involvedObject?.name === 'drift' && e.reason === 'Recreated'), 'a Recreated event');
      await deleteAndWait('drift');
    });

    test('an image that the pool does not have is Synced=False ImageNotFound and nothing is created', async () => {
      await instances().create(vm('noimage', { image: 'windows-95' }));
      const inst = await waitFor('ImageNotFound', async () => {
        const i = await instances().get('default', 'noimage');
        return i?.status?.conditions?.some((c) => c.type === 'Synced' && c.status === 'False' && c.reason === 'ImageNotFound') ? i : undefined;
      }, ctx().timeoutMs, 50);
      assert.deepEqual(await ownedOn(inst.spec.nodeName!), []);
      await deleteAndWait('noimage');
    });
  });

  describe('the scheduler', () => {
    test('spread places three Instances on three nodes; binpack fills one node', async () => {
      for (const n of ['s1', 's2', 's3']) await instances().create(vm(n, { placement: { strategy: 'spread' } }));
      const spread = await Promise.all(['s1', 's2', 's3'].map((n) => waitState(n, 'running')));
      assert.deepEqual(spread.map((i) => i.spec.nodeName).sort(), ['n1', 'n2', 'n3']);
      for (const n of ['b1', 'b2', 'b3']) await instances().create(vm(n, { placement: { strategy: 'binpack' } }));
      const packed = await Promise.all(['b1', 'b2', 'b3'].map((n) => waitState(n, 'running')));
      assert.equal(new Set(packed.map((i) => i.spec.nodeName)).size, 1, 'binpack uses one node');
      for (const n of ['s1', 's2', 's3', 'b1', 'b2', 'b3']) await instances().delete('default', n);
      await waitFor('all deleted', async () => (await instances().list('default')).length === 0, ctx().timeoutMs);
    });

    test('nodeSelector chooses among labelled nodes', async () => {
      await instances().create(vm('ssd', { nodeSelector: { disk: 'ssd' } }));
      assert.equal((await waitState('ssd', 'running')).spec.nodeName, 'n3');
      await deleteAndWait('ssd');
    });

    test('an Instance no node can hold stays pending with the counted reasons, and is placed once capacity appears', async () => {
      await instances().create(vm('huge', { memoryMiB: 12_000 }));
      const pending = await waitFor('Unschedulable', async () => {
        const i = await instances().get('default', 'huge');
        return i?.status?.conditions?.find((c) => c.type === 'Scheduled' && c.status === 'False');
      }, ctx().timeoutMs, 50);
      assert.equal(pending.reason, 'Unschedulable');
      assert.equal(pending.message, '0/3 nodes: 3 insufficient memory');
      assert.equal((await instances().get('default', 'huge'))?.status?.state, 'pending');
      await nodes().mergePatch(undefined, 'n2', { spec: { capacityOverride: { cpus: 8, memoryMiB: 16384 } } });
      assert.equal((await waitState('huge', 'running')).spec.nodeName, 'n2');
      await deleteAndWait('huge');
    });
  });
}
