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

/**
 * A condition as read from an object whose schema marks only `type` and `status` required
 * (the generated CRD types): the helpers accept it and always write complete ones.
 */
export type ConditionLike = Pick<Condition, 'type' | 'status'> & Partial<Omit<Condition, 'type' | 'status'>>;

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

const MAX_MESSAGE = 32_768;

function truncateMessage(m: string): string {
  return m.length > MAX_MESSAGE ? m.slice(0, MAX_MESSAGE - 3) + '...' : m;
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
export function setCondition<C extends ConditionLike>(
  conditions: readonly C[] | undefined,
  c: ConditionInput,
  observedGeneration: number,
  now: Date = new Date(),
): Array<C | Condition> {
  const list: Array<C | Condition> = conditions ? [...conditions] : [];
  const i = list.findIndex((x) => x.type === c.type);
  const prev = i >= 0 ? list[i] : undefined;
  const next: Condition = {
    type: c.type,
    status: c.status,
    reason: c.reason,
    // The CRDs bound condition messages at 32 KiB; a longer provider error must not make the status write fail.
    message: truncateMessage(c.message ?? ''),
    lastTransitionTime: prev && prev.status === c.status && prev.lastTransitionTime ? prev.lastTransitionTime : kubeTime(now),
    observedGeneration,
  };
  if (i >= 0) list[i] = next;
  else list.push(next);
  return list;
}

export function getCondition<C extends ConditionLike>(conditions: readonly C[] | undefined, type: string): C | undefined {
  return conditions?.find((c) => c.type === type);
}

export function isTrue(conditions: readonly ConditionLike[] | undefined, type: string): boolean {
  return getCondition(conditions, type)?.status === 'True';
}

export function isFalse(conditions: readonly ConditionLike[] | undefined, type: string): boolean {
  return getCondition(conditions, type)?.status === 'False';
}

/** Returns a new list without the condition `type`. */
export function removeCondition<C extends ConditionLike>(conditions: readonly C[] | undefined, type: string): C[] {
  return (conditions ?? []).filter((c) => c.type !== type);
}
