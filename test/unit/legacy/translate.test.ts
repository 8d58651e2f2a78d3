import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ComputeNode, Instance } from '../../../crds/types.js';
import { guestHostname, isDnsLabel, objectName } from '../../../legacy/names.js';
import { cloudBrainState, cloudBrainView } from '../../../legacy/cloudbrain.js';
import { hostSpec, networkSpec } from '../../../legacy/datacentred.js';
import { bindPorts, engineAddress, engineStatus } from '../../../legacy/clementine.js';
import { compile, LegacyError, parseJsonObject, fromDownstream } from '../../../legacy/http.js';
import { ApiError } from '../../../runtime/client.js';

const status = (fn: () => unknown): number => {
  try {
    fn();
  } catch (err) {
    if (err instanceof LegacyError) return err.status;
    throw err;
  }
  return 0;
};

const instance = (state: string | undefined, deleting = false): Instance => ({
  apiVersion: 'compute.stratus.dev/v1alpha1',
  kind: 'Instance',
  metadata: { name: 'i', uid: '0a0b0c0d-0000-4000-8000-000000000001', ...(deleting ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}) },
  spec: { provider: 'libvirt', image: 'debian-12' },
  ...(state ? { status: { state: state as NonNullable<Instance['status']>['state'] } } : {}),
});

describe('legacy names', () => {
  const table: [string, string | RegExp][] = [
    ['web-1', 'web-1'],
    ['ns.example.com', /^ns-example-com-[0-9a-f]{8}$/],
    ['ns_example_com_vlan_10', /^ns-example-com-vlan-10-[0-9a-f]{8}$/],
    ['Laptop', /^laptop-[0-9a-f]{8}$/],
    ['___', /^x-[0-9a-f]{8}$/],
    ['a'.repeat(80), /^a{54}-[0-9a-f]{8}$/],
  ];
  for (const [legacy, want] of table) {
    it(`maps ${JSON.stringify(legacy.slice(0, 30))} to a DNS-1123 label`, () => {
      const got = objectName(legacy);
      assert.ok(isDnsLabel(got), got);
      if (typeof want === 'string') assert.equal(got, want);
      else assert.match(got, want);
      assert.equal(objectName(legacy), got, 'deterministic');
    });
  }
  it('keeps legacy names that sanitise alike apart', () => {
    assert.notEqual(objectName('ns.example.com'), objectName('ns-example.com'));
    assert.notEqual(objectName('Web'), objectName('WEB'));
  });
  it('takes the first label of an FQDN as the guest hostname', () => {
    assert.equal(guestHostname('ns.example.com'), 'ns');
    assert.equal(guestHostname('DB1.example.com'), 'db1');
    assert.equal(guestHostname('_x.example.com'), undefined);
  });
});

describe('Cloud Brain state mapping', () => {
  const table: [string | undefined, boolean, string][] = [
    [undefined, false, 'creating'],
    ['pending', false, 'creating'],
    ['creating', false, 'creating'],
    ['failed', false, 'creating'],
    ['starting', false, 'starting'],
    ['stopped', false, 'starting'],
    ['stopping', false, 'starting'],
    ['running', false, 'running'],
    ['terminating', false, 'terminating'],
    ['running', true, 'terminating'],
  ];
  for (const [state, deleting, want] of table) {
    it(`${state ?? 'no status'}${deleting ? ' while deleting' : ''} → ${want}`, () => assert.equal(cloudBrainState(instance(state, deleting)), want));
  }
  it('shows the uid as id and null until an address is known', () => {
    const inst = instance('running');
    assert.deepEqual(cloudBrainView(inst), { id: inst.metadata!.uid, provider: 'libvirt', image: 'debian-12', ip_address: null, state: 'running' });
    inst.status!.ipAddress = '10.0.0.5';
    assert.equal(cloudBrainView(inst).ip_address, '10.0.0.5');
  });
});

describe('DataCentred bodies', () => {
  const example = { memory: 512, disks: [8, 20], networks: ['ns_example_com_vlan_10'], install: true, location: 'http://mirror/x.iso', console: true };
  it('maps the documented body onto an Instance spec', () => {
    assert.deepEqual(hostSpec(example), {
      provider: 'libvirt',
      memoryMiB: 512,
      disks: [
        { name: 'disk0', sizeGiB: 8 },
        { name: 'disk1', sizeGiB: 20 },
      ],
      networks: [{ name: objectName('ns_example_com_vlan_10') }],
      libvirt: { location: 'http://mirror/x.iso', console: 'serial' },
    });
  });
  const bad: [string, Record<string, unknown>][] = [
    ['memory missing', { ...example, memory: undefined }],
    ['memory negative', { ...example, memory: -1 }],
    ['disks with a float', { ...example, disks: [1.5] }],
    ['networks not a list', { ...example, networks: 'a' }],
    ['install false', { ...example, install: false }],
    ['location ftp-less', { ...example, location: 'file:///x' }],
  ];
  for (const [name, body] of bad) it(`refuses ${name} with 400`, () => assert.equal(status(() => hostSpec(body)), 400));
  it('reads a network body', () => {
    assert.deepEqual(networkSpec({ bridge: 'br-stg', vlan: 10 }), { bridge: 'br-stg', vlan: 10 });
    assert.equal(status(() => networkSpec({ bridge: 'br-stg', vlan: 4095 })), 400);
    assert.equal(status(() => networkSpec({ bridge: 'x'.repeat(16), vlan: 1 })), 400);
  });
});

