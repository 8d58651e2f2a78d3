import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { CompiledSchema, FieldCause } from '../../../apiserver/schema/validate.js';
import { compileSchema, loadCrdDir } from '../../../apiserver/schema/validate.js';
import { repoRoot } from '../../harness/paths.js';

const crds = loadCrdDir(join(repoRoot(), 'crds'));

function schemaFor(kind: string): CompiledSchema {
  const crd = crds.find((c) => c.spec.names.kind === kind);
  const s = crd?.spec.versions[0]?.schema?.openAPIV3Schema;
  assert.ok(s, `CRD for ${kind}`);
  return compileSchema(s);
}

type Obj = Record<string, unknown> & { spec: Record<string, unknown> };

function instance(spec: Record<string, unknown> = {}): Obj {
  return { apiVersion: 'compute.stratus.dev/v1alpha1', kind: 'Instance', metadata: { name: 'web-1', namespace: 'default' }, spec: { provider: 'libvirt', image: 'debian-12', ...spec } };
}
function network(spec: Record<string, unknown>): Obj {
  return { apiVersion: 'compute.stratus.dev/v1alpha1', kind: 'Network', metadata: { name: 'vlan10' }, spec };
}
function node(spec: Record<string, unknown>): Obj {
  return { apiVersion: 'compute.stratus.dev/v1alpha1', kind: 'ComputeNode', metadata: { name: 'hv-1' }, spec };
}
function project(spec: Record<string, unknown>): Obj {
  return { apiVersion: 'apps.stratus.dev/v1alpha1', kind: 'Project', metadata: { name: 'shop' }, spec };
}

