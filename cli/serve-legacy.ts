/**
 * The legacy proxy as a `stratus serve` component: Cloud Brain, DataCentred, clementine and
 * Brume on `--legacy-listen` (default 127.0.0.1:8080), talking to the API server through
 * its own client certificate (user `system:stratus-legacy`, group `system:masters`) like
 * any external client, each request impersonating its caller.
 * `--legacy-anonymous datacentred,clementine` admits callers without credentials to those
 * APIs as `system:anonymous` (`--legacy-insecure`, deprecated, means exactly that).
 * `--legacy-listen off` (or an empty value) disables it.
 *
 * A legacy address already in use does not stop the control plane: the proxy is then not
 * served, and an error says so (several `stratus serve` in tests or on a laptop would
 * otherwise all fight over 8080).
 */
import { KubeClient } from '../runtime/client.js';
import { log } from '../runtime/log.js';
import { INSECURE_ANONYMOUS_APIS, startLegacyProxy } from '../legacy/proxy.js';
import type { ServeComponent, ServeOptions } from './serve.js';

function anonymousOf(options: ServeOptions): string[] {
  return [...new Set([...options.legacyAnonymous, ...(options.legacyInsecure ? INSECURE_ANONYMOUS_APIS : [])])];
}

export const serveLegacy: ServeComponent = async (server, options) => {
  const listen = options.legacyListen.trim();
  if (listen === '' || listen === 'off' || listen === 'none') return { close: async () => undefined };
  const client = KubeClient.fromFile(server.clientKubeconfig('legacy-proxy', 'system:stratus-legacy', ['system:masters']));
  const anonymous = anonymousOf(options);
  if (options.legacyInsecure) process.stderr.write('stratus: --legacy-insecure is deprecated; use --legacy-anonymous datacentred,clementine\n');
  try {
    const proxy = await startLegacyProxy({ client, listen, anonymous });
    log.info({ component: 'legacy', url: proxy.url, anonymous }, 'legacy APIs listening');
    process.stdout.write(`stratus: legacy APIs at ${proxy.url}${anonymous.length ? ` (anonymous callers of ${anonymous.join(', ')} act as system:anonymous)` : ''}\n`);
    return {
      async close() {
        await proxy.close();
        client.close();
      },
    };
  } catch (err) {
    client.close();
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    log.error({ component: 'legacy', listen }, 'legacy APIs not served: the address is in use');
    process.stderr.write(`stratus: legacy APIs not served: ${listen} is in use (choose another with --legacy-listen)\n`);
    return { close: async () => undefined };
  }
};
