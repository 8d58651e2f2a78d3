/**
 * Status conditions in the Kubernetes shape (`metav1.Condition`). One helper, used by every
 * controller: `lastTransitionTime` moves only when `status` changes, so `kubectl wait` and
 * Argo CD see real transitions, and a reconcile that changes nothing writes nothing.
 */

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  /** RFC 3339, second precision (as `metav1.Time`). */
  lastTransitionTime: string;
  observedGeneration?: number;
}

/** The condition types every stratus kind reports (DESIGN.md). */
export const ConditionTypes = {
  /** The object is usable; what `kubectl wait --for=condition=Ready` and Argo CD read. */
  Ready: 'Ready',
  /** The last reconcile reached the external system (reason + provider error when not). */
  Synced: 'Synced',
} as const;

export interface ConditionInput {
  type: string;
  status: ConditionStatus;
  reason: string;
  message?: string;
}

/** `metav1.Time` format: RFC 3339 without fractional seconds. */
export function kubeTime(d: Date = new Date()): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * Returns a new list with `c` set: an existing condition of the same type is replaced in
 * place (keeping its `lastTransitionTime` when `status` is unchanged), a new one appended.
 * The input array is not modified.
 */
export function setCondition(
  conditions: Condition[] | undefined,
  c: ConditionInput,
  observedGeneration: number,
  now: Date = new Date(),
): Condition[] {
  const list = conditions ? [...conditions] : [];
  const i = list.findIndex((x) => x.type === c.type);
  const prev = i >= 0 ? list[i] : undefined;
  const next: Condition = {
    type: c.type,
    status: c.status,
    reason: c.reason,
    message: c.message ?? '',
    lastTransitionTime: prev && prev.status === c.status ? prev.lastTransitionTime : kubeTime(now),
    observedGeneration,
  };
  if (i >= 0) list[i] = next;
  else list.push(next);
  return list;
}

export function getCondition(conditions: Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export function isTrue(conditions: Condition[] | undefined, type: string): boolean {
  return getCondition(conditions, type)?.status === 'True';
}

export function isFalse(conditions: Condition[] | undefined, type: string): boolean {
  return getCondition(conditions, type)?.status === 'False';
}

/** Returns a new list without the condition `type`. */
export function removeCondition(conditions: Condition[] | undefined, type: string): Condition[] {
  return (conditions ?? []).filter((c) => c.type !== type);
}
