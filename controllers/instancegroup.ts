/**
 * InstanceGroupReconciler: keeps `spec.replicas` Instances of the group's template, and
 * replaces them when the template changes — a ReplicaSet and a Deployment in one.
 *
 * - Owned Instances are those whose controller ownerReference is the group's uid. Each is
 *   named `GROUP-HASH-RANDOM` and labelled `stratus.dev/template-hash: HASH` (the first 10 hex
 *   digits of the SHA-256 of the canonical template), so "current" and "old" Instances are
 *   told apart by the label alone. Deleting the group deletes them through the API server's
 *   garbage collector; `kubectl delete --cascade=orphan` leaves them.
 * - Scaling down picks victims in a documented order: Instances that are not Ready first,
 *   then the newest (creationTimestamp, then name, descending); during a rollout old
 *   Instances go before current ones.
 * - RollingUpdate: at most `replicas + maxSurge` Instances exist and at least
 *   `replicas - maxUnavailable` are available (Ready for `minReadySeconds`); old Instances
 *   are deleted only as far as the available ones allow (kube's Deployment arithmetic).
 *   Recreate deletes every old Instance and waits for them to be gone before creating.
 * - A current Instance that failed (`state: failed`, or `Synced=False`: its provider refused
 *   it) or a create the API refused (schema, quota) halts the rollout: no more Instances of
 *   the template are made, old available ones stay, and `Progressing=False` names the
 *   reason (`InstanceFailed`, `FailedCreate`). Fixing the template starts a new rollout.
 *
 * Creates and deletes are remembered until the informer has seen them (kube's
 * "expectations"), so a reconcile running on a cache that lags never acts twice.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Instance, InstanceGroup } from '../crds/types.js';
import { canonicalJson } from '../apiserver/apply/fieldpath.js';
import { ApiError, objectKey, type ResourceClient } from '../runtime/client.js';
import type { Informer } from '../runtime/informer.js';
import type { ReconcileResult, Reconciler } from '../runtime/controller.js';
import { getCondition, type ConditionInput } from '../runtime/conditions.js';
import type { EventRecorder } from '../runtime/events.js';
import { reportStatus } from '../runtime/status.js';
import { Resources } from './resources.js';

export const TEMPLATE_HASH_LABEL = 'stratus.dev/template-hash';
export const GROUP_LABEL = 'stratus.dev/instance-group';
/** Informer index: Instances by the uid of their controlling InstanceGroup. */
export const INSTANCES_BY_GROUP = 'instanceGroup';

export type InstanceGroupEventReason = 'SuccessfulCreate' | 'SuccessfulDelete' | 'FailedCreate' | 'RolloutHalted' | 'InvalidSpec';

export interface InstanceGroupReconcilerDeps {
  groups: ResourceClient<InstanceGroup>;
  instances: ResourceClient<Instance>;
  groupCache: Informer<InstanceGroup>;
  instanceCache: Informer<Instance>;
  recorder: EventRecorder<InstanceGroupEventReason>;
}

/** The uid of the InstanceGroup controlling `i`, if any (for the informer index). */
export function controllingGroup(i: Instance): string[] {
  const ref = (i.metadata?.ownerReferences ?? []).find((r) => r.controller && r.kind === Resources.instanceGroups.kind);
  return ref ? [ref.uid] : [];
}

/** `namespace/name` of the InstanceGroup controlling `i` (for watches). */
export function groupKeyOf(i: Instance): string[] {
  const ref = (i.metadata?.ownerReferences ?? []).find((r) => r.controller && r.kind === Resources.instanceGroups.kind);
  return ref ? [`${i.metadata?.namespace}/${ref.name}`] : [];
}

export function templateHash(template: InstanceGroup['spec']['template']): string {
  return createHash('sha256').update(canonicalJson(template)).digest('hex').slice(0, 10);
}

/** A rolling update's `maxSurge`/`maxUnavailable`: a number, or a percentage of `replicas` (surge rounds up, unavailable down). */
export function resolveIntOrPercent(v: number | string | undefined, replicas: number, fallback: number, roundUp: boolean): number {
  if (v === undefined) return fallback;
  if (typeof v === 'number') return v;
  const m = /^(\d+)%$/.exec(v);
  if (!m) throw new Error(`"${v}" is neither a number nor a percentage`);
  const exact = (Number(m[1]) * replicas) / 100;
  return roundUp ? Math.ceil(exact) : Math.floor(exact);
}

