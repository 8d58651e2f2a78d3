import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ComputeNode, Instance } from '../../../crds/types.js';
import { KubeClient } from '../../../runtime/client.js';
import { Resources } from '../../../controllers/resources.js';
import { BUSYBOX_INDEX, importBusybox, makeCerts, startDockerd, type CertBundle, type Dockerd } from '../../harness/dockerd.js';
import { freePort, removeDir, tempDir, waitFor } from '../../harness/process.js';
import { createToken, http, startLegacyServe, tokenHeaders, type HttpResult, type LegacyServe } from './helpers.js';

interface Envelope<T> {
  ok: boolean;
  data: T;
  error?: string;
}
interface Engine {
  id: string;
  address: string;
  status: 'up' | 'down' | 'unknown';
  message: string;
  containers: number;
}
interface Container {
  id: string;
  uid: string;
  container_id: string | null;
  image: string;
  state: string;
  engine: string | null;
  engine_status: string;
  bind_ports: string[];
  labels: Record<string, string>;
  group: string;
  type: string;
}

const ok = <T>(r: HttpResult, status = 200): T => {
  assert.equal(r.status, status, r.text);
  const body = r.json as Envelope<T>;
  assert.equal(body.ok, true, r.text);
  return body.data;
};

describe('clementine API through the legacy proxy, with a real dockerd and an engine that refuses connections', () => {
  let env: LegacyServe;
  let client: KubeClient;
  let token: string;
  let certDir: string;
  let certs: CertBundle;
  let engine: Dockerd | undefined;
  let deadPort: number;
  let h: Record<string, string>;
  /** Set once the engine is SIGKILLed: its Instances can no longer be deleted through it. */
  let engineKilled = false;

  before(async () => {
    certDir = await tempDir('clementine-certs');
    certs = await makeCerts(certDir);
    engine = await startDockerd({ certs });
    await importBusybox(engine);
    env = await startLegacyServe();
    client = KubeClient.fromFile(env.serve.kubeconfig);
    token = (await createToken(env.serve.kubeconfig, 'clementine e2e')).token;
    h = tokenHeaders(token);
    deadPort = await freePort();
  });

  after(async () => {
    // Remove the Instances first, so the controllers delete their containers while the engine runs.
    if (client && !engineKilled) {
      const instances = client.resource<Instance>(Resources.instances);
      for (const i of await instances.list('default').catch(() => [])) await instances.delete('default', i.metadata!.name!).catch(() => undefined);
      await waitFor('instances gone', async () => (await instances.list('default')).length === 0, 30_000).catch(() => undefined);
    }
    client?.close();
    await env?.serve.stop();
    await engine?.stop();
    if (certDir) await removeDir(certDir);
  });

  const engines = async (): Promise<Engine[]> => ok<Engine[]>(await http('GET', `${env.legacy}/apiv1/engines`, { headers: h }));

  it('POST /apiv1/engine adds ComputeNodes; GET /apiv1/engines lists the live one up and the refusing one down', async () => {
    const live = ok<Engine>(
      await http('POST', `${env.legacy}/apiv1/engine`, {
        headers: h,
        body: JSON.stringify({ name: 'engine-a', address: engine!.address, ca: certs.ca, cert: certs.cert, key: certs.key }),
      }),
      201,
    );
    assert.equal(live.id, 'engine-a');
    assert.equal(live.address, engine!.address);
    const dead = ok<Engine>(await http('POST', `${env.legacy}/apiv1/engine`, { headers: h, body: JSON.stringify({ host: '127.0.0.1', port: deadPort }) }), 201);
    assert.equal(dead.address, `tcp://127.0.0.1:${deadPort}`);

    const node = await client.resource<ComputeNode>(Resources.computeNodes).get(undefined, 'engine-a');
    assert.equal(node?.spec.provider, 'docker');
    assert.equal(node?.spec.docker?.address, engine!.address);
    assert.deepEqual(node?.spec.docker?.tlsSecretRef, { name: 'clementine-tls', namespace: 'default' });

    const listed = await waitFor(
      'engine-a up and the refusing engine down',
      async () => {
        const list = await engines();
        const a = list.find((e) => e.id === 'engine-a');
        const d = list.find((e) => e.id === dead.id);
        return a?.status === 'up' && d?.status === 'down' ? list : undefined;
      },
      30_000,
      100,
    );
    const d = listed.find((e) => e.id === dead.id)!;
    assert.match(d.message, /unreachable|ECONNREFUSED/i, 'the down entry says why');
    assert.ok(!listed.some((e) => e.id === 'sim'), 'libvirt nodes are not clementine engines');

    const dup = await http('POST', `${env.legacy}/apiv1/engine`, { headers: h, body: JSON.stringify({ address: engine!.address }) });
    assert.equal(dup.status, 409);
    assert.equal((dup.json as Envelope<null>).ok, false);
  });

  let uniqueContainer: Container;

  it('POST /apiv1/container type unique runs one container per engine that is up, with bind_ports and labels', async () => {
    const hostPort = await freePort();
    const config = ok<{ name: string; type: string; count: number; containers: Container[] }>(
      await http('POST', `${env.legacy}/apiv1/container`, {
        headers: h,
        body: JSON.stringify({
          image: 'stratus/busybox:1',
          name: 'web',
          type: 'unique',
          bind_ports: { '80/tcp': hostPort },
          labels: { app: 'web', tier: 'front' },
          command: ['httpd', '-f', '-p', '80', '-h', '/www'],
        }),
      }),
      201,
    );
    assert.equal(config.name, 'web');
    assert.equal(config.type, 'unique');
    assert.equal(config.count, 1, 'one engine is up');
    assert.equal(config.containers.length, 1);

    const running = await waitFor(
      'the web container running on engine-a',
      async () => {
        const list = ok<Container[]>(await http('GET', `${env.legacy}/apiv1/engine/engine-a/containers`, { headers: h }));
        const c = list.find((x) => x.group === 'web');
        return c?.state === 'running' && c.container_id ? c : undefined;
      },
      60_000,
      200,
    );
    assert.equal(running.engine, 'engine-a');
    assert.equal(running.engine_status, 'up');
    assert.equal(running.type, 'unique');
    assert.deepEqual(running.labels, { app: 'web', tier: 'front' });
    assert.deepEqual(running.bind_ports, [`${hostPort}:80/tcp`]);
    const page = await fetch(`http://127.0.0.1:${hostPort}/`);
    assert.equal(await page.text(), BUSYBOX_INDEX, 'the container serves on the bound port');
    const inDocker = await engine!.client.listContainers({ all: true });
    const dc = inDocker.find((c) => c.Id === running.container_id);
    assert.ok(dc, 'the container exists in the engine');
    assert.equal(dc.Labels.app, 'web');
    const inst = await client.resource<Instance>(Resources.instances).get('default', running.id);
    assert.equal(inst?.spec.placement?.group, 'web');
    assert.equal(inst?.spec.placement?.unique, true);
    uniqueContainer = running;

    // More unique containers than engines cannot be placed.
    const tooMany = await http('POST', `${env.legacy}/apiv1/container`, { headers: h, body: JSON.stringify({ image: 'stratus/busybox:1', type: 'unique', count: 3 }) });
    assert.equal(tooMany.status, 409, tooMany.text);
  });

  it('listing containers survives the engine that is down, and lists every container', async () => {
    const all = ok<Container[]>(await http('GET', `${env.legacy}/apiv1/containers`, { headers: h }));
    assert.ok(all.some((c) => c.id === uniqueContainer.id));
    const deadId = (await engines()).find((e) => e.status === 'down')!.id;
    const none = ok<Container[]>(await http('GET', `${env.legacy}/apiv1/engine/${deadId}/containers`, { headers: h }));
    assert.deepEqual(none, []);
    const missing = await http('GET', `${env.legacy}/apiv1/engine/no-such-engine/containers`, { headers: h });
    assert.equal(missing.status, 404);
    assert.equal((missing.json as Envelope<null>).ok, false);
    const counted = (await engines()).find((e) => e.id === 'engine-a')!;
    assert.equal(counted.containers, all.filter((c) => c.engine === 'engine-a').length);
    assert.ok(counted.containers >= 1);
  });

  it('DELETE /apiv1/engine/:id/container/:cid (by Docker id) removes the container', async () => {
    const cid = uniqueContainer.container_id!.slice(0, 12);
    const wrongEngine = await http('DELETE', `${env.legacy}/apiv1/engine/${(await engines()).find((e) => e.status === 'down')!.id}/container/${cid}`, { headers: h });
    assert.equal(wrongEngine.status, 404, 'the container is not on that engine');
    const del = ok<Container>(await http('DELETE', `${env.legacy}/apiv1/engine/engine-a/container/${cid}`, { headers: h }));
    assert.equal(del.state, 'terminating');
    assert.equal(del.id, uniqueContainer.id);
    await waitFor(
      'the container gone from the listing and the engine',
      async () => {
        const list = ok<Container[]>(await http('GET', `${env.legacy}/apiv1/engine/engine-a/containers`, { headers: h }));
        if (list.some((c) => c.id === uniqueContainer.id)) return false;
        const inDocker = await engine!.client.listContainers({ all: true });
        return !inDocker.some((c) => c.Id === uniqueContainer.container_id);
      },
      60_000,
      200,
    );
    const again = await http('DELETE', `${env.legacy}/apiv1/engine/engine-a/container/${cid}`, { headers: h });
    assert.equal(again.status, 404);
  });

  it('POST /apiv1/container type multi stacks several containers on the one engine that is up (each takes 1 of its 2 CPUs)', async () => {
    const config = ok<{ count: number; containers: Container[] }>(
      await http('POST', `${env.legacy}/apiv1/container`, {
        headers: h,
        body: JSON.stringify({ image: 'stratus/busybox:1', name: 'workers', type: 'multi', count: 2, env: { ROLE: 'worker' }, command: 'sleep 3600' }),
      }),
      201,
    );
    assert.equal(config.count, 2);
    assert.equal(config.containers.length, 2);
    const running = await waitFor(
      'both workers running on engine-a',
      async () => {
        const list = ok<Container[]>(await http('GET', `${env.legacy}/apiv1/engine/engine-a/containers`, { headers: h }));
        const w = list.filter((c) => c.group === 'workers' && c.state === 'running');
        return w.length === 2 ? w : undefined;
      },
      60_000,
      200,
    );
    assert.ok(running.every((c) => c.type === 'multi' && c.engine === 'engine-a'));
    for (const c of running) {
      const info = await engine!.client.getContainer(c.container_id!).inspect();
      assert.ok(info.Config.Env.includes('ROLE=worker'));
    }
    for (const c of running) ok(await http('DELETE', `${env.legacy}/apiv1/engine/engine-a/container/${c.id}`, { headers: h }));
  });

  it('requires a token (401 in the envelope) and rejects malformed requests with 400/413, creating nothing', async () => {
    const count = async (): Promise<string> =>
      `${(await client.resource(Resources.instances).list()).length}/${(await client.resource(Resources.computeNodes).list()).length}`;
    const before = await count();
    const unauth = await http('GET', `${env.legacy}/apiv1/engines`);
    assert.equal(unauth.status, 401);
    assert.deepEqual(unauth.json, { ok: false, data: null, error: 'unauthorized' });
    assert.equal((await http('POST', `${env.legacy}/apiv1/container`, { body: JSON.stringify({ image: 'x' }) })).status, 401);

    const containerCases: [string, string, number][] = [
      ['bad JSON', '{"image":', 400],
      ['missing image', JSON.stringify({ type: 'multi' }), 400],
      ['image not a string', JSON.stringify({ image: 5 }), 400],
      ['unknown type', JSON.stringify({ image: 'x', type: 'many' }), 400],
      ['count zero', JSON.stringify({ image: 'x', count: 0 }), 400],
      ['count a string', JSON.stringify({ image: 'x', count: '2' }), 400],
      ['bind_ports a string', JSON.stringify({ image: 'x', bind_ports: '80:80' }), 400],
      ['bind_ports bad entry', JSON.stringify({ image: 'x', bind_ports: ['80'] }), 400],
      ['bind_ports port out of range', JSON.stringify({ image: 'x', bind_ports: { '80/tcp': 70000 } }), 400],
      ['bind_ports bad protocol', JSON.stringify({ image: 'x', bind_ports: ['8080:80/sctp'] }), 400],
      ['labels not strings', JSON.stringify({ image: 'x', labels: { a: 1 } }), 400],
      ['name not a label', JSON.stringify({ image: 'x', name: 'Web App' }), 400],
      ['huge', JSON.stringify({ image: 'x', pad: 'x'.repeat(1024 * 1024) }), 413],
    ];
    for (const [name, body, status] of containerCases) {
      const r = await http('POST', `${env.legacy}/apiv1/container`, { headers: h, body });
      assert.equal(r.status, status, `${name}: ${r.text}`);
      const env_ = r.json as Envelope<null>;
      assert.equal(env_.ok, false, name);
      assert.equal(typeof env_.error, 'string', name);
    }
    const engineCases: [string, unknown][] = [
      ['missing host', { port: 2376 }],
      ['port out of range', { host: '127.0.0.1', port: 0 }],
      ['port a string', { host: '127.0.0.1', port: '2376' }],
      ['bad address', { address: 'http://127.0.0.1:2376/x' }],
      ['host with a space', { host: 'a b' }],
      ['ca without cert and key', { host: '127.0.0.1', port: 2377, ca: certs.ca }],
      ['ca not PEM', { host: '127.0.0.1', port: 2377, ca: 'x', cert: 'y', key: 'z' }],
    ];
    for (const [name, body] of engineCases) {
      const r = await http('POST', `${env.legacy}/apiv1/engine`, { headers: h, body: JSON.stringify(body) });
      assert.equal(r.status, 400, `${name}: ${r.text}`);
      assert.equal((r.json as Envelope<null>).ok, false);
    }
    assert.equal((await http('GET', `${env.legacy}/apiv1/nothing`, { headers: h })).status, 404);
    assert.equal(await count(), before);
  });

  it('an engine that dies while running containers is listed as down, and its containers are still listed', async () => {
    ok(await http('POST', `${env.legacy}/apiv1/container`, { headers: h, body: JSON.stringify({ image: 'stratus/busybox:1', name: 'survivor', command: 'sleep 3600' }) }), 201);
    await waitFor(
      'the survivor running',
      async () => ok<Container[]>(await http('GET', `${env.legacy}/apiv1/engine/engine-a/containers`, { headers: h })).some((c) => c.group === 'survivor' && c.state === 'running'),
      60_000,
      200,
    );
    // Probe every second so the test need not wait a default heartbeat.
    await client.resource<ComputeNode>(Resources.computeNodes).mergePatch(undefined, 'engine-a', { spec: { heartbeatSeconds: 1 } });
    engineKilled = true;
    await engine!.kill();
    const down = await waitFor(
      'engine-a listed as down',
      async () => {
        const e = (await engines()).find((x) => x.id === 'engine-a');
        return e?.status === 'down' ? e : undefined;
      },
      30_000,
      200,
    );
    assert.ok(down.message.length > 0, 'the entry says why');
    const all = await engines();
    assert.ok(all.every((e) => e.status === 'down'), 'both engines are listed, both down');
    const list = ok<Container[]>(await http('GET', `${env.legacy}/apiv1/engine/engine-a/containers`, { headers: h }));
    const survivor = list.find((c) => c.group === 'survivor');
    assert.ok(survivor, 'the container of the dead engine is still listed');
    assert.equal(survivor.engine_status, 'down');
    const everything = ok<Container[]>(await http('GET', `${env.legacy}/apiv1/containers`, { headers: h }));
    assert.ok(everything.some((c) => c.id === survivor.id));
  });
});
