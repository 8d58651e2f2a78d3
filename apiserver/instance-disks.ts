/**
 * InstanceDiskAdmission: an Instance's data disks only grow. Lowering `spec.disks[].sizeGiB`
 * of an existing disk is refused with 422 Invalid naming the field, before anything reaches a
 * controller: no provider can shrink a disk without cutting off what the filesystem on it
 * holds past the new end. (Growing, adding and removing disks are the providers' business;
 * a removed disk's volume is kept until the machine is deleted.) In a real cluster the CRD's
 * `x-kubernetes-validations` transition rule on `spec.disks[]` says the same.
 */
import type { AdmissionAttributes, AdmissionPlugin } from './admission.js';
import { invalid, type StatusCause } from './errors.js';

interface DiskLike {
  name?: unknown;
  sizeGiB?: unknown;
}

function disksOf(obj: unknown): DiskLike[] {
  const d = (obj as { spec?: { disks?: unknown } } | undefined)?.spec?.disks;
  return Array.isArray(d) ? (d as DiskLike[]) : [];
}

export class InstanceDiskAdmission implements AdmissionPlugin {
  readonly name = 'InstanceDisks';

  async admit(a: AdmissionAttributes): Promise<void> {
    if (a.operation !== 'UPDATE' || a.subresource || a.resource.group !== 'compute.stratus.dev' || a.resource.plural !== 'instances') return;
    const before = new Map(disksOf(a.oldObject).map((d) => [d.name, d.sizeGiB]));
    const causes: StatusCause[] = [];
    disksOf(a.object).forEach((d, i) => {
      const was = before.get(d.name);
      if (typeof was === 'number' && typeof d.sizeGiB === 'number' && d.sizeGiB < was) {
        causes.push({
          reason: 'FieldValueForbidden',
          field: `spec.disks[${i}].sizeGiB`,
          message: `Forbidden: disk ${String(d.name)} may not shrink from ${was} to ${d.sizeGiB} GiB: a disk only grows (shrinking would lose the data past its new end)`,
        });
      }
    });
    if (causes.length) throw invalid(a.resource, a.name, causes);
  }
}
