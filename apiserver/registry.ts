/**
 * The registry: Kubernetes object semantics over the revisioned store, for any resource of
 * the catalog. It owns validation and defaulting, `generation`, `uid`, timestamps,
 * resourceVersion preconditions, finalizers, the status subresource split, managedFields and
 * dry runs. It knows nothing of HTTP beyond raising `ApiError`s.
 *
 * Objects are kept in their storage version; `decode` presents them in the version a client
 * asked for.
 */
import { randomUUID, randomInt } from 'node:crypto';
import jsonpatch from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';
import type { KeyValue, Store } from './storage/store.js';
import { ConflictError, KeyExistsError } from './storage/store.js';
import { ApiError, badRequest, conflict, forbidden, invalid, notFound, staleConflict, unsupportedMediaType, type StatusCause } from './errors.js';
import { apiErrorFrom } from './storeerrors.js';
import { strategyFor, validateObjectMeta } from './strategies/index.js';
import {
  groupVersion,
  resourceKey,
  resourceListPrefix,
  storageVersion,
  type KubeObject,
  type ObjectMeta,
  type Resource,
  type ResourceCatalog,
  type ResourceVersion,
} from './resources.js';
import { clone, deepEqual, fieldText, getPath, isPlainObject, mergePatch, strategicMergePatch, timestamp } from './objects.js';
import { decodeObject } from './watchcache.js';
import type { AdmissionAttributes, AdmissionPlugin } from './admission.js';
import type { UserInfo } from './auth/user.js';
import { ApplyError, applyConflictStatus, serverSideApply, recordUpdate, type ApplyConflict } from './apply/index.js';
import { matchesFields, matchesLabels, parseFieldSelector, parseLabelSelector } from './selectors.js';

/** A resource as addressed by a request: which one, in which served version, in which namespace. */
export interface Target {
  resource: Resource;
  version: ResourceVersion;
  namespace?: string;
}

export type FieldValidation = 'Strict' | 'Warn' | 'Ignore';

export interface WriteOptions {
  dryRun?: boolean;
  fieldManager?: string;
  fieldValidation?: FieldValidation;
  /** Filled with `Warning` header texts (unknown fields under `Warn`). */
  warnings?: string[];
  /** Who asked (admission plugins read it); absent for the server's own writes. */
  user?: UserInfo;
}

export type PatchType = 'merge' | 'json' | 'strategic' | 'apply';

export interface DeleteOptions {
  propagationPolicy?: 'Foreground' | 'Background' | 'Orphan';
  orphanDependents?: boolean;
  preconditions?: { uid?: string; resourceVersion?: string };
  dryRun?: boolean;
  /** Who asked (admission plugins read it); absent for the server's own deletes. */
  user?: UserInfo;
}

export interface ListOptions {
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
  resourceVersion?: string;
  resourceVersionMatch?: string;
}

export interface ListResult {
  items: KubeObject[];
  resourceVersion: string;
  continue?: string;
  remainingItemCount?: number;
}

/** Compiled selectors of a list or watch. */
export interface ObjectFilter {
  namespace?: string;
  /** Label or field selectors apply (an object's change can move it in or out of the selection). */
  selective: boolean;
  matches(obj: KubeObject): boolean;
}

export type DeleteResult = { deleted: true; object: KubeObject } | { deleted: false; object: KubeObject };

const generateChars = 'bcdfghjklmnpqrstvwxz2456789';
/** How many generated names a create tries before giving up (kube-apiserver tries 8 in all). */
const generateNameAttempts = 8;

const now = timestamp;

/** `generateName` plus five random characters, as kube's SimpleNameGenerator. */
export function generateObjectName(base: string): string {
  let suffix = '';
  for (let i = 0; i < 5; i++) suffix += generateChars[randomInt(generateChars.length)];
  return `${base.slice(0, 58)}${suffix}`;
}

function meta(obj: KubeObject): ObjectMeta {
  if (!isPlainObject(obj.metadata)) obj.metadata = {};
  return obj.metadata as ObjectMeta;
}

function metaOf(obj: KubeObject): ObjectMeta {
  return (isPlainObject(obj.metadata) ? obj.metadata : {}) as ObjectMeta;
}

export interface ContinueToken {
  rv: number;
  start: string;
}

