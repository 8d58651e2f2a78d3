import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JsonStreamParser, OvsdbError, OvsdbProtocolError, checkTransactResult, parseEndpoint, type OvsdbOperation } from '../../../providers/ovs/ovsdb.js';

/**
 * Recorded from ovsdb-server 3.1 (one read() of its socket): seven replies in one chunk,
 * including a string with braces, escaped quotes and a trailing escaped backslash, two
 * failed operations, a monitor_cond snapshot and an RPC error.
 */
const RECORDED =
  '{"id":1,"result":[{"rows":[{"name":"brrec","external_ids":["map",[["note","{x}\\"q\\\\"]]]}]}],"error":null}' +
  '{"id":2,"result":[{"details":"5000 is not in the valid range 0 to 4095 (inclusive)","error":"constraint violation"}],"error":null}' +
  '{"id":3,"result":[{"uuid":["uuid","3660e810-3fd2-4fc6-bc31-93ef6adddc01"]},{}],"error":null}' +
  '{"id":4,"result":[{"details":"\\"where\\" clause test failed","error":"timed out"}],"error":null}' +
  '{"id":5,"result":{"Port":{"dbe230c3-0063-4b6f-89aa-6889c96ce7f6":{"initial":{"name":"brrec"}}}},"error":null}' +
  '{"id":6,"error":"unknown method"}' +
  '{"id":7,"result":["hi"],"error":null}';

/** The server's own keepalive and a monitor notification, as sent by ovsdb-server. */
const ECHO_AND_UPDATE =
  '{"id":"echo","method":"echo","params":[]}' +
  '{"id":null,"method":"update2","params":["m1",{"Port":{"dbe230c3-0063-4b6f-89aa-6889c96ce7f6":{"modify":{"tag":7}}}}]}';

const expectedRecorded = (): unknown[] => JSON.parse(`[${RECORDED.replace(/\}\{"id"/g, '},{"id"')}]`) as unknown[];

test('seven replies in one chunk come out as seven messages, in order', () => {
  const values = new JsonStreamParser().push(Buffer.from(RECORDED));
  assert.equal(values.length, 7);
  assert.deepEqual(values, expectedRecorded());
  assert.deepEqual((values[0] as { result: unknown }).result, [
    { rows: [{ name: 'brrec', external_ids: ['map', [['note', '{x}"q\\']]] }] },
  ]);
});

test('a reply split across two chunks at every byte position parses identically', () => {
  const bytes = Buffer.from(RECORDED);
  const want = expectedRecorded();
  for (let cut = 0; cut <= bytes.length; cut++) {
    const p = new JsonStreamParser();
    const got = [...p.push(bytes.subarray(0, cut)), ...p.push(bytes.subarray(cut))];
    assert.deepEqual(got, want, `split at byte ${cut}`);
    assert.equal(p.pending, false);
  }
});

test('one byte at a time, including multi-byte UTF-8 characters split mid-sequence', () => {
  const msg = '{"id":9,"result":[{"rows":[{"name":"brücke-橋-{]","x":"\\\\\\""}]}],"error":null}{"id":10,"result":[],"error":null}';
  const bytes = Buffer.from(msg);
  const p = new JsonStreamParser();
  const got: unknown[] = [];
  for (let i = 0; i < bytes.length; i++) got.push(...p.push(bytes.subarray(i, i + 1)));
  assert.deepEqual(got, [
    { id: 9, result: [{ rows: [{ name: 'brücke-橋-{]', x: '\\"' }] }], error: null },
    { id: 10, result: [], error: null },
  ]);
});

test('strings with braces, brackets and escaped quotes do not end a message early', () => {
  const tricky = { id: 1, result: [{ rows: [{ s: '}}]]{"\\"}', t: 'a\\', u: '\\"{' }] }], error: null };
  const text = JSON.stringify(tricky);
  const p = new JsonStreamParser();
  assert.deepEqual(p.push(text.slice(0, text.indexOf('}}') + 1)), []);
  assert.equal(p.pending, true);
  assert.deepEqual(p.push(text.slice(text.indexOf('}}') + 1)), [tricky]);
});

