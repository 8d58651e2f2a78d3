/**
 * Table tests of the managed-resource lifecycle (`runtime/managed.ts`) as the Instance
 * controller (and, below, the ComputeNode heartbeat) drives it, against the in-memory fake provider registered through the provider
 * registry — the same `register` path as libvirt, Docker and GCE. Each case: name → inputs
 * (what the fake cloud does, the Instance and its node, an action) → expected conditions,
 * events, provider calls and metrics.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ComputeNode, Instance, Network, SSHKey } from '../../../crds/types.js';
import { KubeClient, objectKey, type ResourceClient } from '../../../runtime/client.js';
import { Informer } from '../../../runtime/informer.js';
import { Controller } from '../../../runtime/controller.js';
import { EventRecorder } from '../../../runtime/events.js';
import { RuntimeMetrics } from '../../../runtime/metrics.js';
import { ExponentialBackoff } from '../../../runtime/queue.js';
import { ReconcileError } from '../../../runtime/errors.js';
import { kubeTime } from '../../../runtime/conditions.js';
import { ProviderRegistry } from '../../../providers/registry.js';
import { ProviderMetrics } from '../../../providers/metrics.js';
import { FakeCloud, fakeProvider } from '../../../providers/fake/provider.js';
import { NodeConnections } from '../../../controllers/connections.js';
import { Indexes, Resources } from '../../../controllers/resources.js';
import { INSTANCE_FINALIZER, InstanceReconciler, type InstanceEventReason } from '../../../controllers/instance.js';
import { ComputeNodeReconciler, type ComputeNodeEventReason } from '../../../controllers/computenode.js';
import { FakeApiServer } from '../runtime/fakeapi.js';
import { waitFor } from '../../harness/process.js';

interface CoreEvent {
  involvedObject?: { name?: string; namespace?: string };
  reason?: string;
  type?: string;
  message?: string;
}

interface Env {
  cloud: FakeCloud;
  instances: ResourceClient<Instance>;
  metrics: RuntimeMetrics;
  ns: string;
  /** The Instance as the API has it now (undefined once gone). */
  get(): Promise<Instance | undefined>;
  events(): CoreEvent[];
  metricsText(): Promise<string>;
  enqueue(): void;
}

interface Case {
  name: string;
  /** Scripts the fake cloud before the Instance exists. */
  cloud?: (c: FakeCloud) => void;
  /** The ComputeNode the Instance is bound to: its provider and readiness. */
  node?: { provider?: string; ready?: boolean } | null;
  instance?: Partial<Instance['spec']>;
  /** The fake provider without its `diskResize` capability (machines without disks, as Docker's). */
  noDiskResize?: boolean;
  callTimeoutMs?: number;
  /** Done when this holds on the Instance (undefined: deleted). */
  until: (inst: Instance | undefined, env: Env) => boolean | Promise<boolean>;
  /** A second step once `until` held; then `then` must hold. */
  act?: (env: Env, inst: Instance) => Promise<void>;
  then?: (inst: Instance | undefined, env: Env) => boolean | Promise<boolean>;
  expect: {
    conditions?: Record<string, { status: string; reason?: string; message?: RegExp }>;
    state?: string;
    gone?: boolean;
    /** Event reasons recorded (each at least once), and reasons that must not appear. */
    events?: string[];
    noEvents?: string[];
    /** Substrings of provider calls that must (not) have happened. */
    calls?: string[];
    noCalls?: string[];
    /** Lines (regexps) the metrics text must match. */
    metrics?: RegExp[];
  };
}

function cond(obj: Instance | ComputeNode | undefined, type: string): { status: string; reason?: string; message?: string } | undefined {
  return obj?.status?.conditions?.find((c) => c.type === type);
}

const errorsAtLeastOne = /controller_runtime_reconcile_errors_total\{controller="instance"\} [1-9]\d*/;
const noErrors = /controller_runtime_reconcile_errors_total\{controller="instance"\} 0\n/;

