/**
 * `stratus user create NAME [--namespace NS] [--kubeconfig FILE]`: a User for Brume's API.
 * Prints `generated secret: SECRET` once; Brume clients sign each request body with it
 * (`x-signature` = hex HMAC-SHA256(body, SECRET), see legacy/users.ts). The secret is kept
 * in the Secret `user-NAME-signing` the User references, because an HMAC check needs it.
 */
import type { Command } from 'commander';
import { KubeClient } from '../runtime/client.js';
import { createUser } from '../legacy/users.js';
import { ensureNamespace } from '../legacy/namespaces.js';
import { DEFAULT_KUBECONFIG } from './token.js';

export function registerUser(program: Command): void {
  const user = program.command('user').description('users of the legacy Brume API');
  user
    .command('create')
    .description('create a user and print its request-signing secret once')
    .argument('<name>', 'the user name (x-username), a DNS-1123 label')
    .option('--namespace <ns>', 'namespace of the User (where its legacy objects live)', 'default')
    .option('--kubeconfig <file>', 'kubeconfig of the API server', DEFAULT_KUBECONFIG)
    .action(async (name: string, raw: Record<string, unknown>) => {
      const client = KubeClient.fromFile(String(raw.kubeconfig));
      try {
        const namespace = String(raw.namespace);
        await ensureNamespace(client, namespace);
        const { secret } = await createUser(client, namespace, name);
        process.stdout.write(`generated secret: ${secret}\n`);
      } finally {
        client.close();
      }
    });
}
