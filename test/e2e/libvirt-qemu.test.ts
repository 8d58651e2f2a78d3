/**
 * Instances on a real libvirtd (qemu:///session under TCG, started by this test) driven by
 * `stratus controller` as a separate process against `stratus serve --no-controllers`:
 * a real qemu process runs, stops and starts; deletion leaves no process and no volume; and
 * a controller killed with SIGKILL between defining a domain and writing status leaves
 * exactly one domain once it is restarted.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chown, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ComputeNode, Instance } from '../../crds/types.js';
import { KubeClient } from '../../runtime/client.js';
import { Resources } from '../../controllers/resources.js';
import { kubectl, startStratusServe, type StratusServe } from '../harness/apiserver.js';
import { startLibvirtd, processesMentioning, type PrivateLibvirtd } from '../harness/libvirtd.js';
import { execFileP, pidAlive, removeDir, requireBinary, startDaemon, tempDir, waitFor, type Daemon } from '../harness/process.js';
import { stratusBin } from '../harness/paths.js';

const POOL = 'stratus-e2e-images';
let daemon: PrivateLibvirtd | undefined;
let serve: StratusServe | undefined;
let controller: Daemon | undefined;
let client: KubeClient;
let poolDir = '';

const virsh = async (...args: string[]): Promise<string> => (await execFileP(requireBinary('virsh'), ['-q', '-c', daemon!.uri, ...args])).stdout;
const instances = () => client.resource<Instance>(Resources.instances);

function startController(): Daemon {
  return startDaemon(process.execPath, [stratusBin(), 'controller', '--kubeconfig', serve!.kubeconfig], { env: { ...process.env, STRATUS_LOG_LEVEL: 'warn' } });
}

before(async () => {
  requireBinary('qemu-img');
  daemon = await startLibvirtd();
  poolDir = join(daemon.dir, 'images');
  await mkdir(poolDir);
  await execFileP('qemu-img', ['create', '-q', '-f', 'qcow2', join(poolDir, 'tiny.qcow2'), '64M']);
  for (const p of [poolDir, join(poolDir, 'tiny.qcow2')]) await chown(p, 65534, 65534);
  await virsh('pool-define-as', '--name', POOL, '--type', 'dir', '--target', poolDir);
  await virsh('pool-start', POOL);
  serve = await startStratusServe();
  client = KubeClient.fromFile(serve.kubeconfig);
  await client.resource<ComputeNode>(Resources.computeNodes).create({
    apiVersion: 'compute.stratus.dev/v1alpha1',
    kind: 'ComputeNode',
    metadata: { name: 'qemu-1' },
    spec: { provider: 'libvirt', libvirt: { uri: daemon.uri, imagePool: POOL }, heartbeatSeconds: 2 },
  });
  controller = startController();
});

after(async () => {
  try {
    for (const i of await instances().list().catch(() => [])) await instances().delete(i.metadata?.namespace, i.metadata?.name ?? '').catch(() => undefined);
    await waitFor('instances gone', async () => (await instances().list()).length === 0, 30_000).catch(() => undefined);
  } finally {
    await controller?.stop();
    client?.close();
    await serve?.stop();
    await daemon?.stop();
  }
});

function vm(name: string): Instance {
  return {
    apiVersion: 'compute.stratus.dev/v1alpha1',
    kind: 'Instance',
    metadata: { name, namespace: 'default' },
    spec: { provider: 'libvirt', image: 'tiny', cpus: 1, memoryMiB: 64, disks: [{ name: 'data', sizeGiB: 1 }], libvirt: { shutdownTimeoutSeconds: 1 } },
  };
}

async function waitState(name: string, state: string): Promise<Instance> {
  return waitFor(`${name} ${state}`, async () => {
    const i = await instances().get('default', name);
    return i?.status?.state === state && i.status.observedGeneration === i.metadata?.generation ? i : undefined;
  }, 60_000, 100);
}

test('an Instance runs as a real qemu process, stops and starts, and deletion leaves no process and no volume', async () => {
  await instances().create(vm('real'));
  const running = await waitState('real', 'running');
  const uid = running.metadata!.uid!;
  const pids = await processesMentioning(uid);
  assert.equal(pids.length, 1, 'one qemu process carries the domain uuid');
  assert.ok(pidAlive(pids[0]!));
  assert.match(await virsh('vol-list', POOL), new RegExp(`${uid}-boot`));

  await instances().mergePatch('default', 'real', { spec: { powerState: 'Stopped' } });
  await waitState('real', 'stopped');
  await waitFor('qemu gone after stop', async () => (await processesMentioning(uid)).length === 0, 20_000);

  await instances().mergePatch('default', 'real', { spec: { powerState: 'Running' } });
  await waitState('real', 'running');
  const restarted = await processesMentioning(uid);
  assert.equal(restarted.length, 1);
  assert.notEqual(restarted[0], pids[0]);

  await instances().delete('default', 'real');
  await waitFor('real deleted', async () => (await instances().get('default', 'real')) === undefined, 60_000, 100);
  assert.deepEqual(await processesMentioning(uid), []);
  assert.doesNotMatch(await virsh('vol-list', POOL), new RegExp(uid));
  assert.doesNotMatch(await virsh('list', '--all', '--uuid'), new RegExp(uid));
});

test('corpus enlarge grows a running guest\'s disk in place (qemu sees it); shrinking is refused with 422 (kubectl) and corpus trim', async () => {
  await instances().create(vm('grow'));
  const running = await waitState('grow', 'running');
  const uid = running.metadata!.uid!;
  const pid = (await processesMentioning(uid))[0];
  const dir = await tempDir('corpus-enlarge');
  try {
    const config = join(dir, 'makinastates.conf');
    await writeFile(config, `local:\n  kubeconfig: ${serve!.kubeconfig}\n  namespace: default\n`);
    const corpus = async (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
      execFileP(process.execPath, [stratusBin(), 'corpus', '--config', config, ...args], { env: { ...process.env, STRATUS_LOG_LEVEL: 'warn' } }).then(
        (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
        (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }),
      );
    const grown = await corpus('enlarge', 'local', 'qemu-1', 'grow', '2G');
    assert.equal(grown.code, 0, grown.stderr);
    assert.equal(grown.stdout, 'guest grow: disk data now 3 GiB (was 1 GiB)\n');
    assert.match(grown.stderr, /disk data 1 GiB → 3 GiB/);
    // qemu grew the disk it has open: same process, the domain's view of sdb is 3 GiB.
    assert.deepEqual(await processesMentioning(uid), [pid]);
    assert.match(await virsh('domblkinfo', uid, 'sdb'), new RegExp(`Capacity:\\s+${3 * 1024 ** 3}\\n`));
    const inst = await instances().get('default', 'grow');
    assert.deepEqual(inst?.status?.disks, [{ name: 'data', sizeGiB: 3 }]);
    assert.equal(inst?.status?.conditions?.find((c) => c.type === 'DisksSized')?.status, 'True');
    const events = (await client.request({ method: 'GET', path: '/api/v1/namespaces/default/events' })) as { items: { reason?: string; message?: string; involvedObject?: { name?: string } }[] };
    assert.ok(events.items.some((e) => e.involvedObject?.name === 'grow' && e.reason === 'DiskResized' && /grew disk data from 1 to 3 GiB while the machine runs/.test(e.message ?? '')));

    // Shrinking loses data: the API server refuses it, whoever asks.
    const shrink = await kubectl(serve!.kubeconfig, dir, ['patch', 'instance', 'grow', '--type', 'merge', '-p', '{"spec":{"disks":[{"name":"data","sizeGiB":2}]}}']);
    assert.notEqual(shrink.code, 0);
    assert.match(shrink.stderr, /The Instance "grow" is invalid: spec\.disks\[0\]\.sizeGiB: Forbidden: disk data may not shrink from 3 to 2 GiB/);
    const trimmed = await corpus('trim', 'local', 'qemu-1', 'grow', '1');
    assert.notEqual(trimmed.code, 0);
    assert.match(trimmed.stderr, /may not shrink from 3 to 2 GiB: a disk only grows/);
    assert.match(await virsh('vol-info', '--pool', POOL, `${uid}-disk-data.qcow2`, '--bytes'), new RegExp(`Capacity:\\s+${3 * 1024 ** 3} bytes`));
    assert.equal((await instances().get('default', 'grow'))?.spec.disks?.[0]?.sizeGiB, 3);
  } finally {
    await removeDir(dir);
  }
  await instances().delete('default', 'grow');
  await waitFor('grow deleted', async () => (await instances().get('default', 'grow')) === undefined, 60_000, 100);
});

test('a controller killed between defining a domain and writing status leaves exactly one domain after restart', async () => {
  // Listen for libvirt's own "Defined" event and SIGKILL the controller the moment it comes.
  const events = startDaemon(requireBinary('virsh'), ['-c', daemon!.uri, 'event', '--all', '--loop']);
  let killed = false;
  let probeSeen = false;
  events.child.stdout?.on('data', (b: Buffer) => {
    const text = b.toString();
    if (/'listener-probe-\d+': Defined/.test(text)) probeSeen = true;
    if (!killed && /'default-crash-[0-9a-f]{8}': Defined/.test(text)) {
      killed = true;
      controller?.child.kill('SIGKILL');
    }
  });
  try {
    // The listener is registered once it reports a throwaway domain defined after it started.
    let probes = 0;
    await waitFor('the event listener to report a probe domain', async () => {
      if (!pidAlive(events.pid)) throw new Error(`virsh event exited: ${events.output()}`);
      const name = `listener-probe-${probes++}`;
      const xml = join(daemon!.dir, `${name}.xml`);
      await writeFile(xml, `<domain type='qemu'><name>${name}</name><memory unit='MiB'>16</memory><os><type arch='x86_64'>hvm</type></os></domain>`);
      await virsh('define', xml);
      await virsh('undefine', name);
      return probeSeen;
    }, 30_000, 100);
    await instances().create(vm('crash'));
    await waitFor('the controller killed right after define', () => killed, 60_000, 10);
    await controller!.exited;
  } finally {
    await events.stop();
  }
  const uid = (await instances().get('default', 'crash'))!.metadata!.uid!;
  const before = await instances().get('default', 'crash');
  assert.equal(before?.status?.providerID, undefined, 'the status was not written before the kill');
  assert.match(await virsh('list', '--all', '--uuid'), new RegExp(uid), 'the domain was defined');

  controller = startController();
  await waitState('crash', 'running');
  const domains = (await virsh('list', '--all', '--uuid')).split('\n').map((s) => s.trim()).filter((s) => s !== '');
  assert.deepEqual(domains, [uid], 'exactly one domain, the Instance\'s');
  assert.equal((await processesMentioning(uid)).length, 1, 'one qemu process');
});
