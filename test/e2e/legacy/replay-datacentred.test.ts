/**
 * Replays every exchange of the DataCentred document (test/fixtures/legacy/datacentred/)
 * against `stratus serve --sim-node` through the legacy listener: hosts and per-host networks
 * with the document's code tables. Run twice: with a token, and without one under
 * `--legacy-insecure` (the agent had no authentication).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ComputeNode, Instance, Network } from '../../../crds/types.js';
import { domainName } from '../../../providers/libvirt/domain-xml.js';
import { waitFor } from '../../harness/process.js';
import { KubeClient } from '../../../runtime/client.js';
import { Resources } from '../../../controllers/resources.js';
import { networkObjectName } from '../../../legacy/datacentred.js';
import { objectName } from '../../../legacy/names.js';
import { createToken, http, startInstallTree, startLegacyServe, type LegacyServe } from './helpers.js';
import { bind, loadExchanges, replay } from './replay.js';

describe('DataCentred document replayed through the legacy proxy', () => {
  let env: LegacyServe;
  let client: KubeClient;
  let tree: Awaited<ReturnType<typeof startInstallTree>>;

  before(async () => {
    // The document's archive, served on 127.0.0.1 in its own layout.
    tree = await startInstallTree();
    env = await startLegacyServe(['--legacy-insecure']);
    client = KubeClient.fromFile(env.serve.kubeconfig);
  });

  after(async () => {
    client?.close();
    await env?.serve.stop();
    await tree?.close();
  });

  async function replayDocument(namespace: string, headers: Record<string, string>): Promise<void> {
    // The example host names the network ns_example_com_vlan_10 of its host: made first.
    const setup = await http('POST', `${env.legacy}/host/ns.example.com/network/ns_example_com_vlan_10/`, { headers, body: JSON.stringify({ bridge: 'br0', vlan: 10 }) });
    assert.equal(setup.status, 201, setup.text);
    for (const ex of await loadExchanges('datacentred')) {
      if (ex.file.startsWith('09-')) {
        // Networks belong to their host: db.example.com gets its own managment-network.
        const own = await http('POST', `${env.legacy}/host/db.example.com/network/managment-network`, { headers, body: JSON.stringify({ bridge: 'br0', vlan: 20 }) });
        assert.equal(own.status, 201, own.text);
      }
      await replay(env.legacy, bind(ex, { 'http://gb.archive.ubuntu.com': tree.mirror }), headers);
    }
    const inst = await client.resource<Instance>(Resources.instances).get(namespace, objectName('ns.example.com'));
    assert.equal(inst?.spec.libvirt?.location, `${tree.mirror}/ubuntu/dists/xenial/main/installer-amd64`);
    assert.ok(tree.requests.some((u) => u.endsWith('/current/images/netboot/ubuntu-installer/amd64/initrd.gz')), 'the installer came from the document\'s tree layout');
    assert.deepEqual(inst?.spec.networks, [{ name: networkObjectName('ns.example.com', 'ns_example_com_vlan_10') }]);
    const blank = await client.resource<Instance>(Resources.instances).get(namespace, objectName('db.example.com'));
    assert.equal(blank?.spec.libvirt?.location, undefined, 'no install: a blank domain booting from its first disk');
    assert.equal(blank?.spec.libvirt?.console, 'serial');
    assert.deepEqual(blank?.spec.networks, [{ name: networkObjectName('db.example.com', 'managment-network') }]);
    const nets = (await client.resource<Network>(Resources.networks).list(namespace)).filter((n) => n.metadata?.annotations?.['legacy.stratus.dev/name'] === 'managment-network');
    assert.deepEqual(nets.map((n) => [n.metadata?.annotations?.['legacy.stratus.dev/host'], n.spec.vlan]).sort(), [['db.example.com', 20], ['ns.example.com', 10]]);
  }

  it('replays every exchange with a token; the host stays 204 once the node\'s heartbeat lists its domain', async () => {
    const token = (await createToken(env.serve.kubeconfig, 'datacentred replay', 'dc')).token;
    const headers = { authorization: `token ${token}` };
    await replayDocument('dc', headers);
    const inst = await client.resource<Instance>(Resources.instances).get('dc', objectName('ns.example.com'));
    const domain = domainName({ namespace: 'dc', name: inst!.metadata!.name!, uid: inst!.metadata!.uid! });
    await waitFor('the sim node lists the domain', async () => (await client.resource<ComputeNode>(Resources.computeNodes).get(undefined, 'sim'))?.status?.machines?.includes(domain), 30_000, 200);
    assert.equal((await http('GET', `${env.legacy}/host/ns.example.com/`, { headers })).status, 204);
  });

  it('replays every exchange without a token under --legacy-insecure (the default namespace)', async () => {
    await replayDocument('default', {});
  });
});
