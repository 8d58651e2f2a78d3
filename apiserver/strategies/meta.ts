/**
 * ObjectMeta validation every kind shares (names, labels, annotations, finalizers,
 * ownerReferences, managedFields), as kube-apiserver's `ValidateObjectMeta`. Empty
 * collections are normalised away so that `[]` and absent store the same.
 */
import type { StatusCause } from '../errors.js';
import { isPlainObject } from '../objects.js';
import type { ObjectMeta } from '../resources.js';
import type { NameRule } from './strategy.js';

const subdomainRe = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const labelRe = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const qualifiedNameRe = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const labelValueRe = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

export function validateObjectMeta(rule: NameRule, m: ObjectMeta, causes: StatusCause[]): void {
  const name = m.name ?? '';
  if (rule === 'label') {
    if (name.length > 63 || !labelRe.test(name)) {
      causes.push({ reason: 'FieldValueInvalid', field: 'metadata.name', message: `Invalid value: "${name}": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character` });
    }
  } else if (rule === 'pathSegment') {
    if (name === '' || name === '.' || name === '..' || /[/%]/.test(name)) {
      causes.push({ reason: 'FieldValueInvalid', field: 'metadata.name', message: `Invalid value: "${name}": may not be '.' or '..' and may not contain '/' or '%'` });
    }
  } else if (name.length > 253 || !subdomainRe.test(name)) {
    causes.push({ reason: 'FieldValueInvalid', field: 'metadata.name', message: `Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character` });
  }
  for (const which of ['labels', 'annotations'] as const) {
    const v = m[which];
    if (v === undefined || v === null) {
      delete m[which];
      continue;
    }
    if (!isPlainObject(v)) {
      causes.push({ reason: 'FieldValueInvalid', field: `metadata.${which}`, message: 'Invalid value: must be a map of strings' });
      continue;
    }
    for (const [k, val] of Object.entries(v)) {
      if (typeof val !== 'string') {
        causes.push({ reason: 'FieldValueInvalid', field: `metadata.${which}`, message: `Invalid value: "${k}": values must be strings` });
        continue;
      }
      if (!validQualifiedKey(k)) causes.push({ reason: 'FieldValueInvalid', field: `metadata.${which}`, message: `Invalid value: "${k}": name part must consist of alphanumeric characters, '-', '_' or '.'` });
      if (which === 'labels' && (val.length > 63 || !labelValueRe.test(val))) {
        causes.push({ reason: 'FieldValueInvalid', field: 'metadata.labels', message: `Invalid value: "${val}": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.'` });
      }
    }
  }
  if (m.finalizers !== undefined) {
    if (!Array.isArray(m.finalizers) || m.finalizers.some((f) => typeof f !== 'string' || !validQualifiedKey(f))) {
      causes.push({ reason: 'FieldValueInvalid', field: 'metadata.finalizers', message: 'Invalid value: finalizers must be qualified names' });
    } else if (m.finalizers.length === 0) delete m.finalizers;
  }
  if (m.ownerReferences !== undefined) {
    const refs = m.ownerReferences as unknown;
    if (!Array.isArray(refs)) causes.push({ reason: 'FieldValueInvalid', field: 'metadata.ownerReferences', message: 'Invalid value: must be a list' });
    else {
      refs.forEach((ref, i) => {
        if (!isPlainObject(ref) || typeof ref.uid !== 'string' || !ref.uid || typeof ref.name !== 'string' || typeof ref.kind !== 'string' || typeof ref.apiVersion !== 'string') {
          causes.push({ reason: 'FieldValueInvalid', field: `metadata.ownerReferences[${i}]`, message: 'Invalid value: apiVersion, kind, name and uid are required' });
        }
      });
      if (refs.length === 0) delete m.ownerReferences;
    }
  }
  if (m.managedFields !== undefined && !Array.isArray(m.managedFields)) {
    causes.push({ reason: 'FieldValueInvalid', field: 'metadata.managedFields', message: 'Invalid value: must be a list' });
  }
}

/** A label/annotation key or finalizer: `[prefix/]name`, prefix a DNS subdomain. */
function validQualifiedKey(k: string): boolean {
  const parts = k.split('/');
  if (parts.length > 2) return false;
  const namePart = parts[parts.length - 1] ?? '';
  if (parts.length === 2) {
    const prefix = parts[0] ?? '';
    if (!prefix || prefix.length > 253 || !subdomainRe.test(prefix)) return false;
  }
  return namePart.length > 0 && namePart.length <= 63 && qualifiedNameRe.test(namePart);
}
