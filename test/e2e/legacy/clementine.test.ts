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
  addr: string;
  cpus: number;
  memory: number;
  labels: string[];
}
interface EngineStatus extends Engine {
  status: 'up' | 'down' | 'unknown';
  message: string;
  containers: number;
}
interface Port {
  proto: string;
  host_ip: string;
  port: number;
  container_port: number;
}
interface Container {
  id: string;
  name: string;
  image: { name: string; type: string; bind_ports: Port[]; labels: string[]; entrypoint: string[]; environment: Record<string, string> };
  engine: Engine | null;
  state: string;
  ports: Port[];
}
interface Placed {
  id: string;
  engine: Engine | null;
  ports: Port[];
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
  const engineStatus = async (id: string): Promise<EngineStatus> => ok<EngineStatus>(await http('GET', `${env.legacy}/apiv1/engine/${id}/status`, { headers: h }));

  it('POST /apiv1/engine adds ComputeNodes; GET /apiv1/engines lists both, the status route says the live one is up and the refusing one down', async () => {
    // stratus's earlier body forms ({name, address} and {host, port}) are still read.
    const live = ok<Engine>(
      await http('POST', `${env.legacy}/apiv1/engine`, {
        headers: h,
        body: JSON.stringify({ name: 'engine-a', address: engine!.address, labels: ['local'], ca: certs.ca, cert: certs.cert, key: certs.key }),
      }),
      201,
    );
    assert.equal(live.id, 'engine-a');
    assert.equal(live.addr, engine!.address);
    assert.deepEqual(live.labels, ['local']);
    const dead = ok<Engine>(await http('POST', `${env.legacy}/apiv1/engine`, { headers: h, body: JSON.stringify({ host: '127.0.0.1', port: deadPort }) }), 201);
    assert.equal(dead.addr, `tcp://127.0.0.1:${deadPort}`);

    const node = await client.resource<ComputeNode>(Resources.computeNodes).get(undefined, 'engine-a');
    assert.equal(node?.spec.provider, 'docker');
    assert.equal(node?.spec.docker?.address, engine!.address);
    assert.deepEqual(node?.spec.docker?.tlsSecretRef, { name: 'clementine-tls', namespace: 'default' });
    assert.equal(node?.metadata?.labels?.['clementine.stratus.dev/local'], '', 'engine labels are node labels');

    await waitFor(
      'engine-a up and the refusing engine down',
      async () => (await engineStatus('engine-a')).status === 'up' && (await engineStatus(dead.id)).status === 'down',
      30_000,
      100,
    );
    const listed = await engines();
    assert.deepEqual(listed.map((e) => e.id).sort(), ['engine-a', dead.id].sort(), 'a down engine is listed too; libvirt nodes are not clementine engines');
    const a = listed.find((e) => e.id === 'engine-a')!;
    assert.ok(a.cpus >= 1 && a.memory > 0, 'without cpus/memory the detected capacity is shown');
    const d = await engineStatus(dead.id);
    assert.match(d.message, /unreachable|ECONNREFUSED/i, 'the down engine says why');

    const dup = await http('POST', `${env.legacy}/apiv1/engine`, { headers: h, body: JSON.stringify({ address: engine!.address }) });
    assert.equal(dup.status, 409);
    assert.equal((dup.json as Envelope<null>).ok, false);
  });

  let uniqueContainer: Container;

  it('POST /apiv1/container type unique with bind_ports and an engine label runs the container on the labelled engine and answers it placed', async () => {
    const hostPort = await freePort();
    const placed = ok<Placed>(
      await http('POST', `${env.legacy}/apiv1/container`, {
        headers: h,
        body: JSON.stringify({
          name: 'stratus/busybox:1',
          type: 'unique',
          bind_ports: [{ proto: 'tcp', port: hostPort, container_port: 80 }],
          labels: ['local'],
          entrypoint: ['httpd', '-f', '-p', '80', '-h', '/www'],
        }),
      }),
      201,
    );
    assert.match(placed.id, /^[0-9a-f]{64}$/, 'answered once the engine created the container');
    assert.equal(placed.engine?.id, 'engine-a');
    assert.deepEqual(placed.ports, [{ proto: 'tcp', host_ip: '0.0.0.0', port: hostPort, container_port: 80 }]);

    const running = await waitFor(
      'the web container running on engine-a',
      async () => {
        const list = ok<Container[]>(await http('GET', `${env.legacy}/apiv1/engine/engine-a/containers`, { headers: h }));
        const c = list.find((x) => x.id === placed.id);
        return c?.state === 'running' ? c : undefined;
      },
      60_000,
      200,
    );
    assert.equal(running.engine?.id, 'engine-a');
    assert.equal(running.image.type, 'unique');
    assert.deepEqual(running.image.labels, ['local']);
    assert.deepEqual(running.image.entrypoint, ['httpd', '-f', '-p', '80', '-h', '/www']);
    assert.deepEqual(running.ports, [{ proto: 'tcp', host_ip: '0.0.0.0', port: hostPort, container_port: 80 }]);
    const page = await fetch(`http://127.0.0.1:${hostPort}/`);
    assert.equal(await page.text(), BUSYBOX_INDEX, 'the container serves on the bound port');
    const inDocker = await engine!.client.listContainers({ all: true });
    const dc = inDocker.find((c) => c.Id === running.id);
    assert.ok(dc, 'the container exists in the engine');
    assert.equal(running.name, dc.Names[0], 'the name is the engine\'s, with its leading /');
    const inst = (await client.resource<Instance>(Resources.instances).list('default')).find((i) => i.status?.providerID?.endsWith(running.id));
    assert.equal(inst?.spec.placement?.unique, true);
    assert.deepEqual(inst?.spec.nodeSelector, { 'clementine.stratus.dev/local': '' });
    uniqueContainer = running;

    // More unique containers than engines cannot be placed.
    const tooMany = await http('POST', `${env.legacy}/apiv1/container`, { headers: h, body: JSON.stringify({ name: 'stratus/busybox:1', type: 'unique', count: 3 }) });
    assert.equal(tooMany.status, 409, tooMany.text);
  });

