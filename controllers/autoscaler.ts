/**
 * InstanceGroupAutoscaler: `spec.autoscaling` of an InstanceGroup, the HorizontalPodAutoscaler's
 * algorithm over Instances of any provider with the `cpuUsage` capability.
 *
 * Every `syncPeriodSeconds` it samples the cumulative CPU seconds of each Ready Instance of
 * the group through its provider, and takes utilisation as the rate between two samples
 * divided by the Instance's `cpus` (an Instance needs two samples, so a new one counts from
 * its second period on). Then, as the HPA:
 * - recommendation = ceil(measured × average / target), or the current replicas when the
 *   ratio is within 10 % of 1, clamped to [minReplicas, maxReplicas];
 * - recommendations are kept for the longer stabilisation window (seeded with the replicas
 *   the group had when the autoscaler first saw it); a scale up goes to the
 *   lowest recommendation of `scaleUpStabilizationSeconds`, a scale down to the highest of
 *   `scaleDownStabilizationSeconds` (so a short dip does not remove Instances);
 * - a change is written to `spec.replicas` (what `kubectl scale` writes), with an event
 *   and `status.autoscaling` (current/desired replicas, utilisation, last scale time and
 *   reason).
 * Samples and recommendations live in memory, as the HPA's do: after a restart the windows
 * start empty, which can only delay a scale down.
 */
import type { ComputeNode, Instance, InstanceGroup } from '../crds/types.js';
import { objectKey, type ResourceClient } from '../runtime/client.js';
import type { Informer } from '../runtime/informer.js';
import type { ReconcileContext, ReconcileResult, Reconciler } from '../runtime/controller.js';
import type { EventRecorder } from '../runtime/events.js';
import { kubeTime } from '../runtime/conditions.js';
import { updateStatus } from '../runtime/status.js';
import { log } from '../runtime/log.js';
import type { NodeConnections } from './connections.js';
import { INSTANCES_BY_GROUP, isReady } from './instancegroup.js';

export type AutoscalerEventReason = 'ScaledUp' | 'ScaledDown' | 'FailedGetCPU';

export interface AutoscalerDeps {
  groups: ResourceClient<InstanceGroup>;
  groupCache: Informer<InstanceGroup>;
  instanceCache: Informer<Instance>;
  nodeCache: Informer<ComputeNode>;
  connections: NodeConnections;
  recorder: EventRecorder<AutoscalerEventReason>;
}

const TOLERANCE = 0.1;

interface Sample {
  cpuSeconds: number;
  at: number;
}

interface Recommendation {
  at: number;
  replicas: number;
}

/** The HPA's replica count for `measured` Instances at `average` % against `target` %. */
export function recommend(current: number, measured: number, average: number, target: number): number {
  const ratio = average / target;
  if (Math.abs(ratio - 1) <= TOLERANCE) return current;
  return Math.ceil(measured * ratio);
}

/** The stabilised replicas: up to the window's lowest recommendation, down to its highest. */
export function stabilise(current: number, history: Recommendation[], now: number, upWindowS: number, downWindowS: number): number {
  const inUp = history.filter((r) => r.at >= now - upWindowS * 1000).map((r) => r.replicas);
  const inDown = history.filter((r) => r.at >= now - downWindowS * 1000).map((r) => r.replicas);
  const up = inUp.length ? Math.min(...inUp) : current;
  const down = inDown.length ? Math.max(...inDown) : current;
  if (current < up) return up;
  if (current > down) return down;
  return current;
}

export class InstanceGroupAutoscaler implements Reconciler {
  private readonly samples = new Map<string, Sample>();
  private readonly history = new Map<string, Recommendation[]>();
  /** When each group was last sampled: changes of the group (its own status writes) do not sample early. */
  private readonly lastRun = new Map<string, number>();

  constructor(private readonly d: AutoscalerDeps) {}

