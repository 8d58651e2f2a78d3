/**
 * Secrets and ConfigMaps: string maps with config-key names. Secret `data` values are base64
 * and `stringData` is folded into `data` on write (never stored); `type` defaults to `Opaque`
 * and is kept across updates. A ConfigMap's `binaryData` is base64. Once `immutable: true`
 * is stored, the data can no longer change.
 */
import { deepEqual, isPlainObject } from '../objects.js';
import type { StatusCause } from '../errors.js';
import type { KubeObject } from '../resources.js';
import { DefaultStrategy, type ValidationContext } from './strategy.js';

const base64Re = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const dataKeyRe = /^[-._a-zA-Z0-9]+$/;

/** Checks one data map of string values (`base64`: each value must be base64). */
function checkDataMap(obj: KubeObject, field: string, base64: boolean, causes: StatusCause[]): void {
  const v = obj[field];
  if (v === undefined || v === null) {
    delete obj[field];
    return;
  }
  if (!isPlainObject(v)) {
    causes.push({ reason: 'FieldValueInvalid', field, message: 'Invalid value: must be a map' });
    return;
  }
  for (const [k, val] of Object.entries(v)) {
    if (!dataKeyRe.test(k)) causes.push({ reason: 'FieldValueInvalid', field: `${field}[${k}]`, message: `Invalid value: "${k}": a valid config key must consist of alphanumeric characters, '-', '_' or '.'` });
    if (typeof val !== 'string') causes.push({ reason: 'FieldValueInvalid', field: `${field}[${k}]`, message: 'Invalid value: must be a string' });
    else if (base64 && !base64Re.test(val)) causes.push({ reason: 'FieldValueInvalid', field: `${field}[${k}]`, message: 'Invalid value: illegal base64 data' });
  }
}

function checkImmutable(obj: KubeObject, old: KubeObject | undefined, causes: StatusCause[]): void {
  if (old?.immutable !== true) return;
  if (!deepEqual(old.data, obj.data) || !deepEqual(old.binaryData, obj.binaryData) || obj.immutable !== true) {
    causes.push({ reason: 'FieldValueForbidden', field: 'data', message: 'Forbidden: field is immutable when `immutable` is set' });
  }
}

export class SecretStrategy extends DefaultStrategy {
  override canonicalize(obj: KubeObject, old: KubeObject | undefined): void {
    if (obj.type === undefined || obj.type === '') obj.type = old?.type ?? 'Opaque';
    if (isPlainObject(obj.stringData)) {
      const data = isPlainObject(obj.data) ? obj.data : {};
      for (const [k, v] of Object.entries(obj.stringData)) if (typeof v === 'string') data[k] = Buffer.from(v).toString('base64');
      obj.data = data;
    }
    delete obj.stringData;
  }

  override validate(obj: KubeObject, ctx: ValidationContext): void {
    checkDataMap(obj, 'data', true, ctx.causes);
    checkImmutable(obj, ctx.old, ctx.causes);
  }
}

export class ConfigMapStrategy extends DefaultStrategy {
  override validate(obj: KubeObject, ctx: ValidationContext): void {
    checkDataMap(obj, 'data', false, ctx.causes);
    checkDataMap(obj, 'binaryData', true, ctx.causes);
    checkImmutable(obj, ctx.old, ctx.causes);
  }
}
