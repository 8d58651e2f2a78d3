/**
 * Kubeconfigs the server hands out: its URL, the CA that signed its serving certificate, and
 * a client certificate (or a bearer token) — what kubectl, @kubernetes/client-node and the
 * Python client read as is. Written `0600` through a rename, so a reader never sees half.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { stringify as stringifyYaml } from 'yaml';
import type { KeyPair } from './pki.js';

export type KubeconfigCredential = { certificate: KeyPair } | { token: string };

const b64 = (s: string): string => Buffer.from(s).toString('base64');

export function kubeconfigText(url: string, caCert: string, userName: string, credential: KubeconfigCredential, namespace = 'default'): string {
  const user = 'certificate' in credential
    ? { 'client-certificate-data': b64(credential.certificate.cert), 'client-key-data': b64(credential.certificate.key) }
    : { token: credential.token };
  return stringifyYaml({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'stratus', cluster: { server: url, 'certificate-authority-data': b64(caCert) } }],
    users: [{ name: userName, user }],
    contexts: [{ name: 'stratus', context: { cluster: 'stratus', user: userName, namespace } }],
    'current-context': 'stratus',
    preferences: {},
  });
}

export function writeKubeconfig(path: string, text: string): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  renameSync(tmp, path);
}
