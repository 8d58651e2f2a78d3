/**
 * Decoding the protobuf bodies kubectl's typed clients send: a hand-encoded ConfigMap, Secret
 * and DeleteOptions come out as the JSON objects they stand for; malformed input is a
 * ProtobufError (a 415 for the client), never a crash.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeKubeProtobuf, ProtobufError } from '../../../apiserver/protobuf.js';

function varint(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

const field = (num: number, value: Buffer | string): Buffer => {
  const b = typeof value === 'string' ? Buffer.from(value) : value;
  return Buffer.concat([varint((num << 3) | 2), varint(b.length), b]);
};
const intField = (num: number, n: number): Buffer => Buffer.concat([varint(num << 3), varint(n)]);
const entry = (num: number, k: string, v: string | Buffer): Buffer => field(num, Buffer.concat([field(1, k), field(2, v)]));

function envelope(apiVersion: string, kind: string, raw: Buffer): Buffer {
  const typeMeta = Buffer.concat([field(1, apiVersion), field(2, kind)]);
  return Buffer.concat([Buffer.from('k8s\0'), field(1, typeMeta), field(2, raw), field(3, ''), field(4, '')]);
}

describe('protobuf request bodies', () => {
  it('decodes a ConfigMap with metadata, labels and data', () => {
    const meta = Buffer.concat([field(1, 'settings'), field(3, 'default'), entry(11, 'tier', 'gold'), field(14, 'example.com/hold'), field(8, Buffer.concat([intField(1, 1767225600)]))]);
    const raw = Buffer.concat([field(1, meta), entry(2, 'a', '1'), entry(2, 'b', '2'), entry(3, 'bin', Buffer.from([0, 1, 2])), intField(4, 1), field(99, 'ignored unknown field')]);
    assert.deepEqual(decodeKubeProtobuf(envelope('v1', 'ConfigMap', raw)), {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'settings', namespace: 'default', labels: { tier: 'gold' }, finalizers: ['example.com/hold'], creationTimestamp: '2026-01-01T00:00:00Z' },
      data: { a: '1', b: '2' },
      binaryData: { bin: 'AAEC' },
      immutable: true,
    });
  });

  it('decodes Secret data as base64 and DeleteOptions with preconditions', () => {
    const secret = Buffer.concat([field(1, field(1, 'creds')), entry(2, 'user', 'admin'), field(3, 'Opaque')]);
    assert.deepEqual(decodeKubeProtobuf(envelope('v1', 'Secret', secret)), {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'creds' },
      data: { user: Buffer.from('admin').toString('base64') },
      type: 'Opaque',
    });
    const del = Buffer.concat([intField(1, 0), field(2, field(1, 'uid-1')), field(4, 'Foreground'), field(5, 'All')]);
    assert.deepEqual(decodeKubeProtobuf(envelope('v1', 'DeleteOptions', del)), {
      apiVersion: 'v1',
      kind: 'DeleteOptions',
      gracePeriodSeconds: 0,
      preconditions: { uid: 'uid-1' },
      propagationPolicy: 'Foreground',
      dryRun: ['All'],
    });
  });

  it('rejects malformed or unsupported bodies with ProtobufError', () => {
    const good = envelope('v1', 'ConfigMap', field(1, field(1, 'x')));
    for (const bad of [
      Buffer.from('{"kind":"ConfigMap"}'),
      good.subarray(0, 12),
      Buffer.concat([Buffer.from('k8s\0'), Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])]),
      envelope('apps/v1', 'Deployment', Buffer.alloc(0)),
      envelope('v1', 'ConfigMap', Buffer.concat([varint((1 << 3) | 0), varint(5)])),
      envelope('v1', 'ConfigMap', Buffer.from([0x0b])),
    ]) {
      assert.throws(() => decodeKubeProtobuf(bad), ProtobufError, bad.toString('hex'));
    }
  });
});