const cases: Case[] = [
  {
    name: 'a missing machine is created and reported Running',
    until: (i) => cond(i, 'Ready')?.status === 'True',
    expect: {
      conditions: { Synced: { status: 'True', reason: 'ReconcileSuccess' }, Ready: { status: 'True', reason: 'Running' }, NodeReady: { status: 'True' } },
      state: 'running',
      events: ['Created'],
      noEvents: ['ProviderError', 'Recreated'],
      calls: ['observe', 'create'],
      metrics: [noErrors, /stratus_provider_requests_total\{provider="fake",operation="create",result="success"\} 1\n/],
    },
  },
  {
    name: 'a machine still starting is Ready=False Starting, then Running after further observes',
    cloud: (c) => {
      c.startObserves = 3;
    },
    until: (i) => cond(i, 'Ready')?.status === 'True',
    expect: { conditions: { Ready: { status: 'True', reason: 'Running' } }, state: 'running', events: ['Created'], metrics: [noErrors] },
  },
  {
    name: 'powerState Stopped updates the running machine and reports it Stopped',
    until: (i) => i?.status?.state === 'running',
    act: async (env, inst) => {
      await env.instances.mergePatch(env.ns, inst.metadata!.name!, { spec: { powerState: 'Stopped' } });
    },
    then: (i) => i?.status?.state === 'stopped',
    expect: { conditions: { Ready: { status: 'False', reason: 'Stopped' }, Synced: { status: 'True' } }, events: ['Created', 'Stopping'], calls: ['update'], metrics: [noErrors] },
  },
  {
    name: 'a machine removed behind the controller’s back is recreated (drift)',
    until: (i) => i?.status?.state === 'running',
    act: async (env, inst) => {
      env.cloud.vanish(inst.metadata!.uid!);
      env.enqueue();
    },
    then: (_i, env) => env.events().some((e) => e.reason === 'Recreated') && env.cloud.machines.size > 0,
    expect: { state: 'running', events: ['Created', 'Recreated'], metrics: [noErrors] },
  },
  {
    name: 'a retryable provider failure is Synced=False with its reason, counted as an error, then retried to success',
    cloud: (c) => void c.failNext('create', new ReconcileError('QuotaExceeded', 'the CPUS quota is used up')),
    until: (i, env) => i?.status?.state === 'running' && env.events().some((e) => e.reason === 'ProviderError'),
    expect: {
      conditions: { Synced: { status: 'True' }, Ready: { status: 'True' } },
      events: ['ProviderError', 'Created'],
      metrics: [errorsAtLeastOne, /stratus_provider_requests_total\{provider="fake",operation="create",result="QuotaExceeded"\} 1\n/, /controller_runtime_reconcile_panics_total\{controller="instance"\} 0\n/],
    },
  },
  {
    name: 'a failure only a spec change can fix is Synced=False and Ready=False with its reason, state pending',
    instance: { image: 'missing' },
    until: (i) => cond(i, 'Synced')?.status === 'False',
    expect: {
      conditions: { Synced: { status: 'False', reason: 'ImageNotFound', message: /does not exist/ }, Ready: { status: 'False', reason: 'ImageNotFound' } },
      state: 'pending',
      events: ['ProviderError'],
      noEvents: ['Created'],
      metrics: [errorsAtLeastOne],
    },
  },
  {
    name: 'a provider call that hangs ends at its deadline as DeadlineExceeded and is retried',
    cloud: (c) => void c.hangNext('create'),
    callTimeoutMs: 150,
    until: (i, env) => i?.status?.state === 'running' && env.events().some((e) => e.reason === 'ProviderError'),
    expect: {
      conditions: { Synced: { status: 'True' }, Ready: { status: 'True' } },
      events: ['ProviderError', 'Created'],
      metrics: [errorsAtLeastOne, /stratus_provider_requests_total\{provider="fake",operation="create",result="error"\} 1\n/],
    },
  },
  {
    name: 'a TypeError thrown by the provider is recovered, reported as ReconcileError and counted as a panic',
    cloud: (c) => void c.failNext('observe', new TypeError("cannot read properties of undefined (reading 'x')")),
    until: (i, env) => i?.status?.state === 'running' && env.events().some((e) => e.reason === 'ProviderError'),
    expect: {
      events: ['ProviderError', 'Created'],
      metrics: [errorsAtLeastOne, /controller_runtime_reconcile_panics_total\{controller="instance"\} 1\n/],
    },
  },
  {
    name: 'a thrown non-Error value is a panic too: recovered, reported, retried',
    cloud: (c) => void c.failNext('create', 'just a string'),
    until: (i, env) => i?.status?.state === 'running' && env.events().some((e) => e.reason === 'ProviderError' && /just a string/.test(e.message ?? '')),
    expect: { events: ['ProviderError', 'Created'], metrics: [/controller_runtime_reconcile_panics_total\{controller="instance"\} 1\n/] },
  },
  {
    name: 'deleting removes the machine, then the finalizer',
    until: (i) => i?.status?.state === 'running',
    act: async (env, inst) => {
      await env.instances.delete(env.ns, inst.metadata!.name!);
    },
    then: (i) => i === undefined,
    expect: { gone: true, events: ['Created', 'Deleted'], calls: ['delete'], metrics: [noErrors] },
  },
  {
    name: 'a failed delete keeps the finalizer, says why, and is retried until the machine is gone',
    until: (i) => i?.status?.state === 'running',
    act: async (env, inst) => {
      env.cloud.failNext('delete', new ReconcileError('NodeUnreachable', 'the node does not answer'));
      await env.instances.delete(env.ns, inst.metadata!.name!);
    },
    then: (i, env) => i === undefined && env.cloud.machines.size === 0,
    expect: { gone: true, events: ['ProviderError', 'Deleted'], metrics: [errorsAtLeastOne] },
  },
  {
    name: 'an Instance without a node waits for the scheduler: Ready=False Unscheduled, no provider call, no error',
    node: null,
    until: (i) => cond(i, 'Ready')?.reason === 'Unscheduled',
    expect: { state: 'pending', conditions: { Ready: { status: 'False', reason: 'Unscheduled' } }, noCalls: ['observe', 'create'], metrics: [noErrors] },
  },
  {
    name: 'an Instance on a node that is not Ready waits: NodeReady=False, no provider call',
    node: { ready: false },
    until: (i) => cond(i, 'NodeReady')?.status === 'False',
    expect: { conditions: { NodeReady: { status: 'False', reason: 'NodeNotReady' } }, noCalls: ['observe', 'create'], metrics: [noErrors] },
  },
  {
    name: 'a node whose provider this controller lacks: Synced=False ProviderNotAvailable, counted as an error',
    node: { provider: 'nosuch' },
    until: (i) => cond(i, 'Synced')?.reason === 'ProviderNotAvailable',
    expect: {
      conditions: { Synced: { status: 'False', reason: 'ProviderNotAvailable', message: /no provider "nosuch".*available: fake/ }, Ready: { status: 'False' } },
      noCalls: ['create'],
      metrics: [errorsAtLeastOne],
    },
  },
  {
    name: 'raising spec.disks[].sizeGiB grows the disk in place: DiskResized event, status.disks, DisksSized=True',
    instance: { disks: [{ name: 'data', sizeGiB: 1 }] },
    until: (i) => cond(i, 'DisksSized')?.status === 'True' && i?.status?.disks?.[0]?.sizeGiB === 1,
    act: async (env, inst) => {
      await env.instances.mergePatch(env.ns, inst.metadata!.name!, { spec: { disks: [{ name: 'data', sizeGiB: 3 }] } });
    },
    then: (i) => i?.status?.disks?.[0]?.sizeGiB === 3,
    expect: {
      conditions: { DisksSized: { status: 'True', reason: 'AsRequested' }, Ready: { status: 'True' } },
      events: ['Created', 'DiskResized'],
      noEvents: ['DiskResizeFailed', 'Recreated'],
      calls: [`grow`],
      noCalls: ['update'],
      metrics: [noErrors],
    },
  },
  {
    name: 'a grow the node refuses is DisksSized=False with its reason and a warning; the machine stays Ready',
    instance: { disks: [{ name: 'data', sizeGiB: 1 }] },
    until: (i) => cond(i, 'DisksSized')?.status === 'True',
    act: async (env, inst) => {
      env.cloud.refuseGrow = new ReconcileError('DiskResizeUnsupported', 'this libvirt driver cannot grow disk "data"', false);
      await env.instances.mergePatch(env.ns, inst.metadata!.name!, { spec: { disks: [{ name: 'data', sizeGiB: 2 }] } });
    },
    then: (i) => cond(i, 'DisksSized')?.reason === 'DiskResizeUnsupported',
    expect: {
      conditions: { DisksSized: { status: 'False', reason: 'DiskResizeUnsupported', message: /cannot grow/ }, Ready: { status: 'True' }, Synced: { status: 'True' } },
      events: ['DiskResizeFailed'],
      noEvents: ['DiskResized'],
    },
  },
  {
    name: 'on a provider whose machines have no disks, spec.disks is DisksSized=False ResizeUnsupported (nothing silently ignored)',
    noDiskResize: true,
    instance: { disks: [{ name: 'data', sizeGiB: 5 }] },
    until: (i) => cond(i, 'DisksSized') !== undefined && i?.status?.state === 'running',
    expect: {
      conditions: { DisksSized: { status: 'False', reason: 'ResizeUnsupported', message: /provider "fake" has no disks to size: spec.disks \(data 5 GiB\) is not applied/ }, Ready: { status: 'True' } },
      noCalls: ['grow'],
      metrics: [noErrors],
    },
  },
];

