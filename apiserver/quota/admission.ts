/**
 * Quota admission: a create or resize of an Instance or ElasticIP that would pass a Quota's
 * hard limit is refused with 403 and kube's message; one that fits is charged to the
 * Quota's `status.used` with a compare-and-swap on the Quota before the object is written,
 * as kube's ResourceQuota admission does — so concurrent requests, on one server or on
 * several sharing an etcd, cannot together pass a limit.
 *
 * Which Quotas apply (see crds/quotas.iam.stratus.dev.yaml):
 * - namespace quotas: every Quota of the object's namespace that no Group references;
 * - group quotas: on create, the Quotas referenced (`spec.quotaRef`) by the Groups the
 *   requester belongs to (`UserInfo.groups`); the object is stamped with them
 *   (`iam.stratus.dev/charged-quotas`) and keeps exactly that stamp on every update, so a
 *   resize is charged to the same group quotas and the controller knows what to count.
 *
 * Each charge is also recorded in `status.pending` (object uid + generation), so the quota
 * controller, recomputing `status.used` from the stored objects, still counts a charge
 * whose write is in flight, and releases it once the object appears or after
 * `PENDING_TTL_MS` when the write failed. Decreases (deletes, shrinking) are not charged:
 * the controller releases them when it sees the change. Dry runs are checked, never charged.
 */
import type { AdmissionAttributes, AdmissionPlugin } from '../admission.js';
import { ApiError, forbidden } from '../errors.js';
import type { Registry, Target } from '../registry.js';
import { resourceKey, storageVersion, type KubeObject, type ObjectMeta, type Resource, type ResourceCatalog } from '../resources.js';
import { ConflictError, NotFoundError } from '../storage/store.js';
import { decodeObject } from '../watchcache.js';
import { IAM_GROUP } from '../auth/membership.js';
import {
  addUsage,
  CHARGED_QUOTAS_ANNOTATION,
  chargedQuotas,
  COUNTED_GROUP,
  COUNTED_PLURALS,
  exceeded,
  exceededMessage,
  increase,
  isZero,
  normalized,
  PENDING_TTL_MS,
  usageOf,
  type PendingCharge,
  type QuotaStatus,
  type Usage,
} from './usage.js';

/** Attempts of one compare-and-swap before the request is refused with 409 (a storm of writers). */
const MAX_ATTEMPTS = 500;

interface QuotaObject extends KubeObject {
  metadata: ObjectMeta;
  spec?: { hard?: Usage };
  status?: QuotaStatus;
}

interface GroupObject extends KubeObject {
  metadata?: ObjectMeta;
  spec?: { quotaRef?: { namespace?: string; name?: string } };
}

interface Charged {
  target: Target;
  name: string;
  uid: string;
  generation: number;
  charge: Usage;
}

