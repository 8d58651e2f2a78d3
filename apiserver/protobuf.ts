/**
 * Decoding Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`) of the
 * few built-in kinds stratus serves. kubectl's typed clients (`kubectl create namespace`,
 * `create configmap`, `create secret`, and delete options) send protobuf and cannot fall back
 * to JSON; responses are always JSON, which those clients accept.
 *
 * Wire format: the magic `k8s\0`, then a `runtime.Unknown` {typeMeta{apiVersion, kind}, raw},
 * where `raw` is the object's own message. Field numbers are those of k8s.io/api's
 * generated.proto. Unknown fields are skipped, as protobuf requires.
 */

type FieldType = 'string' | 'bytes' | 'int' | 'bool' | 'time' | 'microtime' | 'stringMap' | 'bytesMap' | Schema;

interface Field {
  name: string;
  type: FieldType;
  repeated?: boolean;
}

type Schema = { [field: number]: Field };

export class ProtobufError extends Error {}

const ownerReference: Schema = {
  1: { name: 'kind', type: 'string' },
  3: { name: 'name', type: 'string' },
  4: { name: 'uid', type: 'string' },
  5: { name: 'apiVersion', type: 'string' },
  6: { name: 'controller', type: 'bool' },
  7: { name: 'blockOwnerDeletion', type: 'bool' },
};

const objectMeta: Schema = {
  1: { name: 'name', type: 'string' },
  2: { name: 'generateName', type: 'string' },
  3: { name: 'namespace', type: 'string' },
  5: { name: 'uid', type: 'string' },
  6: { name: 'resourceVersion', type: 'string' },
  7: { name: 'generation', type: 'int' },
  8: { name: 'creationTimestamp', type: 'time' },
  9: { name: 'deletionTimestamp', type: 'time' },
  10: { name: 'deletionGracePeriodSeconds', type: 'int' },
  11: { name: 'labels', type: 'stringMap' },
  12: { name: 'annotations', type: 'stringMap' },
  13: { name: 'ownerReferences', type: ownerReference, repeated: true },
  14: { name: 'finalizers', type: 'string', repeated: true },
};

const objectReference: Schema = {
  1: { name: 'kind', type: 'string' },
  2: { name: 'namespace', type: 'string' },
  3: { name: 'name', type: 'string' },
  4: { name: 'uid', type: 'string' },
  5: { name: 'apiVersion', type: 'string' },
  6: { name: 'resourceVersion', type: 'string' },
  7: { name: 'fieldPath', type: 'string' },
};

const eventSeries: Schema = { 1: { name: 'count', type: 'int' }, 2: { name: 'lastObservedTime', type: 'microtime' } };
const eventSource: Schema = { 1: { name: 'component', type: 'string' }, 2: { name: 'host', type: 'string' } };

/** Message schemas by `apiVersion/kind`. */
// RBAC and the self reviews (k8s.io/api rbac/v1, authentication/v1, authorization/v1).
const policyRule: Schema = {
  1: { name: 'verbs', type: 'string', repeated: true },
  2: { name: 'apiGroups', type: 'string', repeated: true },
  3: { name: 'resources', type: 'string', repeated: true },
  4: { name: 'resourceNames', type: 'string', repeated: true },
  5: { name: 'nonResourceURLs', type: 'string', repeated: true },
};
const labelSelector: Schema = {
  1: { name: 'matchLabels', type: 'stringMap' },
  2: { name: 'matchExpressions', type: { 1: { name: 'key', type: 'string' }, 2: { name: 'operator', type: 'string' }, 3: { name: 'values', type: 'string', repeated: true } }, repeated: true },
};
const subject: Schema = { 1: { name: 'kind', type: 'string' }, 2: { name: 'apiGroup', type: 'string' }, 3: { name: 'name', type: 'string' }, 4: { name: 'namespace', type: 'string' } };
const roleRef: Schema = { 1: { name: 'apiGroup', type: 'string' }, 2: { name: 'kind', type: 'string' }, 3: { name: 'name', type: 'string' } };
const binding: Schema = { 1: { name: 'metadata', type: objectMeta }, 2: { name: 'subjects', type: subject, repeated: true }, 3: { name: 'roleRef', type: roleRef } };
const resourceAttributes: Schema = {
  1: { name: 'namespace', type: 'string' },
  2: { name: 'verb', type: 'string' },
  3: { name: 'group', type: 'string' },
  4: { name: 'version', type: 'string' },
  5: { name: 'resource', type: 'string' },
  6: { name: 'subresource', type: 'string' },
  7: { name: 'name', type: 'string' },
};

