/**
 * `stratus serve --dns-listen/--dns-zone`: the embedded server answers for the zone from the
 * start (SOA, NXDOMAIN with the SOA) over UDP and TCP, asked with real `dig`; bad flags stop
 * the command with a message naming the flag; `off` serves no DNS.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startStratusServe } from '../harness/apiserver.js';
import { dig } from '../harness/dig.js';
import { requireBinary } from '../harness/process.js';

test('stratus serve answers for --dns-zone on the --dns-listen address over UDP and TCP', async () => {
  requireBinary('dig');
  let out = '';
  const serve = await startStratusServe({ controllers: true, args: ['--dns-zone', 'E2E.Test.'], onOutput: (s) => (out += s) });
  try {
    const m = /DNS for zone e2e\.test at 127\.0\.0\.1:(\d+) \(UDP and TCP\)/.exec(out);
    assert.ok(m, out);
    const port = Number(m[1]);
    for (const tcp of [false, true]) {
      const soa = await dig('127.0.0.1', port, 'e2e.test', 'SOA', { tcp });
      assert.equal(soa.status, 'NOERROR');
      assert.ok(soa.aa);
      assert.equal((await dig('127.0.0.1', port, 'nobody.default.e2e.test', 'A', { tcp })).status, 'NXDOMAIN');
      assert.equal((await dig('127.0.0.1', port, 'example.org', 'A', { tcp })).status, 'REFUSED');
    }
  } finally {
    await serve.stop();
  }
});

test('--dns-listen off serves no DNS; a bad --dns-listen stops serve naming the flag', async () => {
  let out = '';
  const serve = await startStratusServe({ controllers: true, args: ['--dns-listen', 'off'], onOutput: (s) => (out += s) });
  try {
    assert.doesNotMatch(out, /DNS for zone/);
  } finally {
    await serve.stop();
  }
  await assert.rejects(startStratusServe({ controllers: true, args: ['--dns-listen', 'localhost'] }), /--dns-listen: "localhost" is not HOST:PORT/);
});
