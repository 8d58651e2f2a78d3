/**
 * The Instance controller scenarios of libvirt-instances.test.ts (libvirt-scenarios.ts) on
 * three real libvirtds — private `qemu:///session` daemons as `nobody`, qemu under TCG — so the
 * controllers drive the native binding (domains) and virsh (pools, volumes) as on a real node,
 * not libvirt's test driver. The image `debian-12` is a blank 64 MiB qcow2: qemu runs, nothing
 * boots (a stop ends with a destroy after `shutdownTimeoutSeconds: 1`).
 */
import { after, before } from 'node:test';
import { chown, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { startLibvirtd, type PrivateLibvirtd } from '../../harness/libvirtd.js';
import { execFileP, requireBinary } from '../../harness/process.js';
import { libvirtInstanceScenarios, startControllerWorld, NODE_NAMES, type ControllerWorld } from './libvirt-scenarios.js';

const POOL = 'stratus-ctl-images';
const daemons = new Map<string, PrivateLibvirtd>();
let world: ControllerWorld | undefined;

before(async () => {
  requireBinary('qemu-img');
  for (const name of NODE_NAMES) {
    const d = await startLibvirtd();
    daemons.set(name, d);
    const poolDir = join(d.dir, 'images');
    await mkdir(poolDir);
    await execFileP('qemu-img', ['create', '-q', '-f', 'qcow2', join(poolDir, 'debian-12.qcow2'), '64M']);
    for (const p of [poolDir, join(poolDir, 'debian-12.qcow2')]) await chown(p, 65534, 65534);
    await execFileP('virsh', ['-q', '-c', d.uri, 'pool-define-as', '--name', POOL, '--type', 'dir', '--target', poolDir]);
    await execFileP('virsh', ['-q', '-c', d.uri, 'pool-start', POOL]);
  }
  world = await startControllerWorld((name) => ({ uri: daemons.get(name)!.uri, imagePool: POOL }), 60_000);
});

after(async () => {
  try {
    await world?.stop(60_000);
  } finally {
    for (const d of daemons.values()) await d.stop();
  }
});

libvirtInstanceScenarios(() => ({ client: world!.client, held: world!.held, timeoutMs: 60_000 }));
