/**
 * DNSZone with backend powerdns against a real pdns_server (gsqlite3) started by the test on
 * loopback, asked with real `dig`: stratus writes only RRsets it marks, repairs drift, and
 * removes its RRsets (only its own) when objects or the zone go.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { DNSZone, Instance } from '../../../crds/types.js';
import { KubeClient, type KubeObject, type ResourceClient } from '../../../runtime/client.js';
import { Manager } from '../../../runtime/manager.js';
import { updateStatus } from '../../../runtime/status.js';
import { Resources } from '../../../controllers/resources.js';
import { registerDNSControllers } from '../../../controllers/dns.js';
import { OWNER_ACCOUNT } from '../../../providers/pdns/client.js';
import { startStratusServe, type StratusServe } from '../../harness/apiserver.js';
import { startPowerDNS, type PowerDNS } from '../../harness/pdns.js';
import { dig } from '../../harness/dig.js';
import { requireBinary, waitFor } from '../../harness/process.js';

const ZONE = 'pdns.test';
let serve: StratusServe | undefined;
let pdns: PowerDNS | undefined;
let mgr: Manager | undefined;
let client: KubeClient;

interface Secret extends KubeObject {
  stringData?: Record<string, string>;
}

before(async () => {
  requireBinary('dig');
  [serve, pdns] = await Promise.all([startStratusServe(), startPowerDNS()]);
  client = KubeClient.fromFile(serve.kubeconfig);
  const secrets = client.resource<Secret>(Resources.secrets);
  await secrets.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'pdns', namespace: 'default' }, stringData: { 'api-key': pdns.apiKey } });
  mgr = new Manager({ client: KubeClient.fromFile(serve.kubeconfig) });
  registerDNSControllers(mgr, async (ns, name) => {
    const s = await secrets.get(ns, name);
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries((s as { data?: Record<string, string> } | undefined)?.data ?? {})) out[k] = Buffer.from(v, 'base64').toString('utf8');
    return { ...out, ...(s?.stringData ?? {}) };
  });
  await mgr.start();
});

after(async () => {
  await mgr?.stop();
  client?.close();
  await Promise.all([serve?.stop(), pdns?.stop()]);
});

const instances = (): ResourceClient<Instance> => client.resource<Instance>(Resources.instances);
const zones = (): ResourceClient<DNSZone> => client.resource<DNSZone>(Resources.dnsZones);

async function instance(name: string, ip: string): Promise<void> {
  await instances().create({ apiVersion: 'compute.stratus.dev/v1alpha1', kind: 'Instance', metadata: { name, namespace: 'default' }, spec: { provider: 'docker', image: 'busybox' } });
  await updateStatus(instances(), 'default', name, (i) => {
    i.status = { ...(i.status ?? {}), ipAddress: ip };
  });
}

const resolves = (name: string, want: string[]): Promise<unknown> =>
  waitFor(`${name} → ${want.join(',') || 'NXDOMAIN'} from pdns`, async () => {
    const r = await dig('127.0.0.1', pdns!.dnsPort, name);
    return want.length ? r.status === 'NOERROR' && JSON.stringify(r.addresses) === JSON.stringify(want) : r.status === 'NXDOMAIN';
  }, 15_000);

interface RRsetView {
  name: string;
  type: string;
  records: { content: string }[];
  comments?: { account: string }[];
}
async function rrsets(): Promise<RRsetView[]> {
  const res = await pdns!.api('GET', `/api/v1/servers/localhost/zones/${ZONE}.`);
  return ((await res.json()) as { rrsets: RRsetView[] }).rrsets;
}

test('a DNSZone on PowerDNS: records appear marked, foreign records stay, drift is repaired, deletes give NXDOMAIN, the zone going takes only its RRsets', async () => {
  // someone else's zone content, made before stratus arrives
  assert.equal((await pdns!.api('POST', '/api/v1/servers/localhost/zones', { name: `${ZONE}.`, kind: 'Native', nameservers: [`ns1.${ZONE}.`] })).status, 201);
  const foreign = { name: `mail.${ZONE}.`, type: 'A', ttl: 300, changetype: 'REPLACE', records: [{ content: '192.0.2.25', disabled: false }] };
  const taken = { name: `taken.default.${ZONE}.`, type: 'A', ttl: 300, changetype: 'REPLACE', records: [{ content: '192.0.2.26', disabled: false }] };
  assert.equal((await pdns!.api('PATCH', `/api/v1/servers/localhost/zones/${ZONE}.`, { rrsets: [foreign, taken] })).status, 204);

  await instance('db-1', '10.1.0.1');
  await instance('taken', '10.1.0.2');
  await zones().create({
    apiVersion: 'compute.stratus.dev/v1alpha1',
    kind: 'DNSZone',
    metadata: { name: 'pdns-test' },
    spec: { zone: ZONE, backend: 'powerdns', ttl: 45, powerdns: { url: pdns!.apiUrl, apiKeySecretRef: { namespace: 'default', name: 'pdns' }, resyncSeconds: 1 } },
  });
  await resolves(`db-1.default.${ZONE}`, ['10.1.0.1']);
  const mine = (await rrsets()).find((r) => r.name === `db-1.default.${ZONE}.`);
  assert.ok(mine?.comments?.some((c) => c.account === OWNER_ACCOUNT), 'the RRset carries the stratus mark');
  // the name held by a foreign RRset is left alone and reported
  const z = await waitFor('conflict reported', async () => {
    const got = await zones().get(undefined, 'pdns-test');
    return got?.status?.conflicts?.length ? got : undefined;
  }, 10_000);
  assert.deepEqual(z.status?.conflicts, [`taken.default.${ZONE}/A`]);
  assert.deepEqual((await dig('127.0.0.1', pdns!.dnsPort, `taken.default.${ZONE}`)).addresses, ['192.0.2.26']);

  // drift: the record removed behind stratus's back returns
  assert.equal((await pdns!.api('PATCH', `/api/v1/servers/localhost/zones/${ZONE}.`, { rrsets: [{ name: `db-1.default.${ZONE}.`, type: 'A', changetype: 'DELETE' }] })).status, 204);
  await resolves(`db-1.default.${ZONE}`, ['10.1.0.1']);

  // an address change changes the answer; a delete gives NXDOMAIN
  await updateStatus(instances(), 'default', 'db-1', (i) => {
    i.status = { ...(i.status ?? {}), ipAddress: '10.1.0.9' };
  });
  await resolves(`db-1.default.${ZONE}`, ['10.1.0.9']);
  await instances().delete('default', 'db-1');
  await resolves(`db-1.default.${ZONE}`, []);

  // the foreign records were never touched
  assert.deepEqual((await dig('127.0.0.1', pdns!.dnsPort, `mail.${ZONE}`)).addresses, ['192.0.2.25']);

  // the DNSZone going removes stratus's RRsets only
  await instance('db-2', '10.1.0.3');
  await resolves(`db-2.default.${ZONE}`, ['10.1.0.3']);
  await zones().delete(undefined, 'pdns-test');
  await waitFor('DNSZone gone', async () => (await zones().get(undefined, 'pdns-test')) === undefined, 15_000);
  await resolves(`db-2.default.${ZONE}`, []);
  const left = await rrsets();
  assert.ok(!left.some((r) => r.comments?.some((c) => c.account === OWNER_ACCOUNT)), 'no stratus RRset is left');
  assert.ok(left.some((r) => r.name === `mail.${ZONE}.`));
  assert.ok(left.some((r) => r.name === `taken.default.${ZONE}.`));
});
