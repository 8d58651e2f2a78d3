/**
 * ElasticIPs on GCE through the provider's `elasticIPs` carrier, against the fake Compute
 * API, read back with the official `@google-cloud/compute` clients: a static address is
 * reserved (`addresses.insert`, RESERVED), bound as a VM's access config (replacing its
 * ephemeral one; IN_USE, `users` = the VM), moved to a second VM (delete + add access
 * config), unbound (the VM keeps no external address), released (`addresses.delete`);
 * every step repeated is a no-op; the STATIC_ADDRESSES and IN_USE_ADDRESSES quotas fail
 * the step with a retryable `QuotaExceeded`; the fake refuses what GCE refuses.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AddressesClient, InstancesClient } from '@google-cloud/compute/build/src/v1/index.js';
import type { ComputeNodeSpec } from '../../../crds/types.js';
import { addressName, connectGce, gceElasticIPs, instanceName, type GceNodeConnection } from '../../../providers/gce/index.js';
import { gceProvider } from '../../../providers/gce/provider.js';
import { ReconcileError } from '../../../runtime/errors.js';
import { startFakeGce, type FakeGce } from '../../fakes/gce/index.js';
import { tokenClient } from '../../fakes/gce/oauth.js';

const PROJECT = 'eip-project';
const ZONE = 'us-central1-a';
const REGION = 'us-central1';
const spec = { provider: 'gce', gce: { project: PROJECT, zone: ZONE } } as unknown as ComputeNodeSpec;
const EIP = '7c1e6a0e-0d5b-4f8e-9a43-2f4f1f0a9e01';
const A = { uid: 'aaaaaaaa-0000-4000-8000-000000000001', name: 'web-a' };
const B = { uid: 'bbbbbbbb-0000-4000-8000-000000000002', name: 'web-b' };
const signal = new AbortController().signal;

const isReason = (reason: string) => (err: unknown) => err instanceof ReconcileError && err.reason === reason && err.retryable;

describe('GCE ElasticIPs against the fake', () => {
  let gce: FakeGce;
  let conn: GceNodeConnection;
  let addresses: AddressesClient;
  let instances: InstancesClient;

  const natIPs = async (vm: string): Promise<string[]> => {
    const [i] = await instances.get({ project: PROJECT, zone: ZONE, instance: vm });
    return (i.networkInterfaces?.[0]?.accessConfigs ?? []).map((a) => a.natIP ?? '(none)');
  };
  /** The operation a raw client call started, waited for with zoneOperations.wait. */
  const done = async (call: Promise<[{ latestResponse?: unknown }, ...unknown[]]>) => {
    const [lro] = await call;
    let op = lro.latestResponse as { name?: string | null; status?: unknown; error?: { errors?: { code?: string | null }[] | null } | null };
    while (op.status !== 'DONE') op = await conn.api.waitOperation(op.name ?? '');
    return op;
  };
  const address = async (uid = EIP) => (await addresses.get({ project: PROJECT, region: REGION, address: addressName(uid) }))[0];

  before(async () => {
    gce = await startFakeGce({ project: PROJECT, stepMs: 5 });
    conn = connectGce({ project: PROJECT, zone: ZONE, endpoint: gce.endpoint, credentialsJson: gce.serviceAccountKey, requestTimeoutMs: 5000, waitTimeoutMs: 5000 });
    const opts = { apiEndpoint: '127.0.0.1', port: gce.port, protocol: 'http', authClient: tokenClient(gce.oauth) as never };
    addresses = new AddressesClient(opts);
    instances = new InstancesClient(opts);
    // VM A has an ephemeral external address, VM B none.
    gce.state.addInstance(ZONE, {
      name: instanceName(A.uid),
      networkInterfaces: [{ name: 'nic0', network: 'default', networkIP: '10.128.0.50', accessConfigs: [{ type: 'ONE_TO_ONE_NAT', name: 'External NAT', natIP: '198.51.100.7', networkTier: 'PREMIUM' }] }],
    });
    gce.state.addInstance(ZONE, { name: instanceName(B.uid) });
  });
  after(async () => {
    await conn.close();
    await addresses.close();
    await instances.close();
    await gce.close();
  });

  it('the gce provider offers the capability, located per zone', () => {
    assert.equal(gceProvider.capabilities.elasticIPs, gceElasticIPs);
    assert.deepEqual(gceElasticIPs.locate(spec), { location: `gce:${PROJECT}/${ZONE}` });
    assert.ok('unavailable' in gceElasticIPs.locate({ provider: 'gce' } as unknown as ComputeNodeSpec));
  });

  it('reserve makes a RESERVED static address, once', async () => {
    const ip = await gceElasticIPs.reserve(conn, spec, EIP, signal);
    assert.match(ip, /^\d+\.\d+\.\d+\.\d+$/);
    assert.equal(await gceElasticIPs.reserve(conn, spec, EIP, signal), ip, 'idempotent');
    const a = await address();
    assert.equal(a.status, 'RESERVED');
    assert.equal(a.address, ip);
    assert.equal(a.addressType, 'EXTERNAL');
    const [list] = await addresses.list({ project: PROJECT, region: REGION });
    assert.equal(list.length, 1);
    assert.deepEqual(await gceElasticIPs.observe(conn, spec, EIP, undefined, signal), { present: false, upToDate: true });
  });

  it('bind replaces the ephemeral access config with the static address; again is a no-op', async () => {
    const ip = (await address()).address ?? '';
    const binding = { uid: EIP, address: ip, machine: A };
    assert.equal((await gceElasticIPs.observe(conn, spec, EIP, binding, signal)).upToDate, false);
    await gceElasticIPs.bind(conn, spec, binding, signal);
    assert.deepEqual(await natIPs(instanceName(A.uid)), [ip]);
    const a = await address();
    assert.equal(a.status, 'IN_USE');
    assert.deepEqual(a.users, [`https://www.googleapis.com/compute/v1/projects/${PROJECT}/zones/${ZONE}/instances/${instanceName(A.uid)}`]);
    assert.deepEqual(await gceElasticIPs.observe(conn, spec, EIP, binding, signal), { present: true, upToDate: true, target: instanceName(A.uid) });
    const posts = gce.requests.length;
    await gceElasticIPs.bind(conn, spec, binding, signal);
    assert.equal(gce.requests.slice(posts).filter((r) => r.method !== 'GET').length, 0, 'a second bind changes nothing');
  });

  it('the fake refuses what GCE refuses', async () => {
    const ip = (await address()).address ?? '';
    // Two access configs on one interface; an address in use by another VM; an unreserved natIP; deleting an address in use.
    await assert.rejects(instances.addAccessConfig({ project: PROJECT, zone: ZONE, instance: instanceName(A.uid), networkInterface: 'nic0', accessConfigResource: { name: 'second' } }), /At most one access config/);
    await assert.rejects(instances.addAccessConfig({ project: PROJECT, zone: ZONE, instance: instanceName(B.uid), networkInterface: 'nic0', accessConfigResource: { natIP: '192.0.2.1' } }), /not a static address reserved/);
    await assert.rejects(addresses.delete({ project: PROJECT, region: REGION, address: addressName(EIP) }), /already being used by/);
    const op = await done(instances.addAccessConfig({ project: PROJECT, zone: ZONE, instance: instanceName(B.uid), networkInterface: 'nic0', accessConfigResource: { natIP: ip } }) as never);
    assert.deepEqual(op.error?.errors?.map((e) => e.code), ['IP_IN_USE_BY_ANOTHER_RESOURCE']);
    assert.deepEqual(await natIPs(instanceName(B.uid)), []);
  });

  it('moving to another VM: A loses the address, B gets it', async () => {
    const ip = (await address()).address ?? '';
    const toB = { uid: EIP, address: ip, machine: B };
    assert.equal((await gceElasticIPs.observe(conn, spec, EIP, toB, signal)).upToDate, false);
    await gceElasticIPs.bind(conn, spec, toB, signal);
    assert.deepEqual(await natIPs(instanceName(A.uid)), []);
    assert.deepEqual(await natIPs(instanceName(B.uid)), [ip]);
    assert.deepEqual((await address()).users?.map((u) => u.split('/').pop()), [instanceName(B.uid)]);
    assert.equal((await gceElasticIPs.observe(conn, spec, EIP, toB, signal)).upToDate, true);
  });

  it('unbind leaves the VM with no external address and the address RESERVED; again is a no-op', async () => {
    await gceElasticIPs.unbind(conn, spec, EIP, signal);
    assert.deepEqual(await natIPs(instanceName(B.uid)), []);
    assert.equal((await address()).status, 'RESERVED');
    await gceElasticIPs.unbind(conn, spec, EIP, signal);
    assert.deepEqual(await gceElasticIPs.observe(conn, spec, EIP, undefined, signal), { present: false, upToDate: true });
  });

  it('release deletes the address (unbinding it first); again is a no-op', async () => {
    const ip = (await address()).address ?? '';
    await gceElasticIPs.bind(conn, spec, { uid: EIP, address: ip, machine: A }, signal);
    await gceElasticIPs.release(conn, spec, EIP, signal);
    assert.deepEqual(await natIPs(instanceName(A.uid)), []);
    await assert.rejects(address(), /was not found/);
    await gceElasticIPs.release(conn, spec, EIP, signal);
    await gceElasticIPs.unbind(conn, spec, EIP, signal);
  });

  it('quota: STATIC_ADDRESSES fails the reserve, IN_USE_ADDRESSES the bind, both retryable', async () => {
    gce.inject.quota(REGION, 'STATIC_ADDRESSES', 0);
    await assert.rejects(gceElasticIPs.reserve(conn, spec, EIP, signal), (err: unknown) => isReason('QuotaExceeded')(err) && /STATIC_ADDRESSES/.test(String(err)));
    gce.inject.quota(REGION, 'STATIC_ADDRESSES', 8);
    gce.inject.quota(REGION, 'IN_USE_ADDRESSES', 0);
    const ip = await gceElasticIPs.reserve(conn, spec, EIP, signal);
    await assert.rejects(gceElasticIPs.bind(conn, spec, { uid: EIP, address: ip, machine: B }, signal), (err: unknown) => isReason('QuotaExceeded')(err) && /IN_USE_ADDRESSES/.test(String(err)));
    gce.inject.quota(REGION, 'IN_USE_ADDRESSES', 8);
    await gceElasticIPs.bind(conn, spec, { uid: EIP, address: ip, machine: B }, signal);
    assert.deepEqual(await natIPs(instanceName(B.uid)), [ip]);
    await gceElasticIPs.release(conn, spec, EIP, signal);
  });

  it('deleting the VM returns its static address to RESERVED', async () => {
    const ip = await gceElasticIPs.reserve(conn, spec, EIP, signal);
    await gceElasticIPs.bind(conn, spec, { uid: EIP, address: ip, machine: A }, signal);
    await done(instances.delete({ project: PROJECT, zone: ZONE, instance: instanceName(A.uid) }) as never);
    assert.equal((await address()).status, 'RESERVED');
    await gceElasticIPs.release(conn, spec, EIP, signal);
  });
});
