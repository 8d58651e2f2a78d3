/**
 * Elastic IPs on a Docker node, end to end, in network namespaces this test makes (no packet
 * leaves them):
 *
 *   client ns (192.0.2.2) ── veth ── node ns (192.0.2.1, uplink; forwarding on)
 *     route 198.51.100.0/28 via the node          dockerd + bridge ── containers web-a, web-b
 *
 * The node ns is the "host" of ComputeNode `eip-node`: stratus NATs the pool's addresses
 * there in its own nftables table (a name unique to this run) and holds them on the uplink.
 * The client knows no route to the containers' private subnet, so it reaches them only
 * through an elastic IP, and a container's outbound reaches it only when SNATed to one.
 * Checked with the tools an operator would use: `nft`, `ip`, `curl`, `kubectl`.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { AddressPool, ComputeNode, ElasticIP, Instance } from '../../crds/types.js';
import { KubeClient } from '../../runtime/client.js';
import { Manager } from '../../runtime/manager.js';
import { registerControllers, type ControllerResources } from '../../controllers/index.js';
import { Resources } from '../../controllers/resources.js';
import { kubectl, startStratusServe, type StratusServe } from '../harness/apiserver.js';
import { importBusybox, startDockerd, type Dockerd } from '../harness/dockerd.js';
import { execFileP, removeDir, requireBinary, startDaemon, tempDir, waitFor, type Daemon } from '../harness/process.js';
import { stratusBin } from '../harness/paths.js';

const hex = randomBytes(4).toString('hex');
const nodeNs = `eiph-${hex}`;
const clientNs = `eipc-${hex}`;
const uplink = `eu${hex}`;
const clientIf = `ec${hex}`;
const table = `stratus_eip_${hex}`;
const EIP = '198.51.100.1';
const CLIENT = '192.0.2.2';

let serve: StratusServe | undefined;
let engine: Dockerd | undefined;
let client: KubeClient;
let mgr: Manager | undefined;
let held: ControllerResources | undefined;
let controller: Daemon | undefined;
let echo: Daemon | undefined;
let work = '';
let nsMade = 0;
const ips = new Map<string, string>();

const eips = () => client.resource<ElasticIP>(Resources.elasticIPs);
const instances = () => client.resource<Instance>(Resources.instances);

const inNs = (ns: string, cmd: string, args: string[], timeout = 15_000) => execFileP('ip', ['netns', 'exec', ns, cmd, ...args], { timeout });
/** GET http://ADDRESS/ from the client namespace; undefined when it does not answer. */
const fromClient = async (address: string): Promise<string | undefined> =>
  (await inNs(clientNs, 'curl', ['-sf', '-m', '2', `http://${address}/`]).catch(() => undefined))?.stdout.trim();
/** What the client's echo server says the caller's address was, asked from inside a container. */
const outboundFrom = async (name: string): Promise<string | undefined> => {
  const id = (await instances().get('default', name))?.status?.providerID ?? '';
  const ex = await engine!.client.getContainer(id).exec({
    Cmd: ['/bin/sh', '-c', `printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 ${CLIENT} 8080`],
    AttachStdout: true,
    AttachStderr: true,
  });
  const stream = await ex.start({});
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (b: Buffer) => chunks.push(b));
  engine!.client.modem.demuxStream(stream, out, new PassThrough());
  await new Promise<void>((resolve) => stream.on('end', resolve).on('close', resolve));
  const code = (await ex.inspect()).ExitCode;
  const text = Buffer.concat(chunks).toString('utf8');
  // The echo server's body is the last line of the HTTP answer.
  return code === 0 && text.startsWith('HTTP/1.1 200') ? text.trim().split('\n').pop()?.trim() : undefined;
};

interface NftRule { rule?: { chain: string; comment?: string; expr?: unknown[] } }
const nftRules = async (): Promise<NonNullable<NftRule['rule']>[]> => {
  const r = await inNs(nodeNs, 'nft', ['-j', 'list', 'table', 'ip', table]).catch(() => undefined);
  if (!r) return [];
  return ((JSON.parse(r.stdout) as { nftables: NftRule[] }).nftables).flatMap((x) => (x.rule ? [x.rule] : []));
};
const uplinkAddresses = async (): Promise<string> => (await execFileP('ip', ['-n', nodeNs, '-4', 'addr', 'show', 'dev', uplink])).stdout;