function nowIso(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export class QuotaAdmission implements AdmissionPlugin {
  readonly name = 'Quota';

  constructor(
    private readonly registry: Registry,
    private readonly catalog: ResourceCatalog,
  ) {}

  async admit(a: AdmissionAttributes): Promise<void> {
    if (a.resource.group !== COUNTED_GROUP || a.subresource) return;
    const kind = COUNTED_PLURALS[a.resource.plural];
    if (!kind || !a.object || !a.namespace) return;
    if (a.operation !== 'CREATE' && a.operation !== 'UPDATE') return;
    const quotaRes = this.iamResource('quotas');
    if (!quotaRes) return;
    const meta = (a.object.metadata ?? {}) as ObjectMeta;

    // The group-quota stamp is the server's: set on create, never changed by an update.
    // An update that asks for nothing more (a label, a status) reads no Group and no Quota.
    let groupQuotas: string[];
    let groupRefs: { group: string; quota: string }[] | undefined;
    if (a.operation === 'CREATE') {
      groupRefs = await this.groupQuotaRefs();
      const mine = new Set(a.user?.groups ?? []);
      groupQuotas = [...new Set(groupRefs.filter((g) => mine.has(g.group)).map((g) => g.quota))].sort();
      setChargedAnnotation(meta, groupQuotas);
    } else {
      const old = ((a.oldObject?.metadata ?? {}) as ObjectMeta).annotations;
      groupQuotas = chargedQuotas(old);
      setChargedAnnotation(meta, groupQuotas);
    }

    const request = a.operation === 'CREATE' ? usageOf(kind, a.object) : increase(usageOf(kind, a.oldObject), usageOf(kind, a.object));
    if (isZero(request)) return;

    groupRefs ??= await this.groupQuotaRefs();
    const referenced = new Set(groupRefs.map((g) => g.quota));
    const target: Target = { resource: quotaRes, version: storageVersion(quotaRes), namespace: a.namespace };
    const { items } = await this.registry.list(target);
    const applicable: { namespace: string; name: string }[] = [];
    for (const q of items) {
      const m = (q.metadata ?? {}) as ObjectMeta;
      if (m.name && !referenced.has(`${a.namespace}/${m.name}`)) applicable.push({ namespace: a.namespace, name: m.name });
    }
    for (const key of groupQuotas) {
      const [namespace = '', name = ''] = key.split('/');
      if (namespace && name) applicable.push({ namespace, name });
    }
    if (applicable.length === 0) return;

    const charged: Charged[] = [];
    try {
      for (const q of applicable) {
        const t: Target = { resource: quotaRes, version: storageVersion(quotaRes), namespace: q.namespace };
        const c = await this.charge(t, q.name, meta, request, a.dryRun);
        if (c) charged.push(c);
      }
    } catch (err) {
      // A later quota refused: give back what earlier ones were charged for this request.
      for (const c of charged) await this.release(c).catch(() => undefined);
      if (err instanceof ApiError && err.code === 403) throw forbidden(a.resource, a.name, err.message);
      throw err;
    }
  }

  /**
   * Checks `request` against one Quota and (unless a dry run) adds it to `status.used`
   * and `status.pending` with a compare-and-swap, retrying on concurrent writes. A Quota
   * that vanished meanwhile bounds nothing.
   */
  private async charge(t: Target, name: string, obj: ObjectMeta, request: Usage, dryRun: boolean): Promise<Charged | undefined> {
    const uid = obj.uid ?? '';
    const generation = obj.generation ?? 1;
    const key = resourceKey(t.resource, t.namespace, name);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const kv = await this.registry.store.get(key);
      if (!kv) return undefined;
      const quota = decodeObject(kv.value, kv.modRevision) as QuotaObject;
      const status: QuotaStatus = { ...(quota.status ?? {}) };
      // Entries past PENDING_TTL_MS mean nothing to the controller any more; dropping them
      // keeps the list bounded even when no controller runs (`used` keeps their charge).
      const fresh = Date.now() - PENDING_TTL_MS;
      const pending = (status.pending ?? []).filter((p) => Date.parse(p.time) >= fresh);
      // A retried request (a conflict in the registry's update loop) replaces its earlier charge.
      const earlier = pending.findIndex((p) => p.uid === uid && p.generation === generation);
      let used: Usage = { ...(status.used ?? {}) };
      if (earlier >= 0) {
        used = addUsage(used, pending[earlier]!.charged ?? {}, -1);
        pending.splice(earlier, 1);
      }
      const hard = quota.spec?.hard ?? {};
      const over = exceeded(hard, used, request);
      if (over.length > 0) throw new ApiError(403, 'Forbidden', exceededMessage(name, over, hard, normalized(used), request));
      if (dryRun) return undefined;
      const entry: PendingCharge = { uid, generation, time: nowIso(), charged: { ...request } };
      const next: QuotaObject = { ...quota, status: { ...status, used: normalized(addUsage(used, request)), pending: [...pending, entry] } };
      try {
        await this.registry.store.update(key, encode(next), kv.modRevision);
        return { target: t, name, uid, generation, charge: request };
      } catch (err) {
        if (err instanceof NotFoundError) return undefined;
        if (!(err instanceof ConflictError)) throw err;
        // Someone else charged first: back off a little so a storm spreads out, then re-read.
        await new Promise((r) => setTimeout(r, Math.random() * Math.min(20, attempt + 1)));
      }
    }
    throw new ApiError(409, 'Conflict', `Operation cannot be fulfilled on quota "${name}": too many concurrent changes, try again`);
  }

  /** Takes a charge back (a later quota of the same request refused). */
  private async release(c: Charged): Promise<void> {
    const key = resourceKey(c.target.resource, c.target.namespace, c.name);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const kv = await this.registry.store.get(key);
      if (!kv) return;
      const quota = decodeObject(kv.value, kv.modRevision) as QuotaObject;
      const status: QuotaStatus = { ...(quota.status ?? {}) };
      const pending = (status.pending ?? []).filter((p) => !(p.uid === c.uid && p.generation === c.generation));
      const next: QuotaObject = { ...quota, status: { ...status, used: normalized(addUsage(status.used ?? {}, c.charge, -1)), pending } };
      try {
        await this.registry.store.update(key, encode(next), kv.modRevision);
        return;
      } catch (err) {
        if (err instanceof NotFoundError) return;
        if (!(err instanceof ConflictError)) throw err;
      }
    }
  }

  /** Every Group's quota reference, as `group` → `namespace/name`. */
  private async groupQuotaRefs(): Promise<{ group: string; quota: string }[]> {
    const groupRes = this.iamResource('groups');
    if (!groupRes) return [];
    const { items } = await this.registry.list({ resource: groupRes, version: storageVersion(groupRes) });
    const out: { group: string; quota: string }[] = [];
    for (const g of items as GroupObject[]) {
      const ref = g.spec?.quotaRef;
      if (g.metadata?.name && ref?.namespace && ref.name) out.push({ group: g.metadata.name, quota: `${ref.namespace}/${ref.name}` });
    }
    return out;
  }

  private iamResource(plural: string): Resource | undefined {
    return this.catalog.all().find((r) => r.group === IAM_GROUP && r.plural === plural);
  }
}

function setChargedAnnotation(meta: ObjectMeta, quotas: readonly string[]): void {
  const annotations = { ...(meta.annotations ?? {}) };
  if (quotas.length > 0) annotations[CHARGED_QUOTAS_ANNOTATION] = quotas.join(',');
  else delete annotations[CHARGED_QUOTAS_ANNOTATION];
  if (Object.keys(annotations).length > 0) meta.annotations = annotations;
  else delete meta.annotations;
}

/** As the registry stores objects: the resourceVersion is the store's modRevision, not data. */
function encode(obj: KubeObject): string {
  const m = { ...((obj.metadata ?? {}) as ObjectMeta) };
  delete m.resourceVersion;
  return JSON.stringify({ ...obj, metadata: m });
}
