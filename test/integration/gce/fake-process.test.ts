/**
 * The fake Compute API run as a child process (how end-to-end tests of `stratus serve` use
 * it): it announces its endpoint, answers in the Compute API's shapes, and stops on SIGTERM.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { startDaemon, waitFor, type Daemon } from '../../harness/process.js';
import { fetchAccessToken } from '../../fakes/gce/oauth.js';

describe('fake GCE as a child process', () => {
  let daemon: Daemon;
  let endpoint = '';
  let key = '';
  let fetch: (url: string) => Promise<Response>;

  before(async () => {
    // Under tsx this file is .ts and so is main; from dist/ both are .js.
    const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
    const main = fileURLToPath(new URL(`../../fakes/gce/main${ext}`, import.meta.url));
    daemon = startDaemon(process.execPath, [...process.execArgv.filter((a) => !a.startsWith('--test')), main, '--project', 'child-project', '--step-ms', '5']);
    const line = await waitFor('the fake to announce its endpoint', () => daemon.output().split('\n').find((l) => l.startsWith('{"endpoint"')), 20_000);
    ({ endpoint, serviceAccountKey: key } = JSON.parse(line) as { endpoint: string; serviceAccountKey: string });
    const token = await fetchAccessToken(key);
    fetch = (url) => globalThis.fetch(url, { headers: { authorization: `Bearer ${token}` } });
  });

  it('refuses a request without an access token as Google does (401 UNAUTHENTICATED)', async () => {
    const res = await globalThis.fetch(`${endpoint}/compute/v1/projects/child-project/zones/us-central1-a`);
    assert.equal(res.status, 401);
    const body = (await res.json()) as { error: { status: string; errors: { reason: string }[] } };
    assert.equal(body.error.status, 'UNAUTHENTICATED');
    assert.equal(body.error.errors[0]?.reason, 'required');
    const bad = await globalThis.fetch(`${endpoint}/compute/v1/projects/child-project/zones/us-central1-a`, { headers: { authorization: 'Bearer ya29.made-up' } });
    assert.equal(bad.status, 401);
  });

  after(async () => {
    await daemon.stop();
  });

  it('serves zones and regions and answers unknown resources with the API error body', async () => {
    assert.match(endpoint, /^http:\/\/127\.0\.0\.1:\d+$/);
    const zone = (await (await fetch(`${endpoint}/compute/v1/projects/child-project/zones/us-central1-a`)).json()) as Record<string, unknown>;
    assert.equal(zone.kind, 'compute#zone');
    assert.equal(zone.region, 'https://www.googleapis.com/compute/v1/projects/child-project/regions/us-central1');
    const res = await fetch(`${endpoint}/compute/v1/projects/child-project/zones/us-central1-a/instances/nope`);
    assert.equal(res.status, 404);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    assert.deepEqual(await res.json(), {
      error: {
        code: 404,
        message: "The resource 'projects/child-project/zones/us-central1-a/instances/nope' was not found",
        errors: [{ message: "The resource 'projects/child-project/zones/us-central1-a/instances/nope' was not found", domain: 'global', reason: 'notFound' }],
        status: 'NOT_FOUND',
      },
    });
  });

  it('stops on SIGTERM', async () => {
    await daemon.stop();
    assert.notEqual(daemon.child.exitCode ?? daemon.child.signalCode, null);
  });
});
