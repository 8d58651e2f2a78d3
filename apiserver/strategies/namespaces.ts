/**
 * Namespaces: names are DNS-1123 labels; `kubernetes.io/metadata.name` always carries the
 * name; `spec.finalizers` starts as `[kubernetes]` and only the `finalize` subresource changes
 * it; `status.phase` is `Active` or `Terminating`. Deleting one always passes through
 * `Terminating` (the namespace controller empties it, then removes its finalizer); the
 * namespaces the server creates itself can never be deleted, as in kube-apiserver.
 */
import { isPlainObject } from '../objects.js';
import type { KubeObject, ObjectMeta } from '../resources.js';
import { DefaultStrategy, type NameRule } from './strategy.js';

const protectedNamespaces = ['default', 'kube-system', 'kube-public'];

export class NamespaceStrategy extends DefaultStrategy {
  override readonly nameRule: NameRule = 'label';
  override readonly holdsNamespacedContent = true;
  override readonly gracefulDeletion = true;

  override canonicalize(obj: KubeObject, old: KubeObject | undefined, subresource: string | undefined): void {
    const m = (obj.metadata ??= {}) as ObjectMeta;
    m.labels = { ...(isPlainObject(m.labels) ? m.labels : {}), 'kubernetes.io/metadata.name': m.name ?? '' };
    const spec = isPlainObject(obj.spec) ? obj.spec : {};
    if (!old) spec.finalizers = ['kubernetes'];
    else if (subresource !== 'finalize') spec.finalizers = isPlainObject(old.spec) && Array.isArray(old.spec.finalizers) ? old.spec.finalizers : (spec.finalizers ?? []);
    obj.spec = spec;
    const status = isPlainObject(obj.status) ? obj.status : {};
    status.phase = m.deletionTimestamp ? 'Terminating' : 'Active';
    obj.status = status;
  }

  override deletionForbidden(name: string): string | undefined {
    return protectedNamespaces.includes(name) ? 'this namespace may not be deleted' : undefined;
  }

  override beginDeletion(obj: KubeObject): void {
    obj.status = { ...(isPlainObject(obj.status) ? obj.status : {}), phase: 'Terminating' };
  }

  override deletionPending(obj: KubeObject): boolean {
    const spec = isPlainObject(obj.spec) ? obj.spec : {};
    return Array.isArray(spec.finalizers) && spec.finalizers.length > 0;
  }
}
