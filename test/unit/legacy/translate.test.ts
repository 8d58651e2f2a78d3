import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ComputeNode, Instance } from '../../../crds/types.js';
import { guestHostname, isDnsLabel, objectName } from '../../../legacy/names.js';
import { cloudBrainState, cloudBrainView } from '../../../legacy/cloudbrain.js';
import { hostSpec, networkObjectName, networkSpec } from '../../../legacy/datacentred.js';
import { engineStatus } from '../../../legacy/clementine.js';
import { bindPorts, engineRequest, engineView, imageConfig, instanceSpec } from '../../../legacy/clementine-shapes.js';
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
    assert.deepEqual(hostSpec(example, 'ns.example.com'), {
      provider: 'libvirt',
      memoryMiB: 512,
      disks: [
        { name: 'disk0', sizeGiB: 8 },
        { name: 'disk1', sizeGiB: 20 },
      ],
      networks: [{ name: networkObjectName('ns.example.com', 'ns_example_com_vlan_10') }],
      libvirt: { location: 'http://mirror/x.iso', console: 'serial' },
    });
  });
  it('without install defines a blank domain (no location) and keeps the console', () => {
    const spec = hostSpec({ memory: 512, disks: [8], networks: [], console: true }, 'db');
    assert.deepEqual(spec.libvirt, { boot: 'disk', console: 'serial' });
    assert.deepEqual(hostSpec({ ...example, install: false }, 'db').libvirt, { boot: 'disk', console: 'serial' }, 'a location without install is not used');
  });
  it('names a network by its host and name, so two hosts may each have one of a name', () => {
    assert.notEqual(networkObjectName('a.example.com', 'mgmt'), networkObjectName('b.example.com', 'mgmt'));
    assert.ok(isDnsLabel(networkObjectName('a.example.com', 'mgmt')));
  });
  const bad: [string, Record<string, unknown>][] = [
    ['memory missing', { ...example, memory: undefined }],
    ['memory negative', { ...example, memory: -1 }],
    ['disks with a float', { ...example, disks: [1.5] }],
    ['networks not a list', { ...example, networks: 'a' }],
    ['install without location', { ...example, location: undefined }],
    ['location ftp-less', { ...example, location: 'file:///x' }],
  ];
  for (const [name, body] of bad) it(`refuses ${name} with 400`, () => assert.equal(status(() => hostSpec(body, 'h')), 400));
  it('reads a network body', () => {
    assert.deepEqual(networkSpec({ bridge: 'br-stg', vlan: 10 }), { bridge: 'br-stg', vlan: 10 });
    assert.equal(status(() => networkSpec({ bridge: 'br-stg', vlan: 4095 })), 400);
    assert.equal(status(() => networkSpec({ bridge: 'x'.repeat(16), vlan: 1 })), 400);
  });
});

