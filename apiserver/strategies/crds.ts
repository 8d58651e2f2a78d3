/**
 * CustomResourceDefinitions: `names.listKind`/`names.singular` are defaulted; the status
 * (conditions NamesAccepted/Established, acceptedNames, storedVersions) is derived by the
 * server on every write, with transition times kept while nothing changes; the name must be
 * `<plural>.<group>` and the scope is immutable. Deleting a CRD deletes every object of its
 * kind first.
 */
import { clone, isPlainObject, timestamp } from '../objects.js';
import { crdErrors } from '../schema/structural.js';
import type { CustomResourceDefinition } from '../schema/types.js';
import type { KubeObject } from '../resources.js';
import { NotFoundError, type Store } from '../storage/store.js';
import { DefaultStrategy, type ValidationContext } from './strategy.js';

export class CustomResourceDefinitionStrategy extends DefaultStrategy {
  override canonicalize(obj: KubeObject, old: KubeObject | undefined): void {
    const spec = isPlainObject(obj.spec) ? obj.spec : undefined;
    const names = spec && isPlainObject(spec.names) ? spec.names : undefined;
    if (names && typeof names.kind === 'string') {
      names.listKind ??= `${names.kind}List`;
      names.singular ??= names.kind.toLowerCase();
    }
    const ts = timestamp();
    const versions = spec && Array.isArray(spec.versions) ? (spec.versions as unknown[]) : [];
    const storedVersions = versions.filter((v) => isPlainObject(v) && v.storage === true).map((v) => (v as { name: string }).name);
    const oldStored = old && isPlainObject(old.status) && Array.isArray(old.status.storedVersions) ? (old.status.storedVersions as string[]) : [];
    obj.status = {
      conditions: [
        { type: 'NamesAccepted', status: 'True', reason: 'NoConflicts', message: 'no conflicts found', lastTransitionTime: ts },
        { type: 'Established', status: 'True', reason: 'InitialNamesAccepted', message: 'the initial names have been accepted', lastTransitionTime: ts },
      ],
      acceptedNames: names ? clone(names) : {},
      storedVersions: [...new Set([...oldStored, ...storedVersions])],
    };
    if (old && isPlainObject(old.status) && Array.isArray(old.status.conditions)) {
      // Keep transition times stable so an unchanged CRD is not rewritten.
      const conds = (obj.status as { conditions: { lastTransitionTime: string; type: string }[] }).conditions;
      for (const c of conds) {
        const prev = (old.status.conditions as unknown[]).find((p) => isPlainObject(p) && p.type === c.type) as { lastTransitionTime?: string } | undefined;
        if (prev?.lastTransitionTime) c.lastTransitionTime = prev.lastTransitionTime;
      }
    }
  }

  override validate(obj: KubeObject, ctx: ValidationContext): void {
    const { causes, old } = ctx;
    const spec = isPlainObject(obj.spec) ? obj.spec : undefined;
    if (!spec) {
      causes.push({ reason: 'FieldValueRequired', field: 'spec', message: 'Required value' });
      return;
    }
    try {
      for (const c of crdErrors(obj as unknown as CustomResourceDefinition)) causes.push({ reason: c.reason, field: c.field, message: c.message });
    } catch (err) {
      causes.push({ reason: 'FieldValueInvalid', field: 'spec', message: `Invalid value: ${err instanceof Error ? err.message : String(err)}` });
    }
    const name = obj.metadata?.name ?? '';
    const names = isPlainObject(spec.names) ? spec.names : {};
    const expected = `${String(names.plural)}.${String(spec.group)}`;
    if (name !== expected) causes.push({ reason: 'FieldValueInvalid', field: 'metadata.name', message: `Invalid value: "${name}": must be spec.names.plural+"."+spec.group` });
    if (old && isPlainObject(old.spec) && old.spec.scope !== spec.scope) {
      causes.push({ reason: 'FieldValueInvalid', field: 'spec.scope', message: 'Invalid value: field is immutable' });
    }
  }

  /** Every object of the CRD's kind goes with it (straight from storage: no finalizers run). */
  override async beforeDelete(obj: KubeObject, store: Store): Promise<void> {
    const crd = obj as unknown as CustomResourceDefinition;
    const prefix = `/registry/${crd.spec.group || 'core'}/${crd.spec.names.plural}/`;
    for (;;) {
      const page = await store.list(prefix, { limit: 500 });
      for (const kv of page.items) {
        try {
          await store.delete(kv.key);
        } catch (err) {
          if (!(err instanceof NotFoundError)) throw err;
        }
      }
      if (!page.more) break;
    }
  }
}
