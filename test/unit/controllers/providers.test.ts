/**
 * The provider registry: providers are found by name and capability, never named by the
 * code that uses them; a provider is added by one `register` line.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ReconcileError } from '../../../runtime/errors.js';
import { ProviderRegistry } from '../../../providers/registry.js';
import { builtinProviders, MACHINE_PROVIDERS } from '../../../providers/index.js';
import { FakeCloud, fakeProvider } from '../../../providers/fake/provider.js';
import { NodeConnections } from '../../../controllers/connections.js';
import type { ComputeNode } from '../../../crds/types.js';

function node(name: string, spec: Record<string, unknown>): ComputeNode {
  return { apiVersion: 'compute.stratus.dev/v1alpha1', kind: 'ComputeNode', metadata: { name }, spec: spec as unknown as ComputeNode['spec'] };
}

describe('ProviderRegistry', () => {
  it('offers the built-in providers and the OVS switch, each found by what it can do', async () => {
    const r = builtinProviders();
    try {
      assert.deepEqual(r.names(), ['libvirt', 'docker', 'gce']);
      assert.deepEqual(MACHINE_PROVIDERS, ['libvirt', 'docker', 'gce']);
      assert.deepEqual(r.withCapability('networks').map((p) => p.name), ['libvirt']);
      assert.deepEqual(r.withCapability('networkAttachment').map((p) => p.name), ['docker']);
      assert.deepEqual(r.withCapability('guestChannel').map((p) => p.name), ['docker']);
      assert.deepEqual(r.withCapability('simulatedNode').map((p) => p.name), ['libvirt']);
      assert.deepEqual(r.withCapability('elasticIPs').map((p) => p.name), ['libvirt', 'docker', 'gce']);
      assert.equal(r.switches?.name, 'ovs');
      assert.deepEqual(r.switchSettingsOf({ provider: 'docker', ovs: {} }), { database: 'unix:/var/run/openvswitch/db.sock' });
      assert.deepEqual(r.switchSettingsOf({ provider: 'docker', ovs: { database: 'tcp:127.0.0.1:1', netns: 'sw' } }), { database: 'tcp:127.0.0.1:1', netns: 'sw' });
      assert.equal(r.switchSettingsOf({ provider: 'docker' }), undefined);
    } finally {
      await r.shutdown();
    }
  });

  it('a node without its provider’s section is InvalidSpec (not retryable), naming the section', () => {
    const r = builtinProviders();
    for (const name of ['libvirt', 'docker', 'gce']) {
      assert.throws(
        () => r.get(name).nodeSettings({ provider: name as ComputeNode['spec']['provider'] }),
        (e: unknown) => e instanceof ReconcileError && e.reason === 'InvalidSpec' && !e.retryable && e.message.includes(`spec.${name} is required`),
      );
    }
  });

  it('an unknown provider is ProviderNotAvailable, listing what there is', () => {
    const r = new ProviderRegistry().register(fakeProvider(new FakeCloud()));
    assert.throws(() => r.get('vmware'), (e: unknown) => e instanceof ReconcileError && e.reason === 'ProviderNotAvailable' && /available: fake/.test(e.message));
  });

  it('a provider name registers once', () => {
    const r = new ProviderRegistry().register(fakeProvider(new FakeCloud()));
    assert.throws(() => r.register(fakeProvider(new FakeCloud())), /registered twice/);
  });

  it('a new provider is one register line: NodeConnections connects nodes through it', async () => {
    const cloud = new FakeCloud();
    const connections = new NodeConnections(new ProviderRegistry().register(fakeProvider(cloud, 'tiny')), async () => ({}));
    try {
      const n = node('n1', { provider: 'tiny' });
      assert.equal(connections.providerOf(n).name, 'tiny');
      const conn = await connections.get(n);
      assert.equal((await conn.describe()).version, 'fake 1.0');
      assert.equal(await connections.get(n), conn, 'one connection per node while its spec is unchanged');
      await assert.rejects(connections.get(node('n2', { provider: 'libvirt' })), (e: unknown) => e instanceof ReconcileError && e.reason === 'ProviderNotAvailable');
    } finally {
      await connections.closeAll();
    }
  });
});