export function encodeContinue(t: ContinueToken): string {
  return Buffer.from(JSON.stringify(t)).toString('base64url');
}

function decodeContinue(s: string): ContinueToken {
  try {
    const t = JSON.parse(Buffer.from(s, 'base64url').toString()) as unknown;
    if (isPlainObject(t) && typeof t.rv === 'number' && typeof t.start === 'string') return { rv: t.rv, start: t.start };
  } catch {
    // fall through
  }
  throw badRequest('invalid continue token');
}

export function parseRv(s: string, what = 'resourceVersion'): number {
  if (!/^\d+$/.test(s)) throw badRequest(`invalid ${what} "${s}"`);
  return Number(s);
}

/** Hooks the registry calls after writes, for the server's controllers (CRD catalog, GC). */
export interface RegistryHooks {
  afterWrite?(target: Resource, obj: KubeObject, deleted: boolean): void;
}

export class Registry {
  readonly hooks: RegistryHooks = {};
  /** Admission plugins, run in order before every create, update and delete is written. */
  readonly admission: AdmissionPlugin[] = [];
  /** Draws a name for `metadata.generateName` (replaceable so tests can force collisions). */
  generateName: (base: string) => string = generateObjectName;
  /** The last queued read-modify-write of each key (see `guaranteedUpdate`). */
  private readonly updateTails = new Map<string, Promise<void>>();

  constructor(
    readonly store: Store,
    readonly catalog: ResourceCatalog,
  ) {}

  // ---- presentation ----

  /** The stored object in the version the client addressed (a new object; the input is not changed). */
  decode(t: Target, stored: KubeObject): KubeObject {
    if (t.version.conversion) return t.version.conversion.fromStorage(clone(stored));
    return { ...stored, apiVersion: groupVersion(t.resource.group, t.version.name) };
  }

  private toStorage(t: Target, obj: KubeObject): KubeObject {
    if (t.version.conversion) return t.version.conversion.toStorage(obj);
    const sv = storageVersion(t.resource);
    return { ...obj, apiVersion: groupVersion(t.resource.group, sv.name), kind: t.resource.kind };
  }

  private encode(obj: KubeObject): string {
    const m = { ...metaOf(obj) };
    delete m.resourceVersion;
    return JSON.stringify({ ...obj, metadata: m });
  }

  private key(t: Target, name: string): string {
    return resourceKey(t.resource, t.namespace, name);
  }

  // ---- reads ----

  async getStored(t: Target, name: string): Promise<{ obj: KubeObject; kv: KeyValue }> {
    const kv = await this.store.get(this.key(t, name));
    if (!kv) throw notFound(t.resource, name);
    return { obj: decodeObject(kv.value, kv.modRevision), kv };
  }

  async get(t: Target, name: string): Promise<KubeObject> {
    return this.decode(t, (await this.getStored(t, name)).obj);
  }

  /** Compiles label and field selectors for a list or watch (400 on a malformed one). */
  filter(t: Target, labelSelector?: string, fieldSelector?: string): ObjectFilter {
    let labels: ReturnType<typeof parseLabelSelector> | undefined;
    let fields: ReturnType<typeof parseFieldSelector> | undefined;
    const allowed = ['metadata.name', ...(t.resource.namespaced ? ['metadata.namespace'] : []), ...Object.keys(t.version.selectableFields)];
    try {
      if (labelSelector) labels = parseLabelSelector(labelSelector);
      if (fieldSelector) fields = parseFieldSelector(fieldSelector, allowed);
    } catch (err) {
      throw badRequest(err instanceof Error ? err.message : String(err));
    }
    const selectable = t.version.selectableFields;
    const namespace = t.namespace;
    return {
      ...(namespace ? { namespace } : {}),
      selective: Boolean(labels || fields),
      matches: (obj) => {
        const m = metaOf(obj);
        if (namespace && m.namespace !== namespace) return false;
        if (labels && !matchesLabels(labels, isPlainObject(m.labels) ? m.labels : {})) return false;
        if (fields) {
          const values: Record<string, string> = { 'metadata.name': m.name ?? '', 'metadata.namespace': m.namespace ?? '' };
          for (const [f, path] of Object.entries(selectable)) values[f] = fieldText(getPath(obj, path));
          if (!matchesFields(fields, values)) return false;
        }
        return true;
      },
    };
  }

