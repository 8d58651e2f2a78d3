import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cidrRange, ipv4ToNumber, lowestFree, numberToIPv4, poolContains, poolSize } from '../../../controllers/addresspool.js';
import { ReconcileError } from '../../../runtime/errors.js';

test('a pool hands out every address of its CIDRs but the network and broadcast ones (none excluded at /31 and /32)', () => {
  const table: [string, string, string, number][] = [
    ['198.51.100.0/28', '198.51.100.1', '198.51.100.14', 14],
    ['198.51.100.7/28', '198.51.100.1', '198.51.100.14', 14],
    ['203.0.113.0/24', '203.0.113.1', '203.0.113.254', 254],
    ['203.0.113.8/31', '203.0.113.8', '203.0.113.9', 2],
    ['203.0.113.9/32', '203.0.113.9', '203.0.113.9', 1],
  ];
  for (const [cidr, first, last, size] of table) {
    const r = cidrRange(cidr);
    assert.deepEqual([numberToIPv4(r.first), numberToIPv4(r.last), poolSize([cidr])], [first, last, size], cidr);
  }
});

test('a CIDR that is not one is an InvalidSpec error, not an exception of another kind', () => {
  for (const bad of ['198.51.100.0', '198.51.100.0/33', '198.51.100/28', '256.0.0.0/8', 'x/1']) {
    assert.throws(() => cidrRange(bad), (e: unknown) => e instanceof ReconcileError && e.reason === 'InvalidSpec' && !e.retryable, bad);
  }
  assert.equal(ipv4ToNumber('1.2.3'), undefined);
  assert.equal(ipv4ToNumber('01.2.3.4000'), undefined);
});

test('the lowest free address comes from the lowest CIDR, skipping taken ones; none when all are taken', () => {
  const cidrs = ['203.0.113.16/30', '198.51.100.0/30'];
  assert.equal(lowestFree(cidrs, new Set()), '198.51.100.1');
  assert.equal(lowestFree(cidrs, new Set(['198.51.100.1'])), '198.51.100.2');
  assert.equal(lowestFree(cidrs, new Set(['198.51.100.1', '198.51.100.2'])), '203.0.113.17');
  assert.equal(lowestFree(cidrs, new Set(['198.51.100.1', '198.51.100.2', '203.0.113.17', '203.0.113.18'])), undefined);
  assert.equal(poolContains(cidrs, '198.51.100.3'), false, 'broadcast');
  assert.equal(poolContains(cidrs, '203.0.113.18'), true);
});
