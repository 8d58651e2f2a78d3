/**
 * A kind's strategy: what is special about one kind of object when it is created, updated or
 * deleted, in the mould of kube-apiserver's RESTCreateStrategy / RESTUpdateStrategy /
 * RESTDeleteStrategy. The registry owns the generic object semantics (uid, generation,
 * resourceVersion preconditions, finalizers, managedFields, admission, storage) and asks the
 * strategy of the addressed kind for the rest.
 *
 * Contract: hooks are synchronous and pure over the object they are given, except
 * `beforeDelete` (which may clean up storage before the object goes). Validation pushes
 * `StatusCause`s, which the registry turns into one 422 naming every field; it throws an
 * `ApiError` only for a body that cannot be handled at all (a 400 under strict field
 * validation). Strategies are stateless singletons, so one serves every resource of its kind.
 * A strategy knows nothing of HTTP.
 */
import type { StatusCause } from '../errors.js';
import type { KubeObject, Resource, ResourceVersion } from '../resources.js';
import type { Store } from '../storage/store.js';
import type { FieldValidation } from '../registry.js';

/**
 * Which rule `metadata.name` follows: a DNS-1123 subdomain or label, or any path segment
 * (kube's RBAC kinds, whose names look like `system:discovery`).
 */
export type NameRule = 'subdomain' | 'label' | 'pathSegment';

/** What validation may read beside the object: the addressed kind and the request's options. */
export interface ValidationContext {
  resource: Resource;
  /** The version the client addressed (for messages). */
  version: ResourceVersion;
  /** The stored object for an update; undefined on create. */
  old: KubeObject | undefined;
  fieldValidation: FieldValidation | undefined;
  /** Receives `Warning` header texts. */
  warnings: string[] | undefined;
  causes: StatusCause[];
}

export interface KindStrategy {
  /** The rule for `metadata.name`; most kinds use DNS-1123 subdomains. */
  readonly nameRule: NameRule;
  /** Whether `application/strategic-merge-patch+json` is accepted (built-in kinds only, as kube). */
  readonly strategicMergePatch: boolean;
  /**
   * Objects of this kind hold the namespaced objects named after them: deletion empties the
   * namespace before the `kubernetes` finalizer in `spec.finalizers` goes (the namespace
   * controller in gc.ts does the emptying).
   */
  readonly holdsNamespacedContent: boolean;
  /** Drops what a client may not set on create. */
  prepareForCreate(obj: KubeObject, resource: Resource): void;
  /**
   * Defaults and derived fields, on create (`old` undefined) and every update; `subresource`
   * is `status` or `finalize` when one was addressed.
   */
  canonicalize(obj: KubeObject, old: KubeObject | undefined, subresource: string | undefined): void;
  /**
   * Kind-specific validation after defaulting. May prune unknown fields (schema'd kinds) and
   * apply schema defaults before validating.
   */
  validate(obj: KubeObject, ctx: ValidationContext): void;
  /** A reason this object may never be deleted (403), or undefined. */
  deletionForbidden(name: string): string | undefined;
  /** Whether a delete always passes through a terminating state, even without finalizers. */
  readonly gracefulDeletion: boolean;
  /** Marks an object that starts terminating (after `deletionTimestamp` is set). */
  beginDeletion(obj: KubeObject): void;
  /** Whether a terminating object with no finalizers left must still stay (kind-level finalizers). */
  deletionPending(obj: KubeObject): boolean;
  /** Runs just before the object is removed from storage (a CRD takes its objects with it). */
  beforeDelete(obj: KubeObject, store: Store): Promise<void>;
}

/** The behaviour of an ordinary kind; specific strategies override what differs. */
export class DefaultStrategy implements KindStrategy {
  readonly nameRule: NameRule = 'subdomain';
  readonly strategicMergePatch: boolean = true;
  readonly holdsNamespacedContent: boolean = false;
  readonly gracefulDeletion: boolean = false;

  prepareForCreate(_obj: KubeObject, _resource: Resource): void {}

  canonicalize(_obj: KubeObject, _old: KubeObject | undefined, _subresource: string | undefined): void {}

  validate(_obj: KubeObject, _ctx: ValidationContext): void {}

  deletionForbidden(_name: string): string | undefined {
    return undefined;
  }

  beginDeletion(_obj: KubeObject): void {}

  deletionPending(_obj: KubeObject): boolean {
    return false;
  }

  beforeDelete(_obj: KubeObject, _store: Store): Promise<void> {
    return Promise.resolve();
  }
}