describe('clementine bodies', () => {
  it('reads bind_ports as an object or a list', () => {
    // (A bare integer key comes first in a JS object.)
    assert.deepEqual(bindPorts({ '80/tcp': 8080, '53/udp': '5353', '22': 2222 }), [
      { containerPort: 22, hostPort: 2222, protocol: 'TCP' },
      { containerPort: 80, hostPort: 8080, protocol: 'TCP' },
      { containerPort: 53, hostPort: 5353, protocol: 'UDP' },
    ]);
    assert.deepEqual(bindPorts(['8080:80', '5353:53/udp']), [
      { hostPort: 8080, containerPort: 80, protocol: 'TCP' },
      { hostPort: 5353, containerPort: 53, protocol: 'UDP' },
    ]);
    assert.deepEqual(bindPorts(undefined), []);
    for (const b of ['80', ['x:80'], { '80/sctp': 1 }, { '80': 0 }, ['1:80', '2:80']]) assert.equal(status(() => bindPorts(b)), 400, JSON.stringify(b));
  });
  it('reads an engine address from address or host and port', () => {
    assert.equal(engineAddress({ address: 'tcp://10.0.0.1:2376' }).address, 'tcp://10.0.0.1:2376');
    assert.equal(engineAddress({ address: 'docker1:2375' }).address, 'tcp://docker1:2375');
    assert.equal(engineAddress({ host: 'docker1' }).address, 'tcp://docker1:2376');
    assert.equal(status(() => engineAddress({})), 400);
    assert.equal(status(() => engineAddress({ host: 'a', port: 70000 })), 400);
  });
  it('derives an engine status from the Ready condition', () => {
    const node = (conditions: NonNullable<ComputeNode['status']>['conditions']): ComputeNode => ({
      apiVersion: 'compute.stratus.dev/v1alpha1',
      kind: 'ComputeNode',
      metadata: { name: 'e' },
      spec: { provider: 'docker', docker: { address: 'tcp://a:1' } },
      status: { conditions },
    });
    assert.equal(engineStatus(node(undefined)).status, 'unknown');
    assert.equal(engineStatus(node([{ type: 'Ready', status: 'True' }])).status, 'up');
    const down = engineStatus(node([{ type: 'Ready', status: 'False', reason: 'NodeUnreachable', message: 'ECONNREFUSED' }]));
    assert.deepEqual(down, { status: 'down', message: 'NodeUnreachable: ECONNREFUSED' });
  });
});

describe('legacy HTTP plumbing', () => {
  it('routes patterns with optional trailing slashes and decoded parameters', () => {
    const m = compile('/host/:hostname/network/:networkname/');
    assert.deepEqual(m('/host/a.b/network/n_1/'), { hostname: 'a.b', networkname: 'n_1' });
    assert.deepEqual(m('/host/a.b/network/n_1'), { hostname: 'a.b', networkname: 'n_1' });
    assert.deepEqual(m('/host/a%20b/network/x'), { hostname: 'a b', networkname: 'x' });
    assert.equal(m('/host/a/network/'), undefined);
    assert.equal(m('/host/%E0%A4%A/network/x'), undefined, 'bad escapes do not match');
    assert.equal(compile('/instances')('/instances/'), undefined);
  });
  it('parses only JSON objects', () => {
    assert.deepEqual(parseJsonObject(Buffer.from('{"a":1}')), { a: 1 });
    for (const b of ['', '[]', 'null', '1', '{', '"x"']) assert.equal(status(() => parseJsonObject(Buffer.from(b))), 400, b);
  });
  it('maps downstream failures: rejected object 400, not found 404, conflict 409, auth/5xx 502, unreachable 503', () => {
    assert.equal(fromDownstream(new ApiError(422, 'Invalid', 'x', {})).status, 400);
    assert.equal(fromDownstream(new ApiError(404, 'NotFound', 'x', {})).status, 404);
    assert.equal(fromDownstream(new ApiError(409, 'AlreadyExists', 'x', {})).status, 409);
    assert.equal(fromDownstream(new ApiError(403, 'Forbidden', 'x', {})).status, 502);
    assert.equal(fromDownstream(new ApiError(500, 'InternalError', 'x', {})).status, 502);
    assert.equal(fromDownstream(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })).status, 503);
  });
});
