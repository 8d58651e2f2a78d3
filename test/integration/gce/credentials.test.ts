/**
 * How the GCE provider authenticates and sizes a node, against the fake Compute API, which
 * checks what Google checks: every request needs a bearer token, and tokens come only from
 * the JWT-bearer grant signed by a service-account key the fake knows. Proves the key from a
 * node Secret (`credentialsJson`), `GOOGLE_APPLICATION_CREDENTIALS`, refusal of a forged key,
 * token renewal after expiry, 403 `rateLimitExceeded` as throttling, and capacity from the
 * region's quota minus other workloads' usage with memory from `machineTypes.list`.
 */
import { generateKeyPairSync } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { InstancesClient } from '@google-cloud/compute/build/src/v1/index.js';
import { connectGce, type GceNodeConnection } from '../../../providers/gce/index.js';
import { ReconcileError } from '../../../runtime/errors.js';
import { startFakeGce, type FakeGce } from '../../fakes/gce/index.js';
import { tokenClient } from '../../fakes/gce/oauth.js';
import { removeDir, tempDir } from '../../harness/process.js';

const PROJECT = 'creds-project';
const ZONE = 'us-central1-a';

const isProviderError =
  (reason: string, retryable?: boolean) =>
  (err: unknown): boolean =>
    err instanceof ReconcileError && err.reason === reason && (retryable === undefined || err.retryable === retryable);

describe('GCE credentials and capacity against the fake', () => {
  let gce: FakeGce;
  let dir: string;
  const open: GceNodeConnection[] = [];
  const connect = (over: Partial<Parameters<typeof connectGce>[0]> = {}): GceNodeConnection => {
    const c = connectGce({ project: PROJECT, zone: ZONE, endpoint: gce.endpoint, requestTimeoutMs: 5000, waitTimeoutMs: 5000, ...over });
    open.push(c);
    return c;
  };

  before(async () => {
    gce = await startFakeGce({ project: PROJECT, stepMs: 5 });
    dir = await tempDir('gce-creds');
  });
  after(async () => {
    for (const c of open) await c.close();
    await gce.close();
    await removeDir(dir);
  });

  it('a service-account key gets a token by the JWT grant and every request carries it', async () => {
    const minted = gce.oauth.minted;
    const n = gce.requests.length;
    const d = await connect({ credentialsJson: gce.serviceAccountKey }).describe();
    assert.equal(d.version, `GCE ${ZONE}`);
    assert.ok(gce.oauth.minted > minted, 'a token was minted');
    const made = gce.requests.slice(n);
    assert.ok(made.length >= 4, 'zone, region, instances and machine types were read');
    assert.ok(made.every((r) => r.status === 200), `every request was authenticated: ${made.map((r) => `${r.path} ${r.status}`).join(', ')}`);
  });

  it('GOOGLE_APPLICATION_CREDENTIALS names the key when the node has none', async () => {
    const file = join(dir, 'adc.json');
    await writeFile(file, gce.serviceAccountKey, { mode: 0o600 });
    const saved = process.env.GOOGLE_APPLICATION_CREDENTIALS;
    process.env.GOOGLE_APPLICATION_CREDENTIALS = file;
    try {
      const minted = gce.oauth.minted;
      assert.equal((await connect().describe()).version, `GCE ${ZONE}`);
      assert.ok(gce.oauth.minted > minted);
      process.env.GOOGLE_APPLICATION_CREDENTIALS = join(dir, 'missing.json');
      await assert.rejects(connect().describe(), (e: unknown) => isProviderError('InvalidCredentials', false)(e) && /GOOGLE_APPLICATION_CREDENTIALS/.test((e as Error).message));
    } finally {
      if (saved === undefined) delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
      else process.env.GOOGLE_APPLICATION_CREDENTIALS = saved;
    }
  });

  it('a key the fake does not know (forged signature) gets no token and no API call is served', async () => {
    const forged = JSON.parse(gce.serviceAccountKey) as Record<string, string>;
    forged.private_key = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const n = gce.requests.length;
    await assert.rejects(connect({ credentialsJson: JSON.stringify(forged) }).describe(), (e: unknown) => {
      assert.ok(e instanceof ReconcileError, String(e));
      assert.equal(e.reason, 'InvalidCredentials', e.message);
      assert.equal(e.retryable, false, `${e.reason}: ${e.message}`);
      assert.match(e.message, /invalid_grant|Invalid JWT Signature/);
      return true;
    });
    assert.equal(gce.requests.length, n, 'no Compute request went out without a token');
  });

  it('a request without a token is 401 UNAUTHENTICATED, and an expired token is renewed', async () => {
    const res = await fetch(`${gce.endpoint}/compute/v1/projects/${PROJECT}/zones/${ZONE}/instances`);
    assert.equal(res.status, 401);
    assert.equal(((await res.json()) as { error: { status: string } }).error.status, 'UNAUTHENTICATED');
    gce.oauth.tokenLifetimeS = 1;
    try {
      const node = connect({ credentialsJson: gce.serviceAccountKey });
      await node.describe();
      const minted = gce.oauth.minted;
      await new Promise((r) => setTimeout(r, 1200));
      await node.describe();
      assert.ok(gce.oauth.minted > minted, 'the expired token was replaced');
    } finally {
      gce.oauth.tokenLifetimeS = 3600;
    }
  });

  it('403 rateLimitExceeded is throttling (backoff), like 429', async () => {
    const node = connect({ credentialsJson: gce.serviceAccountKey });
    gce.inject.fault({ status: 403, reason: 'rateLimitExceeded', domain: 'usageLimits', message: "Rate Limit Exceeded for 'Read requests per minute'", count: 1 });
    await assert.rejects(node.describe(), isProviderError('Throttled', true));
  });

  it('capacity is the CPUS quota minus other workloads, memory from the zone machine types', async () => {
    const node = connect({ credentialsJson: gce.serviceAccountKey });
    const before = await node.describe();
    // e2-highmem: 8 GiB per vCPU, the zone's highest ratio.
    assert.deepEqual(before.capacity, { cpus: 24, memoryMiB: 24 * 8192 });
    // A VM stratus does not own (no stratus-uid label) uses 4 of the region's vCPUs.
    const raw = new InstancesClient({ apiEndpoint: '127.0.0.1', port: gce.port, protocol: 'http', authClient: tokenClient(gce.oauth) as never });
    try {
      await raw.insert(
        {
          project: PROJECT,
          zone: ZONE,
          instanceResource: {
            name: 'someone-elses',
            machineType: `zones/${ZONE}/machineTypes/e2-standard-4`,
            disks: [{ boot: true, autoDelete: true, initializeParams: { sourceImage: 'projects/debian-cloud/global/images/family/debian-12', diskSizeGb: '10' } }],
            networkInterfaces: [{ network: 'global/networks/default' }],
          },
        },
        { retry: null },
      );
      gce.advance(60_000);
      const after = await node.describe();
      assert.deepEqual(after.capacity, { cpus: 20, memoryMiB: 20 * 8192 });
      assert.equal(after.machineCount, 0, 'the foreign VM is not counted as stratus-owned');
    } finally {
      await raw.close();
    }
  });
});
