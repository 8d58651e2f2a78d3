/**
 * `stratus proxy --kubeconfig FILE --listen HOST:PORT [--legacy-insecure]`: the legacy REST
 * APIs (Cloud Brain, DataCentred, clementine, Brume) alone, in front of any Kubernetes API
 * with the stratus CRDs — a real cluster or `stratus serve`. SIGTERM/SIGINT close and exit 0.
 */
import type { Command } from 'commander';
import { KubeClient } from '../runtime/client.js';
import { log } from '../runtime/log.js';
import { startLegacyProxy } from '../legacy/proxy.js';
import { DEFAULT_KUBECONFIG } from './token.js';

export function registerProxy(program: Command): void {
  program
    .command('proxy')
    .description('serve the legacy REST APIs (Cloud Brain, DataCentred, clementine, Brume) over a Kubernetes API')
    .option('--kubeconfig <file>', 'kubeconfig of the API server', DEFAULT_KUBECONFIG)
    .option('--listen <host:port>', 'address of the legacy APIs', '127.0.0.1:8080')
    .option('--legacy-insecure', 'serve DataCentred and clementine without a token (as the originals did)', false)
    .action(async (raw: Record<string, unknown>) => {
      const client = KubeClient.fromFile(String(raw.kubeconfig));
      const insecure = raw.legacyInsecure === true;
      const proxy = await startLegacyProxy({ client, listen: String(raw.listen), insecure });
      process.stdout.write(`stratus: legacy APIs at ${proxy.url} over ${client.server}${insecure ? ' (DataCentred and clementine without authentication)' : ''}\n`);
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