describe('managed-resource lifecycle (Instance on the fake provider)', () => {
  const api = new FakeApiServer();
  let client: KubeClient;
  const stops: Array<() => Promise<void>> = [];

  before(async () => {
    await api.start();
    client = KubeClient.fromKubeConfig(api.kubeConfig());
  });
  after(async () => {
    for (const s of stops.reverse()) await s();
    client.close();
    await api.stop();
  });

  for (const [n, c] of cases.entries()) {
    test(c.name, async () => {
      // The previous case's controller and informers go first: each holds watches, and the
      // client's connection pool is finite (with them all open, a 16th case could not watch).
      for (const s of stops.splice(0).reverse()) await s();
      const ns = `case${n}`;
      const nodeName = `node-${n}`;
      const cloud = new FakeCloud();
      c.cloud?.(cloud);
      const providers = new ProviderRegistry().register(fakeProvider(cloud, 'fake', { diskResize: !c.noDiskResize }));

      const nodes = client.resource<ComputeNode>(Resources.computeNodes);
      const instances = client.resource<Instance>(Resources.instances);
      if (c.node !== null) {
        const created = await nodes.create({
          apiVersion: 'compute.stratus.dev/v1alpha1',
          kind: 'ComputeNode',
          metadata: { name: nodeName },
          // The CRD's enum lists the built-in providers; the fake API server does not check it.
          spec: { provider: (c.node?.provider ?? 'fake') as ComputeNode['spec']['provider'] },
        });
        const ready = c.node?.ready ?? true;
        await nodes.replaceStatus({
          ...created,
          status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'False', reason: ready ? 'NodeReady' : 'NodeUnreachable', message: '', lastTransitionTime: kubeTime() }] },
        });
      }

      const instanceCache = new Informer(instances, { namespace: ns, initialBackoffMs: 10 });
      instanceCache.addIndex(Indexes.instancesByNode, (i) => (i.spec.nodeName ? [i.spec.nodeName] : []));
      const nodeCache = new Informer(nodes, { initialBackoffMs: 10 });
      const sshKeyCache = new Informer(client.resource<SSHKey>(Resources.sshKeys), { namespace: ns, initialBackoffMs: 10 });
      const networkCache = new Informer(client.resource<Network>(Resources.networks), { namespace: ns, initialBackoffMs: 10 });
      const metrics = new RuntimeMetrics({ processMetrics: false });
      const recorder = new EventRecorder<InstanceEventReason>(client, 'instance-controller');
      const connections = new NodeConnections(providers, async () => ({}));
      const reconciler = new InstanceReconciler({
        instances,
        instanceCache,
        nodeCache,
        sshKeyCache,
        networkCache,
        connections,
        recorder,
        providerMetrics: new ProviderMetrics(metrics.registry),
        pollIntervalMs: 60_000,
        transitionPollMs: 20,
        ...(c.callTimeoutMs !== undefined ? { callTimeoutMs: c.callTimeoutMs } : {}),
      });
      const ctl = new Controller({ name: 'instance', concurrency: 2, metrics, rateLimiter: () => new ExponentialBackoff(5, 100) }, instanceCache, reconciler);
      ctl.watches(nodeCache, (node) => instanceCache.byIndex(Indexes.instancesByNode, node.metadata?.name ?? '').map((i) => objectKey(i)));
      for (const inf of [instanceCache, nodeCache, sshKeyCache, networkCache]) inf.start();
      assert.equal(await ctl.start(), true);
      stops.push(async () => {
        await ctl.stop();
        for (const inf of [instanceCache, nodeCache, sshKeyCache, networkCache]) await inf.stop();
        await connections.closeAll();
      });

      const name = 'vm';
      await instances.create({
        apiVersion: 'compute.stratus.dev/v1alpha1',
        kind: 'Instance',
        metadata: { name, namespace: ns },
        spec: { provider: 'libvirt', image: 'debian-12', cpus: 1, memoryMiB: 256, ...(c.node !== null ? { nodeName } : {}), ...c.instance },
      });
      const env: Env = {
        cloud,
        instances,
        metrics,
        ns,
        get: () => instances.get(ns, name),
        events: () => (api.objects('v1/events') as unknown as CoreEvent[]).filter((e) => e.involvedObject?.namespace === ns && e.involvedObject.name === name),
        metricsText: () => metrics.metricsText(),
        enqueue: () => ctl.enqueue(`${ns}/${name}`),
      };
      const holds = async (p: Case['until']): Promise<boolean> => {
        await recorder.flush();
        return p(await env.get(), env);
      };
      await waitFor(`${c.name}: first state`, () => holds(c.until), 20_000, 10);
      if (c.act) {
        await c.act(env, (await env.get())!);
        await waitFor(`${c.name}: after the action`, () => holds(c.then ?? c.until), 20_000, 10);
      }

      await recorder.flush();
      const inst = await env.get();
      const e = c.expect;
      if (e.gone) assert.equal(inst, undefined, 'the Instance is gone');
      else assert.ok(inst, 'the Instance exists');
      if (inst && !e.gone) assert.ok(inst.metadata?.finalizers?.includes(INSTANCE_FINALIZER), 'the finalizer protects the machine');
      for (const [type, want] of Object.entries(e.conditions ?? {})) {
        const got = cond(inst, type);
        assert.equal(got?.status, want.status, `${type} status (${JSON.stringify(got)})`);
        if (want.reason) assert.equal(got?.reason, want.reason, `${type} reason`);
        if (want.message) assert.match(got?.message ?? '', want.message, `${type} message`);
      }
      if (e.state) assert.equal(inst?.status?.state, e.state);
      const reasons = env.events().map((ev) => ev.reason);
      for (const r of e.events ?? []) assert.ok(reasons.includes(r), `event ${r} recorded (got ${reasons.join(', ')})`);
      for (const r of e.noEvents ?? []) assert.ok(!reasons.includes(r), `no ${r} event (got ${reasons.join(', ')})`);
      for (const call of e.calls ?? []) assert.ok(cloud.calls.some((x) => x.startsWith(call)), `provider ${call} was called (calls: ${cloud.calls.join(', ')})`);
      for (const call of e.noCalls ?? []) assert.ok(!cloud.calls.some((x) => x.startsWith(call)), `provider ${call} was not called`);
      const text = await env.metricsText();
      for (const m of e.metrics ?? []) assert.match(text, m);
    });
  }
});

