/**
 * Every stratus controller, registered on a runtime `Manager`. The same set runs in
 * `stratus controller` (against any Kubernetes API) and in-process in `stratus serve`.
 */
import type { AddressPool, ComputeNode, ElasticIP, Group, Instance, InstanceGroup, Network, Quota, SSHKey, User } from '../crds/types.js';
import type { Manager } from '../runtime/manager.js';
import type { Informer } from '../runtime/informer.js';
import { objectKey, type KubeObject, type ResourceClient } from '../runtime/client.js';
import { getCondition } from '../runtime/conditions.js';
import { ReconcileError } from '../runtime/errors.js';
import { builtinProviders } from '../providers/index.js';
import { ProviderMetrics } from '../providers/metrics.js';
import type { ProviderRegistry } from '../providers/registry.js';
import { NodeConnections, type SecretReader } from './connections.js';
import { Indexes, Resources } from './resources.js';
import { InstanceReconciler, type InstanceEventReason } from './instance.js';
import { ComputeNodeReconciler, type ComputeNodeEventReason } from './computenode.js';
import { SchedulerReconciler, type SchedulerEventReason } from './scheduler.js';
import { SSHKeyReconciler } from './sshkey.js';
import { NetworkReconciler, type NetworkEventReason } from './network.js';
import { registerProjectControllers } from './project.js';
import { QuotaReconciler } from './quota.js';
import { UserReconciler } from './user.js';
import { GroupReconciler } from './group.js';
import { registerDNSControllers, type EmbeddedDNS } from './dns.js';
import { InstanceGroupAutoscaler, type AutoscalerEventReason } from './autoscaler.js';
import { controllingGroup, groupKeyOf, InstanceGroupReconciler, INSTANCES_BY_GROUP, type InstanceGroupEventReason } from './instancegroup.js';
import { ElasticIPReconciler, type ElasticIPEventReason } from './elasticip.js';
import { AddressPoolReconciler, type AddressPoolEventReason } from './addresspool.js';

export interface ControllerSettings {
  /** Steady-state drift check of Instances. Default 30 s. */
  instancePollMs?: number;
  /** Check interval while an Instance is in transition. Default 1 s. */
  instanceTransitionMs?: number;
  /** Heartbeat of ComputeNodes that do not set `spec.heartbeatSeconds`. Default 10 s. */
  heartbeatMs?: number;
  /** Re-ensure interval of Networks (drift, ovsdb restarts). Default 30 s. */
  networkPollMs?: number;
  /** Drift check of ElasticIP bindings (a flushed NAT rule comes back). Default 30 s. */
  elasticIPPollMs?: number;
  /** How often each AddressPool's ledger is checked for entries whose ElasticIP is gone. Default 60 s. */
  addressPoolRepairMs?: number;
  /** Instance reconciles in flight at once. Default 8. */
  instanceConcurrency?: number;
  /** Where the Project controllers keep Git mirrors, artifacts and keys (see controllers/project.ts). */
  projectsDir?: string;
  /** The API server's URL and push-remote directory (`stratus serve`): Projects' `status.pushURL` and `source.push`. */
  apiURL?: string;
  gitDir?: string;
  /** The providers to drive (tests, or a build with other providers). Default: `builtinProviders()`. */
  providers?: ProviderRegistry;
  /** The embedded DNS server and zone (`stratus serve --dns-listen`); PowerDNS DNSZones work without it. */
  dns?: EmbeddedDNS;
}

