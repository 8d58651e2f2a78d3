import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Instance, Network } from '../../../crds/types.js';
import { KubeClient } from '../../../runtime/client.js';
import { Resources } from '../../../controllers/resources.js';
import { objectName } from '../../../legacy/names.js';
import { networkObjectName } from '../../../legacy/datacentred.js';
import type { Daemon } from '../../harness/process.js';
import { createToken, http, startInstallTree, startLegacyServe, startProxy, tokenHeaders, type LegacyServe } from './helpers.js';

/** The agent's documented example request (its archive is replaced by a local tree in `before`). */
const EXAMPLE_HOST = {
  memory: 512,
  disks: [8],
  networks: ['ns_example_com_vlan_10'],
  install: true,
  location: 'http://gb.archive.ubuntu.com/ubuntu/dists/xenial/main/installer-amd64',
};

describe('DataCentred staging compute agent API through the legacy proxy', () => {
  let env: LegacyServe;
  let client: KubeClient;
  let token: string;
  let insecure: { url: string; daemon: Daemon } | undefined;
  let tree: Awaited<ReturnType<typeof startInstallTree>>;

  before(async () => {
    tree = await startInstallTree();
    EXAMPLE_HOST.location = EXAMPLE_HOST.location.replace('http://gb.archive.ubuntu.com', tree.mirror);
    env = await startLegacyServe();
    client = KubeClient.fromFile(env.serve.kubeconfig);
    token = (await createToken(env.serve.kubeconfig, 'datacentred e2e')).token;
  });

  after(async () => {
    await insecure?.daemon.stop();
    client?.close();
    await env?.serve.stop();
    await tree?.close();
  });

  const counts = async (): Promise<string> =>
    `${(await client.resource(Resources.instances).list()).length} instances, ${(await client.resource(Resources.networks).list()).length} networks`;

  it('network: GET 404, POST 201, GET 204, POST again 409 — a Network with the bridge and VLAN', async () => {
    const url = `${env.legacy}/host/ns.example.com/network/ns_example_com_vlan_10/`;
    const h = tokenHeaders(token);
    const missing = await http('GET', url, { headers: h });
    assert.equal(missing.status, 404);
    const created = await http('POST', url, { headers: h, body: JSON.stringify({ bridge: 'br-staging', vlan: 10 }) });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.text, '');
    const exists = await http('GET', url, { headers: h });
    assert.equal(exists.status, 204);
    assert.equal(exists.text, '');
    // Without the trailing slash too.
    assert.equal((await http('GET', url.slice(0, -1), { headers: h })).status, 204);
    const again = await http('POST', url, { headers: h, body: JSON.stringify({ bridge: 'br-staging', vlan: 10 }) });
    assert.equal(again.status, 409);

    const net = await client.resource<Network>(Resources.networks).get('default', networkObjectName('ns.example.com', 'ns_example_com_vlan_10'));
    assert.ok(net, 'the Network object exists');
    assert.equal(net.spec.bridge, 'br-staging');
    assert.equal(net.spec.vlan, 10);
    assert.equal(net.metadata?.annotations?.['legacy.stratus.dev/name'], 'ns_example_com_vlan_10');
  });

  it('host: GET 404, POST (the documented example) 201, GET 204, POST again 409 — a libvirt Instance', async () => {
    const url = `${env.legacy}/host/ns.example.com/`;
    const h = tokenHeaders(token);
    assert.equal((await http('GET', url, { headers: h })).status, 404);
    const created = await http('POST', url, { headers: h, body: JSON.stringify(EXAMPLE_HOST) });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.text, '');
    assert.equal((await http('GET', url, { headers: h })).status, 204);
    assert.equal((await http('POST', url, { headers: h, body: JSON.stringify(EXAMPLE_HOST) })).status, 409);

    const inst = await client.resource<Instance>(Resources.instances).get('default', objectName('ns.example.com'));
    assert.ok(inst);
    assert.equal(inst.spec.provider, 'libvirt');
    assert.equal(inst.spec.memoryMiB, 512);
    assert.deepEqual(inst.spec.disks, [{ name: 'disk0', sizeGiB: 8 }]);
    assert.deepEqual(inst.spec.networks, [{ name: networkObjectName('ns.example.com', 'ns_example_com_vlan_10') }]);
    assert.equal(inst.spec.libvirt?.location, EXAMPLE_HOST.location);
    assert.equal(inst.spec.libvirt?.console, 'none');
    assert.equal(inst.spec.hostname, 'ns');
    assert.equal(inst.metadata?.annotations?.['legacy.stratus.dev/name'], 'ns.example.com');
  });

  it('host with several disks and a console', async () => {
    const h = tokenHeaders(token);
    const body = { memory: 2048, disks: [20, 100], networks: [], install: true, location: 'http://mirror.example/debian-12-netinst.iso', console: true };
    const r = await http('POST', `${env.legacy}/host/db-1/`, { headers: h, body: JSON.stringify(body) });
    assert.equal(r.status, 201, r.text);
    const inst = await client.resource<Instance>(Resources.instances).get('default', 'db-1');
    assert.deepEqual(inst?.spec.disks, [
      { name: 'disk0', sizeGiB: 20 },
      { name: 'disk1', sizeGiB: 100 },
    ]);
    assert.equal(inst?.spec.libvirt?.console, 'serial');
    assert.equal(inst?.spec.memoryMiB, 2048);
  });

  it('requires a token unless --legacy-insecure; a bad one is 401', async () => {
    const before = await counts();
    for (const headers of [{}, { authorization: 'token 1-00000000000000000000000000000000' }] as Record<string, string>[]) {
      assert.equal((await http('GET', `${env.legacy}/host/ns.example.com/`, { headers })).status, 401);
      const r = await http('POST', `${env.legacy}/host/other.example.com/`, { headers, body: JSON.stringify(EXAMPLE_HOST) });
      assert.equal(r.status, 401);
      assert.deepEqual(r.json, { error: 'unauthorized' });
      assert.equal((await http('POST', `${env.legacy}/host/x/network/y/`, { headers, body: '{"bridge":"br0","vlan":3}' })).status, 401);
    }
    assert.equal(await counts(), before);
  });

  it('stratus proxy --legacy-insecure serves DataCentred without a token (default namespace), Cloud Brain still needs one', async () => {
    insecure = await startProxy(env.serve.kubeconfig, ['--legacy-insecure']);
    assert.equal((await http('GET', `${insecure.url}/host/ns.example.com/`)).status, 204);
    const r = await http('POST', `${insecure.url}/host/web.example.com/`, { body: JSON.stringify({ ...EXAMPLE_HOST, networks: [] }) });
    assert.equal(r.status, 201, r.text);
    assert.ok(await client.resource<Instance>(Resources.instances).get('default', objectName('web.example.com')));
    assert.equal((await http('GET', `${insecure.url}/host/web.example.com`)).status, 204);
    const cb = await http('POST', `${insecure.url}/instances`, { body: JSON.stringify({ provider: 'libvirt', image: 'debian-12' }) });
    assert.equal(cb.status, 401);
  });

  it('malformed requests are 400 (413 when huge) and create nothing', async () => {
    const h = tokenHeaders(token);
    const before = await counts();
    const hostCases: [string, unknown, number][] = [
      ['bad JSON', '{"memory": 512,', 400],
      ['not an object', '[512]', 400],
      ['missing memory', { ...EXAMPLE_HOST, memory: undefined }, 400],
      ['memory as a string', { ...EXAMPLE_HOST, memory: '512' }, 400],
      ['memory fractional', { ...EXAMPLE_HOST, memory: 512.5 }, 400],
      ['memory too small', { ...EXAMPLE_HOST, memory: 1 }, 400],
      ['missing disks', { ...EXAMPLE_HOST, disks: undefined }, 400],
      ['disks not a list', { ...EXAMPLE_HOST, disks: 8 }, 400],
      ['disk size a string', { ...EXAMPLE_HOST, disks: ['8'] }, 400],
      ['disk size zero', { ...EXAMPLE_HOST, disks: [0] }, 400],
      ['too many disks', { ...EXAMPLE_HOST, disks: Array(17).fill(1) }, 400],
      ['missing networks', { ...EXAMPLE_HOST, networks: undefined }, 400],
      ['network not a string', { ...EXAMPLE_HOST, networks: [10] }, 400],
      ['network twice', { ...EXAMPLE_HOST, networks: ['a', 'a'] }, 400],
      ['no install and no disk to boot from', { ...EXAMPLE_HOST, install: undefined, location: undefined, disks: [] }, 400],
      ['install a string', { ...EXAMPLE_HOST, install: 'yes' }, 400],
      ['location missing', { ...EXAMPLE_HOST, location: undefined }, 400],
      ['location not a URL', { ...EXAMPLE_HOST, location: 'gb.archive.ubuntu.com' }, 400],
      ['console a string', { ...EXAMPLE_HOST, console: 'yes' }, 400],
      ['huge', { ...EXAMPLE_HOST, pad: 'x'.repeat(1024 * 1024) }, 413],
    ];
    for (const [name, body, status] of hostCases) {
      const r = await http('POST', `${env.legacy}/host/bad.example.com/`, { headers: h, body: typeof body === 'string' ? body : JSON.stringify(body) });
      assert.equal(r.status, status, `${name}: ${r.text}`);
      assert.equal(typeof (r.json as { error: unknown }).error, 'string', name);
    }
    const badHost = await http('POST', `${env.legacy}/host/bad%20host/`, { headers: h, body: JSON.stringify(EXAMPLE_HOST) });
    assert.equal(badHost.status, 400);
    const netCases: [string, unknown][] = [
      ['bad JSON', '{'],
      ['missing vlan', { bridge: 'br0' }],
      ['missing bridge', { vlan: 10 }],
      ['vlan a string', { bridge: 'br0', vlan: '10' }],
      ['vlan 0', { bridge: 'br0', vlan: 0 }],
      ['vlan 4095', { bridge: 'br0', vlan: 4095 }],
      ['bridge too long', { bridge: 'a-very-long-bridge-name', vlan: 10 }],
      ['bridge with a space', { bridge: 'br 0', vlan: 10 }],
    ];
    for (const [name, body] of netCases) {
      const r = await http('POST', `${env.legacy}/host/bad.example.com/network/bad_net/`, { headers: h, body: typeof body === 'string' ? body : JSON.stringify(body) });
      assert.equal(r.status, 400, `${name}: ${r.text}`);
    }
    assert.equal((await http('DELETE', `${env.legacy}/host/ns.example.com/`, { headers: h })).status, 405);
    assert.equal(await counts(), before);
  });
});
