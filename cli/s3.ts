/**
 * `stratus s3 credentials create --user NAME [--kubeconfig FILE]`
 *
 * Creates an S3 access key for the User NAME and prints, once:
 *
 *   AccessKeyId: AKST...
 *   SecretAccessKey: ...
 *
 * The secret is stored only encrypted, with the public key the object store publishes
 * (objectstore/credentials.ts); requests signed with it act as NAME.
 */
import type { Command } from 'commander';
import { KubeClient } from '../runtime/client.js';
import { createS3Credential } from '../objectstore/credentials.js';
import { DEFAULT_KUBECONFIG } from './token.js';

export function registerS3(program: Command): void {
  const s3 = program.command('s3').description('the S3-compatible object store');
  const credentials = s3.command('credentials').description('S3 access keys of users');
  credentials
    .command('create')
    .description("create an S3 access key for a user and print its secret once")
    .requiredOption('--user <name>', 'the User the key acts as')
    .option('--kubeconfig <file>', 'kubeconfig of the API server', DEFAULT_KUBECONFIG)
    .action(async (raw: Record<string, unknown>) => {
      const client = KubeClient.fromFile(String(raw.kubeconfig));
      try {
        const { accessKeyId, secretAccessKey } = await createS3Credential(client, String(raw.user));
        process.stdout.write(`AccessKeyId: ${accessKeyId}\nSecretAccessKey: ${secretAccessKey}\n`);
      } finally {
        client.close();
      }
    });
}
