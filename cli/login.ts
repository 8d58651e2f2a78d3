/**
 * `stratus login --username U [--server URL] [--kubeconfig FILE] [--certificate-authority FILE]
 *  [--insecure-skip-tls-verify] [--password-stdin]`
 *
 * Exchanges an LDAP user name and password for a short-lived token at the server's
 * `POST /login` (served when `stratus serve` runs with `--ldap-url`), and writes or updates
 * FILE (default `$KUBECONFIG`, else `~/.kube/config`) so that its current context is U on the
 * cluster `stratus`. The password comes from a prompt that does not echo, or from stdin (one
 * line) when stdin is not a terminal or with `--password-stdin`; it is never an argument,
 * which other users could read in the process list. Without `--server`, the cluster of
 * FILE's current context is used.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Command } from 'commander';
import { currentCluster, writeUserKubeconfig } from './kubeconfig-out.js';

interface LoginResult {
  username: string;
  groups: string[];
  namespace: string;
  token: string;
  expirationTimestamp?: string;
}

function defaultKubeconfig(): string {
  const env = process.env.KUBECONFIG?.split(':')[0];
  return env && env !== '' ? env : join(homedir(), '.kube', 'config');
}

/** One line of stdin (the password), without echo when stdin is a terminal. */
async function readPassword(prompt: boolean): Promise<string> {
  const stdin = process.stdin;
  if (prompt && stdin.isTTY) {
    process.stderr.write('Password: ');
    stdin.setRawMode(true);
  }
  return new Promise((resolve, reject) => {
    let buf = '';
    const done = (err?: Error): void => {
      stdin.off('data', onData);
      stdin.off('end', onEnd);
      if (stdin.isTTY) {
        stdin.setRawMode(false);
        process.stderr.write('\n');
      }
      stdin.pause();
      if (err) reject(err);
      else resolve(buf);
    };
    const onData = (chunk: Buffer): void => {
      const text = chunk.toString('utf8');
      for (const ch of text) {
        if (ch === '\n' || ch === '\r') return done();
        if (ch === '\u0003') return done(new Error('login cancelled'));
        buf += ch;
      }
    };
    const onEnd = (): void => done();
    stdin.on('data', onData);
    stdin.on('end', onEnd);
    stdin.resume();
  });
}

function post(server: string, cluster: Record<string, unknown>, body: string): Promise<{ status: number; text: string }> {
  const url = new URL('/login', server);
  const caFile = typeof cluster['certificate-authority'] === 'string' ? cluster['certificate-authority'] : undefined;
  const caData = typeof cluster['certificate-authority-data'] === 'string' ? Buffer.from(cluster['certificate-authority-data'], 'base64') : undefined;
  const ca = caData ?? (caFile ? readFileSync(caFile) : undefined);
  const insecure = cluster['insecure-skip-tls-verify'] === true;
  const headers = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
  return new Promise((resolve, reject) => {
    const onResponse = (res: import('node:http').IncomingMessage): void => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    };
    const req =
      url.protocol === 'https:'
        ? httpsRequest(url, { method: 'POST', headers, ...(ca ? { ca } : {}), rejectUnauthorized: !insecure }, onResponse)
        : httpRequest(url, { method: 'POST', headers }, onResponse);
    req.setTimeout(30_000, () => req.destroy(new Error(`no answer from ${url.origin} within 30 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

export function registerLogin(program: Command): void {
  program
    .command('login')
    .description('log in with an LDAP user name and password; writes a kubeconfig carrying a short-lived token')
    .requiredOption('--username <name>', 'the LDAP user name')
    .option('--server <url>', "the API server's URL (default: the kubeconfig's current cluster)")
    .option('--kubeconfig <file>', 'kubeconfig to write or update (default $KUBECONFIG or ~/.kube/config)')
    .option('--certificate-authority <file>', "CA certificate of the server's TLS certificate")
    .option('--insecure-skip-tls-verify', 'do not verify the server certificate', false)
    .option('--password-stdin', 'read the password from stdin', false)
    .action(async (raw: Record<string, unknown>) => {
      const file = typeof raw.kubeconfig === 'string' ? raw.kubeconfig : defaultKubeconfig();
      let cluster: Record<string, unknown> = {};
      if (typeof raw.server === 'string') {
        cluster.server = raw.server;
      } else if (existsSync(file)) {
        cluster = currentCluster(file);
      } else {
        throw new Error(`--server is required: ${file} does not exist`);
      }
      if (typeof raw.certificateAuthority === 'string') {
        cluster['certificate-authority-data'] = readFileSync(raw.certificateAuthority).toString('base64');
        delete cluster['certificate-authority'];
      }
      if (raw.insecureSkipTlsVerify === true) cluster['insecure-skip-tls-verify'] = true;
      const server = String(cluster.server ?? '');
      if (!/^https?:\/\//.test(server)) throw new Error(`the server URL ${JSON.stringify(server)} must start with https:// or http://`);
      const password = await readPassword(raw.passwordStdin !== true);
      if (password === '') throw new Error('no password given');
      const res = await post(server, cluster, JSON.stringify({ username: String(raw.username), password }));
      if (res.status !== 201) {
        let message = res.text;
        try {
          message = (JSON.parse(res.text) as { message?: string }).message ?? res.text;
        } catch {
          // not JSON: show the text
        }
        throw new Error(`login refused (${res.status}): ${message}`);
      }
      const result = JSON.parse(res.text) as LoginResult;
      writeUserKubeconfig({ path: file, cluster, username: result.username, token: result.token, namespace: result.namespace });
      process.stdout.write(
        `logged in as ${result.username} (groups: ${result.groups.join(', ') || 'none'}); token valid until ${result.expirationTimestamp ?? 'revoked'}; kubeconfig ${file}\n`,
      );
    });
}