interface Secret extends KubeObject {
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

/** A filter that is true the first time it sees a node in a given `state`. */
function nodeStateChanges(state: (n: ComputeNode) => string): (n: ComputeNode) => boolean {
  const seen = new Map<string, string>();
  return (n) => {
    const name = n.metadata?.name ?? '';
    const now = state(n);
    if (seen.get(name) === now) return false;
    seen.set(name, now);
    return true;
  };
}

/** What the controllers hold open; close it after the manager stops. */
export interface ControllerResources {
  connections: NodeConnections;
  providers: ProviderRegistry;
  close(): Promise<void>;
}

export function registerControllers(mgr: Manager, settings: ControllerSettings = {}): ControllerResources {
  const instances = mgr.resource<Instance>(Resources.instances);
  const nodes = mgr.resource<ComputeNode>(Resources.computeNodes);
  const sshKeys = mgr.resource<SSHKey>(Resources.sshKeys);
  const networks = mgr.resource<Network>(Resources.networks);
  const secretsClient = mgr.resource<Secret>(Resources.secrets);

  const instanceCache = mgr.informer<Instance>(Resources.instances);
  const nodeCache = mgr.informer<ComputeNode>(Resources.computeNodes);
  const sshKeyCache = mgr.informer<SSHKey>(Resources.sshKeys);
  const networkCache = mgr.informer<Network>(Resources.networks);

  instanceCache.addIndex(Indexes.instancesByNode, (i) => (i.spec.nodeName ? [i.spec.nodeName] : []));
  instanceCache.addIndex(Indexes.instancesBySSHKey, (i) => (i.spec.sshKeys ?? []).map((k) => `${i.metadata?.namespace}/${k}`));
  instanceCache.addIndex(Indexes.instancesByNetwork, (i) => (i.spec.networks ?? []).map((n) => `${i.metadata?.namespace}/${n.name}`));

  const readSecret: SecretReader = async (namespace, name) => {
    const s = await secretsClient.get(namespace, name);
    if (!s) throw new ReconcileError('SecretNotFound', `Secret "${namespace}/${name}" does not exist`);
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(s.data ?? {})) out[k] = Buffer.from(v, 'base64').toString('utf8');
    for (const [k, v] of Object.entries(s.stringData ?? {})) out[k] = v;
    return out;
  };
  const providers = settings.providers ?? builtinProviders();
  const connections = new NodeConnections(providers, readSecret);
  const providerMetrics = new ProviderMetrics(mgr.metrics.registry);

  // ComputeNodes: heartbeat, capacity, and what is bound to them.
  mgr
    .addController(
      { name: 'computenode', concurrency: 2 },
      nodeCache,
      new ComputeNodeReconciler({
        nodes,
        nodeCache,
        instanceCache,
        connections,
        recorder: mgr.eventRecorder<ComputeNodeEventReason>('computenode-controller'),
        ...(settings.heartbeatMs !== undefined ? { defaultHeartbeatMs: settings.heartbeatMs } : {}),
      }),
    )
    .watches(instanceCache, (i) => (i.spec.nodeName ? [i.spec.nodeName] : []));

  // The scheduler: one worker, so decisions are serial.
  const scheduler = new SchedulerReconciler({
    instances,
    instanceCache,
    nodeCache,
    recorder: mgr.eventRecorder<SchedulerEventReason>('scheduler'),
  });
  mgr
    .addController({ name: 'scheduler', concurrency: 1 }, instanceCache, scheduler)
    .watches(nodeCache, () => scheduler.unboundKeys())
    // capacity freed by a deleted Instance may fit one that waits
    .watches(instanceCache, (i) => (i.metadata?.deletionTimestamp && i.spec.nodeName ? scheduler.unboundKeys() : []));

  // Instances and Networks follow a node's readiness, deletion (and, for Networks, its
  // switch) — not every heartbeat, which changes only lastHeartbeatTime.
  const readiness = (n: ComputeNode): string => `${getCondition(n.status?.conditions, 'Ready')?.status ?? 'Unknown'}/${n.metadata?.deletionTimestamp ?? ''}`;
  const instancesNodeChanged = nodeStateChanges(readiness);
  const networksNodeChanged = nodeStateChanges((n) => `${readiness(n)}/${JSON.stringify(n.spec.ovs ?? null)}`);
  const onNodeChange = (n: ComputeNode): string[] =>
    instancesNodeChanged(n) ? instanceCache.byIndex(Indexes.instancesByNode, n.metadata?.name ?? '').map((i) => objectKey(i)) : [];
  mgr
    .addController(
      { name: 'instance', concurrency: settings.instanceConcurrency ?? 8 },
      instanceCache,
      new InstanceReconciler({
        instances,
        instanceCache,
        nodeCache,
        sshKeyCache,
        networkCache,
        connections,
        providerMetrics,
        recorder: mgr.eventRecorder<InstanceEventReason>('instance-controller'),
        ...(settings.instancePollMs !== undefined ? { pollIntervalMs: settings.instancePollMs } : {}),
        ...(settings.instanceTransitionMs !== undefined ? { transitionPollMs: settings.instanceTransitionMs } : {}),
      }),
    )
    .watches(nodeCache, onNodeChange)
    .watches(sshKeyCache, (k) => instanceCache.byIndex(Indexes.instancesBySSHKey, objectKey(k)).map((i) => objectKey(i)))
    .watches(networkCache, (n) => instanceCache.byIndex(Indexes.instancesByNetwork, objectKey(n)).map((i) => objectKey(i)));

