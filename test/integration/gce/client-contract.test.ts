/**
 * The client-level contract of the GCE provider: every Compute call it makes, run through
 * the official `@google-cloud/compute` client against the fake, with the HTTP request
 * (method, path, query, body) and the parsed answer asserted. The fake's own behaviours the
 * provider relies on (asynchronous operations, pagination, filters, error shapes, quota
 * errors inside operations) are pinned here too.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { InstancesClient, MachineTypesClient } from '@google-cloud/compute/build/src/v1/index.js';
import { ComputeApi, GceApiError, describeFailure, insertBody } from '../../../providers/gce/index.js';
import { ReconcileError } from '../../../runtime/errors.js';
import type { MachineSpec } from '../../../providers/machine.js';
import { startFakeGce, type FakeGce, type RecordedRequest } from '../../fakes/gce/index.js';
import { tokenClient } from '../../fakes/gce/oauth.js';

const PROJECT = 'contract-project';
const ZONE = 'us-central1-a';
const BASE = `/compute/v1/projects/${PROJECT}/zones/${ZONE}`;

function spec(uid: string, over: Partial<MachineSpec> = {}): MachineSpec {
  return {
    uid,
    namespace: 'team-a',
    name: 'web',
    hostname: 'web',
    image: 'debian-12',
    cpus: 1,
    memoryMiB: 1024,
    disks: [],
    networks: [],
    sshAuthorizedKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOx alice@laptop'],
    userData: '#cloud-config\n',
    env: {},
    ports: [],
    labels: {},
    powerState: 'Running',
    providerSpec: { externalAddress: true },
    ...over,
  };
}

describe('GCE client contract (official client against the fake)', () => {
  let gce: FakeGce;
  let api: ComputeApi;
  let raw: InstancesClient;
  const since = (n: number): RecordedRequest[] => gce.requests.slice(n);

  before(async () => {
    gce = await startFakeGce({ project: PROJECT, stepMs: 5, waitDeadlineMs: 1000 });
    api = new ComputeApi({ project: PROJECT, zone: ZONE, endpoint: gce.endpoint, credentialsJson: gce.serviceAccountKey, requestTimeoutMs: 5000, waitTimeoutMs: 5000 });
    raw = new InstancesClient({ apiEndpoint: '127.0.0.1', port: gce.port, protocol: 'http', authClient: tokenClient(gce.oauth) as never });
  });

  after(async () => {
    api.close();
    await raw.close();
    await gce.close();
  });

  it('instances.insert POSTs the expected body and returns a PENDING zonal operation', async () => {
    const uid = '0b5e2c4a-1111-4c1d-9e2f-aaaaaaaaaaaa';
    const img = await api.getImage('debian-cloud', 'debian-12', true);
    assert.equal(img?.name, 'debian-12-bookworm-v20241112', 'getFromFamily returns the newest image that is not deprecated');
    const body = insertBody(spec(uid), { project: PROJECT, zone: ZONE, network: 'default', sourceImage: img.selfLink ?? '', imageSizeGb: Number(img.diskSizeGb) });
    const n = gce.requests.length;
    const op = await api.insertInstance(body, 'req-1');
    const [req] = since(n);
    assert.equal(req?.method, 'POST');
    assert.equal(req?.path, `${BASE}/instances`);
    assert.equal(req?.query.requestId, 'req-1');
    assert.deepEqual(req?.body, {
      name: 'st-0b5e2c4a11114c1d9e2faaaaaaaaaaaa',
      machineType: `zones/${ZONE}/machineTypes/e2-micro`,
      labels: { 'stratus-uid': uid, 'stratus-namespace': 'team-a', 'stratus-name': 'web' },
      disks: [
        {
          boot: true,
          autoDelete: true,
          initializeParams: {
            sourceImage: 'https://www.googleapis.com/compute/v1/projects/debian-cloud/global/images/debian-12-bookworm-v20241112',
            diskSizeGb: '10',
            labels: {},
            resourceManagerTags: {},
          },
        },
      ],
      networkInterfaces: [{ network: `projects/${PROJECT}/global/networks/default`, accessConfigs: [{ type: 'ONE_TO_ONE_NAT', name: 'External NAT' }] }],
      metadata: {
        items: [
          { key: 'ssh-keys', value: 'alice:ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOx alice@laptop' },
          { key: 'user-data', value: '#cloud-config\n' },
        ],
      },
    });
    assert.match(op.name ?? '', /^operation-\d+-[0-9a-f]+-[0-9a-f]+$/);
    assert.equal(op.status, 'PENDING');
    assert.equal(op.operationType, 'insert');

    const again = await api.insertInstance(body, 'req-1');
    assert.equal(again.name, op.name, 'the same requestId returns the same operation');

    const m = gce.requests.length;
    let done = await api.waitOperation(op.name ?? '');
    while (done.status !== 'DONE') done = await api.waitOperation(op.name ?? '');
    const waits = since(m);
    assert.equal(waits.length, 1, 'wait blocks until the operation is DONE (within its deadline)');
    assert.ok(waits.every((r) => r.method === 'POST' && r.path === `${BASE}/operations/${op.name}/wait`));
    assert.ok(!done.error, 'a successful operation carries no error');
    const polled = await api.getOperation(op.name ?? '');
    assert.equal(polled.status, 'DONE');
    assert.equal(gce.requests.at(-1)?.path, `${BASE}/operations/${op.name}`);
    assert.equal(gce.requests.at(-1)?.method, 'GET');

    const inst = await api.getInstance('st-0b5e2c4a11114c1d9e2faaaaaaaaaaaa');
    assert.ok(inst);
    assert.ok(['STAGING', 'RUNNING'].includes(String(inst.status)));
    assert.equal(inst.labels?.['stratus-uid'], uid);
    assert.match(inst.labelFingerprint ?? '', /^[A-Za-z0-9+/]+=*$/);
    assert.match(inst.networkInterfaces?.[0]?.networkIP ?? '', /^10\.128\./);
    assert.match(inst.networkInterfaces?.[0]?.accessConfigs?.[0]?.natIP ?? '', /^203\.0\.113\./);
    assert.equal(gce.requests.at(-1)?.path, `${BASE}/instances/st-0b5e2c4a11114c1d9e2faaaaaaaaaaaa`);
  });

  it('an instance without an access config has a networkIP and no natIP', async () => {
    const img = await api.getImage('debian-cloud', 'debian-12-bookworm-v20241112');
    assert.equal(gce.requests.at(-1)?.path, '/compute/v1/projects/debian-cloud/global/images/debian-12-bookworm-v20241112');
    const body = insertBody(spec('22222222-2222-2222-2222-222222222222', { providerSpec: {} }), {
      project: PROJECT,
      zone: ZONE,
      network: 'default',
      sourceImage: img?.selfLink ?? '',
      imageSizeGb: 10,
    });
    assert.equal(body.networkInterfaces?.[0]?.accessConfigs, undefined);
    const op = await api.insertInstance(body, 'req-2');
    let done = await api.waitOperation(op.name ?? '');
    while (done.status !== 'DONE') done = await api.waitOperation(op.name ?? '');
    const inst = await api.getInstance(body.name ?? '');
    assert.ok(inst?.networkInterfaces?.[0]?.networkIP);
    assert.deepEqual(inst?.networkInterfaces?.[0]?.accessConfigs, []);
  });

  it('a missing image or instance is a 404 in the API error shape', async () => {
    assert.equal(await api.getImage('debian-cloud', 'no-such-image'), undefined);
    assert.equal(await api.getInstance('st-missing'), undefined);
    try {
      await raw.get({ project: PROJECT, zone: ZONE, instance: 'st-missing' }, { retry: null });
      assert.fail('expected a 404');
    } catch (err) {
      const f = describeFailure(err);
      assert.equal(f.status, 404);
      assert.equal(f.reason, 'notFound');
      assert.equal(f.message, `The resource 'projects/${PROJECT}/zones/${ZONE}/instances/st-missing' was not found`);
    }
  });

  it('a second insert of the same name is 409 alreadyExists', async () => {
    const img = await api.getImage('debian-cloud', 'debian-12', true);
    const body = insertBody(spec('0b5e2c4a-1111-4c1d-9e2f-aaaaaaaaaaaa'), { project: PROJECT, zone: ZONE, network: 'default', sourceImage: img?.selfLink ?? '', imageSizeGb: 10 });
    await assert.rejects(api.insertInstance(body, 'req-3'), (err: unknown) => err instanceof GceApiError && err.status === 409 && err.reason === 'alreadyExists');
  });

  it('instances.list pages with maxResults/pageToken and filters on labels', async () => {
    gce.state.addInstance(ZONE, { name: 'unlabelled-a' });
    gce.state.addInstance(ZONE, { name: 'st-labelled-b', labels: { 'stratus-uid': 'b' } });
    gce.state.addInstance(ZONE, { name: 'st-labelled-c', labels: { 'stratus-uid': 'c', team: 'x' } });
    const [page1, next, response] = await raw.list({ project: PROJECT, zone: ZONE, maxResults: 2, filter: 'labels.stratus-uid:*' }, { autoPaginate: false, retry: null });
    const req = gce.requests.at(-1);
    assert.equal(req?.path, `${BASE}/instances`);
    assert.equal(req?.query.filter, 'labels.stratus-uid:*');
    assert.equal(req?.query.maxResults, '2');
    assert.equal(page1.length, 2);
    assert.ok(response?.nextPageToken, 'a further page is announced');
    assert.equal(next?.pageToken, response?.nextPageToken);
    const [page2, last] = await raw.list({ project: PROJECT, zone: ZONE, maxResults: 2, filter: 'labels.stratus-uid:*', pageToken: response?.nextPageToken ?? '' }, { autoPaginate: false, retry: null });
    assert.equal(last, null, 'the last page has no nextPageToken');
    const names = [...page1, ...page2].map((i) => i.name).sort();
    assert.ok(names.includes('st-labelled-b') && names.includes('st-labelled-c') && !names.includes('unlabelled-a'));
    const viaApi = await api.listInstances('labels.stratus-uid = "c"');
    assert.deepEqual(viaApi.map((i) => i.name), ['st-labelled-c']);
    await assert.rejects(api.listInstances('labels.x ==== y'), (err: unknown) => err instanceof GceApiError && err.status === 400 && err.reason === 'invalid');
  });

  it('instances.aggregatedList groups instances by zone, with a warning for empty zones', async () => {
    gce.state.addInstance('europe-west1-b', { name: 'st-eu', labels: { 'stratus-uid': 'eu' } });
    const scopes = new Map<string, { instances?: unknown[] | null; warning?: { code?: unknown } | null }>();
    for await (const [scope, list] of raw.aggregatedListAsync({ project: PROJECT, filter: 'labels.stratus-uid:*', maxResults: 2 }, { retry: null, autoPaginate: false })) {
      const prior = scopes.get(scope);
      scopes.set(scope, { instances: [...(prior?.instances ?? []), ...(list.instances ?? [])], warning: list.warning ?? null });
    }
    assert.ok(gce.requests.some((r) => r.path === `/compute/v1/projects/${PROJECT}/aggregated/instances` && r.query.maxResults === '2' && r.query.pageToken));
    assert.equal(scopes.get('zones/europe-west1-b')?.instances?.length, 1);
    assert.ok((scopes.get(`zones/${ZONE}`)?.instances?.length ?? 0) >= 3);
    assert.equal(scopes.get('zones/us-central1-b')?.instances?.length, 0);
    assert.equal(scopes.get('zones/us-central1-b')?.warning?.code, 'NO_RESULTS_ON_PAGE');
  });

  it('stop, start, setLabels and delete are operations on the instance path', async () => {
    const name = 'st-0b5e2c4a11114c1d9e2faaaaaaaaaaaa';
    const until = async (opName: string): Promise<void> => {
      let op = await api.waitOperation(opName);
      while (op.status !== 'DONE') op = await api.waitOperation(opName);
      assert.ok(!op.error, 'no error');
    };
    let n = gce.requests.length;
    const stop = await api.instanceAction('stop', name);
    assert.deepEqual([since(n)[0]?.method, since(n)[0]?.path], ['POST', `${BASE}/instances/${name}/stop`]);
    await until(stop.name ?? '');
    let inst = await api.getInstance(name);
    assert.equal(inst?.status, 'TERMINATED');
    assert.equal(inst?.networkInterfaces?.[0]?.accessConfigs?.[0]?.natIP ?? undefined, undefined, 'a stopped VM loses its ephemeral address');
    assert.ok(inst?.networkInterfaces?.[0]?.networkIP, 'and keeps its internal one');

    n = gce.requests.length;
    const start = await api.instanceAction('start', name);
    assert.deepEqual([since(n)[0]?.method, since(n)[0]?.path], ['POST', `${BASE}/instances/${name}/start`]);
    await until(start.name ?? '');
    inst = await api.getInstance(name);
    assert.equal(inst?.status, 'RUNNING');
    assert.ok(inst?.networkInterfaces?.[0]?.accessConfigs?.[0]?.natIP, 'a started VM gets a new ephemeral address');

    await assert.rejects(api.setLabels(name, { a: 'b' }, 'stale'), (err: unknown) => err instanceof GceApiError && err.status === 412 && err.reason === 'conditionNotMet');
    n = gce.requests.length;
    const labels = { ...(inst?.labels ?? {}), extra: 'yes' };
    const set = await api.setLabels(name, labels, inst?.labelFingerprint ?? '');
    assert.deepEqual(since(n)[0]?.body, { labels, labelFingerprint: inst?.labelFingerprint });
    assert.equal(since(n)[0]?.path, `${BASE}/instances/${name}/setLabels`);
    await until(set.name ?? '');
    assert.equal((await api.getInstance(name))?.labels?.extra, 'yes');

    n = gce.requests.length;
    const del = await api.instanceAction('delete', name);
    assert.deepEqual([since(n)[0]?.method, since(n)[0]?.path], ['DELETE', `${BASE}/instances/${name}`]);
    await until(del.name ?? '');
    assert.equal(await api.getInstance(name), undefined);
  });

  it('a CPUS quota failure is returned inside the DONE operation, not thrown', async () => {
    gce.inject.quota('us-central1', 'CPUS', 0);
    try {
      const body = insertBody(spec('33333333-3333-3333-3333-333333333333'), {
        project: PROJECT,
        zone: ZONE,
        network: 'default',
        sourceImage: 'projects/debian-cloud/global/images/family/debian-12',
        imageSizeGb: 10,
      });
      const op = await api.insertInstance(body, 'req-q');
      let done = await api.waitOperation(op.name ?? '');
      while (done.status !== 'DONE') done = await api.waitOperation(op.name ?? '');
      const e = done.error?.errors?.[0];
      assert.equal(e?.code, 'QUOTA_EXCEEDED');
      assert.match(e?.message ?? '', /Quota 'CPUS' exceeded\.\s+Limit: 0\.0 in region us-central1/);
      assert.equal(e?.errorDetails?.[0]?.quotaInfo?.metricName, 'compute.googleapis.com/cpus');
      assert.equal(done.httpErrorStatusCode, 403);
      assert.equal(await api.getInstance(body.name ?? ''), undefined, 'the instance was never created');
    } finally {
      gce.inject.quota('us-central1', 'CPUS', 24);
    }
  });

  it('zones.get, regions.get (quotas) and machineTypes list/get', async () => {
    const zone = await api.getZone();
    assert.equal(gce.requests.at(-1)?.path, `${BASE}`);
    assert.equal(zone.status, 'UP');
    assert.match(zone.region ?? '', /\/regions\/us-central1$/);
    const region = await api.getRegion('us-central1');
    assert.equal(gce.requests.at(-1)?.path, `/compute/v1/projects/${PROJECT}/regions/us-central1`);
    const cpus = region.quotas?.find((q) => q.metric === 'CPUS');
    assert.equal(cpus?.limit, 24);
    assert.equal(typeof cpus?.usage, 'number');
    const types = new MachineTypesClient({ apiEndpoint: '127.0.0.1', port: gce.port, protocol: 'http', authClient: tokenClient(gce.oauth) as never });
    try {
      const [list] = await types.list({ project: PROJECT, zone: ZONE, filter: 'name = e2-standard-*' }, { autoPaginate: false, retry: null });
      assert.deepEqual(list.map((t) => t.name).sort(), ['e2-standard-16', 'e2-standard-2', 'e2-standard-32', 'e2-standard-4', 'e2-standard-8']);
      const [one] = await types.get({ project: PROJECT, zone: ZONE, machineType: 'e2-medium' }, { retry: null });
      assert.equal(one.guestCpus, 2);
      assert.equal(one.memoryMb, 4096);
      assert.equal(one.isSharedCpu, true);
      assert.equal(gce.requests.at(-1)?.path, `${BASE}/machineTypes/e2-medium`);
    } finally {
      await types.close();
    }
  });

  it('429 → Throttled with the server Retry-After, 503 → ProviderUnavailable, 403 → PermissionDenied; one request each', async () => {
    const probe = new ComputeApi({ project: PROJECT, zone: ZONE, endpoint: gce.endpoint, credentialsJson: gce.serviceAccountKey, requestTimeoutMs: 5000, waitTimeoutMs: 5000 });
    try {
      gce.inject.rateLimit({ count: 1, retryAfterSeconds: 7 });
      let n = gce.requests.length;
      await assert.rejects(probe.getInstance('x'), (err: unknown) => err instanceof ReconcileError && err.reason === 'Throttled' && err.retryAfterMs === 7000 && err.retryable);
      assert.equal(since(n).length, 1, 'the client does not retry on its own');
      assert.equal(since(n)[0]?.status, 429);
      n = gce.requests.length;
      await assert.rejects(probe.getInstance('x'), (err: unknown) => err instanceof ReconcileError && err.reason === 'Throttled' && (err.retryAfterMs ?? 0) > 0);
      assert.equal(since(n).length, 0, 'while backing off, nothing is sent');

      const other = new ComputeApi({ project: PROJECT, zone: ZONE, endpoint: gce.endpoint, credentialsJson: gce.serviceAccountKey, requestTimeoutMs: 5000, waitTimeoutMs: 5000 });
      try {
        gce.inject.serverError({ status: 503, count: 1 });
        n = gce.requests.length;
        await assert.rejects(other.getInstance('x'), (err: unknown) => err instanceof ReconcileError && err.reason === 'ProviderUnavailable' && err.retryable && (err.retryAfterMs ?? 0) >= 1000);
        assert.equal(since(n).length, 1);
      } finally {
        other.close();
      }
      const third = new ComputeApi({ project: PROJECT, zone: ZONE, endpoint: gce.endpoint, credentialsJson: gce.serviceAccountKey, requestTimeoutMs: 5000, waitTimeoutMs: 5000 });
      try {
        gce.inject.forbidden({ count: 1 });
        await assert.rejects(third.getZone(), (err: unknown) => err instanceof ReconcileError && err.reason === 'PermissionDenied' && !err.retryable);
      } finally {
        third.close();
      }
    } finally {
      probe.close();
      gce.inject.clear();
    }
  });
});