/** name → manifest → every cause expected (field, reason, and a fragment of the message). */
const cases: { name: string; kind: string; obj: Obj; want: [field: string, reason: FieldCause['reason'], message: string][] }[] = [
  { name: 'memoryMiB 0', kind: 'Instance', obj: instance({ memoryMiB: 0 }), want: [['spec.memoryMiB', 'FieldValueInvalid', 'Invalid value: 0: spec.memoryMiB in body should be greater than or equal to 4']] },
  { name: 'a disk of -1 GiB', kind: 'Instance', obj: instance({ disks: [{ name: 'data', sizeGiB: 10 }, { name: 'logs', sizeGiB: -1 }] }), want: [['spec.disks[1].sizeGiB', 'FieldValueInvalid', 'Invalid value: -1: spec.disks[1].sizeGiB in body should be greater than or equal to 1']] },
  { name: 'vlan 5000', kind: 'Network', obj: network({ vlan: 5000 }), want: [['spec.vlan', 'FieldValueInvalid', 'should be less than or equal to 4094']] },
  { name: 'provider "azure"', kind: 'Instance', obj: instance({ provider: 'azure' }), want: [['spec.provider', 'FieldValueNotSupported', 'Unsupported value: "azure": supported values: "libvirt", "docker", "gce"']] },
  { name: 'powerState "Off"', kind: 'Instance', obj: instance({ powerState: 'Off' }), want: [['spec.powerState', 'FieldValueNotSupported', 'Unsupported value: "Off"']] },
  { name: 'a hostname with "<"', kind: 'Instance', obj: instance({ hostname: 'web<1' }), want: [['spec.hostname', 'FieldValueInvalid', 'Invalid value: "web<1": spec.hostname in body should match']] },
  { name: '10,000 networks', kind: 'Instance', obj: instance({ networks: Array.from({ length: 10000 }, (_, i) => ({ name: `net-${i}` })) }), want: [['spec.networks', 'FieldValueTooMany', 'Too many: 10000: must have at most 16 items']] },
  { name: 'cpus as a string', kind: 'Instance', obj: instance({ cpus: 'two' }), want: [['spec.cpus', 'FieldValueTypeInvalid', 'Invalid value: "string": spec.cpus in body must be of type integer: "string"']] },
  { name: 'cpus 1.5', kind: 'Instance', obj: instance({ cpus: 1.5 }), want: [['spec.cpus', 'FieldValueTypeInvalid', 'must be of type integer: "number"']] },
  { name: 'no provider', kind: 'Instance', obj: { ...instance(), spec: { image: 'debian-12' } }, want: [['spec.provider', 'FieldValueRequired', 'Required value']] },
  { name: 'no spec', kind: 'Instance', obj: { apiVersion: 'compute.stratus.dev/v1alpha1', kind: 'Instance', metadata: { name: 'x' } } as unknown as Obj, want: [['spec', 'FieldValueRequired', 'Required value']] },
  { name: 'neither image nor install location', kind: 'Instance', obj: { ...instance(), spec: { provider: 'libvirt', libvirt: { console: 'serial' } } }, want: [['spec', 'FieldValueInvalid', 'must validate at least one schema (anyOf): set at least one of image, libvirt.location, libvirt.boot']] },
  { name: 'two disks with the same name', kind: 'Instance', obj: instance({ disks: [{ name: 'data', sizeGiB: 1 }, { name: 'data', sizeGiB: 2 }] }), want: [['spec.disks[1]', 'FieldValueDuplicate', 'Duplicate value: {"name":"data"}']] },
  { name: 'the same SSH key twice', kind: 'Instance', obj: instance({ sshKeys: ['alice', 'alice'] }), want: [['spec.sshKeys[1]', 'FieldValueDuplicate', 'Duplicate value: "alice"']] },
  { name: 'port 70000', kind: 'Instance', obj: instance({ ports: [{ containerPort: 70000 }] }), want: [['spec.ports[0].containerPort', 'FieldValueInvalid', 'should be less than or equal to 65535']] },
  { name: 'protocol SCTP', kind: 'Instance', obj: instance({ ports: [{ containerPort: 80, protocol: 'SCTP' }] }), want: [['spec.ports[0].protocol', 'FieldValueNotSupported', 'supported values: "TCP", "UDP"']] },
  { name: 'userData over 64 KiB', kind: 'Instance', obj: instance({ userData: 'x'.repeat(65537) }), want: [['spec.userData', 'FieldValueTooLong', 'Too long: may not be more than 65536 bytes']] },
  { name: 'a static address that is not IPv4', kind: 'Instance', obj: instance({ networks: [{ name: 'vlan10', ipAddress: '10.0.0.300' }] }), want: [['spec.networks[0].ipAddress', 'FieldValueInvalid', 'must be of type ipv4']] },
  { name: 'an instance name that is not a DNS label', kind: 'Instance', obj: { ...instance(), metadata: { name: 'web.example.com' } }, want: [['metadata.name', 'FieldValueInvalid', 'metadata.name in body should match']] },
  { name: 'a bridge name longer than an interface name', kind: 'Network', obj: network({ vlan: 10, bridge: 'a-very-long-bridge-name' }), want: [['spec.bridge', 'FieldValueTooLong', 'may not be more than 15 bytes'], ['spec.bridge', 'FieldValueInvalid', 'should match']] },
  { name: 'no vlan', kind: 'Network', obj: network({ bridge: 'br0' }), want: [['spec.vlan', 'FieldValueRequired', 'Required value']] },
  { name: 'a CIDR without prefix length', kind: 'Network', obj: network({ vlan: 10, cidr: '10.0.0.0' }), want: [['spec.cidr', 'FieldValueInvalid', 'must be of type cidr']] },
  { name: 'a libvirt node without its libvirt section', kind: 'ComputeNode', obj: node({ provider: 'libvirt' }), want: [['spec', 'FieldValueInvalid', 'must validate one and only one schema (oneOf): exactly one of these must hold: (provider=libvirt with libvirt)']] },
  { name: 'a docker address over http', kind: 'ComputeNode', obj: node({ provider: 'docker', docker: { address: 'http://engine:2375' } }), want: [['spec.docker.address', 'FieldValueInvalid', 'should match']] },
  { name: 'a project with both git and artifact', kind: 'Project', obj: project({ source: { git: { url: 'https://g/x.git' }, artifact: 'https://a/x.tgz' } }), want: [['spec.source', 'FieldValueInvalid', 'set exactly one of git, push, artifact']] },
  { name: 'a project with mode "draft" and keepReleases 0', kind: 'Project', obj: project({ source: { artifact: 'https://a/x.tgz' }, mode: 'draft', keepReleases: 0 }), want: [['spec.mode', 'FieldValueNotSupported', 'supported values: "full", "editable", "staging", "cooking", "final"'], ['spec.keepReleases', 'FieldValueInvalid', 'should be greater than or equal to 1']] },
  {
    name: 'an SSH key that is not in OpenSSH format',
    kind: 'SSHKey',
    obj: { apiVersion: 'compute.stratus.dev/v1alpha1', kind: 'SSHKey', metadata: { name: 'k' }, spec: { publicKey: '-----BEGIN PUBLIC KEY-----' } },
    want: [['spec.publicKey', 'FieldValueInvalid', 'spec.publicKey in body should match']],
  },
  {
    name: 'a token ID that is not numeric',
    kind: 'AccessToken',
    obj: { apiVersion: 'iam.stratus.dev/v1alpha1', kind: 'AccessToken', metadata: { name: 't' }, spec: { tokenID: 'abc', salt: 'FLG+c8HgoUwbUnESqbmgbg==', hash: 'Ri3brHvK1cvSwfpjY0D7R5Ne1Bl' } },
    want: [['spec.tokenID', 'FieldValueInvalid', 'should match']],
  },
  {
    name: 'a negative quota',
    kind: 'Quota',
    obj: { apiVersion: 'iam.stratus.dev/v1alpha1', kind: 'Quota', metadata: { name: 'q' }, spec: { hard: { instances: -1 } } },
    want: [['spec.hard.instances', 'FieldValueInvalid', 'should be greater than or equal to 0']],
  },
  {
    name: 'a deployment stage in an unknown state (status is validated too)',
    kind: 'Deployment',
    obj: { apiVersion: 'apps.stratus.dev/v1alpha1', kind: 'Deployment', metadata: { name: 'd' }, spec: { project: 'shop', commit: 'abcdef0' }, status: { stages: [{ name: 'build', state: 'Done' }] } } as Obj,
    want: [['status.stages[0].state', 'FieldValueNotSupported', 'Unsupported value: "Done"']],
  },
];