  async list(t: Target, opts: ListOptions = {}): Promise<ListResult> {
    const f = this.filter(t, opts.labelSelector, opts.fieldSelector);
    const filtered = Boolean(opts.labelSelector || opts.fieldSelector);
    const prefix = resourceListPrefix(t.resource, t.namespace);
    let revision: number | undefined;
    let startAfter: string | undefined;
    if (opts.continue) {
      const tok = decodeContinue(opts.continue);
      revision = tok.rv;
      startAfter = tok.start;
    } else if (opts.resourceVersion && opts.resourceVersionMatch === 'Exact') {
      revision = parseRv(opts.resourceVersion);
    } else if (opts.resourceVersion) {
      parseRv(opts.resourceVersion);
    }
    const limit = opts.limit && opts.limit > 0 ? opts.limit : 0;
    const items: KubeObject[] = [];
    let more = false;
    let remaining: number | undefined;
    let lastKey: string | undefined;
    try {
      for (;;) {
        const page = await this.store.list(prefix, {
          ...(limit ? { limit: filtered ? Math.max(limit, 100) : limit - items.length } : {}),
          ...(startAfter !== undefined ? { startAfter } : {}),
          ...(revision !== undefined ? { revision } : {}),
        });
        revision = page.revision;
        more = page.more;
        remaining = page.remaining;
        let stoppedEarly = false;
        for (const kv of page.items) {
          lastKey = kv.key;
          const obj = decodeObject(kv.value, kv.modRevision);
          if (!f.matches(obj)) continue;
          items.push(this.decode(t, obj));
          if (limit && items.length >= limit) {
            stoppedEarly = kv !== page.items[page.items.length - 1];
            break;
          }
        }
        if (stoppedEarly) {
          more = true;
          remaining = undefined;
        }
        if (!more || (limit && items.length >= limit) || page.items.length === 0) break;
        startAfter = lastKey;
      }
    } catch (err) {
      throw apiErrorFrom(err, { resource: t.resource, ...(opts.resourceVersion ? { resourceVersion: opts.resourceVersion } : {}), continued: Boolean(opts.continue) });
    }
    const out: ListResult = { items, resourceVersion: String(revision ?? 0) };
    if (more && lastKey !== undefined) {
      out.continue = encodeContinue({ rv: revision ?? 0, start: lastKey });
      if (!filtered && remaining !== undefined) out.remainingItemCount = remaining;
    }
    return out;
  }

  // ---- writes ----

  /**
   * POST. A name drawn from `generateName` that is already taken is drawn again (the whole
   * create runs again, admission included, as kube-apiserver's RetryGenerateName does); an
   * explicit name that is taken is a 409 AlreadyExists.
   */
  async create(t: Target, body: unknown, opts: WriteOptions = {}, fromApply = false): Promise<KubeObject> {
    for (let attempt = 1; ; attempt++) {
      const created = await this.createOnce(t, body, opts, fromApply, attempt < generateNameAttempts);
      if (created) return created;
    }
  }

