/**
 * Brume users and request signatures.
 *
 * A Brume request carries `x-username: NAME` and `x-signature: HEX`, where
 *
 *     HEX = lowercase or uppercase hex of HMAC-SHA256(key = the user's secret as its UTF-8
 *           bytes, message = the raw request body bytes exactly as sent)
 *
 * e.g. `printf '%s' "$BODY" | openssl dgst -sha256 -hmac "$SECRET" -hex`. The secret is
 * printed once by `stratus user create NAME`. An HMAC check needs the secret itself, so it
 * lives in a Secret (`user-NAME-signing`, key `secret`) that the `User`'s `spec.secretRef`
 * names and that the User owns (deleting the User deletes it); the User object itself holds
 * no secret.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { User } from '../crds/types.js';
import { CoreResources, isAlreadyExists, isNotFound, type KubeClient, type KubeObject } from '../runtime/client.js';
import { Resources } from '../controllers/resources.js';
import { isDnsLabel } from './names.js';

interface SecretObject extends KubeObject {
  type?: string;
  data?: Record<string, string>;
}

export const SIGNING_KEY = 'secret';

export function signingSecretName(user: string): string {
  return `user-${user}-signing`;
}

/** Hex HMAC-SHA256 of `body` with `secret`: what a Brume client puts in `x-signature`. */
export function signBody(secret: string, body: Buffer | string): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

export class UserExistsError extends Error {
  override readonly name = 'UserExistsError';
}

/** Creates User `name` in `namespace` with a fresh signing secret, and returns the secret. */
export async function createUser(client: KubeClient, namespace: string, name: string): Promise<{ secret: string; user: User }> {
  if (!isDnsLabel(name)) throw new Error(`user name ${JSON.stringify(name)} must be a DNS-1123 label (a-z, 0-9, '-', at most 63)`);
  const users = client.resource<User>(Resources.users);
  const secrets = client.resource<SecretObject>(CoreResources.secrets);
  const secretName = signingSecretName(name);
  let user: User;
  try {
    user = await users.create({
      apiVersion: 'iam.stratus.dev/v1alpha1',
      kind: 'User',
      metadata: { name, namespace },
      spec: { secretRef: { name: secretName, key: SIGNING_KEY } },
    });
  } catch (err) {
    if (isAlreadyExists(err)) throw new UserExistsError(`user ${name} already exists in namespace ${namespace}`);
    throw err;
  }
  const secret = randomBytes(32).toString('hex');
  const obj: SecretObject = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: secretName,
      namespace,
      ownerReferences: [{ apiVersion: 'iam.stratus.dev/v1alpha1', kind: 'User', name, uid: user.metadata!.uid!, blockOwnerDeletion: true }],
    },
    type: 'Opaque',
    data: { [SIGNING_KEY]: Buffer.from(secret).toString('base64') },
  };
  try {
    await secrets.create(obj);
  } catch (err) {
    if (!isAlreadyExists(err)) {
      await users.delete(namespace, name).catch(() => undefined);
      throw err;
    }
    // A leftover of an earlier user of this name: take it over.
    await secrets.replace(obj);
  }
  return { secret, user };
}

/** Verifies Brume's `x-username` / `x-signature`. */
export class SignatureVerifier {
  private readonly dummyKey = randomBytes(32).toString('hex');

  constructor(private readonly client: KubeClient) {}

  /**
   * The namespace and user when `signature` is the HMAC of `body` under the user's secret;
   * `undefined` for any failure (unknown or disabled user, no secret, bad signature).
   * Rejects only when the Kubernetes API cannot answer.
   */
  async verify(username: string | undefined, signature: string | undefined, body: Buffer): Promise<{ namespace: string; user: string } | undefined> {
    const sig = /^[0-9a-fA-F]{64}$/.test(signature ?? '') ? Buffer.from(signature!, 'hex') : undefined;
    if (!username || !isDnsLabel(username) || !sig) return undefined;
    const users = await this.client
      .resource<User>(Resources.users)
      .list(undefined, { fieldSelector: `metadata.name=${username}` })
      .catch((err: unknown) => {
        if (isNotFound(err)) return [];
        throw err;
      });
    let ok: { namespace: string; user: string } | undefined;
    if (users.length === 0) timingSafeEqual(Buffer.from(signBody(this.dummyKey, body), 'hex'), sig);
    for (const u of users) {
      const ns = u.metadata?.namespace;
      if (!ns || u.metadata?.name !== username || !u.spec?.secretRef?.name) continue;
      const secret = await this.secretOf(ns, u.spec.secretRef.name, u.spec.secretRef.key ?? SIGNING_KEY);
      if (secret === undefined) continue;
      const expected = Buffer.from(signBody(secret, body), 'hex');
      if (timingSafeEqual(expected, sig) && u.spec.disabled !== true) ok ??= { namespace: ns, user: username };
    }
    return ok;
  }

  private async secretOf(namespace: string, name: string, key: string): Promise<string | undefined> {
    const s = await this.client.resource<SecretObject>(CoreResources.secrets).get(namespace, name);
    const v = s?.data?.[key];
    return v === undefined ? undefined : Buffer.from(v, 'base64').toString('utf8');
  }
}
