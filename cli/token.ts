/**
 * `stratus token`: Cloud Brain API tokens for the legacy proxy.
 *
 *   stratus token create "description" [--user USER] [--namespace NS] [--kubeconfig FILE]
 *     prints `generated token: ID-SECRET` — the only time the secret is shown; only a salt
 *     and an scrypt hash are stored (an AccessToken named token-ID in NS). The token acts as
 *     USER (and its Groups), or without --user as NS's default identity
 *     (system:serviceaccount:NS:default).
 *   stratus token revoke ID [--namespace NS] [--kubeconfig FILE]
 *     sets `spec.revoked`; the proxy refuses the token from then on.
 */
import type { Command } from 'commander';
import type { AccessToken } from '../crds/types.js';
import { KubeClient } from '../runtime/client.js';
import { Resources } from '../controllers/resources.js';
import { createAccessToken } from '../legacy/tokens.js';
import { ensureNamespace } from '../legacy/namespaces.js';

/** The data dir's kubeconfig, as `stratus serve` writes it by default. */
export const DEFAULT_KUBECONFIG = './data/kubeconfig';

export function registerToken(program: Command): void {
  const token = program.command('token').description('API tokens: `Authorization: Bearer ID-SECRET` on the Kubernetes API, `token ID-SECRET` on the legacy APIs');
  token
    .command('create')
    .description('create a token and print it once as "generated token: ID-SECRET"')
    .argument('<description>', 'what the token is for')
    .option('--namespace <ns>', 'namespace of the AccessToken (where the legacy objects of its caller live)', 'default')
    .option('--user <name>', 'the user the token authenticates as (its RBAC subject); default: the token itself')
    .option('--kubeconfig <file>', 'kubeconfig of the API server', DEFAULT_KUBECONFIG)
    .action(async (description: string, raw: Record<string, unknown>) => {
      const client = KubeClient.fromFile(String(raw.kubeconfig));
      try {
        const namespace = String(raw.namespace);
        await ensureNamespace(client, namespace);
        const created = await createAccessToken(client, namespace, description, typeof raw.user === 'string' ? { user: raw.user } : {});
        process.stdout.write(`generated token: ${created.token}\n`);
      } finally {
        client.close();
      }
    });
  token
    .command('revoke')
    .description('revoke a token by its numeric ID')
    .argument('<id>', 'the ID part of ID-SECRET')
    .option('--namespace <ns>', 'namespace of the AccessToken', 'default')
    .option('--kubeconfig <file>', 'kubeconfig of the API server', DEFAULT_KUBECONFIG)
    .action(async (id: string, raw: Record<string, unknown>) => {
      const client = KubeClient.fromFile(String(raw.kubeconfig));
      try {
        const namespace = String(raw.namespace);
        const tokens = client.resource<AccessToken>(Resources.accessTokens);
        const found = (await tokens.list(namespace)).filter((t) => t.spec?.tokenID === id);
        if (found.length === 0) throw new Error(`no token ${id} in namespace ${namespace}`);
        for (const t of found) await tokens.mergePatch(namespace, t.metadata!.name!, { spec: { revoked: true } });
        process.stdout.write(`revoked token ${id}\n`);
      } finally {
        client.close();
      }
    });
}