export function isReady(i: Instance): boolean {
  return getCondition(i.status?.conditions, 'Ready')?.status === 'True';
}

/** Ready for at least `minReadySeconds`; or how many ms are left until it will be (a number). */
function availability(i: Instance, minReadySeconds: number, now: number): true | number | false {
  const ready = getCondition(i.status?.conditions, 'Ready');
  if (ready?.status !== 'True') return false;
  if (minReadySeconds <= 0) return true;
  const since = Date.parse(ready.lastTransitionTime ?? '');
  const left = (Number.isNaN(since) ? now : since) + minReadySeconds * 1000 - now;
  return left <= 0 ? true : left;
}

/** Why a current Instance stops a rollout, or undefined when it does not. */
function failure(i: Instance): string | undefined {
  if (i.status?.state === 'failed') return `Instance "${i.metadata?.name}" failed: ${i.status.message ?? ''}`.trim();
  const synced = getCondition(i.status?.conditions, 'Synced');
  if (synced?.status === 'False') return `Instance "${i.metadata?.name}": ${synced.reason}: ${synced.message ?? ''}`.trim();
  return undefined;
}

/** Scale-down victims, the first to go first: not Ready before Ready, then newest before oldest. */
export function victimOrder(a: Instance, b: Instance): number {
  const ra = isReady(a) ? 1 : 0;
  const rb = isReady(b) ? 1 : 0;
  if (ra !== rb) return ra - rb;
  const ta = a.metadata?.creationTimestamp ?? '';
  const tb = b.metadata?.creationTimestamp ?? '';
  if (ta !== tb) return ta < tb ? 1 : -1;
  return (b.metadata?.name ?? '') < (a.metadata?.name ?? '') ? -1 : 1;
}

interface Expectations {
  creates: Set<string>;
  deletes: Set<string>;
  until: number;
}

const EXPECTATION_TTL_MS = 30_000;

export class InstanceGroupReconciler implements Reconciler {
  private readonly expectations = new Map<string, Expectations>();

  constructor(private readonly d: InstanceGroupReconcilerDeps) {}

