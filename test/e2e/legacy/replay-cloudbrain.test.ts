/**
 * Replays every exchange of the Cloud Brain document (test/fixtures/legacy/cloudbrain/)
 * against `stratus serve` through the legacy listener, with `provider: gce` going all the way
 * to the GCE fake: the document's token shape (made by `bin/cloudbrain-create-token`), its
 * POST and GET, its 401.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { KubeClient } from '../../../runtime/client.js';
import { Resources } from '../../../controllers/resources.js';
import { startFakeGce, type FakeGce } from '../../fakes/gce/index.js';
import { registerGceNode } from '../../harness/gce.js';
import { repoRoot } from '../../harness/paths.js';
import { waitFor } from '../../harness/process.js';
import { startLegacyServe, type LegacyServe } from './helpers.js';
import { bind, loadExchange, replay, send } from './replay.js';

const execFileP = promisify(execFile);
const DOC_TOKEN = '1-b180349faf82840b43ebf27e730f894f';
const DOC_ID = '0d654ef4-75b9-49a6-9f90-f9b1ae3501fc';

describe('Cloud Brain document replayed through the legacy proxy, provider gce on the GCE fake', () => {
  let fake: FakeGce;
  let env: LegacyServe;
  let client: KubeClient;
  let token: string;
  let id: string;

  before(async () => {
    fake = await startFakeGce({ project: 'acme-prod', stepMs: 50 });
    fake.state.addImage({ project: 'acme-prod', name: 'image-2016-01-01', diskSizeGb: 10 });
    env = await startLegacyServe();
    client = KubeClient.fromFile(env.serve.kubeconfig);
    // The service-account key, as a user stores it: a Secret the ComputeNode names.
    await registerGceNode(client, fake, { project: 'acme-prod' });
  });

  after(async () => {
    client?.close();
    await env?.serve.stop();
    await fake?.close();
  });

  it('bin/cloudbrain-create-token "description" prints the document\'s line and stores the token through the API server', async () => {
    const { stdout } = await execFileP(process.execPath, [join(repoRoot(), 'bin', 'cloudbrain-create-token'), 'description of the token'], {
      env: { ...process.env, KUBECONFIG: env.serve.kubeconfig, STRATUS_LOG_LEVEL: 'warn' },
    });
    const m = /^generated token: ([0-9]+-[0-9a-f]{32})\n$/.exec(stdout);
    assert.ok(m, `printed ${JSON.stringify(stdout)}`);
    token = m[1]!;
    const stored = await client.resource(Resources.accessTokens).list('default');
    assert.equal(stored.length, 1);
    assert.ok(!JSON.stringify(stored).includes(token.split('-')[1]!), 'only salt and hash are stored');
  });

  it('01 POST /instances {provider: gce, image} answers 201, an absolute Location and the document\'s body', async () => {
    const ex = bind(await loadExchange('cloudbrain', '01-create-instance'), { [DOC_TOKEN]: token });
    const res = await replay(env.legacy, ex);
    id = (res.json as { id: string }).id;
    assert.equal(res.headers.get('location'), `${env.legacy}/instances/${id}`, 'the Location names this server and the instance');
  });

  it('02 GET /instances/:uuid answers the document\'s body once the GCE VM runs, with its IP', async () => {
    const ex = bind(await loadExchange('cloudbrain', '02-get-instance'), { [DOC_TOKEN]: token, [DOC_ID]: id });
    await waitFor('the instance running with an IP', async () => {
      const r = await send(env.legacy, ex);
      const v = r.json as { state?: string; ip_address?: string | null };
      return v.state === 'running' && v.ip_address ? true : undefined;
    }, 60_000, 100);
    await replay(env.legacy, ex);
    const vm = [...fake.state.instances.values()].find((x) => x.labels?.['stratus-uid'] !== undefined);
    assert.ok(vm, 'the VM exists in the Compute API');
    assert.match(JSON.stringify(vm), /image-2016-01-01/, 'booted from the document\'s image');
  });

  it('03 a token that is not this server\'s is 401', async () => {
    await replay(env.legacy, await loadExchange('cloudbrain', '03-invalid-token'));
  });
});