describe('managed-resource lifecycle (ComputeNode heartbeat on the fake provider)', () => {
  const api = new FakeApiServer();
  let client: KubeClient;
  const stops: Array<() => Promise<void>> = [];

  before(async () => {
    await api.start();
    client = KubeClient.fromKubeConfig(api.kubeConfig());
  });
  after(async () => {
    for (const s of stops.reverse()) await s();
    client.close();
    await api.stop();
  });

  /** A controller over every node (the cache is cluster-wide): each test stops its own before the next starts. */
  async function run(
    name: string,
    cloud: FakeCloud,
  ): Promise<{ nodes: ResourceClient<ComputeNode>; metrics: RuntimeMetrics; events: () => CoreEvent[]; flush: () => Promise<void>; stop: () => Promise<void> }> {
    const nodes = client.resource<ComputeNode>(Resources.computeNodes);
    const nodeCache = new Informer(nodes, { initialBackoffMs: 10 });
    const instanceCache = new Informer(client.resource<Instance>(Resources.instances), { namespace: 'none', initialBackoffMs: 10 });
    instanceCache.addIndex(Indexes.instancesByNode, (i) => (i.spec.nodeName ? [i.spec.nodeName] : []));
    const metrics = new RuntimeMetrics({ processMetrics: false });
    const recorder = new EventRecorder<ComputeNodeEventReason>(client, 'computenode-controller');
    const connections = new NodeConnections(new ProviderRegistry().register(fakeProvider(cloud)), async () => ({}));
    const reconciler = new ComputeNodeReconciler({ nodes, nodeCache, instanceCache, connections, recorder, defaultHeartbeatMs: 30 });
    const ctl = new Controller({ name: 'computenode', metrics, rateLimiter: () => new ExponentialBackoff(5, 100) }, nodeCache, reconciler);
    nodeCache.start();
    instanceCache.start();
    assert.equal(await ctl.start(), true);
    let stopped = false;
    const stop = async (): Promise<void> => {
      if (stopped) return;
      stopped = true;
      await ctl.stop();
      await nodeCache.stop();
      await instanceCache.stop();
      await connections.closeAll();
      await nodes.delete(undefined, name);
    };
    stops.push(stop);
    await nodes.create({ apiVersion: 'compute.stratus.dev/v1alpha1', kind: 'ComputeNode', metadata: { name }, spec: { provider: 'fake' as ComputeNode['spec']['provider'] } });
    return {
      nodes,
      metrics,
      events: () => (api.objects('v1/events') as unknown as CoreEvent[]).filter((e) => e.involvedObject?.name === name),
      flush: () => recorder.flush(),
      stop,
    };
  }

  test('a reachable node reports capacity, version and Ready=True, with one NodeReady event', async () => {
    const cloud = new FakeCloud();
    const env = await run('up', cloud);
    await waitFor('Ready', async () => cond(await env.nodes.get(undefined, 'up'), 'Ready')?.status === 'True', 20_000, 10);
    await env.flush();
    const node = await env.nodes.get(undefined, 'up');
    assert.deepEqual(node?.status?.capacity, cloud.capacity);
    assert.deepEqual(node?.status?.allocatable, cloud.capacity);
    assert.equal(node?.status?.version, 'fake 1.0');
    assert.equal(cond(node, 'Synced')?.reason, 'ReconcileSuccess');
    assert.deepEqual(env.events().map((e) => e.reason), ['NodeReady']);
    assert.match(await env.metrics.metricsText(), /controller_runtime_reconcile_errors_total\{controller="computenode"\} 0\n/);
    await env.stop();
  });

  test('a Ready node that stops answering goes Ready=False NodeUnreachable (an untyped failure too), warns once, counts errors, and recovers', async () => {
    const cloud = new FakeCloud();
    const env = await run('flaky', cloud);
    await waitFor('Ready', async () => cond(await env.nodes.get(undefined, 'flaky'), 'Ready')?.status === 'True', 20_000, 10);
    cloud.unreachable = new Error('connect ECONNREFUSED 127.0.0.1:2376');
    await waitFor('NotReady', async () => cond(await env.nodes.get(undefined, 'flaky'), 'Ready')?.status === 'False', 20_000, 10);
    // several heartbeats fail while it is down
    const failedBeats = (): number => cloud.calls.filter((c) => c === 'describe').length;
    const at = failedBeats();
    await waitFor('two more failed heartbeats', () => failedBeats() >= at + 2, 20_000, 10);
    const down = await env.nodes.get(undefined, 'flaky');
    assert.equal(cond(down, 'Ready')?.reason, 'NodeUnreachable');
    assert.match(cond(down, 'Ready')?.message ?? '', /ECONNREFUSED/);
    assert.equal(cond(down, 'Synced')?.status, 'False');
    cloud.unreachable = undefined;
    await waitFor('Ready again', async () => cond(await env.nodes.get(undefined, 'flaky'), 'Ready')?.status === 'True', 20_000, 10);
    await env.flush();
    const notReady = env.events().filter((e) => e.reason === 'NodeNotReady');
    assert.equal(notReady.length, 1, 'one NodeNotReady event however many heartbeats fail');
    assert.equal((notReady[0] as { count?: number }).count ?? 1, 1, 'recorded once, not aggregated from repeats');
    assert.ok(env.events().some((e) => e.reason === 'NodeReady'));
    const errors = Number(/controller_runtime_reconcile_errors_total\{controller="computenode"\} (\d+)/.exec(await env.metrics.metricsText())?.[1]);
    assert.ok(errors >= 3, `every failed heartbeat is a reconcile error (got ${errors})`);
    await env.stop();
  });
});