test('whitespace and newlines between messages are ignored; the server echo and update2 are parsed', () => {
  const values = new JsonStreamParser().push(`\n ${ECHO_AND_UPDATE.replace('}{', '}\r\n\t{')}  `);
  assert.deepEqual(values, [
    { id: 'echo', method: 'echo', params: [] },
    { id: null, method: 'update2', params: ['m1', { Port: { 'dbe230c3-0063-4b6f-89aa-6889c96ce7f6': { modify: { tag: 7 } } } }] },
  ]);
});

test('garbage between messages is a protocol error', () => {
  const p = new JsonStreamParser();
  assert.throws(() => p.push('{"id":1,"result":[],"error":null}x{'), OvsdbProtocolError);
});

test('a brace-balanced but invalid value is a protocol error naming JSON', () => {
  assert.throws(() => new JsonStreamParser().push('{"id":1,,}'), /invalid JSON/);
});

const ops: OvsdbOperation[] = [
  { op: 'insert', table: 'Interface', row: { name: 'p1' }, 'uuid-name': 'i' },
  { op: 'insert', table: 'Port', row: { name: 'p1', tag: 5000 } },
];

const cases: { name: string; result: unknown; want: RegExp | number }[] = [
  { name: 'all operations succeeded', result: [{ uuid: ['uuid', 'a'] }, { uuid: ['uuid', 'b'] }], want: 2 },
  {
    name: 'an operation failed: the error names it and its details',
    result: [{ uuid: ['uuid', 'a'] }, { error: 'constraint violation', details: '5000 is not in the valid range 0 to 4095 (inclusive)' }],
    want: /failed at insert Port \(op 1\): constraint violation: 5000 is not in the valid range/,
  },
  {
    name: 'the first operation failed and later ones are null',
    result: [{ error: 'timed out', details: '"where" clause test failed' }, null],
    want: /failed at insert Interface \(op 0\): timed out/,
  },
  {
    name: 'the commit failed: an extra error element after the operations',
    result: [{ uuid: ['uuid', 'a'] }, { uuid: ['uuid', 'b'] }, { error: 'referential integrity violation', details: 'x' }],
    want: /failed at commit \(op 2\): referential integrity violation: x/,
  },
  { name: 'too few results is a protocol error', result: [{}], want: /1 results for 2 operations/ },
  { name: 'a non-array result is a protocol error', result: { rows: [] }, want: /not an array/ },
];

for (const c of cases) {
  test(`transact result check: ${c.name}`, () => {
    if (typeof c.want === 'number') {
      assert.equal(checkTransactResult(ops, c.result).length, c.want);
      return;
    }
    assert.throws(() => checkTransactResult(ops, c.result), c.want);
  });
}

test('a failed operation is an OvsdbError carrying the op index, name, tag and details', () => {
  try {
    checkTransactResult(ops, [{}, { error: 'constraint violation', details: 'd' }]);
    assert.fail('expected an error');
  } catch (err) {
    assert.ok(err instanceof OvsdbError);
    assert.equal(err.opIndex, 1);
    assert.equal(err.opName, 'insert Port');
    assert.equal(err.error, 'constraint violation');
    assert.equal(err.details, 'd');
  }
});

test('endpoints: unix paths, tcp host:port (IPv6 in brackets), and clear errors otherwise', () => {
  assert.deepEqual(parseEndpoint('unix:/var/run/openvswitch/db.sock'), { kind: 'unix', path: '/var/run/openvswitch/db.sock' });
  assert.deepEqual(parseEndpoint('tcp:10.0.0.5:6640'), { kind: 'tcp', host: '10.0.0.5', port: 6640 });
  assert.deepEqual(parseEndpoint('tcp:[::1]:6640'), { kind: 'tcp', host: '::1', port: 6640 });
  for (const bad of ['unix:', 'tcp:host', 'tcp:host:0', 'tcp:host:70000', 'ssl:1.2.3.4:6640', '/var/run/db.sock']) {
    assert.throws(() => parseEndpoint(bad), /invalid OVSDB endpoint/, bad);
  }
});
