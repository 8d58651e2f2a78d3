/**
 * `stratus user create NAME [--group G]... [--namespace NS] [--kubeconfig FILE] [--kubeconfig-out FILE]`
 *
 * Creates the cluster-scoped User NAME (its user name in RBAC and audit), whose legacy
 * objects live in NS, and adds it to each Group G (`spec.members`, the one place membership
 * is written; a missing Group is created). Prints `generated secret: SECRET` once; Brume
 * clients sign each request body with it (`x-signature` = hex HMAC-SHA256(body, SECRET), see
 * legacy/users.ts). The secret is kept in the Secret `user-NAME-signing` in stratus-system,
 * because an HMAC check needs it.
 *
 * With `--kubeconfig-out FILE` it also creates an AccessToken for the user (in NS) and writes
 * FILE: the server URL and CA of `--kubeconfig`, and `ID-SECRET` as the bearer token.
 */
import type { Command } from 'commander';
import { KubeClient } from '../runtime/client.js';
import { createUser } from '../legacy/users.js';
import { createAccessToken } from '../legacy/tokens.js';
import { ensureNamespace, ensureNamespaceRole } from '../legacy/namespaces.js';
import { DEFAULT_KUBECONFIG } from './token.js';
import { currentCluster, writeUserKubeconfig } from './kubeconfig-out.js';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

export function registerUser(program: Command): void {
  const user = program.command('user').description('users of stratus and of the legacy Brume API');
  user
    .command('create')
    .description('create a user and print its request-signing secret once')
    .argument('<name>', 'the user name (RBAC subject, x-username), a DNS-1123 label')
    .option('--namespace <ns>', "namespace of the user's legacy objects", 'default')
    .option('--group <group>', 'add the user to this Group (repeatable)', collect, [])
    .option('--kubeconfig <file>', 'kubeconfig of the API server', DEFAULT_KUBECONFIG)
    .option('--kubeconfig-out <file>', "write a kubeconfig carrying a new token of the user's")
    .action(async (name: string, raw: Record<string, unknown>) => {
      const kubeconfig = String(raw.kubeconfig);
      const out = typeof raw.kubeconfigOut === 'string' ? raw.kubeconfigOut : undefined;
      // Read before anything is created, so a bad kubeconfig leaves nothing behind.
      const cluster = out ? currentCluster(kubeconfig) : undefined;
      const client = KubeClient.fromFile(kubeconfig);
      try {
        const namespace = String(raw.namespace);
        const groups = Array.isArray(raw.group) ? raw.group.map(String) : [];
        await ensureNamespace(client, namespace);
        const { secret } = await createUser(client, name, { namespace, groups });
        // A user works in its own namespace: what stratus:tenant allows there is its to do.
        await ensureNamespaceRole(client, namespace, name, 'stratus:tenant');
        process.stdout.write(`generated secret: ${secret}\n`);
        if (out && cluster) {
          const token = await createAccessToken(client, namespace, `kubeconfig of ${name}`, { user: name });
          writeUserKubeconfig({ path: out, cluster, username: name, token: token.token, namespace });
          process.stdout.write(`wrote kubeconfig ${out} (user ${name}, token ${token.object.spec.tokenID})\n`);
        }
      } finally {
        client.close();
      }
    });
}
