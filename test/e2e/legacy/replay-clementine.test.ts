/**
 * Replays every exchange of the clementine document (test/fixtures/legacy/clementine/)
 * against `stratus serve` through the legacy listener, with a real TLS dockerd standing in for
 * the document's boot2docker engine (its address bound to 127.0.0.1) and a local image named
 * `redis:latest`. Run twice: with a token, and without one under `--legacy-insecure`
 * (clementine had no authentication). Then the document's TODO list: every container, an
 * engine's status, saved image configs run by name and scaled to N (an InstanceGroup
 * `clementine-<id>`, seen through kubectl).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ComputeNode, Instance } from '../../../crds/types.js';
import { CoreResources, KubeClient, type KubeObject } from '../../../runtime/client.js';
import { Resources } from '../../../controllers/resources.js';
import { ensureNamespace } from '../../../legacy/namespaces.js';
import { kubectl } from '../../harness/apiserver.js';
import { importBusybox, makeCerts, startDockerd, type CertBundle, type Dockerd } from '../../harness/dockerd.js';
import { freePort, removeDir, tempDir, waitFor } from '../../harness/process.js';
import { createToken, http, startLegacyServe, type HttpResult, type LegacyServe } from './helpers.js';
import { bind, loadExchange, replay, send } from './replay.js';

const DOC_ENGINE = '192.168.59.103:2376';
const DOC_CONTAINER = 'f810083c6bfe204997cc17352cdf860fee757fcc03a2c29100ef81ebc09dc054';

interface Envelope<T> {
  ok: boolean;
  data: T;
  error?: string;
}
interface Container {
  id: string;
  name: string;
  state: string;
  engine: { id: string } | null;
}

const data = <T>(r: HttpResult, status = 200): T => {
  assert.equal(r.status, status, r.text);
  assert.equal((r.json as Envelope<T>).ok, true, r.text);
  return (r.json as Envelope<T>).data;
};

describe('clementine document replayed through the legacy proxy, on a real TLS dockerd', () => {
  let env: LegacyServe;
  let client: KubeClient;
  let certDir: string;
  let certs: CertBundle;
  let engine: Dockerd;
  let hostPort: number;
  let binding: Record<string, string | number>;

  before(async () => {
    certDir = await tempDir('clementine-replay-certs');
    certs = await makeCerts(certDir);
    engine = await startDockerd({ certs });
    await importBusybox(engine, { as: 'redis:latest', changes: ['CMD ["sleep", "3600"]', 'VOLUME /data', 'ENV REDIS_VERSION=2.8.17'] });
    env = await startLegacyServe(['--legacy-insecure']);
    client = KubeClient.fromFile(env.serve.kubeconfig);
    hostPort = await freePort();
    binding = { [DOC_ENGINE]: `127.0.0.1:${engine.port}`, '#6379': hostPort };
  });

  after(async () => {
    if (client) {
      const instances = client.resource<Instance>(Resources.instances);
      for (const i of await instances.list().catch(() => [])) await instances.delete(i.metadata!.namespace!, i.metadata!.name!).catch(() => undefined);
      await waitFor('instances gone', async () => (await instances.list()).length === 0, 30_000).catch(() => undefined);
      client.close();
    }
    await env?.serve.stop();
    await engine?.stop();
    if (certDir) await removeDir(certDir);
  });

  /** clementine's one CA and client certificate (its -conf), as an operator stores it. */
  async function tlsSecret(namespace: string): Promise<void> {
    await ensureNamespace(client, namespace);
    await client.resource<KubeObject & { data?: Record<string, string> }>(CoreResources.secrets).create({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'clementine-tls', namespace },
      data: { 'ca.pem': Buffer.from(certs.ca).toString('base64'), 'cert.pem': Buffer.from(certs.cert).toString('base64'), 'key.pem': Buffer.from(certs.key).toString('base64') },
    });
  }

  async function removeEngine(): Promise<void> {
    const instances = client.resource<Instance>(Resources.instances);
    await waitFor('no containers left', async () => (await instances.list()).length === 0, 60_000, 100);
    await client.resource<ComputeNode>(Resources.computeNodes).delete(undefined, 'boot2docker');
    await waitFor('engine gone', async () => !(await client.resource<ComputeNode>(Resources.computeNodes).get(undefined, 'boot2docker')), 30_000, 100);
  }

  async function replayDocument(headers: Record<string, string>): Promise<void> {
    // The example engine config, then the add/list/run/list/destroy exchanges in order.
    await replay(env.legacy, bind(await loadExchange('clementine', '00-engine-config-example'), binding), headers);
    await client.resource<ComputeNode>(Resources.computeNodes).delete(undefined, 'boot2docker');
    await waitFor('engine gone', async () => !(await client.resource<ComputeNode>(Resources.computeNodes).get(undefined, 'boot2docker')), 30_000, 100);

    await replay(env.legacy, bind(await loadExchange('clementine', '01-add-engine'), binding), headers);
    await replay(env.legacy, bind(await loadExchange('clementine', '02-list-engines'), binding), headers);
    // The engine must answer before a container can be placed on it.
    await waitFor('boot2docker Ready', async () => (await client.resource<ComputeNode>(Resources.computeNodes).get(undefined, 'boot2docker'))?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'), 30_000, 100);
    const placed = await replay(env.legacy, bind(await loadExchange('clementine', '03-run-container'), binding), headers);
    const placedId = (placed.json as Envelope<{ id: string }>).data.id;
    const inDocker = await engine.client.getContainer(placedId).inspect();
    assert.equal(inDocker.Config.Image, 'redis:latest');
    assert.equal(inDocker.HostConfig.PortBindings?.[`${hostPort}/tcp`]?.[0]?.HostPort, String(hostPort), 'the bind_port is published');

    const list = bind(await loadExchange('clementine', '04-list-containers-on-engine'), binding);
    await waitFor('the container running', async () => (data<Container[]>(await send(env.legacy, list, headers))[0]?.state === 'running' ? true : undefined), 60_000, 100);
    const listed = (await replay(env.legacy, list, headers)).json as Envelope<Container[]>;
    const c = listed.data[0]!;
    assert.equal(c.id, placedId, 'the listing shows the container the POST placed');
    assert.equal(c.name, `/${inDocker.Name.replace(/^\//, '')}`, 'the name is the engine\'s');

    await replay(env.legacy, bind(await loadExchange('clementine', '05-destroy-container'), { ...binding, [DOC_CONTAINER]: c.id, '/sad_hodgkin': c.name }), headers);
    await waitFor('the container gone from the engine', async () => !(await engine.client.listContainers({ all: true })).some((x) => x.Id === c.id), 60_000, 100);
  }

  it('replays every exchange with a token', async () => {
    const token = (await createToken(env.serve.kubeconfig, 'clementine replay', 'clem')).token;
    await tlsSecret('clem');
    await replayDocument({ authorization: `token ${token}` });
    await removeEngine();
  });

  it('replays every exchange without a token under --legacy-insecure (the default namespace)', async () => {
    await tlsSecret('default');
    await replayDocument({});
  });

  it('GET /apiv1/containers lists every container; the engine status route says up, and disabling it keeps new containers off', async () => {
    const run = data<{ id: string }>(await http('POST', `${env.legacy}/apiv1/container`, { body: JSON.stringify({ name: 'redis:latest', type: 'multi' }) }), 201);
    const all = data<Container[]>(await http('GET', `${env.legacy}/apiv1/containers`));
    assert.deepEqual(all.map((x) => x.id), [run.id]);
    const status = data<{ id: string; status: string; disabled: boolean; containers: number; version: string }>(await http('GET', `${env.legacy}/apiv1/engine/boot2docker/status`));
    assert.equal(status.status, 'up');
    assert.equal(status.disabled, false);
    assert.equal(status.containers, 1);
    assert.match(status.version, /docker/i);
    const disabled = data<{ disabled: boolean }>(await http('POST', `${env.legacy}/apiv1/engine/boot2docker/status`, { body: JSON.stringify({ disabled: true }) }));
    assert.equal(disabled.disabled, true);
    const refused = await http('POST', `${env.legacy}/apiv1/container`, { body: JSON.stringify({ name: 'redis:latest' }) });
    assert.equal(refused.status, 409, refused.text);
    assert.equal((await client.resource<Instance>(Resources.instances).list('default')).length, 1, 'the refused config left nothing behind');
    data(await http('POST', `${env.legacy}/apiv1/engine/boot2docker/status`, { body: JSON.stringify({ disabled: false }) }));
    data(await http('DELETE', `${env.legacy}/apiv1/engine/boot2docker/container/${run.id}`));
    assert.equal((await http('GET', `${env.legacy}/apiv1/engine/nope/status`)).status, 404);
    assert.equal((await http('POST', `${env.legacy}/apiv1/engine/boot2docker/status`, { body: '{"disabled":"yes"}' })).status, 400);
  });

  it('a saved image config is run by name and scaled to N containers and back', async () => {
    const config = { name: 'redis:latest', type: 'multi', labels: ['local'] };
    const saved = data<{ id: string; image: unknown }>(await http('POST', `${env.legacy}/apiv1/image/cache`, { body: JSON.stringify(config) }), 201);
    assert.deepEqual(saved, { id: 'cache', image: { ...config, restart_policy: {} } });
    assert.deepEqual(data(await http('GET', `${env.legacy}/apiv1/images`)), [saved]);
    const run = data<{ id: string; engine: { id: string } }>(await http('POST', `${env.legacy}/apiv1/image/cache/run`), 201);
    assert.match(run.id, /^[0-9a-f]{64}$/);
    assert.equal(run.engine.id, 'boot2docker');
    const three = data<Container[]>(await http('POST', `${env.legacy}/apiv1/image/cache/scale`, { body: JSON.stringify({ count: 3 }) }));
    assert.equal(three.length, 3);
    assert.ok(three.some((x) => x.id === run.id), 'the container run by name counts toward the scale');
    await waitFor('three containers in the engine', async () => (await engine.client.listContainers()).filter((x) => x.Image === 'redis:latest').length === 3, 60_000, 100).catch(async (err: unknown) => {
      const seen = (await engine.client.listContainers({ all: true })).map((x) => `${x.Image} ${x.State} ${x.Names.join(',')}`);
      const insts = (await client.resource<Instance>(Resources.instances).list()).map((i) => `${i.metadata?.name} ${i.status?.state} ${i.status?.message ?? ''} ${JSON.stringify(i.status?.conditions?.map((c) => [c.type, c.status, c.message]))}`);
      throw new Error(`${(err as Error).message}\nengine: ${seen.join('; ')}\ninstances: ${insts.join('\n')}`);
    });
    // The scale is the InstanceGroup clementine-cache: 2 replicas beside the one run by name.
    const kcache = await tempDir('clementine-kubectl');
    const ig = await kubectl(env.serve.kubeconfig, kcache, ['get', 'instancegroup', 'clementine-cache', '-n', 'default', '-o', 'json']);
    assert.equal(ig.code, 0, ig.stderr);
    const group = JSON.parse(ig.stdout) as { metadata: { uid: string }; spec: { replicas: number; template: { spec: { image: string } } } };
    assert.equal(group.spec.replicas, 2);
    assert.equal(group.spec.template.spec.image, 'redis:latest');
    const owned = (await client.resource<Instance>(Resources.instances).list('default')).filter((i) => i.metadata?.ownerReferences?.some((o) => o.uid === group.metadata.uid && o.controller));
    assert.equal(owned.length, 2, 'the group controller made the two other containers');
    await removeDir(kcache);
    const one = data<Container[]>(await http('POST', `${env.legacy}/apiv1/image/cache/scale`, { body: JSON.stringify({ count: 1 }) }));
    assert.equal(one.length, 1);
    await waitFor('one container left in the engine', async () => (await engine.client.listContainers()).filter((x) => x.Image === 'redis:latest').length === 1, 60_000, 100);
    assert.equal((await http('POST', `${env.legacy}/apiv1/image/nope/run`)).status, 404);
    assert.equal((await http('POST', `${env.legacy}/apiv1/image/cache/scale`, { body: '{"count":-1}' })).status, 400);
    assert.equal((await http('POST', `${env.legacy}/apiv1/image/Bad_Id`, { body: JSON.stringify(config) })).status, 400);
    data(await http('POST', `${env.legacy}/apiv1/image/cache/scale`, { body: JSON.stringify({ count: 0 }) }));
    data(await http('DELETE', `${env.legacy}/apiv1/image/cache`));
    assert.equal((await http('GET', `${env.legacy}/apiv1/image/cache`)).status, 404);
  });

  it('a config whose labels no engine carries is 409 and creates nothing', async () => {
    const before = (await client.resource<Instance>(Resources.instances).list()).length;
    const r = await http('POST', `${env.legacy}/apiv1/container`, { body: JSON.stringify({ name: 'redis:latest', labels: ['gpu'] }) });
    assert.equal(r.status, 409, r.text);
    assert.deepEqual(Object.keys(r.json as object).sort(), ['data', 'error', 'ok']);
    assert.equal((await client.resource<Instance>(Resources.instances).list()).length, before);
  });
});