describe('clementine bodies', () => {
  it('reads bind_ports as the document writes them, and the earlier object and list forms', () => {
    assert.deepEqual(bindPorts([{ proto: 'tcp', port: 6379, container_port: 6379 }]), [{ proto: 'tcp', port: 6379, container_port: 6379 }]);
    assert.deepEqual(bindPorts([{ proto: 'udp', host_ip: '0.0.0.0', port: 5353, container_port: 53 }]), [{ proto: 'udp', host_ip: '0.0.0.0', port: 5353, container_port: 53 }]);
    // (A bare integer key comes first in a JS object.)
    assert.deepEqual(bindPorts({ '80/tcp': 8080, '53/udp': '5353', '22': 2222 }), [
      { container_port: 22, port: 2222, proto: 'tcp' },
      { container_port: 80, port: 8080, proto: 'tcp' },
      { container_port: 53, port: 5353, proto: 'udp' },
    ]);
    assert.deepEqual(bindPorts(['8080:80', '5353:53/udp']), [
      { port: 8080, container_port: 80, proto: 'tcp' },
      { port: 5353, container_port: 53, proto: 'udp' },
    ]);
    assert.deepEqual(bindPorts(undefined), []);
    const bad = ['80', ['x:80'], { '80/sctp': 1 }, { '80': 0 }, ['1:80', '2:80'], [{ proto: 'sctp', port: 1, container_port: 1 }], [{ port: 1 }], [{ port: 1, container_port: 2, extra: 1 }], [{ port: 1, container_port: 2, host_ip: 'x' }]];
    for (const b of bad) assert.equal(status(() => bindPorts(b)), 400, JSON.stringify(b));
  });
  it('reads an engine as {id, addr, cpus, memory, labels}, and the earlier host/port and address forms', () => {
    const id = (h: string, p: number): string => `engine-${h}-${p}`;
    const doc = engineRequest({ id: 'boot2docker', addr: 'https://192.168.59.103:2376', cpus: 4, memory: 32000, labels: ['local', 'boot2docker'] }, id);
    assert.deepEqual(doc, { id: 'boot2docker', addr: 'https://192.168.59.103:2376', address: 'tcp://192.168.59.103:2376', tls: true, tlsFromSecret: false, cpus: 4, memory: 32000, labels: ['local', 'boot2docker'] });
    assert.equal(engineRequest({ id: 'e', addr: 'tcp://10.0.0.1:2375' }, id).tls, false);
    assert.equal(engineRequest({ address: 'docker1:2375' }, id).address, 'tcp://docker1:2375');
    assert.equal(engineRequest({ host: 'docker1' }, id).id, 'engine-docker1-2376');
    for (const b of [{}, { id: 'e', addr: 'http://a:1' }, { id: 'e', addr: 'https://a' }, { id: 'E!', addr: 'tcp://a:1' }, { id: 'e', addr: 'tcp://a:1', cpus: '4' }, { id: 'e', addr: 'tcp://a:1', labels: 'local' }, { id: 'e', addr: 'tcp://a:1', labels: ['a b'] }, { host: 'a', port: 70000 }]) {
      assert.equal(status(() => engineRequest(b, id)), 400, JSON.stringify(b));
    }
  });
  it('shows an engine as the client gave it: addr, capacity override, labels in order', () => {
    const node: ComputeNode = {
      apiVersion: 'compute.stratus.dev/v1alpha1',
      kind: 'ComputeNode',
      metadata: {
        name: 'boot2docker',
        labels: { 'clementine.stratus.dev/local': '', 'clementine.stratus.dev/boot2docker': '' },
        annotations: { 'legacy.stratus.dev/clementine-engine': JSON.stringify({ addr: 'https://192.168.59.103:2376', labels: ['local', 'boot2docker'] }) },
      },
      spec: { provider: 'docker', docker: { address: 'tcp://192.168.59.103:2376', tlsSecretRef: { name: 'clementine-tls' } }, capacityOverride: { cpus: 4, memoryMiB: 32000 } },
      status: { capacity: { cpus: 2, memoryMiB: 1000 } },
    };
    assert.deepEqual(engineView(node), { id: 'boot2docker', addr: 'https://192.168.59.103:2376', cpus: 4, memory: 32000, labels: ['local', 'boot2docker'] });
  });
  it('turns the document\'s image config into a docker Instance: image, host ports, unique placement, engine labels as node selector', () => {
    const config = imageConfig({ name: 'redis:latest', bind_ports: [{ proto: 'tcp', port: 6379, container_port: 6379 }], type: 'unique', labels: ['local'] });
    assert.deepEqual(instanceSpec(config, 'g'), {
      provider: 'docker',
      image: 'redis:latest',
      ports: [{ containerPort: 6379, hostPort: 6379, protocol: 'TCP' }],
      nodeSelector: { 'clementine.stratus.dev/local': '' },
      placement: { group: 'g', unique: true },
    });
    for (const b of [{}, { name: 5 }, { name: 'a b' }, { name: 'x', type: 'many' }, { name: 'x', labels: { a: '1' } }, { name: 'x', restart_policy: { name: 'sometimes' } }, { name: 'x', volumes: ['data'] }]) {
      assert.equal(status(() => imageConfig(b)), 400, JSON.stringify(b));
    }
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