  /** One create; undefined when the generated name was taken and `retryName` allows another draw. */
  private async createOnce(t: Target, body: unknown, opts: WriteOptions, fromApply: boolean, retryName: boolean): Promise<KubeObject | undefined> {
    const strategy = strategyFor(t.resource);
    let obj = this.checkBody(t, body);
    obj = this.toStorage(t, obj);
    const m = meta(obj);
    if (t.resource.namespaced) {
      if (m.namespace === undefined || m.namespace === '') m.namespace = t.namespace;
      else if (t.namespace && m.namespace !== t.namespace) {
        throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      }
      if (!m.namespace) throw badRequest('the namespace of the object is required');
    } else {
      delete m.namespace;
    }
    const generated = !m.name && typeof m.generateName === 'string' && m.generateName !== '';
    if (generated) m.name = this.generateName(m.generateName ?? '');
    if (!m.name) {
      throw invalid(t.resource, '', [{ reason: 'FieldValueRequired', field: 'metadata.name', message: 'Required value: name or generateName is required' }]);
    }
    const target: Target = { ...t, namespace: m.namespace };
    if (t.resource.namespaced) await this.checkNamespaceWritable(m.namespace ?? '');
    m.uid = randomUUID();
    m.creationTimestamp = now();
    m.generation = 1;
    delete m.deletionTimestamp;
    delete m.deletionGracePeriodSeconds;
    delete m.resourceVersion;
    delete m.selfLink;
    strategy.prepareForCreate(obj, t.resource);
    strategy.canonicalize(obj, undefined, undefined);
    this.validate(target, obj, opts, undefined);
    if (!fromApply) this.recordManagedFields(t, undefined, obj, opts, undefined);
    await this.runAdmission({ operation: 'CREATE', resource: t.resource, namespace: m.namespace, name: m.name, object: obj, dryRun: Boolean(opts.dryRun), ...(opts.user ? { user: opts.user } : {}) });
    if (opts.dryRun) return this.decode(t, obj);
    try {
      const kv = await this.store.create(this.key(target, m.name), this.encode(obj));
      const stored = stamped(obj, kv.modRevision);
      this.hooks.afterWrite?.(t.resource, stored, false);
      return this.decode(t, stored);
    } catch (err) {
      if (err instanceof KeyExistsError && generated && retryName) return undefined;
      throw apiErrorFrom(err, { resource: t.resource, name: m.name });
    }
  }

