/**
 * The GCE provider (`connectGce`) driven like the Instance controller drives it, against the
 * fake Compute API: the machine lifecycle with the fake's clock stepped by hand, idempotent
 * create and adoption, quota failures inside operations, throttling with Retry-After, and
 * the errors a user can act on (missing image, missing permission, foreign VM).
 */
import { createServer, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { GceApiError, connectGce, instanceName, type GceNodeConnection } from '../../../providers/gce/index.js';
import { gceProvider } from '../../../providers/gce/provider.js';
import { ReconcileError } from '../../../runtime/errors.js';
import type { MachineObservation, MachineSpec, MachineState } from '../../../providers/machine.js';
import { startFakeGce, type FakeGce } from '../../fakes/gce/index.js';
import { freePort, waitFor } from '../../harness/process.js';

const PROJECT = 'provider-project';
const ZONE = 'us-central1-a';
const STEP = 60_000; // the fake's clock only moves when a test advances it
const GiB = 1024 ** 3;

let counter = 0;
function spec(over: Partial<MachineSpec> = {}): MachineSpec {
  counter++;
  const uid = `7f3c9a10-0000-4000-8000-${String(counter).padStart(12, '0')}`;
  return {
    uid,
    namespace: 'default',
    name: `vm-${counter}`,
    hostname: `vm-${counter}`,
    image: 'debian-12',
    cpus: 2,
    memoryMiB: 4096,
    disks: [{ name: 'data', sizeGiB: 20 }],
    networks: [],
    sshAuthorizedKeys: [],
    env: {},
    ports: [],
    labels: { 'app.kubernetes.io/name': 'Web' },
    powerState: 'Running',
    providerSpec: { externalAddress: true },
    ...over,
  };
}

const isProviderError =
  (reason: string, retryable?: boolean) =>
  (err: unknown): boolean =>
    err instanceof ReconcileError && err.reason === reason && (retryable === undefined || err.retryable === retryable);

describe('GCE provider against the fake Compute API', () => {
  let gce: FakeGce;
  let node: GceNodeConnection;

  before(async () => {
    gce = await startFakeGce({ project: PROJECT, stepMs: STEP, waitDeadlineMs: 300 });
    node = connectGce({
      project: PROJECT,
      zone: ZONE,
      endpoint: gce.endpoint,
      credentialsJson: gce.serviceAccountKey,
      imageProject: 'debian-cloud',
      requestTimeoutMs: 5000,
      waitTimeoutMs: 5000,
      operationPollMs: 10,
    });
  });

  after(async () => {
    await node.close();
    await gce.close();
  });

  it('describe reports the CPUS quota, the zone and the machines stratus owns', async () => {
    const d = await node.describe();
    assert.deepEqual(d, { capacity: { cpus: 24, memoryMiB: 24 * 8192 }, version: `GCE ${ZONE}`, machineCount: 0 });
  });

  it('a machine goes creating → starting → running with an IP, stops, starts and is deleted', async () => {
    gce.inject.slowOperations(STEP);
    const m = node.machines();
    const s = spec();
    const seen: MachineState[] = [];
    const observe = async (): Promise<MachineObservation> => {
      const o = await m.observe(s);
      if (seen.at(-1) !== o.state) seen.push(o.state);
      return o;
    };
    assert.equal((await observe()).exists, false);
    const before = gce.requests.length;
    await m.create(s);
    const sent = gce.requests.slice(before).map((r) => `${r.method} ${r.path}`);
    assert.deepEqual(sent, [
      'GET /compute/v1/projects/debian-cloud/global/images/debian-12',
      'GET /compute/v1/projects/debian-cloud/global/images/family/debian-12',
      `POST /compute/v1/projects/${PROJECT}/zones/${ZONE}/instances`,
    ]);
    const body = gce.requests.find((r) => r.method === 'POST' && r.path.endsWith('/instances'))?.body as Record<string, unknown>;
    assert.equal(body.machineType, `zones/${ZONE}/machineTypes/e2-standard-2`);
    assert.deepEqual(body.labels, { app_kubernetes_io_name: 'web', 'stratus-uid': s.uid, 'stratus-namespace': 'default', 'stratus-name': s.name });

    let o = await observe();
    assert.equal(o.exists, true, 'an insert in flight counts as existing');
    assert.equal(o.state, 'creating');
    await m.create(s); // idempotent while the insert runs
    assert.equal(gce.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/instances')).length, 1);

    gce.advance(STEP); // op RUNNING, instance PROVISIONING
    o = await observe();
    assert.equal(o.state, 'creating');
    assert.ok(o.addresses.some((a) => a.type === 'InternalIP'));

    gce.advance(STEP); // STAGING, op DONE, external address assigned
    o = await waitFor('the insert to finish', async () => {
      const x = await observe();
      return x.message === undefined ? x : undefined;
    });
    assert.equal(o.state, 'starting');

    gce.advance(STEP); // RUNNING
    o = await observe();
    assert.equal(o.state, 'running');
    assert.equal(o.upToDate, true);
    assert.equal(o.providerID, `gce://${PROJECT}/${ZONE}/${instanceName(s.uid)}`);
    const ext = o.addresses.find((a) => a.type === 'ExternalIP')?.address;
    assert.match(ext ?? '', /^203\.0\.113\.\d+$/);
    assert.equal(o.ipAddress, ext);
    assert.match(o.addresses.find((a) => a.type === 'InternalIP')?.address ?? '', /^10\.128\./);
    assert.deepEqual(seen, ['pending', 'creating', 'starting', 'running']);
    assert.equal((await node.describe()).machineCount, 1);
    assert.deepEqual(await m.listOwned(), [s.uid]);

    // Stop.
    const stopped: MachineSpec = { ...s, powerState: 'Stopped' };
    o = await m.observe(stopped);
    assert.equal(o.upToDate, false);
    await m.update(stopped, o);
    o = await m.observe(stopped);
    assert.equal(o.state, 'stopping');
    assert.equal(o.upToDate, true, 'a stop in flight is where the spec wants it');
    gce.advance(STEP);
    gce.advance(STEP);
    o = await waitFor('the stop to finish', async () => {
      const x = await m.observe(stopped);
      return x.state === 'stopped' && x.message === undefined ? x : undefined;
    });
    assert.equal(o.upToDate, true);
    assert.equal(o.addresses.find((a) => a.type === 'ExternalIP'), undefined, 'the ephemeral address went with the stop');
    assert.equal(o.ipAddress, o.addresses.find((a) => a.type === 'InternalIP')?.address);

    // Start.
    o = await m.observe(s);
    assert.equal(o.upToDate, false);
    await m.update(s, o);
    assert.equal((await m.observe(s)).state, 'starting');
    gce.advance(STEP);
    gce.advance(STEP);
    o = await waitFor('the start to finish', async () => {
      const x = await m.observe(s);
      return x.state === 'running' && x.message === undefined ? x : undefined;
    });
    assert.ok(o.addresses.some((a) => a.type === 'ExternalIP'));

    // Delete.
    await m.delete(s);
    assert.equal((await m.observe(s)).state, 'terminating');
    await m.delete(s); // idempotent while the delete runs
    assert.equal(gce.requests.filter((r) => r.method === 'DELETE').length, 1);
    gce.advance(STEP);
    gce.advance(STEP);
    await waitFor('the VM to be gone', async () => !(await m.observe(s)).exists);
    await m.delete(s); // absent is success
    assert.deepEqual(await m.listOwned(), []);
    assert.ok(!gce.state.listInstances(ZONE).some((i) => i.name === instanceName(s.uid)));
  });

  it('grows a data disk with disks.resize (online, not blocking on the operation) and never shrinks it', async () => {
    const m = node.machines();
    const resize = gceProvider.capabilities.diskResize!;
    const signal = AbortSignal.timeout(30_000);
    const s = spec();
    await m.create(s);
    for (let i = 0; i < 3; i++) gce.advance(STEP);
    await waitFor('the VM to run', async () => (await m.observe(s)).state === 'running');
    assert.deepEqual(await resize.sizes(node, s, signal), [{ name: 'data', bytes: 20 * GiB }]);

    const before = gce.requests.length;
    assert.deepEqual(await resize.grow(node, s, 'data', 30 * GiB, signal), { online: true, state: 'started' });
    const disk = `${instanceName(s.uid)}-1-data`;
    const posts = (): { path: string; body: unknown }[] => gce.requests.slice(before).filter((r) => r.method === 'POST' && r.path.endsWith('/resize')).map((r) => ({ path: r.path, body: r.body }));
    assert.deepEqual(posts(), [{ path: `/compute/v1/projects/${PROJECT}/zones/${ZONE}/disks/${disk}/resize`, body: { sizeGb: '30' } }]);
    assert.deepEqual(await resize.grow(node, s, 'data', 30 * GiB, signal), { online: true, state: 'underway' }, 'a resize in flight is not asked for twice');
    assert.equal(posts().length, 1);
    gce.advance(STEP);
    await waitFor('the resize to finish', async () => (await resize.sizes(node, s, signal))[0]?.bytes === 30 * GiB);
    assert.deepEqual(await resize.grow(node, s, 'data', 30 * GiB, signal), { online: true, state: 'done' });
    assert.equal(gce.state.getInstance(ZONE, instanceName(s.uid)).disks[1]?.diskSizeGb, 30);

    // Never smaller: refused by the provider before any request, and by the API itself (400).
    await assert.rejects(resize.grow(node, s, 'data', 10 * GiB, signal), isProviderError('DiskShrinkRefused', false));
    await assert.rejects(node.api.resizeDisk(disk, 10, randomUUID()), (e: unknown) => e instanceof GceApiError && e.status === 400 && /New disk size '10' GB must be larger than existing size '30' GB/.test((e as Error).message));
    await assert.rejects(resize.grow(node, s, 'nope', 40 * GiB, signal), isProviderError('DiskNotFound'));

    await m.delete(s);
    gce.advance(STEP);
    gce.advance(STEP);
    await waitFor('the VM to be gone', async () => !(await m.observe(s)).exists);
  });

  it('create adopts a VM that already carries the uid (409 on insert) and refuses a foreign one', async () => {
    gce.inject.slowOperations(5);
    const m = node.machines();
    const s = spec();
    gce.state.addInstance(ZONE, { name: instanceName(s.uid), machineType: 'e2-standard-2', labels: { 'stratus-uid': s.uid } });
    const n = gce.requests.length;
    await m.create(s);
    assert.ok(gce.requests.slice(n).some((r) => r.method === 'POST' && r.status === 409), 'the insert met alreadyExists');
    const o = await m.observe(s);
    assert.equal(o.exists, true);
    assert.equal(o.state, 'running');
    assert.equal(o.upToDate, false, 'labels differ from the spec');
    await m.update(s, o);
    await waitFor('labels repaired', async () => (await m.observe(s)).upToDate && !(await m.observe(s)).message);
    assert.equal(gce.state.getInstance(ZONE, instanceName(s.uid)).labels['stratus-name'], s.name);

    const foreign = spec();
    gce.state.addInstance(ZONE, { name: instanceName(foreign.uid), labels: { owner: 'someone-else' } });
    await assert.rejects(m.observe(foreign), isProviderError('NameConflict', false));
    await assert.rejects(m.create(foreign), isProviderError('NameConflict', false));
    await m.delete(foreign);
    assert.ok(gce.state.instances.has(`${ZONE}/${instanceName(foreign.uid)}`), 'a foreign VM is never deleted');
    await m.delete(s);
    await waitFor('adopted VM deleted', async () => !(await m.observe(s)).exists);
  });

  it('QUOTA_EXCEEDED in the insert operation surfaces as QuotaExceeded and clears when the quota returns', async () => {
    gce.inject.slowOperations(5);
    const m = node.machines();
    const s = spec({ cpus: 4, memoryMiB: 8192 });
    gce.inject.quota('us-central1', 'CPUS', 2);
    try {
      await m.create(s);
      const err = await waitFor('the quota failure', async () => {
        try {
          await m.observe(s);
          return undefined;
        } catch (e) {
          return e;
        }
      });
      assert.ok(err instanceof ReconcileError);
      assert.equal(err.reason, 'QuotaExceeded');
      assert.equal(err.retryable, true);
      assert.equal(err.retryAfterMs, 30_000);
      assert.match(err.message, /QUOTA_EXCEEDED: Quota 'CPUS' exceeded/);
      const after1 = await m.observe(s);
      assert.equal(after1.exists, false, 'nothing was created');
      // The controller retries: still over quota.
      await m.create(s);
      await waitFor('the second quota failure', async () => m.observe(s).then(() => undefined, (e: unknown) => isProviderError('QuotaExceeded')(e)));
    } finally {
      gce.inject.quota('us-central1', 'CPUS', 24);
    }
    await m.create(s);
    const o = await waitFor('running once the quota returned', async () => {
      const x = await m.observe(s);
      return x.state === 'running' ? x : undefined;
    });
    assert.ok(o.ipAddress);
    const body = gce.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/instances')).at(-1)?.body as Record<string, unknown>;
    assert.equal(body.machineType, `zones/${ZONE}/machineTypes/e2-standard-4`);
    await m.delete(s);
    await waitFor('deleted', async () => !(await m.observe(s)).exists);
  });

  it('a 429 means Throttled with the server Retry-After, and no hammering while throttled', async (t) => {
    const m = node.machines();
    const s = spec();
    const busy = spec();
    // An insert in flight, so the background operation poll is throttled too.
    gce.inject.slowOperations(STEP);
    await m.create(busy);
    gce.inject.rateLimit({ forMs: 60_000, retryAfterSeconds: 1 });
    const start = gce.requests.length;
    const errors: ReconcileError[] = [];
    const calls = 40;
    const t0 = performance.now();
    try {
      // A tight loop of reconciles: without backoff each would send a request.
      for (let i = 0; i < calls; i++) {
        try {
          await m.observe(s);
        } catch (err) {
          if (!(err instanceof ReconcileError)) throw err;
          errors.push(err);
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    } finally {
      gce.inject.clear();
    }
    const sent = gce.requests.length - start;
    // However slow the machine, each Retry-After window (1 s) lets at most one observe and one
    // operation wait out (plus a wait already in flight): the bound follows the time taken.
    const windows = Math.ceil((performance.now() - t0) / 1000) + 1;
    assert.equal(errors.length, calls, 'every call was answered');
    assert.ok(errors.every((e) => e.reason === 'Throttled' && e.retryable), 'every call reports Throttled');
    assert.equal(errors[0]?.retryAfterMs, 1000, "the first carries the server's Retry-After");
    assert.ok(errors.every((e) => (e.retryAfterMs ?? 0) > 0 && (e.retryAfterMs ?? 0) <= 1000));
    t.diagnostic(`${errors.length} throttled calls, ${sent} requests sent in ${Math.round(performance.now() - t0)} ms`);
    assert.ok(sent >= 1 && sent <= 2 * windows + 1, `a bounded number of requests went out while throttled (${sent} in ${windows} windows of 1 s)`);
    await waitFor('the backoff to end', async () => (await m.observe(s)).exists === false, 5000);
    gce.advance(STEP);
    gce.advance(STEP);
    await waitFor('the throttled insert to be seen through', async () => (await m.observe(busy)).state === 'starting', 5000);
    await m.delete(busy);
    gce.advance(STEP);
    gce.advance(STEP);
    await waitFor('deleted', async () => !(await m.observe(busy)).exists, 5000);
  });

  it('a start refused for quota surfaces as QuotaExceeded and succeeds once the quota returns', async () => {
    gce.inject.slowOperations(5);
    const m = node.machines();
    const s = spec({ cpus: 2, memoryMiB: 2048 });
    await m.create(s);
    await waitFor('running', async () => (await m.observe(s)).state === 'running');
    const stopped: MachineSpec = { ...s, powerState: 'Stopped' };
    await m.update(stopped, await m.observe(stopped));
    await waitFor('stopped', async () => {
      const o = await m.observe(stopped);
      return o.state === 'stopped' && !o.message;
    });
    const used = gce.state.usage('us-central1', 'CPUS');
    gce.inject.quota('us-central1', 'CPUS', used + 1);
    try {
      await m.update(s, await m.observe(s));
      await waitFor('the start to fail', async () => m.observe(s).then(() => false, (e: unknown) => isProviderError('QuotaExceeded', true)(e)));
      const o = await m.observe(s);
      assert.equal(o.state, 'stopped');
      assert.equal(o.upToDate, false, 'the controller will try the start again');
    } finally {
      gce.inject.quota('us-central1', 'CPUS', 24);
    }
    await m.update(s, await m.observe(s));
    await waitFor('running again', async () => (await m.observe(s)).state === 'running');
    await m.delete(s);
    await waitFor('deleted', async () => !(await m.observe(s)).exists);
  });

  it('a silent endpoint fails at the request deadline and a closed port at once, both NodeUnreachable', async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((sock) => {
      sockets.add(sock); // accept, never answer
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
    const port = (silent.address() as { port: number }).port;
    const hung = connectGce({ project: PROJECT, zone: ZONE, endpoint: `http://127.0.0.1:${port}`, credentialsJson: gce.serviceAccountKey, requestTimeoutMs: 300 });
    const refused = connectGce({ project: PROJECT, zone: ZONE, endpoint: `http://127.0.0.1:${await freePort()}`, credentialsJson: gce.serviceAccountKey, requestTimeoutMs: 300 });
    const patient = connectGce({ project: PROJECT, zone: ZONE, endpoint: `http://127.0.0.1:${port}`, credentialsJson: gce.serviceAccountKey, requestTimeoutMs: 60_000 });
    try {
      await assert.rejects(hung.describe(), (e: unknown) => isProviderError('NodeUnreachable', true)(e) && /did not answer in time/.test((e as Error).message));
      await assert.rejects(refused.describe(), (e: unknown) => isProviderError('NodeUnreachable', true)(e) && /unreachable/.test((e as Error).message));
      // The caller's signal (the reconcile's deadline) ends a machine call long before the request's own 60 s deadline.
      await assert.rejects(patient.machines().observe(spec(), AbortSignal.timeout(200)), (e: unknown) => isProviderError('DeadlineExceeded', true)(e) && /caller stopped waiting/.test((e as Error).message));
    } finally {
      await hung.close();
      await refused.close();
      await patient.close();
      for (const sock of sockets) sock.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('an unreadable service-account key is InvalidCredentials, not retryable', async () => {
    const bad = connectGce({ project: PROJECT, zone: ZONE, endpoint: gce.endpoint, credentialsJson: '{not json' });
    try {
      await assert.rejects(bad.describe(), isProviderError('InvalidCredentials', false));
    } finally {
      await bad.close();
    }
  });

  it('a missing image is ImageNotFound and a refused insert is PermissionDenied, neither retryable', async () => {
    const m = node.machines();
    const n = gce.requests.length;
    await assert.rejects(m.create(spec({ image: 'no-such-image' })), isProviderError('ImageNotFound', false));
    assert.ok(!gce.requests.slice(n).some((r) => r.method === 'POST'), 'nothing was inserted');
    await assert.rejects(m.create(spec({ image: 'projects/debian-cloud/global/images/debian-9-old' })), isProviderError('ImageNotFound', false));
    await assert.rejects(m.create(spec({ image: 'Not An Image!' })), isProviderError('InvalidSpec', false));
    gce.inject.forbidden({ count: 1, match: (r) => r.method === 'POST' });
    await assert.rejects(m.create(spec()), isProviderError('PermissionDenied', false));
    await assert.rejects(m.create(spec({ providerSpec: { machineType: 'e2-nonexistent-7' } })), isProviderError('InvalidSpec', false));
  });
});
