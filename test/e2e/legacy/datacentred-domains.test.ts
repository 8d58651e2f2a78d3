/**
 * DataCentred's `GET /host/:hostname/` probes the hypervisor: against a real libvirtd (a
 * private qemu:///session daemon) it answers from the libvirt domains the node's heartbeat
 * lists, not from the Instance object — 204 for a domain defined outside stratus (and a POST
 * of that host is 409), 404 once a domain is gone behind stratus's back.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chown, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ComputeNode, Instance } from '../../../crds/types.js';
import { KubeClient } from '../../../runtime/client.js';
import { Resources } from '../../../controllers/resources.js';
import { startLibvirtd, type PrivateLibvirtd } from '../../harness/libvirtd.js';
import { execFileP, requireBinary, waitFor } from '../../harness/process.js';
import { http, startLegacyServe, type LegacyServe } from './helpers.js';

describe('DataCentred GET /host/:hostname/ reflects the libvirt domains of a real libvirtd', () => {
  let daemon: PrivateLibvirtd;
  let env: LegacyServe;
  let client: KubeClient;
  const virsh = async (...args: string[]): Promise<string> => (await execFileP('virsh', ['-c', daemon.uri, ...args])).stdout;
  const status = async (host: string): Promise<number> => (await http('GET', `${env.legacy}/host/${host}/`)).status;

  before(async () => {
    requireBinary('qemu-img');
    requireBinary('xorriso');
    daemon = await startLibvirtd();
    const pool = join(daemon.dir, 'images');
    await mkdir(pool);
    await chown(pool, 65534, 65534);
    await virsh('pool-define-as', '--name', 'default', '--type', 'dir', '--target', pool);
    await virsh('pool-start', 'default');
    env = await startLegacyServe(['--legacy-insecure']);
    client = KubeClient.fromFile(env.serve.kubeconfig);
    const nodes = client.resource<ComputeNode>(Resources.computeNodes);
    // Only the real hypervisor takes guests here.
    await nodes.mergePatch(undefined, 'sim', { spec: { unschedulable: true } });
    await nodes.create({
      apiVersion: 'compute.stratus.dev/v1alpha1',
      kind: 'ComputeNode',
      metadata: { name: 'hv1' },
      spec: { provider: 'libvirt', libvirt: { uri: daemon.uri, imagePool: 'default' }, heartbeatSeconds: 1 },
    });
    await waitFor('hv1 Ready', async () => (await nodes.get(undefined, 'hv1'))?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'), 30_000, 100);
  });

  after(async () => {
    if (client) {
      const instances = client.resource<Instance>(Resources.instances);
      for (const i of await instances.list().catch(() => [])) await instances.delete(i.metadata!.namespace!, i.metadata!.name!).catch(() => undefined);
      await waitFor('instances gone', async () => (await instances.list()).length === 0, 60_000).catch(() => undefined);
      client.close();
    }
    await env?.serve.stop();
    await daemon?.stop();
  });

  it('a domain defined outside stratus is 204 and cannot be created again (409); once undefined it is 404', async () => {
    const xml = join(daemon.dir, 'adopted.xml');
    await writeFile(xml, "<domain type='qemu'><name>adopted.example.com</name><memory unit='MiB'>32</memory><os><type arch='x86_64'>hvm</type></os></domain>\n");
    await chown(xml, 65534, 65534);
    assert.equal(await status('adopted.example.com'), 404);
    await virsh('define', xml);
    await waitFor('the outside domain reported', async () => (await status('adopted.example.com')) === 204, 30_000, 100);
    const before = (await client.resource<Instance>(Resources.instances).list()).length;
    const again = await http('POST', `${env.legacy}/host/adopted.example.com/`, { body: JSON.stringify({ memory: 64, disks: [1], networks: [] }) });
    assert.equal(again.status, 409, again.text);
    assert.equal((await client.resource<Instance>(Resources.instances).list()).length, before, 'nothing created');
    await virsh('undefine', 'adopted.example.com');
    await waitFor('the outside domain gone', async () => (await status('adopted.example.com')) === 404, 30_000, 100);
  });

  it('a host created through the API is 204 while its domain exists and 404 once the domain is removed behind stratus\'s back', async () => {
    const created = await http('POST', `${env.legacy}/host/blank.example.com/`, { body: JSON.stringify({ memory: 64, disks: [1], networks: [] }) });
    assert.equal(created.status, 201, created.text);
    assert.equal(await status('blank.example.com'), 204, 'the answer came once the domain was defined');
    const inst = (await client.resource<Instance>(Resources.instances).list('default')).find((i) => i.metadata?.annotations?.['legacy.stratus.dev/name'] === 'blank.example.com')!;
    await waitFor('the guest running', async () => (await client.resource<Instance>(Resources.instances).get('default', inst.metadata!.name!))?.status?.state === 'running', 60_000, 100);
    const domain = (await virsh('list', '--all', '--name')).split('\n').map((l) => l.trim()).find((n) => n.includes('blank-example-com'));
    assert.ok(domain, 'the domain is on the hypervisor');
    await virsh('destroy', domain);
    await virsh('undefine', domain);
    await waitFor('the host reported gone', async () => (await status('blank.example.com')) === 404, 30_000, 100);
  });
});