  async reconcile(key: string): Promise<ReconcileResult | void> {
    const group = this.d.groupCache.get(key);
    if (!group || group.metadata?.deletionTimestamp) {
      this.expectations.delete(key);
      return;
    }
    const now = Date.now();
    const all = this.d.instanceCache.byIndex(INSTANCES_BY_GROUP, group.metadata?.uid ?? '');
    if (!this.satisfied(key, all, now)) return { requeueAfterMs: 250 };

    const spec = group.spec;
    const replicas = spec.replicas ?? 1;
    const minReady = spec.minReadySeconds ?? 0;
    const matchLabels = spec.selector.matchLabels;
    const templateLabels = spec.template.metadata?.labels ?? {};
    const selector = Object.entries(matchLabels)
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    const hash = templateHash(spec.template);

    let surge = 1;
    let unavailable = 0;
    let invalid: string | undefined;
    try {
      surge = resolveIntOrPercent(spec.strategy?.rollingUpdate?.maxSurge, replicas, 1, true);
      unavailable = resolveIntOrPercent(spec.strategy?.rollingUpdate?.maxUnavailable, replicas, 0, false);
      if (spec.strategy?.type !== 'Recreate' && surge === 0 && unavailable === 0) invalid = 'spec.strategy.rollingUpdate: maxSurge and maxUnavailable may not both be 0';
    } catch (err) {
      invalid = `spec.strategy.rollingUpdate: ${(err as Error).message}`;
    }
    const mismatch = Object.entries(matchLabels).filter(([k, v]) => templateLabels[k] !== v);
    if (mismatch.length > 0) invalid = `spec.template.metadata.labels must carry spec.selector.matchLabels (missing ${mismatch.map(([k, v]) => `${k}=${v}`).join(', ')})`;

    const live = all.filter((i) => !i.metadata?.deletionTimestamp);
    const current = live.filter((i) => i.metadata?.labels?.[TEMPLATE_HASH_LABEL] === hash);
    const old = live.filter((i) => i.metadata?.labels?.[TEMPLATE_HASH_LABEL] !== hash);
    const oldTerminating = all.filter((i) => i.metadata?.deletionTimestamp && i.metadata.labels?.[TEMPLATE_HASH_LABEL] !== hash);
    const isAvailable = (i: Instance): boolean => availability(i, minReady, now) === true;
    const halted = current.map(failure).find((m) => m !== undefined);

    let createFailure: string | undefined;
    if (!invalid) {
      const create = async (n: number): Promise<void> => {
        for (let k = 0; k < n && !createFailure; k++) createFailure = await this.createInstance(group, hash);
      };
      // Recreate makes new Instances only once the old ones are gone, not just deleting.
      const waitForOld = spec.strategy?.type === 'Recreate' && oldTerminating.length > 0;
      if (old.length === 0) {
        if (current.length < replicas && !halted && !waitForOld) await create(replicas - current.length);
        else if (current.length > replicas) await this.deleteInstances(group, [...current].sort(victimOrder).slice(0, current.length - replicas));
      } else if (spec.strategy?.type === 'Recreate') {
        await this.deleteInstances(group, old);
      } else {
        const total = live.length;
        if (!halted) await create(Math.min(replicas - current.length, replicas + surge - total));
        const currentUnavailable = current.filter((i) => !isAvailable(i)).length;
        const scaleDown = total - (replicas - unavailable) - currentUnavailable;
        if (scaleDown > 0) await this.deleteInstances(group, [...old].sort(victimOrder).slice(0, scaleDown));
        if (current.length > replicas) await this.deleteInstances(group, [...current].sort(victimOrder).slice(0, current.length - replicas));
      }
    }

    // Status from what the cache held at the start (the writes above show in the next reconcile).
    const ready = live.filter(isReady).length;
    const available = live.filter(isAvailable).length;
    const complete = !invalid && old.length === 0 && oldTerminating.length === 0 && current.length === replicas && current.every(isAvailable);
    const stop = invalid ? { reason: 'InvalidSpec', message: invalid } : createFailure ? { reason: 'FailedCreate', message: createFailure } : halted ? { reason: 'InstanceFailed', message: halted } : undefined;
    if (stop && stop.reason !== 'FailedCreate') {
      const prev = getCondition(group.status?.conditions, 'Progressing');
      if (prev?.reason !== stop.reason || prev.status !== 'False') this.d.recorder.warning(group, stop.reason === 'InvalidSpec' ? 'InvalidSpec' : 'RolloutHalted', stop.message);
    }
    const rolling = old.length > 0 || oldTerminating.length > 0;
    const progressing: ConditionInput = stop
      ? { type: 'Progressing', status: 'False', reason: stop.reason, message: stop.message }
      : complete
        ? { type: 'Progressing', status: 'True', reason: 'NewInstancesAvailable', message: `${replicas} Instance(s) of template ${hash} available` }
        : { type: 'Progressing', status: 'True', reason: rolling ? 'RollingUpdate' : 'Scaling', message: `${current.filter(isAvailable).length}/${replicas} Instance(s) of template ${hash} available${rolling ? `, ${old.length} old left` : ''}` };
    const minAvailable = spec.strategy?.type === 'Recreate' ? replicas : replicas - unavailable;
    const conditions: ConditionInput[] = [
      progressing,
      available >= minAvailable
        ? { type: 'Available', status: 'True', reason: 'MinimumInstancesAvailable', message: `${available} available, at least ${minAvailable} wanted` }
        : { type: 'Available', status: 'False', reason: 'MinimumInstancesUnavailable', message: `${available} available, at least ${minAvailable} wanted` },
      complete ? { type: 'Ready', status: 'True', reason: 'AllInstancesAvailable', message: '' } : { type: 'Ready', status: 'False', reason: progressing.reason, message: progressing.message ?? '' },
      { type: 'Synced', status: 'True', reason: 'ReconcileSuccess', message: '' },
    ];
    await reportStatus(this.d.groups, group, conditions, (st: NonNullable<InstanceGroup['status']>) => {
      st.replicas = live.length;
      st.readyReplicas = ready;
      st.availableReplicas = available;
      st.updatedReplicas = current.length;
      st.selector = selector;
      st.templateHash = hash;
    });
    // Instances Ready but not yet for minReadySeconds become available by the clock alone.
    const waits = live.map((i) => availability(i, minReady, now)).filter((a): a is number => typeof a === 'number');
    if (waits.length > 0) return { requeueAfterMs: Math.min(...waits) + 50 };
    return undefined;
  }