  const sshKeyReconciler = new SSHKeyReconciler({ sshKeys, sshKeyCache });
  mgr
    .addController({ name: 'sshkey', concurrency: 1 }, sshKeyCache, sshKeyReconciler)
    .watches(sshKeyCache, (k) => sshKeyReconciler.sameKeyName(k));

  // Networks: VLANs on every node with a switch; re-checked when nodes come and go.
  mgr
    .addController(
      { name: 'network', concurrency: 2 },
      networkCache,
      new NetworkReconciler({
        networks,
        networkCache,
        nodeCache,
        instanceCache,
        connections,
        recorder: mgr.eventRecorder<NetworkEventReason>('network-controller'),
        ...(settings.networkPollMs !== undefined ? { pollIntervalMs: settings.networkPollMs } : {}),
      }),
    )
    .watches(nodeCache, (n) => (networksNodeChanged(n) ? networkCache.keys() : []))
    // an attached Instance changing (running, deleted) changes the Network's ports
    .watches(instanceCache, (i) => (i.spec.networks ?? []).map((n) => `${i.metadata?.namespace}/${n.name}`));

  // InstanceGroups keep replicas of a template (scale, rolling update).
  instanceCache.addIndex(INSTANCES_BY_GROUP, controllingGroup);
  const groupCache = mgr.informer<InstanceGroup>(Resources.instanceGroups);
  mgr
    .addController(
      { name: 'instancegroup', concurrency: 2 },
      groupCache,
      new InstanceGroupReconciler({
        groups: mgr.resource<InstanceGroup>(Resources.instanceGroups),
        instances,
        groupCache,
        instanceCache,
        recorder: mgr.eventRecorder<InstanceGroupEventReason>('instancegroup-controller'),
      }),
    )
    .watches(instanceCache, groupKeyOf);
  mgr.addController(
    { name: 'instancegroup-autoscaler', concurrency: 2 },
    groupCache,
    new InstanceGroupAutoscaler({
      groups: mgr.resource<InstanceGroup>(Resources.instanceGroups),
      groupCache,
      instanceCache,
      nodeCache,
      connections,
      recorder: mgr.eventRecorder<AutoscalerEventReason>('instancegroup-autoscaler'),
    }),
  );
  registerElasticIPController(mgr, {
    instances,
    instanceCache,
    nodeCache,
    connections,
    ...(settings.elasticIPPollMs !== undefined ? { pollIntervalMs: settings.elasticIPPollMs } : {}),
    ...(settings.addressPoolRepairMs !== undefined ? { poolRepairMs: settings.addressPoolRepairMs } : {}),
  });

  registerIdentityControllers(mgr, instanceCache);

  // Projects follow their source; Deployments release it onto the guests.
  registerProjectControllers(mgr, {
    connections,
    secrets: readSecret,
    instanceCache,
    nodeCache,
    ...(settings.projectsDir ? { workDir: settings.projectsDir } : {}),
    ...(settings.apiURL ? { apiURL: settings.apiURL } : {}),
    ...(settings.gitDir ? { gitDir: settings.gitDir } : {}),
  });

  // DNS names of Instances and Projects, in PowerDNS or the embedded server.
  registerDNSControllers(mgr, readSecret, settings.dns ? { embedded: settings.dns } : {});

  return {
    connections,
    providers,
    async close() {
      await connections.closeAll();
      await providers.shutdown();
    },
  };
}

/**
 * Users, Groups and Quotas: status only (membership, readiness, exact quota usage). Part of
 * `registerControllers`; exported so tests can run these alone.
 */
