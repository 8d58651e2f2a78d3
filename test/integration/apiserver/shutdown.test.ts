/**
 * Shutdown at any moment: SIGTERM while `stratus serve` is still starting its controllers
 * ends the process (exit 0), and `close()` of an API server whose watches are still being
 * set up resolves — a watch that opens after draining began is ended, and a request that
 * arrives on a kept-alive connection while draining is refused with 503.
 *
 * The regression these guard against: SIGTERM ~70 ms after "API server ready" closed the
 * listener, but an informer's watch that was mid-set-up registered afterwards, so the drain
 * waited on it forever and the process never exited.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { request } from 'node:https';
import { join } from 'node:path';
import { startApiServer } from '../../../apiserver/server.js';
import { repoRoot, stratusBin } from '../../harness/paths.js';
import { freePort, removeDir, tempDir } from '../../harness/process.js';
import { kubeconfigCredentials } from '../../harness/kubefetch.js';

/** Starts `stratus serve`, sends SIGTERM `delayMs` after it logs that its API is ready, and returns the exit code. */
async function sigtermDuringStartup(dataDir: string, delayMs: number): Promise<number | null> {
  const child = spawn(
    process.execPath,
    [stratusBin(), 'serve', '--data-dir', dataDir, '--listen', `127.0.0.1:${await freePort()}`, '--legacy-listen', 'off'],
    { env: { ...process.env, STRATUS_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let log = '';
  await new Promise<void>((resolve) => {
    const onData = (b: Buffer): void => {
      log += b.toString();
      if (log.includes('API server ready')) {
        child.stderr.off('data', onData);
        resolve();
      }
    };
    child.stderr.on('data', onData);
    void exited.then(() => resolve());
  });
  child.stdout.resume();
  child.stderr.resume();
  setTimeout(() => child.kill('SIGTERM'), delayMs);
  return exited;
}

describe('shutdown', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await removeDir(d);
  });

  it('SIGTERM at any moment of start-up ends stratus serve with exit code 0', { timeout: 240_000 }, async () => {
    for (const delayMs of [0, 30, 70, 300]) {
      const dir = await tempDir('shutdown-serve');
      dirs.push(dir);
      assert.equal(await sigtermDuringStartup(join(dir, 'data'), delayMs), 0, `SIGTERM ${delayMs} ms after "API server ready"`);
    }
  });

  it('close() ends watches that open while it drains and refuses new requests on kept-alive connections', { timeout: 120_000 }, async () => {
    const dir = await tempDir('shutdown-api');
    dirs.push(dir);
    const server = await startApiServer({ dataDir: dir, listen: '127.0.0.1:0', crdDir: join(repoRoot(), 'crds'), drainTimeoutSeconds: 3600 });
    const { ca, cert, key } = kubeconfigCredentials(server.kubeconfigPath);
    const paths = [
      '/api/v1/configmaps',
      '/api/v1/secrets',
      '/api/v1/namespaces',
      '/api/v1/events',
      '/apis/compute.stratus.dev/v1alpha1/instances',
      '/apis/compute.stratus.dev/v1alpha1/computenodes',
      '/apis/compute.stratus.dev/v1alpha1/networks',
      '/apis/compute.stratus.dev/v1alpha1/sshkeys',
      '/apis/apps.stratus.dev/v1alpha1/projects',
      '/apis/apps.stratus.dev/v1alpha1/deployments',
      '/apis/coordination.k8s.io/v1/leases',
    ];
    const statuses: Promise<number>[] = [];
    let firstOpened: () => void = () => undefined;
    const opened = new Promise<void>((resolve) => (firstOpened = resolve));
    for (const p of paths) {
      statuses.push(
        new Promise<number>((resolve) => {
          const req = request(`${server.url}${p}?watch=true&timeoutSeconds=3000`, { ca, cert, key }, (res) => {
            firstOpened();
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
            res.on('error', () => resolve(res.statusCode ?? 0));
          });
          req.on('error', () => resolve(0));
          req.end();
        }),
      );
    }
    await opened;
    // Closing while the other watches are still being set up must still finish: every one
    // that opens late is ended, and none is left holding the server open.
    await server.close();
    const codes = await Promise.all(statuses);
    for (const c of codes) assert.ok([0, 200, 503].includes(c), `watch ended with ${c}`);
  });
});
