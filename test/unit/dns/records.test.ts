/**
 * The pure parts of DNS: which records a zone gets from Instances, ElasticIPs and Projects
 * (zoneRecords), and how the embedded server answers from them (lookup), as tables.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ElasticIP, Instance, Project } from '../../../crds/types.js';
import { zoneRecords } from '../../../controllers/dnsrecords.js';
import { EmbeddedDNSServer } from '../../../providers/dnsserver/server.js';

const inst = (name: string, ns: string, ip?: string, extra: Partial<Instance['spec']> = {}, deleting = false): Instance => ({
  apiVersion: 'compute.stratus.dev/v1alpha1',
  kind: 'Instance',
  metadata: { name, namespace: ns, ...(deleting ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}) },
  spec: { provider: 'docker', image: 'busybox', ...extra },
  ...(ip ? { status: { ipAddress: ip } } : {}),
});
const eip = (name: string, ns: string, to: string, address: string, viaStatus = false): ElasticIP => ({
  apiVersion: 'compute.stratus.dev/v1alpha1',
  kind: 'ElasticIP',
  metadata: { name, namespace: ns },
  spec: viaStatus ? {} : { address, instanceRef: { name: to } },
  ...(viaStatus ? { status: { address, boundTo: to } } : {}),
});
const proj = (name: string, ns: string, guests: string[], created: string): Project => ({
  apiVersion: 'apps.stratus.dev/v1alpha1',
  kind: 'Project',
  metadata: { name, namespace: ns, creationTimestamp: created },
  spec: { source: { git: { url: 'https://git.invalid/x.git' } }, guests } as Project['spec'],
});

describe('zoneRecords', () => {
  const cases: { name: string; instances: Instance[]; eips?: ElasticIP[]; projects?: Project[]; namespaces?: string[]; want: Record<string, string[]> }[] = [
    { name: 'an Instance with an address gets NAME.NAMESPACE.ZONE', instances: [inst('a', 'n', '10.0.0.1')], want: { 'a.n.z.test': ['10.0.0.1'] } },
    { name: 'an Instance without an address gets nothing', instances: [inst('a', 'n')], want: {} },
    { name: 'an Instance being deleted gets nothing', instances: [inst('a', 'n', '10.0.0.1', {}, true)], want: {} },
    { name: 'hostnames are names relative to the zone', instances: [inst('a', 'n', '10.0.0.1', { hostnames: ['www', 'API.x'] })], want: { 'a.n.z.test': ['10.0.0.1'], 'www.z.test': ['10.0.0.1'], 'api.x.z.test': ['10.0.0.1'] } },
    { name: 'a shared hostname answers every address', instances: [inst('a', 'n', '10.0.0.2', { hostnames: ['www'] }), inst('b', 'n', '10.0.0.1', { hostnames: ['www'] })], want: { 'a.n.z.test': ['10.0.0.2'], 'b.n.z.test': ['10.0.0.1'], 'www.z.test': ['10.0.0.1', '10.0.0.2'] } },
    { name: 'a bound ElasticIP (spec) replaces the address', instances: [inst('a', 'n', '10.0.0.1')], eips: [eip('e', 'n', 'a', '203.0.113.1')], want: { 'a.n.z.test': ['203.0.113.1'] } },
    { name: 'a bound ElasticIP (status) replaces the address', instances: [inst('a', 'n', '10.0.0.1')], eips: [eip('e', 'n', 'a', '203.0.113.1', true)], want: { 'a.n.z.test': ['203.0.113.1'] } },
    { name: 'an ElasticIP of another namespace does not apply', instances: [inst('a', 'n', '10.0.0.1')], eips: [eip('e', 'm', 'a', '203.0.113.1')], want: { 'a.n.z.test': ['10.0.0.1'] } },
    {
      name: 'a Project gets PROJECT.ZONE and *.PROJECT.ZONE with its guests that have addresses',
      instances: [inst('g1', 'n', '10.0.0.1'), inst('g2', 'n'), inst('g3', 'n', '10.0.0.3')],
      projects: [proj('p', 'n', ['g1', 'g2', 'g3', 'missing'], '2026-01-01T00:00:00Z')],
      want: { 'g1.n.z.test': ['10.0.0.1'], 'g3.n.z.test': ['10.0.0.3'], 'p.z.test': ['10.0.0.1', '10.0.0.3'], '*.p.z.test': ['10.0.0.1', '10.0.0.3'] },
    },
    {
      name: 'the oldest Project keeps a name used in two namespaces',
      instances: [inst('g', 'old', '10.0.0.1'), inst('g', 'new', '10.0.0.2')],
      projects: [proj('p', 'new', ['g'], '2026-02-01T00:00:00Z'), proj('p', 'old', ['g'], '2026-01-01T00:00:00Z')],
      want: { 'g.old.z.test': ['10.0.0.1'], 'g.new.z.test': ['10.0.0.2'], 'p.z.test': ['10.0.0.1'], '*.p.z.test': ['10.0.0.1'] },
    },
    { name: 'namespaces limit the zone', instances: [inst('a', 'n', '10.0.0.1'), inst('b', 'm', '10.0.0.2')], namespaces: ['m'], want: { 'b.m.z.test': ['10.0.0.2'] } },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const r = zoneRecords({ zone: 'z.test', ttl: 30, ...(c.namespaces ? { namespaces: c.namespaces } : {}) }, c.instances, c.eips ?? [], c.projects ?? []);
      assert.deepEqual(Object.fromEntries(r.rrsets.map((rr) => [rr.name, rr.records])), c.want);
      assert.ok(r.rrsets.every((rr) => rr.ttl === 30 && rr.type === 'A'));
    });
  }
});

describe('EmbeddedDNSServer.lookup', () => {
  const s = new EmbeddedDNSServer();
  s.setZone('z.test', [
    { name: 'a.n.z.test', type: 'A', ttl: 30, records: ['10.0.0.1'] },
    { name: '*.p.z.test', type: 'A', ttl: 30, records: ['10.0.0.2'] },
    { name: 'x.y.p.z.test', type: 'A', ttl: 30, records: ['10.0.0.3'] },
  ]);
  const cases: [string, string, string, number, string[]][] = [
    ['an existing name answers its records', 'A.N.z.test.', 'A', 0, ['10.0.0.1']],
    ['an existing name without the type is NODATA', 'a.n.z.test', 'AAAA', 0, []],
    ['an empty non-terminal is NODATA', 'n.z.test', 'A', 0, []],
    ['an absent name is NXDOMAIN', 'b.n.z.test', 'A', 3, []],
    ['a name under a wildcard is synthesised', 'www.p.z.test', 'A', 0, ['10.0.0.2']],
    ['deeper names under a wildcard too', 'a.b.p.z.test', 'A', 0, ['10.0.0.2']],
    ['the wildcard does not cover names below an existing name (RFC 4592)', 'q.y.p.z.test', 'A', 3, []],
    ['the apex answers SOA', 'z.test', 'SOA', 0, ['SOA']],
    ['a name outside every zone is REFUSED', 'example.com', 'A', 5, []],
  ];
  for (const [name, q, type, rcode, want] of cases) {
    test(name, () => {
      const a = s.lookup(q, type);
      assert.equal(a.rcode, rcode);
      assert.deepEqual(a.answers.map((x) => (x.type === 'A' ? x.data : x.type)), want);
      if (rcode === 3 || (rcode === 0 && want.length === 0)) assert.equal(a.authority[0]?.type, 'SOA');
    });
  }
  test('a datagram that is not DNS is dropped without an answer', () => {
    assert.equal(s.respond(Buffer.from('nope'), true), undefined);
  });
});
