import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { bind, compare, compareResponse } from '../../e2e/legacy/replay.js';
import type { HttpResult } from '../../e2e/legacy/helpers.js';

const doc = {
  ok: true,
  data: [{ id: 'f810083c6bfe204997cc17352cdf860fee757fcc03a2c29100ef81ebc09dc054', name: '/sad_hodgkin', ports: [{ port: 6379 }], labels: ['local'], ip: null }],
};
const gen = { 'body.data[*].id': 'docker-id', 'body.data[*].name': 'docker-name' } as const;

function result(status: number, body: unknown, headers: Record<string, string> = {}): HttpResult {
  const text = body === undefined ? '' : JSON.stringify(body);
  return { status, headers: new Headers(headers), text, json: body };
}

describe('the replay comparer', () => {
  it('accepts the same keys, types and values, with generated values in their format', () => {
    const actual = { ok: true, data: [{ id: 'a'.repeat(64), name: '/stratus-x-1234abcd', ports: [{ port: 6379 }], labels: ['local'], ip: null }] };
    assert.deepEqual(compare(doc, actual, gen), []);
  });

  it('reports a missing key, an extra key, a changed type, a changed value, a wrong length and a bad format', () => {
    const actual = { ok: 'true', data: [{ name: 'no-slash', ports: [{ port: 6380 }, { port: 1 }], labels: ['local'], ip: null, extra: 1 }] };
    const diffs = compare(doc, actual, gen);
    assert.ok(diffs.some((d) => d.startsWith('body.ok: expected boolean')), diffs.join('\n'));
    assert.ok(diffs.some((d) => d.includes('missing keys id')), diffs.join('\n'));
    assert.ok(diffs.some((d) => d.includes('unexpected keys extra')), diffs.join('\n'));
    assert.ok(diffs.some((d) => d.includes('body.data[0].name') && d.includes('docker-name')), diffs.join('\n'));
    assert.ok(diffs.some((d) => d.includes('body.data[0].ports: expected 1 entries')), diffs.join('\n'));
    assert.deepEqual(compare({ a: 1 }, { a: 2 }), ['body.a: expected 1, got 2']);
    assert.deepEqual(compare({ a: null }, { a: 'x' }).length, 1, 'null is its own type');
  });

  it('compares status, named headers (generated ones by format) and an empty body', () => {
    const ex = {
      document: 'd',
      section: 's',
      request: { method: 'POST', path: '/instances' },
      response: { status: 201, headers: { location: 'https://cloud-brain/instances/x' }, body: { id: 'x' } },
      generated: { 'headers.location': 'absolute-url', 'body.id': 'uuid' },
    } as const;
    const uuid = '0d654ef4-75b9-49a6-9f90-f9b1ae3501fc';
    assert.deepEqual(compareResponse(ex, result(201, { id: uuid }, { location: `http://127.0.0.1:1/instances/${uuid}` })), []);
    assert.equal(compareResponse(ex, result(201, { id: uuid }, { location: `/instances/${uuid}` })).length, 1, 'a relative Location is not absolute');
    assert.equal(compareResponse(ex, result(200, { id: uuid }, { location: `http://h/instances/${uuid}` })).length, 1);
    const empty = { document: 'd', section: 's', request: { method: 'GET', path: '/' }, response: { status: 204, body: null } };
    assert.deepEqual(compareResponse(empty, result(204, undefined)), []);
    assert.equal(compareResponse(empty, result(204, { x: 1 })).length, 1);
  });

  it('binds the document\'s literals to the test\'s values in strings and numbers', () => {
    const bound = bind({ addr: 'https://192.168.59.103:2376', port: 6379, other: 6380, list: ['https://192.168.59.103:2376/x'] }, {
      '192.168.59.103:2376': '127.0.0.1:5000',
      '#6379': 41000,
    });
    assert.deepEqual(bound, { addr: 'https://127.0.0.1:5000', port: 41000, other: 6380, list: ['https://127.0.0.1:5000/x'] });
  });
});