export function registerIdentityControllers(mgr: Manager, instanceCache: Informer<Instance> = mgr.informer<Instance>(Resources.instances)): void {
  const userCache = mgr.informer<User>(Resources.users);
  const groupCache = mgr.informer<Group>(Resources.groups);
  const quotaCache = mgr.informer<Quota>(Resources.quotas);
  const elasticIPCache = mgr.informer<ElasticIP>(Resources.elasticIPs);

  const quotaReconciler = new QuotaReconciler({
    quotas: mgr.resource<Quota>(Resources.quotas),
    quotaCache,
    instanceCache,
    elasticIPCache,
    groupCache,
  });
  mgr
    .addController({ name: 'quota', concurrency: 2 }, quotaCache, quotaReconciler)
    .watches(instanceCache, (i) => quotaReconciler.quotasOf(i))
    .watches(elasticIPCache, (e) => quotaReconciler.quotasOf(e))
    // a Group starting or stopping to reference a Quota changes what it counts
    .watches(groupCache, () => quotaCache.keys());

  mgr
    .addController({ name: 'user', concurrency: 1 }, userCache, new UserReconciler({ users: mgr.resource<User>(Resources.users), userCache, groupCache }))
    // a member added or removed: any user may be affected, and Groups are few
    .watches(groupCache, () => userCache.keys());

  const groupReconciler = new GroupReconciler({ groups: mgr.resource<Group>(Resources.groups), groupCache, userCache, quotaCache });
  mgr
    .addController({ name: 'group', concurrency: 1 }, groupCache, groupReconciler)
    .watches(userCache, (u) => groupReconciler.groupsListing(u))
    .watches(quotaCache, (q) => groupReconciler.groupsReferencing(q));
}

/**
 * ElasticIPs: allocated from AddressPools, routed to their Instance's node. Re-checked when
 * their Instance changes (address, node, deletion), when a pool changes (an address freed:
 * waiting ElasticIPs try again) and when a node's elastic IP settings change.
 */
function registerElasticIPController(
  mgr: Manager,
  d: { instances: ResourceClient<Instance>; instanceCache: Informer<Instance>; nodeCache: Informer<ComputeNode>; connections: NodeConnections; pollIntervalMs?: number; poolRepairMs?: number },
): void {
  const elasticIPCache = mgr.informer<ElasticIP>(Resources.elasticIPs);
  const poolCache = mgr.informer<AddressPool>(Resources.addressPools);
  elasticIPCache.addIndex(Indexes.elasticIPsByInstance, (e) => {
    const ns = e.metadata?.namespace ?? '';
    return [...new Set([e.spec?.instanceRef?.name, e.status?.boundTo].filter((n): n is string => !!n))].map((n) => `${ns}/${n}`);
  });
  const nodeSettingsChanged = nodeStateChanges((n) => `${JSON.stringify(n.spec.elasticIP ?? null)}/${JSON.stringify(n.metadata?.labels ?? {})}/${n.metadata?.deletionTimestamp ?? ''}`);
  mgr
    .addController(
      { name: 'elasticip', concurrency: 4 },
      elasticIPCache,
      new ElasticIPReconciler({
        elasticIPs: mgr.resource<ElasticIP>(Resources.elasticIPs),
        elasticIPCache,
        pools: mgr.resource<AddressPool>(Resources.addressPools),
        poolCache,
        instances: d.instances,
        instanceCache: d.instanceCache,
        nodeCache: d.nodeCache,
        connections: d.connections,
        recorder: mgr.eventRecorder<ElasticIPEventReason>('elasticip-controller'),
        ...(d.pollIntervalMs !== undefined ? { pollIntervalMs: d.pollIntervalMs } : {}),
      }),
    )
    .watches(d.instanceCache, (i) => elasticIPCache.byIndex(Indexes.elasticIPsByInstance, objectKey(i)).map((e) => objectKey(e)))
    .watches(poolCache, () => elasticIPCache.list().filter((e) => !e.status?.address).map((e) => objectKey(e)))
    .watches(d.nodeCache, (n) => (nodeSettingsChanged(n) ? elasticIPCache.keys() : []));
  mgr.addController(
    { name: 'addresspool', concurrency: 1 },
    poolCache,
    new AddressPoolReconciler({
      pools: mgr.resource<AddressPool>(Resources.addressPools),
      poolCache,
      elasticIPs: mgr.resource<ElasticIP>(Resources.elasticIPs),
      recorder: mgr.eventRecorder<AddressPoolEventReason>('addresspool-controller'),
      ...(d.poolRepairMs !== undefined ? { repairIntervalMs: d.poolRepairMs } : {}),
    }),
  );
}