  /** True when the cache shows every create and delete this controller made for `key`. */
  private satisfied(key: string, all: Instance[], now: number): boolean {
    const e = this.expectations.get(key);
    if (!e) return true;
    const names = new Set(all.map((i) => i.metadata?.name ?? ''));
    for (const n of e.creates) if (names.has(n)) e.creates.delete(n);
    for (const uid of e.deletes) {
      const i = all.find((x) => x.metadata?.uid === uid);
      if (!i || i.metadata?.deletionTimestamp) e.deletes.delete(uid);
    }
    if ((e.creates.size === 0 && e.deletes.size === 0) || now > e.until) {
      this.expectations.delete(key);
      return true;
    }
    return false;
  }

  private expect(group: InstanceGroup): Expectations {
    const key = objectKey(group);
    let e = this.expectations.get(key);
    if (!e) {
      e = { creates: new Set(), deletes: new Set(), until: 0 };
      this.expectations.set(key, e);
    }
    e.until = Date.now() + EXPECTATION_TTL_MS;
    return e;
  }

  /** Creates one Instance of the template; resolves to why the API refused it (4xx), if it did. */
  private async createInstance(group: InstanceGroup, hash: string): Promise<string | undefined> {
    const m = group.metadata ?? {};
    const name = `${m.name}-${hash}-${randomBytes(4).readUInt32BE(0).toString(36).padStart(7, '0').slice(-5)}`;
    const tmpl = group.spec.template;
    const instance: Instance = {
      apiVersion: `${Resources.instances.group}/${Resources.instances.version}`,
      kind: 'Instance',
      metadata: {
        name,
        namespace: m.namespace ?? 'default',
        labels: { ...(tmpl.metadata?.labels ?? {}), [TEMPLATE_HASH_LABEL]: hash, [GROUP_LABEL]: m.name ?? '' },
        ...(tmpl.metadata?.annotations ? { annotations: { ...tmpl.metadata.annotations } as Record<string, string> } : {}),
        ownerReferences: [
          {
            apiVersion: `${Resources.instanceGroups.group}/${Resources.instanceGroups.version}`,
            kind: Resources.instanceGroups.kind,
            name: m.name ?? '',
            uid: m.uid ?? '',
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      spec: structuredClone(tmpl.spec) as unknown as Instance['spec'],
    };
    const e = this.expect(group);
    e.creates.add(name);
    try {
      await this.d.instances.create(instance);
    } catch (err) {
      e.creates.delete(name);
      if (err instanceof ApiError && err.code >= 400 && err.code < 500 && err.code !== 409 && err.code !== 429) {
        const prev = getCondition(group.status?.conditions, 'Progressing');
        if (prev?.reason !== 'FailedCreate') this.d.recorder.warning(group, 'FailedCreate', `cannot create an Instance of template ${hash}: ${err.message}`);
        return `cannot create an Instance of template ${hash}: ${err.message}`;
      }
      throw err;
    }
    this.d.recorder.normal(group, 'SuccessfulCreate', `Created Instance ${name}`);
    return undefined;
  }

  private async deleteInstances(group: InstanceGroup, victims: Instance[]): Promise<void> {
    if (victims.length === 0) return;
    const e = this.expect(group);
    for (const v of victims) {
      e.deletes.add(v.metadata?.uid ?? '');
      await this.d.instances.delete(v.metadata?.namespace, v.metadata?.name ?? '', { preconditions: { uid: v.metadata?.uid ?? '' } });
      this.d.recorder.normal(group, 'SuccessfulDelete', `Deleted Instance ${v.metadata?.name}`);
    }
  }
}
