/**
 * A private Docker registry (Debian's `docker-registry`, the CNCF distribution registry) on
 * 127.0.0.1 with TLS and htpasswd users, in a temp dir; stopped by PID. Docker engines treat
 * 127.0.0.0/8 registries as insecure by default (TLS without verifying the CA), so the
 * engines of the tests need no CA file under /etc/docker/certs.d.
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { get as httpsGet } from 'node:https';
import { join } from 'node:path';
import type { CertBundle } from './dockerd.js';
import { execFileP, freePort, removeDir, requireBinary, startDaemon, tempDir, waitFor } from './process.js';

export interface Registry {
  /** `127.0.0.1:PORT`, the host part of image references. */
  host: string;
  stop(): Promise<void>;
}

export async function startRegistry(options: { certs: CertBundle; users: Record<string, string> }): Promise<Registry> {
  const bin = requireBinary('docker-registry', 'make deps-apt (docker-registry)');
  const htpasswd = requireBinary('htpasswd', 'make deps-apt (apache2-utils)');
  const dir = await tempDir('registry');
  const port = await freePort();
  const passwords = join(dir, 'htpasswd');
  await writeFile(passwords, '');
  for (const [user, password] of Object.entries(options.users)) await execFileP(htpasswd, ['-B', '-b', passwords, user, password]);
  const config = join(dir, 'config.yml');
  await writeFile(
    config,
    [
      'version: 0.1',
      'log: {level: warn}',
      `storage: {filesystem: {rootdirectory: ${join(dir, 'data')}}, delete: {enabled: true}}`,
      'http:',
      `  addr: 127.0.0.1:${port}`,
      `  secret: ${randomBytes(16).toString('hex')}`,
      `  tls: {certificate: ${options.certs.serverCertPath}, key: ${options.certs.serverKeyPath}}`,
      `auth: {htpasswd: {realm: stratus-test, path: ${passwords}}}`,
      '',
    ].join('\n'),
  );
  const daemon = startDaemon(bin, ['serve', config]);
  try {
    await waitFor(
      'the registry to answer /v2/',
      () =>
        new Promise<true | undefined>((resolve) => {
          const req = httpsGet({ host: '127.0.0.1', port, path: '/v2/', ca: options.certs.ca }, (res) => {
            res.resume();
            resolve(res.statusCode === 401 || undefined);
          });
          req.once('error', () => resolve(undefined));
        }),
      20_000,
    );
  } catch (err) {
    await daemon.stop();
    throw new Error(`${(err as Error).message}\n${daemon.output()}`);
  }
  return {
    host: `127.0.0.1:${port}`,
    async stop() {
      await daemon.stop();
      await removeDir(dir);
    },
  };
}