  /** PUT on the object or its status. */
  async update(t: Target, name: string, body: unknown, opts: WriteOptions = {}, subresource?: string): Promise<KubeObject> {
    const incoming = this.toStorage(t, this.checkBody(t, body));
    const m = meta(incoming);
    if (m.name !== undefined && m.name !== name) {
      throw badRequest(`the name of the object (${String(m.name)}) does not match the name on the URL (${name})`);
    }
    if (t.resource.namespaced && m.namespace && m.namespace !== t.namespace) {
      throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    return this.guaranteedUpdate(t, name, opts, subresource, () => clone(incoming));
  }

  async patch(
    t: Target,
    name: string,
    type: PatchType,
    body: unknown,
    opts: WriteOptions = {},
    subresource?: string,
    force = false,
  ): Promise<KubeObject> {
    if (type === 'strategic' && !strategyFor(t.resource).strategicMergePatch) throw unsupportedMediaType('application/strategic-merge-patch+json');
    if (type === 'apply') return this.apply(t, name, body, opts, subresource, force);
    if (type === 'json') {
      if (!Array.isArray(body)) throw badRequest('json patch must be an array of operations');
      const err = jsonpatch.validate(body as Operation[]);
      if (err) throw badRequest(`invalid json patch: ${err.message}`);
    } else if (!isPlainObject(body)) {
      throw badRequest('a merge patch must be a JSON object');
    }
    // Only a resourceVersion the client sent is a precondition; a patch without one is
    // re-applied to the fresh object when a concurrent write wins the race (as kube does).
    const clientPrecondition =
      type === 'json'
        ? (body as Operation[]).some((op) => op.path === '/metadata/resourceVersion' && op.op !== 'remove')
        : isPlainObject(body) && isPlainObject(body.metadata) && body.metadata.resourceVersion !== undefined && body.metadata.resourceVersion !== null;
    return this.guaranteedUpdate(t, name, opts, subresource, (current) => {
      const presented = this.decode(t, current);
      let patched: unknown;
      if (type === 'json') {
        try {
          patched = jsonpatch.applyPatch(clone(presented), clone(body as Operation[]), true, false).newDocument;
        } catch (e) {
          throw new ApiError(422, 'Invalid', `the server rejected our request due to an error in our request: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
        }
      } else if (type === 'strategic') {
        patched = strategicMergePatch(presented, body);
      } else {
        patched = mergePatch(presented, body);
      }
      const checked = this.checkBody(t, patched);
      const pm = meta(checked);
      if (pm.name !== name) throw badRequest('metadata.name cannot be changed by a patch');
      return this.toStorage(t, checked);
    }, false, clientPrecondition);
  }

  private async apply(t: Target, name: string, body: unknown, opts: WriteOptions, subresource: string | undefined, force: boolean): Promise<KubeObject> {
    const applied = this.checkBody(t, body);
    const am = meta(applied);
    if (!applied.apiVersion || !applied.kind) throw badRequest('apply patches must set apiVersion and kind');
    if (am.name !== undefined && am.name !== name) {
      throw badRequest(`the name of the object (${String(am.name)}) does not match the name on the URL (${name})`);
    }
    am.name = name;
    if (!opts.fieldManager) throw badRequest('PATCH, application/apply-patch+yaml requires fieldManager to be set');
    const manager = opts.fieldManager;
    for (let attempt = 0; ; attempt++) {
      const kv = await this.store.get(this.key(t, name));
      if (!kv) {
        if (subresource) throw notFound(t.resource, name);
        const r = this.runApply(t, undefined, applied, manager, force, undefined);
        if ('conflicts' in r) throw applyConflict(r.conflicts);
        try {
          return await this.create(t, r.object, opts, true);
        } catch (err) {
          if (err instanceof ApiError && err.reason === 'AlreadyExists' && attempt < 5) continue;
          throw err;
        }
      }
      try {
        return await this.guaranteedUpdate(
          t,
          name,
          opts,
          subresource,
          (current) => {
            const live = this.decode(t, current);
            const r = this.runApply(t, live, applied, manager, force, subresource);
            if ('conflicts' in r) throw applyConflict(r.conflicts);
            const out = this.toStorage(t, r.object as KubeObject);
            meta(out).resourceVersion = undefined;
            return out;
          },
          true,
        );
      } catch (err) {
        if (err instanceof ApiError && err.code === 404 && attempt < 5) continue;
        throw err;
      }
    }
  }

  private runApply(
    t: Target,
    live: KubeObject | undefined,
    applied: KubeObject,
    manager: string,
    force: boolean,
    subresource: string | undefined,
  ): { object: KubeObject } | { conflicts: ApplyConflict[] } {
    try {
      return serverSideApply(live as Parameters<typeof serverSideApply>[0], clone(applied) as Parameters<typeof serverSideApply>[1], {
        manager,
        force,
        time: now(),
        statusSubresource: t.resource.statusSubresource,
        ...(subresource ? { subresource } : {}),
        ...(t.version.listTypes ? { listTypes: t.version.listTypes } : {}),
      }) as { object: KubeObject } | { conflicts: ApplyConflict[] };
    } catch (err) {
      if (err instanceof ApplyError) throw badRequest(err.message);
      throw err;
    }
  }

  /** managedFields for a create, update or non-apply patch (in the addressed version). */
  private recordManagedFields(t: Target, old: KubeObject | undefined, updated: KubeObject, opts: WriteOptions, subresource: string | undefined): void {
    try {
      recordUpdate(old as Parameters<typeof recordUpdate>[0], updated as Parameters<typeof recordUpdate>[1], {
        manager: opts.fieldManager ?? 'unknown',
        operation: 'Update',
        time: now(),
        statusSubresource: t.resource.statusSubresource,
        ...(subresource && subresource !== 'finalize' ? { subresource } : {}),
        ...(t.version.listTypes ? { listTypes: t.version.listTypes } : {}),
      });
    } catch (err) {
      if (err instanceof ApplyError) throw badRequest(err.message);
      throw err;
    }
  }

  /**
   * Read-modify-write with retries on concurrent writes. `mutate` receives the current stored
   * object and returns the desired one; a `metadata.resourceVersion` it carries is a
   * precondition (409 if stale).
   *
   * The read-modify-writes of one key in this process run one after the other: N concurrent
   * patches cost N writes instead of up to N² conflicting attempts, and a patch never runs out
   * of retries because its neighbours kept winning. Conflicts from elsewhere (another server
   * on the same etcd, a direct store write) are still retried. `mutate` and admission must
   * not update the same key again (they would wait for themselves); none does.
   */
  async guaranteedUpdate(
    t: Target,
    name: string,
    opts: WriteOptions,
    subresource: string | undefined,
    mutate: (current: KubeObject) => KubeObject,
    fromApply = false,
    clientPrecondition?: boolean,
  ): Promise<KubeObject> {
    const key = this.key(t, name);
    const before = this.updateTails.get(key);
    let release!: () => void;
    const tail = new Promise<void>((r) => (release = r));
    this.updateTails.set(key, tail);
    try {
      if (before) await before;
      return await this.readModifyWrite(t, name, opts, subresource, mutate, fromApply, clientPrecondition);
    } finally {
      release();
      if (this.updateTails.get(key) === tail) this.updateTails.delete(key);
    }
  }

  private async readModifyWrite(
    t: Target,
    name: string,
    opts: WriteOptions,
    subresource: string | undefined,
    mutate: (current: KubeObject) => KubeObject,
    fromApply = false,
    /** Whether the request itself carried the resourceVersion precondition (default: whenever `mutate`'s result has one). */
    clientPrecondition?: boolean,
  ): Promise<KubeObject> {
    const key = this.key(t, name);
    const strategy = strategyFor(t.resource);
    for (let attempt = 0; ; attempt++) {
      const { obj: current, kv } = await this.getStored(t, name);
      const desired = mutate(clone(current));
      const dm = meta(desired);
      const precondition = dm.resourceVersion !== undefined && dm.resourceVersion !== null && dm.resourceVersion !== '' ? String(dm.resourceVersion) : undefined;
      if (precondition !== undefined && precondition !== String(kv.modRevision)) throw staleConflict(t.resource, name);
      const next = this.mergeForUpdate(t, current, desired, subresource);
      strategy.canonicalize(next, current, subresource);
      this.validate(t, next, opts, current);
      const om = metaOf(current);
      const nm = meta(next);
      if (specChanged(current, next)) nm.generation = (om.generation ?? 1) + 1;
      if (om.deletionTimestamp) {
        const added = (nm.finalizers ?? []).filter((f) => !(om.finalizers ?? []).includes(f));
        if (added.length > 0) {
          throw invalid(t.resource, name, [{ reason: 'FieldValueForbidden', field: 'metadata.finalizers', message: `Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers ${JSON.stringify(added)}` }]);
        }
      }
      const unchanged = deepEqual(stripVolatile(next), stripVolatile(current));
      if (unchanged) return this.decode(t, current);
      if (!fromApply) this.recordManagedFields(t, current, next, opts, subresource);
      await this.runAdmission({
        operation: 'UPDATE',
        resource: t.resource,
        ...(subresource ? { subresource } : {}),
        namespace: om.namespace,
        name,
        object: next,
        oldObject: current,
        dryRun: Boolean(opts.dryRun),
        ...(opts.user ? { user: opts.user } : {}),
      });
      const finalize = Boolean(nm.deletionTimestamp) && (nm.finalizers ?? []).length === 0 && !strategy.deletionPending(next);
      if (opts.dryRun) return this.decode(t, next);
      try {
        if (finalize) {
          const gone = await this.store.delete(key, kv.modRevision);
          const out = decodeObject(this.encode(next), gone.modRevision);
          this.hooks.afterWrite?.(t.resource, out, true);
          return this.decode(t, out);
        }
        const written = await this.store.update(key, this.encode(next), kv.modRevision);
        const out = stamped(next, written.modRevision);
        this.hooks.afterWrite?.(t.resource, out, false);
        return this.decode(t, out);
      } catch (err) {
        const retry = err instanceof ConflictError && !(clientPrecondition ?? precondition !== undefined) && attempt <= 20;
        if (!retry) throw apiErrorFrom(err, { resource: t.resource, name });
      }
    }
  }

  async delete(t: Target, name: string, options: DeleteOptions = {}): Promise<DeleteResult> {
    const key = this.key(t, name);
    const strategy = strategyFor(t.resource);
    const forbiddenWhy = strategy.deletionForbidden(name);
    if (forbiddenWhy) throw forbidden(t.resource, name, forbiddenWhy);
    for (let attempt = 0; ; attempt++) {
      const { obj: current, kv } = await this.getStored(t, name);
      const m = metaOf(current);
      const pre = options.preconditions;
      if (pre?.uid && pre.uid !== m.uid) {
        throw conflict(t.resource, name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${m.uid ?? ''}`);
      }
      if (pre?.resourceVersion && pre.resourceVersion !== String(kv.modRevision)) {
        throw conflict(t.resource, name, `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${kv.modRevision}`);
      }
      await this.runAdmission({ operation: 'DELETE', resource: t.resource, namespace: m.namespace, name, oldObject: current, dryRun: Boolean(options.dryRun), ...(options.user ? { user: options.user } : {}) });
      const policy = options.propagationPolicy ?? (options.orphanDependents ? 'Orphan' : undefined);
      const finalizers = [...(m.finalizers ?? [])];
      if (policy === 'Foreground' && !finalizers.includes('foregroundDeletion')) finalizers.push('foregroundDeletion');
      if (policy === 'Orphan' && !finalizers.includes('orphan')) finalizers.push('orphan');
      if (finalizers.length > 0 || strategy.gracefulDeletion) {
        if (m.deletionTimestamp && deepEqual(finalizers, m.finalizers ?? [])) return { deleted: false, object: this.decode(t, current) };
        const next = clone(current);
        const nm = meta(next);
        nm.deletionTimestamp ??= now();
        nm.deletionGracePeriodSeconds ??= 0;
        if (finalizers.length > 0) nm.finalizers = finalizers;
        strategy.beginDeletion(next);
        delete nm.resourceVersion;
        if (options.dryRun) return { deleted: false, object: this.decode(t, next) };
        try {
          const written = await this.store.update(key, this.encode(next), kv.modRevision);
          const out = decodeObject(written.value, written.modRevision);
          this.hooks.afterWrite?.(t.resource, out, false);
          return { deleted: false, object: this.decode(t, out) };
        } catch (err) {
          if (err instanceof ConflictError && attempt < 20) continue;
          throw apiErrorFrom(err, { resource: t.resource, name });
        }
      }
      if (options.dryRun) return { deleted: true, object: this.decode(t, current) };
      await strategy.beforeDelete(current, this.store);
      try {
        const gone = await this.store.delete(key, kv.modRevision);
        const out = decodeObject(gone.value, gone.modRevision);
        this.hooks.afterWrite?.(t.resource, out, true);
        return { deleted: true, object: this.decode(t, out) };
      } catch (err) {
        if (err instanceof ConflictError && attempt < 20) continue;
        throw apiErrorFrom(err, { resource: t.resource, name });
      }
    }
  }

  async deleteCollection(t: Target, listOpts: ListOptions, options: DeleteOptions = {}): Promise<KubeObject[]> {
    const { items } = await this.list(t, { ...listOpts, limit: 0 });
    const out: KubeObject[] = [];
    for (const item of items) {
      const m = metaOf(item);
      try {
        const r = await this.delete({ ...t, namespace: m.namespace }, m.name ?? '', options);
        out.push(r.object);
      } catch (err) {
        if (err instanceof ApiError && err.code === 404) continue;
        throw err;
      }
    }
    return out;
  }

  // ---- semantics shared by create and update ----

  /** The body must be an object of the addressed kind and version. */
  private checkBody(t: Target, body: unknown): KubeObject {
    if (!isPlainObject(body)) throw badRequest('the body of the request must be a JSON or YAML object');
    const obj = clone(body) as KubeObject;
    const gv = groupVersion(t.resource.group, t.version.name);
    if (obj.apiVersion !== undefined && obj.apiVersion !== gv) {
      throw badRequest(`the API version in the data (${String(obj.apiVersion)}) does not match the expected API version (${gv})`);
    }
    if (obj.kind !== undefined && obj.kind !== t.resource.kind) {
      throw badRequest(`the kind in the data (${String(obj.kind)}) does not match the expected kind (${t.resource.kind})`);
    }
    if (obj.metadata !== undefined && !isPlainObject(obj.metadata)) throw badRequest('metadata must be an object');
    obj.apiVersion = gv;
    obj.kind = t.resource.kind;
    const m = meta(obj);
    for (const f of ['name', 'generateName', 'namespace', 'uid', 'creationTimestamp', 'deletionTimestamp'] as const) {
      if (m[f] !== undefined && m[f] !== null && typeof m[f] !== 'string') {
        throw invalid(t.resource, String(m.name ?? ''), [{ reason: 'FieldValueInvalid', field: `metadata.${f}`, message: 'Invalid value: must be a string' }]);
      }
      if (m[f] === null) delete m[f];
    }
    if (m.resourceVersion !== undefined && m.resourceVersion !== null && typeof m.resourceVersion !== 'string') {
      throw badRequest('metadata.resourceVersion must be a string');
    }
    return obj;
  }

  /** The object an update stores: identity and system fields from `current`, the status split. */
  private mergeForUpdate(t: Target, current: KubeObject, desired: KubeObject, subresource: string | undefined): KubeObject {
    const cm = metaOf(current);
    let next: KubeObject;
    if (subresource === 'finalize') {
      next = clone(current);
      const spec = isPlainObject(next.spec) ? next.spec : {};
      spec.finalizers = isPlainObject(desired.spec) && Array.isArray(desired.spec.finalizers) ? desired.spec.finalizers : [];
      next.spec = spec;
    } else if (subresource === 'status') {
      next = { ...clone(current), status: desired.status };
      if (desired.status === undefined) delete next.status;
      const dm = metaOf(desired);
      if (dm.managedFields !== undefined) meta(next).managedFields = dm.managedFields;
    } else {
      next = desired;
      if (t.resource.statusSubresource) {
        if (current.status === undefined) delete next.status;
        else next.status = clone(current.status);
      }
    }
    const nm = meta(next);
    nm.name = cm.name;
    if (cm.namespace !== undefined) nm.namespace = cm.namespace;
    else delete nm.namespace;
    nm.uid = cm.uid;
    nm.creationTimestamp = cm.creationTimestamp;
    nm.generation = cm.generation ?? 1;
    if (cm.deletionTimestamp) {
      nm.deletionTimestamp = cm.deletionTimestamp;
      nm.deletionGracePeriodSeconds = cm.deletionGracePeriodSeconds ?? 0;
    } else {
      delete nm.deletionTimestamp;
      delete nm.deletionGracePeriodSeconds;
    }
    // managedFields: absent keeps the stored ones; `[]` resets them (recordUpdate decides).
    if ((nm.managedFields === undefined || nm.managedFields === null) && cm.managedFields !== undefined) nm.managedFields = clone(cm.managedFields);
    delete nm.resourceVersion;
    delete nm.selfLink;
    return next;
  }

  private async runAdmission(attributes: AdmissionAttributes): Promise<void> {
    for (const plugin of this.admission) await plugin.admit(attributes);
  }

  /** Metadata and the kind's own validation (its strategy may prune and default first); throws 400/422. */
  private validate(t: Target, obj: KubeObject, opts: WriteOptions, old: KubeObject | undefined): void {
    const strategy = strategyFor(t.resource);
    const m = meta(obj);
    const causes: StatusCause[] = [];
    validateObjectMeta(strategy.nameRule, m, causes);
    strategy.validate(obj, { resource: t.resource, version: t.version, old, fieldValidation: opts.fieldValidation, warnings: opts.warnings, causes });
    if (causes.length > 0) throw invalid(t.resource, m.name ?? '', causes);
  }

  private async checkNamespaceWritable(ns: string): Promise<void> {
    const nsRes = { group: '', plural: 'namespaces' };
    const kv = await this.store.get(`/registry/core/namespaces/${ns}`);
    if (!kv) throw notFound(nsRes, ns);
    const obj = decodeObject(kv.value, kv.modRevision);
    if (metaOf(obj).deletionTimestamp) {
      throw forbidden(nsRes, ns, `unable to create new content in namespace ${ns} because it is being terminated`);
    }
  }
}

/**
 * The object just written, as a read would return it (resourceVersion = its revision),
 * without parsing back the JSON that was stored. Only for objects nothing else holds.
 */
function stamped(obj: KubeObject, revision: number): KubeObject {
  meta(obj).resourceVersion = String(revision);
  return obj;
}

function applyConflict(conflicts: ApplyConflict[]): ApiError {
  const { message, causes } = applyConflictStatus(conflicts);
  return new ApiError(409, 'Conflict', message, { causes });
}

/** The object without what changes on every write (resourceVersion, managedFields times). */
function stripVolatile(obj: KubeObject): KubeObject {
  const m = { ...metaOf(obj) };
  delete m.resourceVersion;
  delete m.managedFields;
  return { ...obj, metadata: m };
}

/** Anything but metadata and status is "spec" for generation purposes. */
function specChanged(a: KubeObject, b: KubeObject): boolean {
  const strip = (o: KubeObject): Record<string, unknown> => {
    const { metadata: _m, status: _s, apiVersion: _a, kind: _k, ...rest } = o;
    return rest;
  };
  return !deepEqual(strip(a), strip(b));
}
