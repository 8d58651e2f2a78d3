/**
 * Objects of a CustomResourceDefinition's kind: the stored version's structural schema prunes
 * unknown fields (refused under `fieldValidation=Strict`, a warning under `Warn`), applies its
 * defaults and validates; `status` is ignored on create when the kind has a status
 * subresource; strategic merge patch is refused (415), as kube-apiserver does for CRs.
 */
import { clone } from '../objects.js';
import { storageVersion, type KubeObject, type Resource } from '../resources.js';
import { badRequest } from '../errors.js';
import { DefaultStrategy, type ValidationContext } from './strategy.js';

export class CustomResourceStrategy extends DefaultStrategy {
  override readonly strategicMergePatch = false;

  override prepareForCreate(obj: KubeObject, resource: Resource): void {
    if (resource.statusSubresource) delete obj.status;
  }

  override validate(obj: KubeObject, ctx: ValidationContext): void {
    const r = ctx.resource;
    const compiled = storageVersion(r).compiled;
    if (!compiled) return;
    // Metadata is validated by the registry; the schema only sees the rest.
    const savedMeta = clone(obj.metadata ?? {});
    const dropped = compiled.prune(obj);
    obj.metadata = savedMeta;
    const unknown = dropped.filter((p) => p !== 'metadata' && !p.startsWith('metadata.'));
    if (unknown.length > 0) {
      const mode = ctx.fieldValidation ?? 'Warn';
      if (mode === 'Strict') {
        throw badRequest(
          `${r.kind} in version "${ctx.version.name}" cannot be handled as a ${r.kind}: strict decoding error: ${unknown.map((p) => `unknown field "${p}"`).join(', ')}`,
        );
      }
      if (mode === 'Warn') for (const p of unknown) ctx.warnings?.push(`unknown field "${p}"`);
    }
    compiled.applyDefaults(obj);
    obj.metadata = savedMeta;
    for (const c of compiled.validate(obj)) ctx.causes.push({ reason: c.reason, field: c.field, message: c.message });
  }
}
