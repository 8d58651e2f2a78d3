/**
 * `stratus proxy --kubeconfig FILE --listen HOST:PORT [--legacy-anonymous APIS]`: the legacy
 * REST APIs (Cloud Brain, DataCentred, clementine, Brume) alone, in front of any Kubernetes
 * API with the stratus CRDs — a real cluster or `stratus serve`. Each request impersonates
 * its caller, so the kubeconfig's identity needs the `impersonate` verb on users and groups.
 * `--legacy-insecure` (deprecated) = `--legacy-anonymous datacentred,clementine`.
 * SIGTERM/SIGINT close and exit 0.
 */
import type { Command } from 'commander';
import { KubeClient } from '../runtime/client.js';
import { log } from '../runtime/log.js';
import { DEFAULT_KUBECONFIG } from './token.js';

export function registerProxy(program: Command): void {
  program
    .command('proxy')
    .description('serve the legacy REST APIs (Cloud Brain, DataCentred, clementine, Brume) over a Kubernetes API')
    .option('--kubeconfig <file>', 'kubeconfig of the API server', DEFAULT_KUBECONFIG)
    .option('--listen <host:port>', 'address of the legacy APIs', '127.0.0.1:8080')
    .option('--legacy-anonymous <apis>', 'legacy APIs (comma-separated) that admit callers without credentials as system:anonymous')
    .option('--legacy-insecure', 'deprecated: the same as --legacy-anonymous datacentred,clementine', false)
    .action(async (raw: Record<string, unknown>) => {
      const { INSECURE_ANONYMOUS_APIS, parseAnonymousApis, startLegacyProxy } = await import('../legacy/proxy.js');
      const anonymous = [
        ...new Set([...(typeof raw.legacyAnonymous === 'string' ? parseAnonymousApis(raw.legacyAnonymous) : []), ...(raw.legacyInsecure === true ? INSECURE_ANONYMOUS_APIS : [])]),
      ];
      const client = KubeClient.fromFile(String(raw.kubeconfig));
      const proxy = await startLegacyProxy({ client, listen: String(raw.listen), anonymous });
      process.stdout.write(`stratus: legacy APIs at ${proxy.url} over ${client.server}${anonymous.length ? ` (anonymous callers of ${anonymous.join(', ')} act as system:anonymous)` : ''}\n`);
      const signal = await new Promise<NodeJS.Signals>((resolve) => {
        process.once('SIGTERM', resolve);
        process.once('SIGINT', resolve);
      });
      log.info({ component: 'legacy', signal }, 'stopping the legacy proxy');
      await proxy.close();
      client.close();
      process.exit(0);
    });
}