const kinds: Record<string, Schema> = {
  'rbac.authorization.k8s.io/v1/Role': { 1: { name: 'metadata', type: objectMeta }, 2: { name: 'rules', type: policyRule, repeated: true } },
  'rbac.authorization.k8s.io/v1/ClusterRole': {
    1: { name: 'metadata', type: objectMeta },
    2: { name: 'rules', type: policyRule, repeated: true },
    3: { name: 'aggregationRule', type: { 1: { name: 'clusterRoleSelectors', type: labelSelector, repeated: true } } },
  },
  'rbac.authorization.k8s.io/v1/RoleBinding': binding,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': binding,
  'authentication.k8s.io/v1/SelfSubjectReview': { 1: { name: 'metadata', type: objectMeta } },
  'authorization.k8s.io/v1/SelfSubjectAccessReview': {
    1: { name: 'metadata', type: objectMeta },
    2: { name: 'spec', type: { 1: { name: 'resourceAttributes', type: resourceAttributes }, 2: { name: 'nonResourceAttributes', type: { 1: { name: 'path', type: 'string' }, 2: { name: 'verb', type: 'string' } } } } },
  },
  'authorization.k8s.io/v1/SelfSubjectRulesReview': { 1: { name: 'metadata', type: objectMeta }, 2: { name: 'spec', type: { 1: { name: 'namespace', type: 'string' } } } },
  'v1/Namespace': {
    1: { name: 'metadata', type: objectMeta },
    2: { name: 'spec', type: { 1: { name: 'finalizers', type: 'string', repeated: true } } },
    3: { name: 'status', type: { 1: { name: 'phase', type: 'string' } } },
  },
  'v1/ConfigMap': {
    1: { name: 'metadata', type: objectMeta },
    2: { name: 'data', type: 'stringMap' },
    3: { name: 'binaryData', type: 'bytesMap' },
    4: { name: 'immutable', type: 'bool' },
  },
  'v1/Secret': {
    1: { name: 'metadata', type: objectMeta },
    2: { name: 'data', type: 'bytesMap' },
    3: { name: 'type', type: 'string' },
    4: { name: 'stringData', type: 'stringMap' },
    5: { name: 'immutable', type: 'bool' },
  },
  'v1/Event': {
    1: { name: 'metadata', type: objectMeta },
    2: { name: 'involvedObject', type: objectReference },
    3: { name: 'reason', type: 'string' },
    4: { name: 'message', type: 'string' },
    5: { name: 'source', type: eventSource },
    6: { name: 'firstTimestamp', type: 'time' },
    7: { name: 'lastTimestamp', type: 'time' },
    8: { name: 'count', type: 'int' },
    9: { name: 'type', type: 'string' },
    10: { name: 'eventTime', type: 'microtime' },
    11: { name: 'series', type: eventSeries },
    12: { name: 'action', type: 'string' },
    13: { name: 'related', type: objectReference },
    14: { name: 'reportingComponent', type: 'string' },
    15: { name: 'reportingInstance', type: 'string' },
  },
  'events.k8s.io/v1/Event': {
    1: { name: 'metadata', type: objectMeta },
    2: { name: 'eventTime', type: 'microtime' },
    3: { name: 'series', type: eventSeries },
    4: { name: 'reportingController', type: 'string' },
    5: { name: 'reportingInstance', type: 'string' },
    6: { name: 'action', type: 'string' },
    7: { name: 'reason', type: 'string' },
    8: { name: 'regarding', type: objectReference },
    9: { name: 'related', type: objectReference },
    10: { name: 'note', type: 'string' },
    11: { name: 'type', type: 'string' },
    12: { name: 'deprecatedSource', type: eventSource },
    13: { name: 'deprecatedFirstTimestamp', type: 'time' },
    14: { name: 'deprecatedLastTimestamp', type: 'time' },
    15: { name: 'deprecatedCount', type: 'int' },
  },
  'coordination.k8s.io/v1/Lease': {
    1: { name: 'metadata', type: objectMeta },
    2: {
      name: 'spec',
      type: {
        1: { name: 'holderIdentity', type: 'string' },
        2: { name: 'leaseDurationSeconds', type: 'int' },
        3: { name: 'acquireTime', type: 'microtime' },
        4: { name: 'renewTime', type: 'microtime' },
        5: { name: 'leaseTransitions', type: 'int' },
        6: { name: 'strategy', type: 'string' },
        7: { name: 'preferredHolder', type: 'string' },
      },
    },
  },
  'v1/DeleteOptions': {
    1: { name: 'gracePeriodSeconds', type: 'int' },
    2: { name: 'preconditions', type: { 1: { name: 'uid', type: 'string' }, 2: { name: 'resourceVersion', type: 'string' } } },
    3: { name: 'orphanDependents', type: 'bool' },
    4: { name: 'propagationPolicy', type: 'string' },
    5: { name: 'dryRun', type: 'string', repeated: true },
  },
};
kinds['meta.k8s.io/v1/DeleteOptions'] = kinds['v1/DeleteOptions'] as Schema;

