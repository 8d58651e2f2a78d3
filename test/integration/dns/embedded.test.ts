/**
 * DNS names through the embedded server, asked with real `dig` over UDP and TCP: the DNS
 * controllers run in-process on a Manager against `stratus serve` (no built-in controllers,
 * so the test plays the Instance controller and writes `status.ipAddress` itself).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ElasticIP, Instance, Project } from '../../../crds/types.js';
import { KubeClient, type ResourceClient } from '../../../runtime/client.js';
import { Manager } from '../../../runtime/manager.js';
import { updateStatus } from '../../../runtime/status.js';
import { Resources } from '../../../controllers/resources.js';
import { registerDNSControllers } from '../../../controllers/dns.js';
import { EmbeddedDNSServer } from '../../../providers/dnsserver/server.js';
import { startStratusServe, type StratusServe } from '../../harness/apiserver.js';
import { dig } from '../../harness/dig.js';
import { execFileP, requireBinary, waitFor } from '../../harness/process.js';

const ZONE = 'cloud.test';
let serve: StratusServe | undefined;
let mgr: Manager | undefined;
let client: KubeClient;
let dns: EmbeddedDNSServer | undefined;
let port = 0;

before(async () => {
  requireBinary('dig');
  serve = await startStratusServe();
  client = KubeClient.fromFile(serve.kubeconfig);
  dns = new EmbeddedDNSServer();
  dns.setZone(ZONE, [], 30);
  port = (await dns.listen('127.0.0.1', 0)).port;
  mgr = new Manager({ client: KubeClient.fromFile(serve.kubeconfig) });
  registerDNSControllers(mgr, async () => ({}), { embedded: { server: dns, zone: ZONE, ttl: 30 } });
  await mgr.start();
});

after(async () => {
  await mgr?.stop();
  await dns?.close();
  client?.close();
  await serve?.stop();
});

const instances = (): ResourceClient<Instance> => client.resource<Instance>(Resources.instances);
const eips = (): ResourceClient<ElasticIP> => client.resource<ElasticIP>(Resources.elasticIPs);
const projects = (): ResourceClient<Project> => client.resource<Project>(Resources.projects);

async function instance(name: string, ip: string | undefined, hostnames?: string[]): Promise<void> {
  await instances().create({
    apiVersion: 'compute.stratus.dev/v1alpha1',
    kind: 'Instance',
    metadata: { name, namespace: 'default' },
    spec: { provider: 'docker', image: 'busybox', ...(hostnames ? { hostnames } : {}) },
  });
  if (ip) await setAddress(name, ip);
}

async function setAddress(name: string, ip: string): Promise<void> {
  await updateStatus(instances(), 'default', name, (i) => {
    i.status = { ...(i.status ?? {}), ipAddress: ip };
  });
}

const resolves = (name: string, want: string[], tcp = false): Promise<unknown> =>
  waitFor(`${name} → ${want.join(',') || 'NXDOMAIN'}`, async () => {
    const r = await dig('127.0.0.1', port, name, 'A', { tcp });
    return want.length ? r.status === 'NOERROR' && r.aa && JSON.stringify(r.addresses) === JSON.stringify(want) : r.status === 'NXDOMAIN';
  }, 10_000);

test('an Instance with an address resolves as NAME.NAMESPACE.ZONE and its hostnames, over UDP and TCP; an address change changes the answer', async () => {
  await instance('web-1', '10.0.0.11', ['www', 'shop.web']);
  await resolves(`web-1.default.${ZONE}`, ['10.0.0.11']);
  await resolves(`web-1.default.${ZONE}`, ['10.0.0.11'], true);
  await resolves(`www.${ZONE}`, ['10.0.0.11']);
  await resolves(`shop.web.${ZONE}`, ['10.0.0.11']);
  // an empty non-terminal exists (NODATA), a sibling does not
  assert.equal((await dig('127.0.0.1', port, `web.${ZONE}`)).status, 'NOERROR');
  assert.equal((await dig('127.0.0.1', port, `nothing.default.${ZONE}`)).status, 'NXDOMAIN');
  assert.equal((await dig('127.0.0.1', port, 'example.com')).status, 'REFUSED');
  const soa = await dig('127.0.0.1', port, ZONE, 'SOA');
  assert.equal(soa.status, 'NOERROR');
  assert.ok(soa.aa);

  await setAddress('web-1', '10.0.0.12');
  await resolves(`web-1.default.${ZONE}`, ['10.0.0.12']);

  const names = await waitFor('status.dnsNames', async () => {
    const i = await instances().get('default', 'web-1');
    return i?.status?.dnsNames?.length === 3 ? i.status.dnsNames : undefined;
  }, 10_000);
  assert.deepEqual(names, [`web-1.default.${ZONE}`, `www.${ZONE}`, `shop.web.${ZONE}`]);
  // kubectl (not ours) shows the name in the wide view
  const { stdout } = await execFileP(requireBinary('kubectl'), ['--kubeconfig', serve!.kubeconfig, 'get', 'inst', 'web-1', '-n', 'default', '-o', 'wide']);
  assert.match(stdout.split('\n')[0]!, /\bDNS\b/);
  assert.match(stdout, new RegExp(`web-1\\.default\\.${ZONE.replace('.', '\\.')}`));
});

test('an Instance without an address has no name; deleting an Instance makes its name NXDOMAIN', async () => {
  await instance('pending-1', undefined);
  await instance('gone-1', '10.0.0.21');
  await resolves(`gone-1.default.${ZONE}`, ['10.0.0.21']);
  assert.equal((await dig('127.0.0.1', port, `pending-1.default.${ZONE}`)).status, 'NXDOMAIN');
  await instances().delete('default', 'gone-1');
  await resolves(`gone-1.default.${ZONE}`, []);
});

test('a bound ElasticIP gives the Instance its address; moving it moves the answer', async () => {
  await instance('eip-a', '10.0.1.1');
  await instance('eip-b', '10.0.1.2');
  await eips().create({ apiVersion: 'compute.stratus.dev/v1alpha1', kind: 'ElasticIP', metadata: { name: 'pub', namespace: 'default' }, spec: { address: '203.0.113.7', instanceRef: { name: 'eip-a' } } });
  await resolves(`eip-a.default.${ZONE}`, ['203.0.113.7']);
  await resolves(`eip-b.default.${ZONE}`, ['10.0.1.2']);
  await eips().mergePatch('default', 'pub', { spec: { instanceRef: { name: 'eip-b' } } });
  await resolves(`eip-b.default.${ZONE}`, ['203.0.113.7']);
  await resolves(`eip-a.default.${ZONE}`, ['10.0.1.1']);
  await eips().delete('default', 'pub');
  await resolves(`eip-b.default.${ZONE}`, ['10.0.1.2']);
});

test('a Project endpoint answers PROJECT.ZONE and any name under it with its guests, and reports status.dnsNames', async () => {
  await instance('app-1', '10.0.2.1');
  await instance('app-2', '10.0.2.2');
  await projects().create({
    apiVersion: 'apps.stratus.dev/v1alpha1',
    kind: 'Project',
    metadata: { name: 'shop', namespace: 'default' },
    spec: { source: { git: { url: 'https://git.invalid/shop.git', ref: 'main' } }, guests: ['app-1', 'app-2'] },
  });
  await resolves(`shop.${ZONE}`, ['10.0.2.1', '10.0.2.2']);
  await resolves(`api.shop.${ZONE}`, ['10.0.2.1', '10.0.2.2']);
  await resolves(`a.b.shop.${ZONE}`, ['10.0.2.1', '10.0.2.2']);
  const names = await waitFor('project status.dnsNames', async () => (await projects().get('default', 'shop'))?.status?.dnsNames, 10_000);
  assert.deepEqual(names, [`shop.${ZONE}`, `*.shop.${ZONE}`]);
  // a guest going away leaves the other one behind the endpoint
  await instances().delete('default', 'app-2');
  await resolves(`api.shop.${ZONE}`, ['10.0.2.1']);
  await projects().delete('default', 'shop');
  await resolves(`api.shop.${ZONE}`, []);
});