const ready = (e: ElasticIP | undefined) => e?.status?.conditions?.find((c) => c.type === 'Ready');

async function eipWhere(what: string, fn: (e: ElasticIP) => boolean, timeoutMs = 30_000): Promise<ElasticIP> {
  return waitFor(what, async () => {
    const e = await eips().get('default', 'pub');
    return e && fn(e) ? e : undefined;
  }, timeoutMs, 100);
}

function startController(): Daemon {
  return startDaemon(process.execPath, [stratusBin(), 'controller', '--kubeconfig', serve!.kubeconfig], { env: { ...process.env, STRATUS_LOG_LEVEL: 'warn' } });
}

before(async () => {
  for (const b of ['nft', 'ip', 'curl', 'nsenter', 'sysctl']) requireBinary(b);
  work = await tempDir('eip');
  await execFileP('ip', ['netns', 'add', nodeNs]);
  nsMade++;
  await execFileP('ip', ['netns', 'add', clientNs]);
  nsMade++;
  for (const ns of [nodeNs, clientNs]) await execFileP('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  await execFileP('ip', ['-n', nodeNs, 'link', 'add', uplink, 'type', 'veth', 'peer', 'name', clientIf, 'netns', clientNs]);
  await execFileP('ip', ['-n', nodeNs, 'addr', 'add', '192.0.2.1/24', 'dev', uplink]);
  await execFileP('ip', ['-n', nodeNs, 'link', 'set', uplink, 'up']);
  await execFileP('ip', ['-n', clientNs, 'addr', 'add', `${CLIENT}/24`, 'dev', clientIf]);
  await execFileP('ip', ['-n', clientNs, 'link', 'set', clientIf, 'up']);
  await execFileP('ip', ['-n', clientNs, 'route', 'add', '198.51.100.0/28', 'via', '192.0.2.1']);
  // The node routes between its uplink and its containers (a namespace's own sysctl).
  await inNs(nodeNs, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  // The client's echo server answers with the address a connection came from.
  echo = startDaemon('ip', ['netns', 'exec', clientNs, process.execPath, '-e',
    `require('node:http').createServer((q, r) => r.end(q.socket.remoteAddress + '\\n')).listen(8080, '${CLIENT}')`]);

  engine = await startDockerd({ netns: nodeNs });
  const image = await importBusybox(engine);
  serve = await startStratusServe();
  client = KubeClient.fromFile(serve.kubeconfig);
  await client.resource<ComputeNode>(Resources.computeNodes).create({
    apiVersion: 'compute.stratus.dev/v1alpha1',
    kind: 'ComputeNode',
    metadata: { name: 'eip-node', labels: { uplink: 'test' } },
    spec: { provider: 'docker', docker: { address: engine.address }, elasticIP: { interface: uplink, mode: 'address', table, netns: nodeNs }, heartbeatSeconds: 2 },
  });
  await client.resource<AddressPool>(Resources.addressPools).create({
    apiVersion: 'compute.stratus.dev/v1alpha1',
    kind: 'AddressPool',
    metadata: { name: 'public' },
    spec: { cidrs: ['198.51.100.0/28'], nodeSelector: { uplink: 'test' } },
  });
  for (const [name, body] of [['web-a', 'A'], ['web-b', 'B']] as const) {
    await instances().create({
      apiVersion: 'compute.stratus.dev/v1alpha1',
      kind: 'Instance',
      metadata: { name, namespace: 'default' },
      spec: {
        provider: 'docker', image, nodeName: 'eip-node', cpus: 1, memoryMiB: 64,
        command: ['/bin/sh', '-c', `echo ${body} > /www/index.html && exec httpd -f -p 80 -h /www`],
      },
    });
  }
  mgr = new Manager({ client: KubeClient.fromFile(serve.kubeconfig) });
  held = registerControllers(mgr, { instancePollMs: 1000, instanceTransitionMs: 200, heartbeatMs: 1000, elasticIPPollMs: 500 });
  await mgr.start();
  for (const name of ['web-a', 'web-b']) {
    const i = await waitFor(`${name} running with an address`, async () => {
      const x = await instances().get('default', name);
      return x?.status?.state === 'running' && x.status.ipAddress ? x : undefined;
    }, 60_000, 100);
    ips.set(name, i.status?.ipAddress ?? '');
  }
});

after(async () => {
  try {
    await controller?.stop();
    await mgr?.stop();
    await held?.close();
    client?.close();
    await serve?.stop();
    await engine?.stop();
    await echo?.stop();
  } finally {
    if (nsMade > 1) await execFileP('ip', ['netns', 'del', clientNs]).catch(() => undefined);
    if (nsMade > 0) await execFileP('ip', ['netns', 'del', nodeNs]).catch(() => undefined);
    if (work) await removeDir(work);
  }
});

test('the client reaches container A only through the elastic IP; moving it to B moves inbound and outbound traffic', async () => {
  assert.equal(await fromClient(EIP), undefined, 'nothing answers on the address before it is bound');
  assert.equal(await fromClient(ips.get('web-a')!), undefined, "the client has no route to the containers' private subnet");

  await eips().create({ apiVersion: 'compute.stratus.dev/v1alpha1', kind: 'ElasticIP', metadata: { name: 'pub', namespace: 'default' }, spec: { instanceRef: { name: 'web-a' } } });
  const bound = await eipWhere('pub bound to web-a', (e) => ready(e)?.status === 'True' && e.status?.boundTo === 'web-a');
  assert.equal(bound.status?.address, EIP, 'the lowest free address of the pool');
  assert.equal(bound.status?.pool, 'public');
  assert.equal(bound.status?.node, 'eip-node');
  assert.equal(bound.status?.privateAddress, ips.get('web-a'));
  assert.equal(await waitFor('A answers on the elastic IP', () => fromClient(EIP), 10_000, 100), 'A');

  const rules = await nftRules();
  assert.deepEqual(rules.map((r) => r.chain).sort(), ['output', 'postrouting', 'prerouting']);
  assert.ok(rules.every((r) => r.comment === `stratus-eip ${bound.metadata?.uid} ${EIP} ${ips.get('web-a')}`), JSON.stringify(rules));
  assert.match(await uplinkAddresses(), new RegExp(`inet ${EIP.replaceAll('.', '\\.')}/32 `));
  assert.equal(await outboundFrom('web-a'), EIP, "A's outbound leaves from its elastic IP (SNAT)");
  assert.equal(await outboundFrom('web-b'), undefined, 'B, unbound, has no way out to the client');
  await waitFor('web-a lists the address', async () => (await instances().get('default', 'web-a'))?.status?.elasticIPs?.includes(EIP), 10_000);

  const wide = (await kubectl(serve!.kubeconfig, join(work, 'kcache'), ['get', 'eip', '-o', 'wide'])).stdout;
  assert.match(wide, /NAME\s+POOL\s+ADDRESS\s+INSTANCE\s+BOUND-TO\s+NODE\s+READY\s+AGE/);
  assert.match(wide, new RegExp(`pub\\s+public\\s+${EIP.replaceAll('.', '\\.')}\\s+web-a\\s+web-a\\s+eip-node\\s+True`));

  await eips().mergePatch('default', 'pub', { spec: { instanceRef: { name: 'web-b' } } });
  await eipWhere('pub moved to web-b', (e) => ready(e)?.status === 'True' && e.status?.boundTo === 'web-b');
  assert.equal(await waitFor('B answers on the same URL', async () => ((await fromClient(EIP)) === 'B' ? 'B' : undefined), 5000, 100), 'B');
  assert.equal(await outboundFrom('web-b'), EIP, "B's outbound now leaves from the elastic IP");
  assert.equal(await outboundFrom('web-a'), undefined, "A's outbound no longer uses the address");
  const after = await nftRules();
  assert.equal(after.length, 3, 'one binding: three rules');
  assert.ok(after.every((r) => r.comment?.endsWith(` ${EIP} ${ips.get('web-b')}`)));
  await waitFor('web-a no longer lists the address, web-b does', async () => {
    const [a, b] = await Promise.all([instances().get('default', 'web-a'), instances().get('default', 'web-b')]);
    return !a?.status?.elasticIPs?.includes(EIP) && b?.status?.elasticIPs?.includes(EIP);
  }, 10_000);
  const events = (await kubectl(serve!.kubeconfig, join(work, 'kcache'), ['get', 'events', '--field-selector', 'involvedObject.name=pub', '-o', 'custom-columns=R:.reason', '--no-headers'])).stdout;
  for (const reason of ['Allocated', 'Bound', 'Moved']) assert.match(events, new RegExp(`^${reason}$`, 'm'));
});

test('a NAT rule flushed and an address removed behind stratus\'s back come back', async () => {
  await inNs(nodeNs, 'nft', ['flush', 'table', 'ip', table]);
  await execFileP('ip', ['-n', nodeNs, 'addr', 'del', `${EIP}/32`, 'dev', uplink]);
  assert.equal(await fromClient(EIP), undefined);
  await waitFor('the rules back', async () => (await nftRules()).length === 3, 15_000, 100);
  assert.equal(await waitFor('B answers again', async () => ((await fromClient(EIP)) === 'B' ? 'B' : undefined), 10_000, 100), 'B');
});

test('a controller SIGKILLed mid-move converges to exactly one binding when it comes back', async () => {
  // From here a separate `stratus controller` process does the work.
  await mgr?.stop();
  await held?.close();
  mgr = undefined;
  held = undefined;
  controller = startController();
  await waitFor('the controller up', () => /controllers .* running/.test(controller!.output()), 20_000);
  await eips().mergePatch('default', 'pub', { spec: { instanceRef: { name: 'web-a' } } });
  // Cut it short while it acts on the change (its watch fires within milliseconds).
  await waitFor('the move started', async () => (await nftRules()).some((r) => r.comment?.endsWith(ips.get('web-a') ?? '?')) || undefined, 10_000, 5).catch(() => undefined);
  await controller.kill();
  controller = startController();
  await eipWhere('pub back on web-a', (e) => ready(e)?.status === 'True' && e.status?.boundTo === 'web-a');
  const rules = await nftRules();
  assert.equal(rules.length, 3, JSON.stringify(rules));
  assert.ok(rules.every((r) => r.comment?.endsWith(` ${EIP} ${ips.get('web-a')}`)), 'every rule routes to A');
  assert.equal(await waitFor('A answers', async () => ((await fromClient(EIP)) === 'A' ? 'A' : undefined), 10_000, 100), 'A');
});

test('deleting the bound Instance leaves the address allocated and unbound; deleting the ElasticIP empties the table and the uplink', async () => {
  await instances().delete('default', 'web-a');
  const unbound = await eipWhere('pub unbound', (e) => !e.status?.boundTo && ready(e)?.reason === 'InstanceNotFound', 60_000);
  assert.equal(unbound.status?.address, EIP, 'still allocated');
  assert.deepEqual(await nftRules(), []);
  assert.doesNotMatch(await uplinkAddresses(), new RegExp(EIP.replaceAll('.', '\\.')));
  const pool = await client.resource<AddressPool>(Resources.addressPools).get(undefined, 'public');
  assert.deepEqual(pool?.status?.allocations?.map((a) => a.address), [EIP]);

  // Bound again (to B), then deleted: everything made for it goes.
  await eips().mergePatch('default', 'pub', { spec: { instanceRef: { name: 'web-b' } } });
  await eipWhere('pub on web-b', (e) => e.status?.boundTo === 'web-b');
  assert.equal((await nftRules()).length, 3);
  await eips().delete('default', 'pub');
  await waitFor('pub gone', async () => (await eips().get('default', 'pub')) === undefined, 30_000, 100);
  assert.deepEqual(await nftRules(), [], 'the table is back to empty');
  assert.doesNotMatch(await uplinkAddresses(), new RegExp(EIP.replaceAll('.', '\\.')), 'the address is gone from the uplink');
  assert.equal(await fromClient(EIP), undefined);
  const freed = await client.resource<AddressPool>(Resources.addressPools).get(undefined, 'public');
  assert.deepEqual(freed?.status?.allocations ?? [], []);
  assert.equal(freed?.status?.free, 14);
  await waitFor('web-b no longer lists it', async () => !(await instances().get('default', 'web-b'))?.status?.elasticIPs?.includes(EIP), 10_000);
});