class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  done(): boolean {
    return this.pos >= this.buf.length;
  }

  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.buf.length) throw new ProtobufError('truncated varint');
      const b = this.buf[this.pos++] ?? 0;
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 128;
    }
    throw new ProtobufError('varint too long');
  }

  bytes(): Buffer {
    const n = this.varint();
    if (n > this.buf.length - this.pos) throw new ProtobufError('truncated field');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else throw new ProtobufError(`unsupported wire type ${wire}`);
    if (this.pos > this.buf.length) throw new ProtobufError('truncated field');
  }
}

/** int64 fields are varints of the two's complement: negative values come out as huge numbers. */
function signed(n: number): number {
  return n >= 2 ** 63 ? n - 2 ** 64 : n;
}

function timestamp(msg: Buffer, micro: boolean): string {
  const r = new Reader(msg);
  let seconds = 0;
  let nanos = 0;
  while (!r.done()) {
    const tag = r.varint();
    if (tag >>> 3 === 1 && (tag & 7) === 0) seconds = signed(r.varint());
    else if (tag >>> 3 === 2 && (tag & 7) === 0) nanos = r.varint();
    else r.skip(tag & 7);
  }
  const iso = new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, '');
  return micro ? `${iso}.${String(Math.floor(nanos / 1000)).padStart(6, '0')}Z` : `${iso}Z`;
}

function mapEntry(msg: Buffer): [string, Buffer] {
  const r = new Reader(msg);
  let key = '';
  let value: Buffer = Buffer.alloc(0);
  while (!r.done()) {
    const tag = r.varint();
    if (tag >>> 3 === 1 && (tag & 7) === 2) key = r.bytes().toString('utf8');
    else if (tag >>> 3 === 2 && (tag & 7) === 2) value = r.bytes();
    else r.skip(tag & 7);
  }
  return [key, value];
}

function decodeMessage(buf: Buffer, schema: Schema): Record<string, unknown> {
  const r = new Reader(buf);
  const out: Record<string, unknown> = {};
  while (!r.done()) {
    const tag = r.varint();
    const field = schema[tag >>> 3];
    const wire = tag & 7;
    if (!field) {
      r.skip(wire);
      continue;
    }
    let value: unknown;
    const t = field.type;
    if (t === 'int' || t === 'bool') {
      if (wire !== 0) throw new ProtobufError(`field ${field.name}: expected a varint`);
      const n = r.varint();
      value = t === 'bool' ? n !== 0 : signed(n);
    } else {
      if (wire !== 2) throw new ProtobufError(`field ${field.name}: expected a length-delimited value`);
      const b = r.bytes();
      if (t === 'string') value = b.toString('utf8');
      else if (t === 'bytes') value = b.toString('base64');
      else if (t === 'time' || t === 'microtime') value = timestamp(b, t === 'microtime');
      else if (t === 'stringMap' || t === 'bytesMap') {
        const [k, v] = mapEntry(b);
        const m = (out[field.name] ?? {}) as Record<string, string>;
        m[k] = t === 'stringMap' ? v.toString('utf8') : v.toString('base64');
        out[field.name] = m;
        continue;
      } else value = decodeMessage(b, t);
    }
    if (field.repeated) ((out[field.name] ??= []) as unknown[]).push(value);
    else out[field.name] = value;
  }
  return out;
}

const magic = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

/** A protobuf body as the JSON object it stands for; throws ProtobufError when it cannot. */
export function decodeKubeProtobuf(body: Buffer): Record<string, unknown> {
  if (body.length < 4 || !body.subarray(0, 4).equals(magic)) throw new ProtobufError('missing the k8s protobuf prefix');
  const envelope = new Reader(body.subarray(4));
  let apiVersion = '';
  let kind = '';
  let raw: Buffer | undefined;
  while (!envelope.done()) {
    const tag = envelope.varint();
    const wire = tag & 7;
    if (tag >>> 3 === 1 && wire === 2) {
      const tm = new Reader(envelope.bytes());
      while (!tm.done()) {
        const t = tm.varint();
        if (t >>> 3 === 1 && (t & 7) === 2) apiVersion = tm.bytes().toString('utf8');
        else if (t >>> 3 === 2 && (t & 7) === 2) kind = tm.bytes().toString('utf8');
        else tm.skip(t & 7);
      }
    } else if (tag >>> 3 === 2 && wire === 2) raw = envelope.bytes();
    else envelope.skip(wire);
  }
  const schema = kinds[`${apiVersion}/${kind}`];
  if (!schema) throw new ProtobufError(`protobuf is not supported for ${apiVersion}/${kind}; send JSON`);
  return { apiVersion, kind, ...decodeMessage(raw ?? Buffer.alloc(0), schema) };
}
