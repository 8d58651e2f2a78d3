import { test } from 'node:test';
import assert from 'node:assert/strict';
import { schedule, type InstanceDemand, type NodeCandidate, type BoundInstance } from '../../../controllers/scheduling.js';

function demand(over: Partial<InstanceDemand> = {}): InstanceDemand {
  return { provider: 'libvirt', cpus: 1, memoryMiB: 1024, strategy: 'spread', unique: false, hostPorts: [], ...over };
}

function node(name: string, over: Partial<NodeCandidate> = {}): NodeCandidate {
  return {
    name,
    provider: 'libvirt',
    labels: {},
    ready: true,
    unschedulable: false,
    allocatable: { cpus: 8, memoryMiB: 8192 },
    bound: [],
    ...over,
  };
}

const small: BoundInstance = { cpus: 1, memoryMiB: 1024, hostPorts: [] };

const cases: { name: string; demand: InstanceDemand; nodes: NodeCandidate[]; expect: string | RegExp }[] = [
  {
    name: 'spread picks the least utilised node',
    demand: demand(),
    nodes: [node('a', { bound: [small, small] }), node('b', { bound: [small] }), node('c', { bound: [small, small, small] })],
    expect: 'b',
  },
  {
    name: 'binpack picks the most utilised node that still fits',
    demand: demand({ strategy: 'binpack' }),
    nodes: [node('a', { bound: [small, small] }), node('b', { bound: [small] }), node('c', { bound: [small, small, small] })],
    expect: 'c',
  },
  {
    name: 'binpack skips a node that would overflow',
    demand: demand({ strategy: 'binpack', memoryMiB: 4096 }),
    nodes: [node('a', { bound: [{ cpus: 1, memoryMiB: 6144, hostPorts: [] }] }), node('b', { bound: [small] })],
    expect: 'b',
  },
  {
    name: 'ties are broken by fewer instances, then by name',
    demand: demand(),
    nodes: [node('b'), node('a')],
    expect: 'a',
  },
  {
    name: 'only nodes of the instance provider are candidates',
    demand: demand({ provider: 'docker' }),
    nodes: [node('vm'), node('engine', { provider: 'docker', bound: [small, small] })],
    expect: 'engine',
  },
  {
    name: 'nodeSelector must match every label',
    demand: demand({ nodeSelector: { zone: 'b', disk: 'ssd' } }),
    nodes: [node('a', { labels: { zone: 'a', disk: 'ssd' } }), node('b', { labels: { zone: 'b', disk: 'ssd' } }), node('c', { labels: { zone: 'b' } })],
    expect: 'b',
  },
  {
    name: 'a host port already bound on a node sends the instance elsewhere',
    demand: demand({ provider: 'docker', hostPorts: [{ port: 8080, protocol: 'TCP' }] }),
    nodes: [
      node('e1', { provider: 'docker', bound: [{ cpus: 1, memoryMiB: 64, hostPorts: [{ port: 8080, protocol: 'tcp' }] }] }),
      node('e2', { provider: 'docker', bound: [small, small] }),
    ],
    expect: 'e2',
  },
  {
    name: 'the same port on another protocol is no conflict',
    demand: demand({ provider: 'docker', hostPorts: [{ port: 53, protocol: 'UDP' }] }),
    nodes: [node('e1', { provider: 'docker', bound: [{ cpus: 1, memoryMiB: 64, hostPorts: [{ port: 53, protocol: 'TCP' }] }] })],
    expect: 'e1',
  },
  {
    name: 'unique puts at most one instance of a group on a node',
    demand: demand({ provider: 'docker', group: 'ns/web', unique: true }),
    nodes: [
      node('e1', { provider: 'docker', bound: [{ ...small, group: 'ns/web' }] }),
      node('e2', { provider: 'docker', bound: [{ ...small, group: 'ns/other' }, small] }),
    ],
    expect: 'e2',
  },
  {
    name: 'unique with every node taken explains why',
    demand: demand({ provider: 'docker', group: 'ns/web', unique: true }),
    nodes: [
      node('e1', { provider: 'docker', bound: [{ ...small, group: 'ns/web' }] }),
      node('e2', { provider: 'docker', bound: [{ ...small, group: 'ns/web' }] }),
    ],
    expect: '0/2 nodes: 2 already running the unique group',
  },
  {
    name: 'the reason counts every rejection, most frequent first',
    demand: demand({ memoryMiB: 4096 }),
    nodes: [
      node('a', { allocatable: { cpus: 8, memoryMiB: 2048 } }),
      node('b', { allocatable: { cpus: 8, memoryMiB: 2048 } }),
      node('c', { ready: false }),
    ],
    expect: '0/3 nodes: 2 insufficient memory, 1 not ready',
  },
  {
    name: 'insufficient cpu is reported before memory',
    demand: demand({ cpus: 16, memoryMiB: 100_000 }),
    nodes: [node('a')],
    expect: '0/1 nodes: 1 insufficient cpu',
  },
  {
    name: 'unschedulable nodes are skipped',
    demand: demand(),
    nodes: [node('a', { unschedulable: true })],
    expect: '0/1 nodes: 1 unschedulable',
  },
  {
    name: 'no nodes at all says so',
    demand: demand(),
    nodes: [],
    expect: '0/0 nodes: no ComputeNodes exist',
  },
];

for (const c of cases) {
  test(c.name, () => {
    const d = schedule(c.demand, c.nodes);
    if (c.expect.toString().startsWith('0/')) {
      assert.equal(d.node, undefined);
      assert.equal('reason' in d ? d.reason : '', c.expect);
    } else {
      assert.equal(d.node, c.expect, 'reason' in d ? d.reason : '');
    }
  });
}

test('spread over three empty nodes places three instances on three different nodes', () => {
  const nodes = [node('a'), node('b'), node('c')];
  const placed: string[] = [];
  for (let i = 0; i < 3; i++) {
    const d = schedule(demand(), nodes);
    assert.ok(d.node);
    placed.push(d.node);
    nodes.find((n) => n.name === d.node)!.bound.push(small);
  }
  assert.deepEqual([...placed].sort(), ['a', 'b', 'c']);
});

test('binpack over three empty nodes fills one node first', () => {
  const nodes = [node('a'), node('b'), node('c')];
  const placed: string[] = [];
  for (let i = 0; i < 3; i++) {
    const d = schedule(demand({ strategy: 'binpack' }), nodes);
    assert.ok(d.node);
    placed.push(d.node);
    nodes.find((n) => n.name === d.node)!.bound.push(small);
  }
  assert.deepEqual(placed, ['a', 'a', 'a']);
});
