/**
 * What an object costs against a Quota, and the bookkeeping of `Quota.status`. One
 * definition shared by the admission plugin (which charges before a write) and the quota
 * controller (which recomputes from the stored objects), so both count the same way.
 *
 * Counted kinds: Instances (`instances` 1 each, `cpus`, `memoryMiB`, `diskGiB` = the sum of
 * `spec.disks[].sizeGiB`) and ElasticIPs (`elasticIPs` 1 each). Anything else costs nothing.
 */
import type { Quota } from '../../crds/types.js';

export const QUOTA_RESOURCES = ['instances', 'cpus', 'memoryMiB', 'diskGiB', 'elasticIPs'] as const;
export type QuotaResource = (typeof QUOTA_RESOURCES)[number];
export type Usage = Partial<Record<QuotaResource, number>>;

export type QuotaStatus = NonNullable<Quota['status']>;
export type PendingCharge = NonNullable<QuotaStatus['pending']>[number];

/** `compute.stratus.dev` plural → the kind counted. */
export const COUNTED_PLURALS: Readonly<Record<string, 'Instance' | 'ElasticIP'>> = { instances: 'Instance', elasticips: 'ElasticIP' };
export const COUNTED_GROUP = 'compute.stratus.dev';

/**
 * The group quotas (`namespace/name`) an object was charged to when it was created, set by
 * admission and kept by it on every update: the quota controller counts the object against
 * exactly these, so later membership changes do not move existing objects.
 */
export const CHARGED_QUOTAS_ANNOTATION = 'iam.stratus.dev/charged-quotas';

/** How long an admitted charge whose object never appeared still counts (a write that failed). */
export const PENDING_TTL_MS = 5_000;

interface Counted {
  spec?: { cpus?: number; memoryMiB?: number; disks?: readonly { sizeGiB?: number }[] };
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0);

/** What one object of `kind` costs (defaults already applied by the server). */
export function usageOf(kind: string, obj: unknown): Usage {
  if (kind === 'ElasticIP') return { elasticIPs: 1 };
  if (kind !== 'Instance') return {};
  const spec = (obj as Counted | undefined)?.spec ?? {};
  const disk = (spec.disks ?? []).reduce((sum, d) => sum + num(d?.sizeGiB), 0);
  return { instances: 1, cpus: num(spec.cpus), memoryMiB: num(spec.memoryMiB), diskGiB: disk };
}

export function addUsage(a: Usage, b: Usage, sign = 1): Usage {
  const out: Usage = { ...a };
  for (const r of QUOTA_RESOURCES) {
    const v = (a[r] ?? 0) + sign * (b[r] ?? 0);
    if (v !== 0 || a[r] !== undefined || b[r] !== undefined) out[r] = v;
  }
  return out;
}

/** The increases of `next` over `prev` (decreases are the controller's to release). */
export function increase(prev: Usage, next: Usage): Usage {
  const out: Usage = {};
  for (const r of QUOTA_RESOURCES) {
    const d = (next[r] ?? 0) - (prev[r] ?? 0);
    if (d > 0) out[r] = d;
  }
  return out;
}

export function isZero(u: Usage): boolean {
  return QUOTA_RESOURCES.every((r) => !u[r]);
}

/** Every resource present with a non-negative value (status.used's shape). */
export function normalized(u: Usage): Usage {
  const out: Usage = {};
  for (const r of QUOTA_RESOURCES) out[r] = Math.max(0, u[r] ?? 0);
  return out;
}

/** The resources where `used + requested` would pass a hard limit. */
export function exceeded(hard: Usage, used: Usage, requested: Usage): QuotaResource[] {
  return QUOTA_RESOURCES.filter((r) => hard[r] !== undefined && (requested[r] ?? 0) > 0 && (used[r] ?? 0) + (requested[r] ?? 0) > hard[r]!);
}

/** kube's refusal text: `exceeded quota: team-a, requested: cpus=4, used: cpus=14, limited: cpus=16`. */
export function exceededMessage(quota: string, over: readonly QuotaResource[], hard: Usage, used: Usage, requested: Usage): string {
  const list = (u: Usage): string => over.map((r) => `${r}=${u[r] ?? 0}`).join(',');
  return `exceeded quota: ${quota}, requested: ${list(requested)}, used: ${list(used)}, limited: ${list(hard)}`;
}

/** The `namespace/name` keys of an object's charged-quotas annotation. */
export function chargedQuotas(annotations: Record<string, string> | undefined): string[] {
  const v = annotations?.[CHARGED_QUOTAS_ANNOTATION];
  return v ? v.split(',').map((s) => s.trim()).filter((s) => s !== '') : [];
}