  async reconcile(key: string, ctx: ReconcileContext): Promise<ReconcileResult | void> {
    const group = this.d.groupCache.get(key);
    const a = group?.spec.autoscaling;
    if (!group || group.metadata?.deletionTimestamp || !a) {
      this.history.delete(key);
      this.lastRun.delete(key);
      return;
    }
    const periodMs = (a.syncPeriodSeconds ?? 15) * 1000;
    const since = Date.now() - (this.lastRun.get(key) ?? 0);
    if (since < periodMs) return { requeueAfterMs: periodMs - since };
    this.lastRun.set(key, Date.now());
    const min = a.minReplicas ?? 1;
    const max = Math.max(a.maxReplicas, min);
    const target = a.targetCPUUtilizationPercentage;
    const current = group.spec.replicas ?? 1;
    const now = Date.now();

    const members = this.d.instanceCache.byIndex(INSTANCES_BY_GROUP, group.metadata?.uid ?? '').filter((i) => !i.metadata?.deletionTimestamp && isReady(i));
    const utilisations: number[] = [];
    for (const i of members) {
      const u = await this.utilisation(group, i, now, ctx.signal);
      if (u !== undefined) utilisations.push(u);
    }
    const measured = utilisations.length;
    const average = measured ? utilisations.reduce((x, y) => x + y, 0) / measured : undefined;

    const raw = average === undefined ? current : recommend(current, measured, average, target);
    const bounded = Math.min(max, Math.max(min, raw));
    // Seeded with the current replicas, as the HPA does: a scale down waits a whole window from the first look.
    const history = (this.history.get(key) ?? [{ at: now, replicas: current }]).filter((r) => r.at >= now - Math.max(a.scaleUpStabilizationSeconds ?? 0, a.scaleDownStabilizationSeconds ?? 300) * 1000);
    history.push({ at: now, replicas: bounded });
    this.history.set(key, history);
    const desired = Math.min(max, Math.max(min, stabilise(current, history, now, a.scaleUpStabilizationSeconds ?? 0, a.scaleDownStabilizationSeconds ?? 300)));

    let reason: string | undefined;
    if (desired !== current) {
      reason =
        average === undefined
          ? `replicas ${current} outside [${min}, ${max}]: ${current} → ${desired}`
          : `average CPU ${Math.round(average)}% of ${measured} Instance(s), target ${target}%: ${current} → ${desired}`;
      await this.d.groups.mergePatch(group.metadata?.namespace, group.metadata?.name ?? '', { spec: { replicas: desired } });
      this.d.recorder.normal(group, desired > current ? 'ScaledUp' : 'ScaledDown', reason);
      ctx.log.info({ group: key, from: current, to: desired }, reason);
    }
    await updateStatus(this.d.groups, group.metadata?.namespace, group.metadata?.name ?? '', (fresh) => {
      if (fresh.metadata?.uid !== group.metadata?.uid) return false;
      const prev = fresh.status?.autoscaling;
      fresh.status = {
        ...(fresh.status ?? {}),
        autoscaling: {
          currentReplicas: current,
          desiredReplicas: desired,
          measuredInstances: measured,
          ...(average !== undefined ? { currentCPUUtilizationPercentage: Math.round(average) } : {}),
          ...(reason ? { lastScaleTime: kubeTime(), lastScaleReason: reason } : prev?.lastScaleTime ? { lastScaleTime: prev.lastScaleTime, lastScaleReason: prev.lastScaleReason ?? '' } : {}),
        },
      };
      return undefined;
    });
    return { requeueAfterMs: periodMs };
  }

  /** Percent of its cpus Instance `i` used since its previous sample; undefined on its first sample or without a reading. */
  private async utilisation(group: InstanceGroup, i: Instance, now: number, signal: AbortSignal): Promise<number | undefined> {
    const uid = i.metadata?.uid ?? '';
    const node = i.spec.nodeName ? this.d.nodeCache.get(i.spec.nodeName) : undefined;
    if (!node) return undefined;
    const cap = this.d.connections.providers.find(node.spec.provider)?.capabilities.cpuUsage;
    if (!cap) return undefined;
    let cpu: number | undefined;
    try {
      cpu = await cap.cpuSeconds(await this.d.connections.get(node), uid, signal);
    } catch (err) {
      this.d.recorder.warning(group, 'FailedGetCPU', `cannot read the CPU use of Instance "${i.metadata?.name}": ${err instanceof Error ? err.message : String(err)}`);
      log.debug({ instance: objectKey(i), err: String(err) }, 'cannot read CPU use');
      return undefined;
    }
    if (cpu === undefined) return undefined;
    const prev = this.samples.get(uid);
    this.samples.set(uid, { cpuSeconds: cpu, at: now });
    this.forgetGone();
    if (!prev || cpu < prev.cpuSeconds || now <= prev.at) return undefined;
    return ((cpu - prev.cpuSeconds) / ((now - prev.at) / 1000) / (i.spec.cpus ?? 1)) * 100;
  }

  /** Drops samples of Instances no longer in the cache. */
  private forgetGone(): void {
    if (this.samples.size < 256) return;
    for (const uid of this.samples.keys()) {
      if (!this.d.instanceCache.list().some((i) => i.metadata?.uid === uid)) this.samples.delete(uid);
    }
  }
}