  it('listing containers survives the engine that is down, and lists every container', async () => {
    const all = ok<Container[]>(await http('GET', `${env.legacy}/apiv1/containers`, { headers: h }));
    assert.ok(all.some((c) => c.id === uniqueContainer.id));
    const deadId = (await engines()).find((e) => e.id !== 'engine-a')!.id;
    const none = ok<Container[]>(await http('GET', `${env.legacy}/apiv1/engine/${deadId}/containers`, { headers: h }));
    assert.deepEqual(none, []);
    const missing = await http('GET', `${env.legacy}/apiv1/engine/no-such-engine/containers`, { headers: h });
    assert.equal(missing.status, 404);
    assert.equal((missing.json as Envelope<null>).ok, false);
    const counted = await engineStatus('engine-a');
    assert.equal(counted.containers, all.filter((c) => c.engine?.id === 'engine-a').length);
    assert.ok(counted.containers >= 1);
  });

  it('DELETE /apiv1/engine/:id/container/:cid (by Docker id) removes the container and answers the document\'s message', async () => {
    const cid = uniqueContainer.id.slice(0, 12);
    const deadId = (await engines()).find((e) => e.id !== 'engine-a')!.id;
    const wrongEngine = await http('DELETE', `${env.legacy}/apiv1/engine/${deadId}/container/${cid}`, { headers: h });
    assert.equal(wrongEngine.status, 404, 'the container is not on that engine');
    const del = ok<string>(await http('DELETE', `${env.legacy}/apiv1/engine/engine-a/container/${cid}`, { headers: h }));
    assert.equal(del, `Container container ${uniqueContainer.name} Image stratus/busybox:1 Engine engine-a destroyed on engine engine engine-a addr ${engine!.address}`);
    await waitFor(
      'the container gone from the listing and the engine',
      async () => {
        const list = ok<Container[]>(await http('GET', `${env.legacy}/apiv1/engine/engine-a/containers`, { headers: h }));
        if (list.some((c) => c.id === uniqueContainer.id)) return false;
        const inDocker = await engine!.client.listContainers({ all: true });
        return !inDocker.some((c) => c.Id === uniqueContainer.id);
      },
      60_000,
      200,
    );
    const again = await http('DELETE', `${env.legacy}/apiv1/engine/engine-a/container/${cid}`, { headers: h });
    assert.equal(again.status, 404);
  });

