/**
 * The in-process ISO 9660 writer (providers/libvirt/iso9660.ts) read by tools nobody here
 * wrote: blkid finds the `cidata` label cloud-init looks for, and xorriso lists and extracts
 * the Joliet tree with the exact names and bytes of the seed (including a user-data larger
 * than one sector).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildSeedIso, seedFiles } from '../../../providers/libvirt/cloud-init.js';
import { buildIso } from '../../../providers/libvirt/iso9660.js';
import type { MachineSpec } from '../../../providers/machine.js';
import { removeDir, requireBinary, tempDir } from '../../harness/process.js';

const execFileP = promisify(execFile);

const spec = {
  uid: '6F1A3C2E-0000-4000-8000-00000000ABCD',
  namespace: 'default',
  name: 'web',
  hostname: 'web',
  image: 'debian-12',
  cpus: 1,
  memoryMiB: 512,
  disks: [],
  networks: [{ name: 'lan', bridge: 'br0', vlan: 10, address: '10.0.0.5/24', gateway: '10.0.0.1' }],
  sshAuthorizedKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample tester'],
  // more than one 2,048-byte sector, so a file spans sectors
  userData: `#!/bin/sh\n${'echo stratus-seed-test\n'.repeat(300)}`,
  env: {},
  ports: [],
  labels: {},
} as unknown as MachineSpec;

describe('seed ISO built in-process', () => {
  let dir: string;
  before(async () => {
    requireBinary('xorriso');
    requireBinary('blkid', 'make deps-apt (util-linux)');
    dir = await tempDir('seed-iso');
  });
  after(async () => {
    await removeDir(dir);
  });

  it('has the cidata label and the seed files under their exact names and bytes', async () => {
    const files = seedFiles(spec);
    assert.ok(files['network-config'], 'the spec has a network: network-config is part of the seed');
    assert.ok(files['user-data'].length > 2048);
    const iso = join(dir, 'seed.iso');
    await writeFile(iso, await buildSeedIso(files));

    const probe = (await execFileP('blkid', ['-p', '-o', 'export', iso])).stdout;
    assert.match(probe, /^TYPE=iso9660$/m);
    assert.match(probe, /^LABEL=cidata$/m);
    assert.match(probe, /^VERSION=Joliet\\ Extension$/m);

    const listing = (await execFileP('xorriso', ['-indev', iso, '-find', '/', '-type', 'f'])).stdout;
    assert.deepEqual(listing.trim().split('\n').sort(), ["'/meta-data'", "'/network-config'", "'/user-data'"]);

    const out = join(dir, 'out');
    await execFileP('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', '/', out]);
    for (const name of ['meta-data', 'user-data', 'network-config'] as const) {
      assert.equal(await readFile(join(out, name), 'utf8'), files[name], `${name} reads back byte for byte`);
    }
  });

  it('keeps long and clashing names apart and an empty file empty', async () => {
    const files = [
      { name: 'network-config-extra-long-name.yaml', data: Buffer.from('a: 1\n') },
      { name: 'network-config-extra-long-name.yml', data: Buffer.from('b: 2\n') },
      { name: 'empty', data: Buffer.alloc(0) },
    ];
    const iso = join(dir, 'names.iso');
    await writeFile(iso, buildIso('TESTVOL', files));
    const out = join(dir, 'names');
    await execFileP('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', '/', out]);
    for (const f of files) assert.deepEqual(await readFile(join(out, f.name)), f.data);
    assert.match((await execFileP('blkid', ['-p', '-o', 'export', iso])).stdout, /^LABEL=TESTVOL$/m);
  });

  it('refuses a label or a name ISO 9660 cannot hold', () => {
    assert.throws(() => buildIso('a-label-longer-than-16', []), /longer than 16/);
    assert.throws(() => buildIso('x', [{ name: 'a/b', data: Buffer.alloc(1) }]), /not allowed/);
  });
});
