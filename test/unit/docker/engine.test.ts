import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ReconcileError } from '../../../runtime/errors.js';
import { engineMessage, parseAddress, transportError } from '../../../providers/docker/engine.js';
import { summariseUsage } from '../../../providers/docker/usage.js';
import type { ContainerInfo } from 'dockerode';

describe('engine address', () => {
  const ok: Array<[string, boolean, ReturnType<typeof parseAddress>]> = [
    ['unix:///var/run/docker.sock', false, { kind: 'unix', socketPath: '/var/run/docker.sock' }],
    ['tcp://127.0.0.1:2376', true, { kind: 'tcp', host: '127.0.0.1', port: 2376 }],
    ['tcp://engine-1.example', true, { kind: 'tcp', host: 'engine-1.example', port: 2376 }],
    ['tcp://engine-1.example', false, { kind: 'tcp', host: 'engine-1.example', port: 2375 }],
    ['tcp://[::1]:2376', true, { kind: 'tcp', host: '::1', port: 2376 }],
  ];
  for (const [address, tls, expected] of ok) {
    it(`parses ${address}${tls ? ' (TLS)' : ''}`, () => assert.deepEqual(parseAddress(address, tls), expected));
  }
  for (const bad of ['http://127.0.0.1:2376', 'unix://relative.sock', 'tcp://host:99999', '127.0.0.1:2376', 'tcp://']) {
    it(`rejects ${bad} as InvalidAddress (not retryable)`, () => {
      assert.throws(
        () => parseAddress(bad, true),
        (err: unknown) => err instanceof ReconcileError && err.reason === 'InvalidAddress' && !err.retryable,
      );
    });
  }
});

function sysError(code: string, message = code): Error {
  return Object.assign(new Error(message), { code });
}

describe('transport errors', () => {
  const addr = 'tcp://10.0.0.5:2376';
  const table: Array<[string, unknown, string | undefined, RegExp?]> = [
    ['connection refused', sysError('ECONNREFUSED', 'connect ECONNREFUSED 10.0.0.5:2376'), 'NodeUnreachable', /unreachable \(ECONNREFUSED\)/],
    ['no such socket', sysError('ENOENT'), 'NodeUnreachable'],
    ['host unreachable', sysError('EHOSTUNREACH'), 'NodeUnreachable'],
    ['deadline', Object.assign(new Error('The operation was aborted'), { name: 'AbortError', code: 'ABORT_ERR' }), 'NodeUnreachable', /did not answer within 5000 ms/],
    ['socket hang up', new Error('socket hang up'), 'NodeUnreachable'],
    ['client cert refused', sysError('ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', 'error:0A000412:SSL routines::sslv3 alert bad certificate'), 'TLSError', /rejected our client certificate/],
    ['client cert of unknown CA', sysError('ERR_SSL_TLSV1_ALERT_UNKNOWN_CA'), 'TLSError', /rejected our client certificate/],
    ['server cert unverifiable', sysError('UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unable to verify the first certificate'), 'TLSError', /server certificate could not be verified/],
    ['server cert for another host', sysError('ERR_TLS_CERT_ALTNAME_INVALID'), 'TLSError', /server certificate/],
    ['TLS to a plain port', sysError('ERR_SSL_WRONG_VERSION_NUMBER'), 'TLSError', /does not speak TLS/],
    ['plain HTTP to a TLS port', Object.assign(new Error('(HTTP code 400)'), { statusCode: 400, json: Buffer.from('Client sent an HTTP request to an HTTPS server.\n') }), 'TLSError', /requires TLS/],
    ['an HTTP error the engine answered', Object.assign(new Error('(HTTP code 404)'), { statusCode: 404, json: { message: 'No such container: x' } }), undefined],
  ];
  for (const [name, err, reason, message] of table) {
    it(`${name} → ${reason ?? 'left to the caller'}`, () => {
      const e = transportError(err, addr, 'describe the engine', 5000);
      assert.equal(e?.reason, reason);
      if (e) {
        assert.match(e.message, /^cannot describe the engine: /);
        assert.ok(e.message.includes(addr), e.message);
        assert.equal(e.retryable, reason === 'NodeUnreachable');
      }
      if (message) assert.match(e?.message ?? '', message);
    });
  }

  it('prefers the engine’s own message for HTTP errors', () => {
    const err = Object.assign(new Error('(HTTP code 409) unexpected - Conflict. '), { statusCode: 409, json: { message: 'Conflict.' } });
    assert.equal(engineMessage(err), 'Conflict.');
    assert.equal(engineMessage(new Error(' plain ')), 'plain');
  });
});

function container(labels: Record<string, string>, state: string, ports: ContainerInfo['Ports'] = []): ContainerInfo {
  return { Id: Math.random().toString(16), Names: [], Image: 'i', ImageID: 'i', Command: '', Created: 0, Ports: ports, Labels: labels, State: state, Status: '', HostConfig: { NetworkMode: 'default' }, NetworkSettings: { Networks: {} }, Mounts: [] };
}

describe('engine usage', () => {
  it('counts stratus containers, groups and labels; ports from labels (any state) and foreign bindings', () => {
    const usage = summariseUsage([
      container({ 'stratus.dev/uid': 'u1', 'stratus.dev/group': 'shop/cache', 'stratus.dev/host-ports': '6379/TCP@0.0.0.0', tier: 'db' }, 'running'),
      container({ 'stratus.dev/uid': 'u2', 'stratus.dev/group': 'shop/cache', 'stratus.dev/host-ports': '6380/TCP@0.0.0.0', tier: 'db' }, 'exited'),
      container({ 'stratus.dev/uid': 'u3', 'stratus.dev/host-ports': '' }, 'running'),
      container({}, 'running', [
        { IP: '0.0.0.0', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' },
        { IP: '::', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' },
        { IP: '', PrivatePort: 9000, PublicPort: 0, Type: 'tcp' },
      ]),
      container({}, 'exited'),
    ]);
    assert.equal(usage.containers, 3);
    assert.equal(usage.running, 2);
    assert.equal(usage.foreignContainers, 2);
    assert.deepEqual(usage.groups, { 'shop/cache': 2 });
    assert.deepEqual(usage.labels.tier, { db: 2 });
    assert.equal(usage.labels['stratus.dev/uid'], undefined, 'bookkeeping labels are not inventory');
    assert.deepEqual(usage.hostPorts, [
      { port: 6379, protocol: 'TCP', hostIP: '0.0.0.0', uid: 'u1' },
      { port: 6380, protocol: 'TCP', hostIP: '0.0.0.0', uid: 'u2' },
      { port: 8080, protocol: 'TCP', hostIP: '0.0.0.0' },
      { port: 8080, protocol: 'TCP', hostIP: '::' },
    ]);
  });
});
