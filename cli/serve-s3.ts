/**
 * The S3-compatible object store as a `stratus serve` component (objectstore/):
 * `--s3-listen HOST:PORT` (default 127.0.0.1:9000; `off` disables), virtual-host style under
 * `--s3-domain` (default localhost: `BUCKET.localhost:9000`). It talks to the API server with
 * its own client certificate (user `system:stratus-objectstore`, group `system:masters`)
 * and impersonates each caller. As with the legacy proxy, an address already in use is
 * reported and the control plane runs without it.
 */
import { KubeClient } from '../runtime/client.js';
import { log } from '../runtime/log.js';
import { startObjectStore } from '../objectstore/server.js';
import type { ServeComponent } from './serve.js';

export const S3_DEFAULT_LISTEN = '127.0.0.1:9000';

export const serveS3: ServeComponent = async (server, options) => {
  const listen = options.s3Listen.trim();
  if (listen === '' || listen === 'off' || listen === 'none') return { close: async () => undefined };
  const client = KubeClient.fromFile(server.clientKubeconfig('objectstore', 'system:stratus-objectstore', ['system:masters']));
  try {
    const s3 = await startObjectStore({ client, dataDir: options.dataDir, listen, domain: options.s3Domain });
    log.info({ component: 'objectstore', url: s3.url }, 'S3 endpoint listening');
    process.stdout.write(`stratus: S3 endpoint at ${s3.url} (virtual-host style: BUCKET.${options.s3Domain})\n`);
    return {
      async close() {
        await s3.close();
        client.close();
      },
    };
  } catch (err) {
    client.close();
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    log.error({ component: 'objectstore', listen }, 'S3 endpoint not served: the address is in use');
    process.stderr.write(`stratus: S3 endpoint not served: ${listen} is in use (choose another with --s3-listen, or "off")\n`);
    return { close: async () => undefined };
  }
};
