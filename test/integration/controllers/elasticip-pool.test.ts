/**
 * Address allocation against a real API server (`stratus serve`, SQLite): the ledger in
 * `AddressPool.status.allocations` is written only with the resourceVersion read, so
 * concurrent allocators never hand out one address twice — through the allocator directly and
 * through the ElasticIP controller running in this process.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressPool, ElasticIP } from '../../../crds/types.js';
import { CoreResources, KubeClient, type KubeObject } from '../../../runtime/client.js';
import { Manager } from '../../../runtime/manager.js';
import { AddressAllocator } from '../../../controllers/addresspool.js';
import { registerControllers, type ControllerResources } from '../../../controllers/index.js';
import { Resources } from '../../../controllers/resources.js';
import { ReconcileError } from '../../../runtime/errors.js';
import { startStratusServe, type StratusServe } from '../../harness/apiserver.js';
import { waitFor } from '../../harness/process.js';

let serve: StratusServe;
let client: KubeClient;
let mgr: Manager | undefined;
let held: ControllerResources | undefined;
const pools = () => client.resource<AddressPool>(Resources.addressPools);
const eips = () => client.resource<ElasticIP>(Resources.elasticIPs);

const pool = (name: string, cidrs: string[]): AddressPool => ({ apiVersion: 'compute.stratus.dev/v1alpha1', kind: 'AddressPool', metadata: { name }, spec: { cidrs } });
const eip = (name: string, spec: ElasticIP['spec'] = {}): ElasticIP => ({ apiVersion: 'compute.stratus.dev/v1alpha1', kind: 'ElasticIP', metadata: { name, namespace: 'default' }, spec });
const condition = (e: { status?: { conditions?: { type: string; status: string; reason?: string; message?: string }[] } } | undefined, type: string) =>
  e?.status?.conditions?.find((c) => c.type === type);

before(async () => {
  serve = await startStratusServe();
  client = KubeClient.fromFile(serve.kubeconfig);
});

after(async () => {
  await mgr?.stop();
  await held?.close();
  client?.close();
  await serve?.stop();
});

test('50 concurrent allocations by 5 allocators (as 5 processes would) from a /28: 14 distinct addresses, the rest told the pool is exhausted', async () => {
  await pools().create(pool('direct', ['198.51.100.0/28']));
  // Each allocator serialises its own callers; between allocators only the compare-and-swap decides.
  const allocators = Array.from({ length: 5 }, () => new AddressAllocator(pools()));
  const allocator = allocators[0]!;
  const results = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => allocators[i % 5]!.allocate('direct', { uid: `uid-${i}`, key: `default/e${i}` })));
  const won = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const lost = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  assert.equal(won.length, 14);
  assert.equal(new Set(won).size, 14, 'no address handed out twice');
  assert.deepEqual([...won].sort(), Array.from({ length: 14 }, (_, i) => `198.51.100.${i + 1}`).sort());
  assert.equal(lost.length, 36);
  for (const e of lost) assert.ok(e instanceof ReconcileError && e.reason === 'PoolExhausted' && /no free address \(14 of 14 allocated\)/.test(e.message), String(e));
  const p = await pools().get(undefined, 'direct');
  assert.equal(p?.status?.allocations?.length, 14);
  assert.equal(p?.status?.free, 0);
  // Asking again is idempotent; a release frees exactly that address for the next one.
  const first = results.findIndex((r) => r.status === 'fulfilled');
  assert.equal(await allocator.allocate('direct', { uid: `uid-${first}`, key: `default/e${first}` }), (results[first] as PromiseFulfilledResult<string>).value);
  const winner = results.findIndex((r, i) => i > 0 && r.status === 'fulfilled');
  const freed = await allocator.release('direct', `uid-${winner}`);
  assert.equal(freed, (results[winner] as PromiseFulfilledResult<string>).value);
  assert.equal(await allocator.allocate('direct', { uid: 'late', key: 'default/late' }), freed);
});

test('ElasticIPs created at once through the controller never share an address; the 15th and later wait with the reason, and get a released one', async () => {
  mgr = new Manager({ client: KubeClient.fromFile(serve.kubeconfig) });
  held = registerControllers(mgr, { heartbeatMs: 1000, addressPoolRepairMs: 500 });
  await mgr.start();
  await pools().create(pool('small', ['203.0.113.0/28']));
  await Promise.all(Array.from({ length: 50 }, (_, i) => eips().create(eip(`ip-${String(i).padStart(2, '0')}`, { poolRef: { name: 'small' } }))));
  const settled = await waitFor('14 allocated, 36 waiting', async () => {
    const list = await eips().list('default');
    const mine = list.filter((e) => e.spec?.poolRef?.name === 'small');
    const withAddress = mine.filter((e) => e.status?.address);
    const waiting = mine.filter((e) => condition(e, 'Synced')?.reason === 'PoolExhausted');
    return withAddress.length === 14 && waiting.length === 36 ? { withAddress, waiting } : undefined;
  }, 60_000, 200);
  assert.equal(new Set(settled.withAddress.map((e) => e.status?.address)).size, 14);
  for (const e of settled.waiting) {
    assert.equal(condition(e, 'Ready')?.status, 'False');
    assert.match(condition(e, 'Synced')?.message ?? '', /AddressPool "small" has no free address \(14 of 14 allocated\); waiting for one to be released/);
  }
  for (const e of settled.withAddress) assert.equal(condition(e, 'Ready')?.reason, 'Unbound');

  const gone = settled.withAddress[0]!;
  await eips().delete('default', gone.metadata?.name ?? '');
  const next = await waitFor('a waiting ElasticIP takes the released address', async () => {
    const list = await eips().list('default');
    return list.find((e) => e.metadata?.name !== gone.metadata?.name && e.status?.address === gone.status?.address);
  }, 30_000, 200);
  assert.ok(settled.waiting.some((w) => w.metadata?.name === next.metadata?.name));
  const p = await pools().get(undefined, 'small');
  assert.equal(p?.status?.allocated, 14);
  assert.equal(condition(p, 'Ready')?.reason, 'Exhausted');
});

test('a claimed address is that one; a claim of a held address is AddressInUse', async () => {
  await pools().create(pool('claims', ['192.0.2.0/29']));
  await eips().create(eip('claim-a', { poolRef: { name: 'claims' }, address: '192.0.2.5' }));
  await waitFor('claim-a holds 192.0.2.5', async () => (await eips().get('default', 'claim-a'))?.status?.address === '192.0.2.5', 20_000, 100);
  await eips().create(eip('claim-b', { poolRef: { name: 'claims' }, address: '192.0.2.5' }));
  const b = await waitFor('claim-b refused', async () => {
    const e = await eips().get('default', 'claim-b');
    return condition(e, 'Synced')?.reason === 'AddressInUse' ? e : undefined;
  }, 20_000, 100);
  assert.match(condition(b, 'Synced')?.message ?? '', /192\.0\.2\.5 is held by ElasticIP default\/claim-a/);
  await eips().create(eip('claim-c', { poolRef: { name: 'claims' } }));
  await waitFor('claim-c gets the lowest free', async () => (await eips().get('default', 'claim-c'))?.status?.address === '192.0.2.1', 20_000, 100);
});

test('a ledger entry whose ElasticIP is gone (its finalizer stripped) is released by the repair pass; live entries stay', async () => {
  await pools().create(pool('repair', ['192.0.2.64/29']));
  await eips().create(eip('kept', { poolRef: { name: 'repair' } }));
  await eips().create(eip('forced', { poolRef: { name: 'repair' } }));
  await waitFor('both allocated', async () => (await eips().list('default')).filter((e) => ['kept', 'forced'].includes(e.metadata!.name!) && e.status?.address).length === 2, 20_000, 100);
  const forced = (await eips().get('default', 'forced'))!;
  const held = forced.status!.address!;
  // Stop the controller from releasing it the normal way: strip the finalizer, then delete —
  // what `kubectl patch --type=merge -p '{"metadata":{"finalizers":null}}'` does to a stuck object.
  await eips().mergePatch('default', 'forced', { metadata: { finalizers: null } });
  await eips().delete('default', 'forced');
  const repaired = await waitFor('the orphaned entry released', async () => {
    const p = await pools().get(undefined, 'repair');
    const ledger = p?.status?.allocations ?? [];
    return ledger.length === 1 ? p : undefined;
  }, 20_000, 100);
  const kept = (await eips().get('default', 'kept'))!;
  assert.deepEqual(repaired.status?.allocations?.map((a) => [a.uid, a.address]), [[kept.metadata!.uid, kept.status!.address]]);
  assert.equal(repaired.status?.allocated, 1);
  // Events are written after the ledger change, on their own: wait for it rather than read once.
  const leak = await waitFor('a LeakReleased Event on the pool', async () =>
    (await client.resource<{ reason?: string; message?: string; involvedObject?: { name?: string } } & KubeObject>(CoreResources.events).list('default')).find(
      (e) => e.reason === 'LeakReleased' && e.involvedObject?.name === 'repair',
    ), 10_000, 100);
  assert.match(leak.message ?? '', new RegExp(`released ${held.replace(/\./g, '\\.')}: ElasticIP default/forced`));
  // The freed address is handed out again.
  await eips().create(eip('next', { poolRef: { name: 'repair' } }));
  await waitFor('next gets the freed address', async () => (await eips().get('default', 'next'))?.status?.address === held, 20_000, 100);
});