describe('invalid manifests are rejected with the exact field path named', () => {
  for (const c of cases) {
    test(c.name, () => {
      const schema = schemaFor(c.kind);
      const obj = structuredClone(c.obj);
      schema.prune(obj);
      schema.applyDefaults(obj);
      const got = schema.validate(obj);
      assert.deepEqual(got.map((g) => [g.field, g.reason]), c.want.map(([f, r]) => [f, r]), JSON.stringify(got, null, 1));
      c.want.forEach(([, , msg], i) => assert.ok(got[i]?.message.includes(msg), `message ${JSON.stringify(got[i]?.message)} should contain ${JSON.stringify(msg)}`));
    });
  }

  test('every failure is reported, not only the first', () => {
    const got = schemaFor('Instance').validate(instance({ memoryMiB: 0, provider: 'azure', powerState: 'Off', disks: [{ name: 'd', sizeGiB: -1 }] }));
    assert.deepEqual(got.map((g) => g.field).sort(), ['spec.disks[0].sizeGiB', 'spec.memoryMiB', 'spec.powerState', 'spec.provider']);
  });

  test('an unknown field is pruned, named, and the rest of the object is kept', () => {
    const obj = instance({ foo: 1, disks: [{ name: 'd', sizeGiB: 1, bus: 'ide' }] });
    const dropped = schemaFor('Instance').prune(obj);
    assert.deepEqual(dropped, ['spec.foo', 'spec.disks[0].bus']);
    assert.deepEqual(obj.spec, { provider: 'libvirt', image: 'debian-12', disks: [{ name: 'd', sizeGiB: 1 }] });
    assert.deepEqual(obj.metadata, { name: 'web-1', namespace: 'default' });
  });
});

describe('defaults', () => {
  test('an Instance gets cpus 1, memoryMiB 512, powerState Running, protocol TCP and the spread placement', () => {
    const obj = instance({ ports: [{ containerPort: 80 }] });
    schemaFor('Instance').applyDefaults(obj);
    assert.deepEqual(obj.spec, {
      provider: 'libvirt',
      image: 'debian-12',
      cpus: 1,
      memoryMiB: 512,
      powerState: 'Running',
      ports: [{ containerPort: 80, protocol: 'TCP' }],
      placement: { strategy: 'spread' },
    });
  });

  test('values the client set are kept', () => {
    const obj = instance({ cpus: 4, powerState: 'Stopped', ports: [{ containerPort: 53, protocol: 'UDP' }] });
    schemaFor('Instance').applyDefaults(obj);
    assert.equal(obj.spec.cpus, 4);
    assert.equal(obj.spec.powerState, 'Stopped');
    assert.deepEqual(obj.spec.ports, [{ containerPort: 53, protocol: 'UDP' }]);
  });

  test('defaults inside an absent optional section are not created (no docker section on a VM)', () => {
    const obj = instance();
    schemaFor('Instance').applyDefaults(obj);
    assert.equal('docker' in obj.spec, false);
    const withDocker = instance({ docker: {} });
    schemaFor('Instance').applyDefaults(withDocker);
    assert.deepEqual(withDocker.spec.docker, { restartPolicy: 'no' });
  });

  test('ComputeNode, Network, Project and AccessToken get their documented defaults', () => {
    const n = node({ provider: 'libvirt', libvirt: { uri: 'test:///default' }, ovs: {} });
    schemaFor('ComputeNode').applyDefaults(n);
    assert.deepEqual(n.spec, { provider: 'libvirt', libvirt: { uri: 'test:///default', imagePool: 'default' }, ovs: { database: 'unix:/var/run/openvswitch/db.sock' }, unschedulable: false });
    const net = network({ vlan: 10 });
    schemaFor('Network').applyDefaults(net);
    assert.equal(net.spec.bridge, 'br-stratus');
    const p = project({ source: { git: { url: 'https://g/x.git' } } });
    schemaFor('Project').applyDefaults(p);
    assert.deepEqual(p.spec, { source: { git: { url: 'https://g/x.git', ref: 'main' } }, mode: 'editable', environment: 'dev', keepReleases: 5 });
  });
});
