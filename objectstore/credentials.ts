/**
 * Per-User S3 credentials: an access key id and a secret access key.
 *
 * SigV4 verification needs the secret itself (the server recomputes the HMAC), so it cannot
 * be stored hashed as tokens are. It is stored **encrypted**: the object store keeps an RSA
 * key pair in `DATA_DIR/pki/s3-credentials.key` (mode 0600, never leaves the host) and
 * publishes the public half in the ConfigMap `stratus-system/s3-credentials-key`
 * (`public.pem`). `stratus s3 credentials create` — which only has a kubeconfig — draws the
 * secret, encrypts it with that public key (RSA-OAEP, SHA-256) and stores the ciphertext in
 * the Secret `stratus-system/s3-<accesskeyid>`, owned by the User (deleting the User revokes
 * it). The secret is printed once and never stored or logged in clear; only the process
 * holding the private key can turn the Secret back into a verifier.
 */
import { constants, generateKeyPair, createPrivateKey, createPublicKey, privateDecrypt, publicEncrypt, randomBytes, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { User } from '../crds/types.js';
import { CoreResources, isAlreadyExists, isNotFound, type KubeClient, type KubeObject } from '../runtime/client.js';
import { Resources } from '../controllers/resources.js';
import { ensureNamespace } from '../legacy/namespaces.js';

export const CREDENTIALS_NAMESPACE = 'stratus-system';
export const KEY_CONFIGMAP = 's3-credentials-key';
/** Label on credential Secrets: the access key id (selects them for the endpoint's cache). */
export const ACCESS_KEY_LABEL = 's3.stratus.dev/access-key-id';
export const USER_LABEL = 's3.stratus.dev/user';

export interface SecretObject extends KubeObject {
  type?: string;
  data?: Record<string, string>;
}

interface ConfigMapObject extends KubeObject {
  data?: Record<string, string>;
}

/** The Secret name of an access key id. */
export const credentialSecretName = (accessKeyId: string): string => `s3-${accessKeyId.toLowerCase()}`;

/**
 * The key pair of `DATA_DIR/pki/s3-credentials.key`, created on first use (on libuv's thread
 * pool: a 2048-bit RSA key takes 0.1–1 s of CPU, which would stall every request meanwhile).
 */
export async function loadCredentialKey(dataDir: string): Promise<{ privateKey: KeyObject; publicPem: string }> {
  const dir = join(dataDir, 'pki');
  const file = join(dir, 's3-credentials.key');
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true });
    const privateKey = await new Promise<KeyObject>((resolve, reject) => generateKeyPair('rsa', { modulusLength: 2048 }, (err, _pub, key) => (err ? reject(err) : resolve(key))));
    writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
  }
  chmodSync(file, 0o600);
  const privateKey = createPrivateKey(readFileSync(file));
  return { privateKey, publicPem: createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString() };
}

/** Publishes (creates or corrects) the public key clients encrypt new secrets with. */
export async function publishCredentialKey(client: KubeClient, publicPem: string): Promise<void> {
  await ensureNamespace(client, CREDENTIALS_NAMESPACE);
  const cms = client.resource<ConfigMapObject>(CoreResources.configMaps);
  const current = await cms.get(CREDENTIALS_NAMESPACE, KEY_CONFIGMAP);
  if (current?.data?.['public.pem'] === publicPem) return;
  const obj: ConfigMapObject = {
    metadata: { name: KEY_CONFIGMAP, namespace: CREDENTIALS_NAMESPACE, ...(current?.metadata?.resourceVersion ? { resourceVersion: current.metadata.resourceVersion } : {}) },
    data: { 'public.pem': publicPem },
  };
  await (current ? cms.replace(obj) : cms.create(obj));
}

export function decryptSecret(privateKey: KeyObject, ciphertextBase64: string): string {
  return privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, Buffer.from(ciphertextBase64, 'base64')).toString('utf8');
}

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** `AKST` + 16 base-32 characters, the shape of an AWS access key id. */
function newAccessKeyId(): string {
  return `AKST${[...randomBytes(16)].map((b) => B32[b & 31]).join('')}`;
}

/** 40 characters of base64 (30 random bytes), the shape of an AWS secret access key. */
function newSecretAccessKey(): string {
  return randomBytes(30).toString('base64').replace(/\+/g, 'A').replace(/\//g, 'B');
}

/**
 * Creates a credential for User `user`; returns the id and the secret (to print once).
 * Throws naming what is missing: the User, or the key the object store publishes.
 */
export async function createS3Credential(client: KubeClient, user: string): Promise<{ accessKeyId: string; secretAccessKey: string }> {
  const owner = await client.resource<User>(Resources.users).get(undefined, user);
  if (!owner) throw new Error(`user ${JSON.stringify(user)} does not exist (create it with: stratus user create ${user})`);
  const cm = await client
    .resource<ConfigMapObject>(CoreResources.configMaps)
    .get(CREDENTIALS_NAMESPACE, KEY_CONFIGMAP)
    .catch((err: unknown) => {
      if (isNotFound(err)) return undefined;
      throw err;
    });
  const pem = cm?.data?.['public.pem'];
  if (!pem) throw new Error(`the object store has not published its key (ConfigMap ${CREDENTIALS_NAMESPACE}/${KEY_CONFIGMAP}): run stratus serve with --s3-listen`);
  const publicKey = createPublicKey(pem);
  const secrets = client.resource<SecretObject>(CoreResources.secrets);
  for (;;) {
    const accessKeyId = newAccessKeyId();
    const secretAccessKey = newSecretAccessKey();
    const ciphertext = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, Buffer.from(secretAccessKey, 'utf8'));
    try {
      await secrets.create({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: {
          name: credentialSecretName(accessKeyId),
          namespace: CREDENTIALS_NAMESPACE,
          labels: { [ACCESS_KEY_LABEL]: accessKeyId, [USER_LABEL]: user },
          ownerReferences: [{ apiVersion: 'iam.stratus.dev/v1alpha1', kind: 'User', name: user, uid: owner.metadata!.uid! }],
        },
        type: 'Opaque',
        data: {
          accessKeyId: Buffer.from(accessKeyId).toString('base64'),
          user: Buffer.from(user).toString('base64'),
          // RSA-OAEP(SHA-256) ciphertext of the secret access key, base64 (twice: Secret data is base64)
          secretAccessKeyEncrypted: Buffer.from(ciphertext.toString('base64')).toString('base64'),
        },
      });
      return { accessKeyId, secretAccessKey };
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
  }
}

/** What a credential Secret says: whose it is and the encrypted secret. */
export function credentialOf(secret: SecretObject): { accessKeyId: string; user: string; encrypted: string } | undefined {
  const d = secret.data ?? {};
  const text = (k: string): string => (d[k] ? Buffer.from(d[k], 'base64').toString('utf8') : '');
  const accessKeyId = text('accessKeyId');
  const user = text('user');
  const encrypted = text('secretAccessKeyEncrypted');
  if (!accessKeyId || !user || !encrypted) return undefined;
  return { accessKeyId, user, encrypted };
}
