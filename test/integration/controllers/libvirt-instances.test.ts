/**
 * The Instance lifecycle on libvirt's test driver (sim nodes, the virsh shell) through the
 * real API server: the controllers run in this process (as `stratus controller` would) against
 * `stratus serve --no-controllers`, so the test can reach behind their back through the same
 * node connections (the test driver's state lives in the process that opened it). The
 * scenarios (libvirt-scenarios.ts) run on real libvirtds too: libvirt-instances-qemu.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Instance } from '../../../crds/types.js';
import { ApiError } from '../../../runtime/client.js';
import { Resources } from '../../../controllers/resources.js';
import { simNodeUri } from '../../../providers/libvirt/index.js';
import { removeDir, tempDir } from '../../harness/process.js';
import { libvirtInstanceScenarios, startControllerWorld, vm, type ControllerWorld } from './libvirt-scenarios.js';

let world: ControllerWorld | undefined;
let simDir = '';
const instances = () => world!.client.resource<Instance>(Resources.instances);

before(async () => {
  simDir = await tempDir('sim');
  world = await startControllerWorld((name) => ({ uri: simNodeUri(join(simDir, name)), imagePool: 'default' }));
});

after(async () => {
  try {
    await world?.stop(20_000);
  } finally {
    if (simDir) await removeDir(simDir);
  }
});

libvirtInstanceScenarios(() => ({ client: world!.client, held: world!.held, timeoutMs: 20_000 }));

describe('bad input', () => {
  const cases: { name: string; spec: Record<string, unknown>; field: string }[] = [
    { name: 'memory 0', spec: { memoryMiB: 0 }, field: 'spec.memoryMiB' },
    { name: 'a disk of -1 GiB', spec: { disks: [{ name: 'd', sizeGiB: -1 }] }, field: 'spec.disks[0].sizeGiB' },
    { name: 'an XML-looking hostname', spec: { hostname: '<x/>' }, field: 'spec.hostname' },
    { name: '10,000 networks', spec: { networks: Array.from({ length: 10_000 }, (_, i) => ({ name: `n${i}` })) }, field: 'spec.networks' },
  ];
  for (const c of cases) {
    test(`${c.name} is a 422 naming ${c.field}, and nothing is stored`, async () => {
      const obj = vm('bad');
      Object.assign(obj.spec, c.spec);
      const err = await instances().create(obj).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof ApiError, 'rejected');
      assert.equal(err.code, 422);
      const body = err.body as { details?: { causes?: { field?: string }[] } };
      assert.ok(body.details?.causes?.some((cause) => cause.field === c.field), JSON.stringify(body).slice(0, 400));
      assert.equal(await instances().get('default', 'bad'), undefined);
    });
  }
});
