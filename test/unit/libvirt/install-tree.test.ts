import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fetchInstaller } from '../../../providers/libvirt/install-tree.js';
import { ReconcileError } from '../../../runtime/errors.js';

/**
 * Archive install trees of the DataCentred document's form
 * (`http://<mirror>/<distro>/dists/<release>/main/installer-amd64`), served from memory on
 * 127.0.0.1, each with one netboot layout.
 */
const TREES: Record<string, string> = {
  '/ubuntu/dists/xenial/main/installer-amd64': 'current/images/netboot/ubuntu-installer/amd64',
  '/ubuntu/dists/focal/main/installer-amd64': 'current/legacy-images/netboot/ubuntu-installer/amd64',
  '/debian/dists/bookworm/main/installer-amd64': 'current/images/netboot/debian-installer/amd64',
  '/debian/dists/buster/main/installer-amd64': 'current/legacy-images/netboot/debian-installer/amd64',
};

describe('install trees of the Debian and Ubuntu archives (…/dists/<release>/main/installer-amd64)', () => {
  let server: Server;
  let base: string;
  const files = new Map<string, Buffer>();

  before(async () => {
    for (const [tree, netboot] of Object.entries(TREES)) {
      files.set(`${tree}/${netboot}/linux`, Buffer.from(`kernel of ${tree}`));
      files.set(`${tree}/${netboot}/initrd.gz`, Buffer.from(`initrd of ${tree}`));
    }
    files.set('/broken/dists/x/main/installer-amd64/current/images/netboot/debian-installer/amd64/linux', Buffer.from('k'));
    server = createServer((req, res) => {
      const body = files.get(req.url ?? '');
      res.writeHead(body ? 200 : 404, { 'content-length': body?.length ?? 0 });
      res.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const table: [string, string][] = [
    ['/ubuntu/dists/xenial/main/installer-amd64', 'ubuntu'],
    ['/ubuntu/dists/focal/main/installer-amd64/', 'ubuntu-legacy'],
    ['/debian/dists/bookworm/main/installer-amd64', 'debian'],
    ['/debian/dists/buster/main/installer-amd64', 'debian-legacy'],
  ];
  for (const [tree, layout] of table) {
    it(`finds the ${layout} netboot kernel and initrd under ${tree}`, async () => {
      const got = await fetchInstaller(new URL(`${base}${tree}`), 'console=ttyS0', 5_000);
      assert.equal(got.layout, layout);
      const dir = tree.replace(/\/$/, '');
      assert.equal(got.kernel.toString(), `kernel of ${dir}`);
      assert.equal(got.initrd.toString(), `initrd of ${dir}`);
      assert.equal(got.cmdline, 'console=ttyS0');
    });
  }

  it('a tree with a kernel but no initrd, or with neither, is InstallTreeNotFound', async () => {
    await assert.rejects(fetchInstaller(new URL(`${base}/broken/dists/x/main/installer-amd64`), '', 5_000), (e: unknown) => e instanceof ReconcileError && e.reason === 'InstallTreeNotFound' && /initrd/.test(e.message));
    await assert.rejects(fetchInstaller(new URL(`${base}/nothing/dists/x/main/installer-amd64`), '', 5_000), (e: unknown) => e instanceof ReconcileError && e.reason === 'InstallTreeNotFound');
  });
});