  it('POST /apiv1/container type multi stacks several containers on the one engine that is up (each takes 1 of its 2 CPUs)', async () => {
    // stratus's earlier env/command fields are still read.
    const placed = ok<Placed[]>(
      await http('POST', `${env.legacy}/apiv1/container`, {
        headers: h,
        body: JSON.stringify({ name: 'stratus/busybox:1', type: 'multi', count: 2, env: { ROLE: 'worker' }, command: 'sleep 3600' }),
      }),
      201,
    );
    assert.equal(placed.length, 2);
    const ids = placed.map((p) => p.id);
    const running = await waitFor(
      'both workers running on engine-a',
      async () => {
        const list = ok<Container[]>(await http('GET', `${env.legacy}/apiv1/engine/engine-a/containers`, { headers: h }));
        const w = list.filter((c) => ids.includes(c.id) && c.state === 'running');
        return w.length === 2 ? w : undefined;
      },
      60_000,
      200,
    );
    assert.ok(running.every((c) => c.image.type === 'multi' && c.engine?.id === 'engine-a' && c.image.environment.ROLE === 'worker'));
    for (const c of running) {
      const info = await engine!.client.getContainer(c.id).inspect();
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
    assert.equal((await http('POST', `${env.legacy}/apiv1/container`, { body: JSON.stringify({ name: 'x' }) })).status, 401);

    const containerCases: [string, string, number][] = [
      ['bad JSON', '{"name":', 400],
      ['missing name (the image)', JSON.stringify({ type: 'multi' }), 400],
      ['name not a string', JSON.stringify({ name: 5 }), 400],
      ['unknown type', JSON.stringify({ name: 'x', type: 'many' }), 400],
      ['count zero', JSON.stringify({ name: 'x', count: 0 }), 400],
      ['count a string', JSON.stringify({ name: 'x', count: '2' }), 400],
      ['bind_ports a string', JSON.stringify({ name: 'x', bind_ports: '80:80' }), 400],
      ['bind_ports bad entry', JSON.stringify({ name: 'x', bind_ports: ['80'] }), 400],
      ['bind_ports entry without container_port', JSON.stringify({ name: 'x', bind_ports: [{ proto: 'tcp', port: 80 }] }), 400],
      ['bind_ports port out of range', JSON.stringify({ name: 'x', bind_ports: [{ proto: 'tcp', port: 70000, container_port: 80 }] }), 400],
      ['bind_ports bad protocol', JSON.stringify({ name: 'x', bind_ports: [{ proto: 'sctp', port: 8080, container_port: 80 }] }), 400],
      ['labels not a list', JSON.stringify({ name: 'x', labels: { a: 1 } }), 400],
      ['labels not strings', JSON.stringify({ name: 'x', labels: [1] }), 400],
      ['name not an image reference', JSON.stringify({ name: 'Web App' }), 400],
      ['huge', JSON.stringify({ name: 'x', pad: 'x'.repeat(1024 * 1024) }), 413],
    ];
    for (const [name, body, status] of containerCases) {
      const r = await http('POST', `${env.legacy}/apiv1/container`, { headers: h, body });
      assert.equal(r.status, status, `${name}: ${r.text}`);
      const env_ = r.json as Envelope<null>;
      assert.equal(env_.ok, false, name);
      assert.equal(typeof env_.error, 'string', name);
    }
    const engineCases: [string, unknown][] = [
      ['no address at all', { port: 2376 }],
      ['port out of range', { host: '127.0.0.1', port: 0 }],
      ['port a string', { host: '127.0.0.1', port: '2376' }],
      ['bad address', { address: 'http://127.0.0.1:2376/x' }],
      ['addr with another scheme', { id: 'e', addr: 'http://127.0.0.1:2376' }],
      ['id not a label', { id: 'Boot 2 Docker', addr: 'tcp://127.0.0.1:2377' }],
      ['cpus a string', { id: 'e', addr: 'tcp://127.0.0.1:2377', cpus: '4' }],
      ['labels not a list', { id: 'e', addr: 'tcp://127.0.0.1:2377', labels: 'local' }],
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

  it('an engine that dies while running containers is shown down by its status route, and its containers are still listed', async () => {
    const placed = ok<Placed>(await http('POST', `${env.legacy}/apiv1/container`, { headers: h, body: JSON.stringify({ name: 'stratus/busybox:1', command: 'sleep 3600' }) }), 201);
    await waitFor(
      'the survivor running',
      async () => ok<Container[]>(await http('GET', `${env.legacy}/apiv1/engine/engine-a/containers`, { headers: h })).some((c) => c.id === placed.id && c.state === 'running'),
      60_000,
      200,
    );
    // Probe every second so the test need not wait a default heartbeat.
    await client.resource<ComputeNode>(Resources.computeNodes).mergePatch(undefined, 'engine-a', { spec: { heartbeatSeconds: 1 } });
    engineKilled = true;
    await engine!.kill();
    const down = await waitFor(
      'engine-a down',
      async () => {
        const e = await engineStatus('engine-a');
        return e.status === 'down' ? e : undefined;
      },
      30_000,
      200,
    );
    assert.ok(down.message.length > 0, 'the status says why');
    const all = await engines();
    assert.equal(all.length, 2, 'both engines are still listed');
    for (const e of all) assert.equal((await engineStatus(e.id)).status, 'down');
    const list = ok<Container[]>(await http('GET', `${env.legacy}/apiv1/engine/engine-a/containers`, { headers: h }));
    const survivor = list.find((c) => c.id === placed.id);
    assert.ok(survivor, 'the container of the dead engine is still listed');
    const everything = ok<Container[]>(await http('GET', `${env.legacy}/apiv1/containers`, { headers: h }));
    assert.ok(everything.some((c) => c.id === survivor.id));
  });
});
