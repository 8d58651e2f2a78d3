/**
 * Cloud Brain API tokens: `ID-SECRET`, a decimal ID and 32 hex characters of secret. Only a
 * random salt and `scrypt(SECRET, salt)` are stored, in an `AccessToken` (iam.stratus.dev);
 * the secret is printed once by `stratus token create` and never kept.
 *
 * Verification looks the ID up among all AccessTokens (every namespace: the token's namespace
 * is where the caller's legacy objects live), recomputes scrypt with the stored salt and
 * parameters and compares in constant time. Every failure — malformed header, unknown ID,
 * wrong secret, revoked, expired — is the same `undefined`, and an unknown ID still costs one
 * scrypt, so neither the answer nor its timing says which.
 */
import { randomBytes } from 'node:crypto';
import type { AccessToken } from '../crds/types.js';
import { isAlreadyExists, isNotFound, type KubeClient, type ResourceClient } from '../runtime/client.js';
import { Resources } from '../controllers/resources.js';
import { DEFAULT_SCRYPT, scryptHash, TokenVerifier } from '../apiserver/auth/access-tokens.js';

export { DEFAULT_SCRYPT, decodeStored, parseToken, scryptHash, scryptParamsOf, type ScryptParams } from '../apiserver/auth/access-tokens.js';

/** Label carrying the token ID, for `kubectl get atok -l iam.stratus.dev/token-id=7`. */
export const TOKEN_ID_LABEL = 'iam.stratus.dev/token-id';

const HEADER = /^token\s+(\S+)\s*$/i;

/** The token of an `Authorization: token ID-SECRET` header, or `undefined`. */
export function tokenFromHeader(header: string | undefined): string | undefined {
  if (!header) return undefined;
  return HEADER.exec(header)?.[1];
}

export interface CreatedToken {
  /** `ID-SECRET`: show it once. */
  token: string;
  object: AccessToken;
}

/**
 * Creates an AccessToken in `namespace` (acting as `user` when given) with the next free numeric ID (one more than the
 * largest in any namespace) and returns the token. The object is named `token-<ID>`; a
 * concurrent create of the same ID in the same namespace moves on to the next ID.
 */
export interface AccessTokenOptions {
  /** The User the token acts as (`spec.user`); absent: the namespace's default identity. */
  user?: string;
  /** When the token stops working (`spec.expiresAt`). */
  expiresAt?: Date;
  /** Extra labels (e.g. who issued it). */
  labels?: Record<string, string>;
}

export async function createAccessToken(client: KubeClient, namespace: string, description: string, opts: AccessTokenOptions = {}): Promise<CreatedToken> {
  const tokens = client.resource<AccessToken>(Resources.accessTokens);
  const existing = await tokens.list();
  let next = existing.reduce((max, t) => {
    const n = /^[0-9]{1,15}$/.test(t.spec?.tokenID ?? '') ? Number(t.spec.tokenID) : 0;
    return n > max ? n : max;
  }, 0);
  for (let attempt = 0; attempt < 20; attempt++) {
    next += 1;
    const id = String(next);
    const secret = randomBytes(16).toString('hex');
    const salt = randomBytes(16);
    const hash = await scryptHash(secret, salt, DEFAULT_SCRYPT);
    try {
      const object = await tokens.create({
        apiVersion: 'iam.stratus.dev/v1alpha1',
        kind: 'AccessToken',
        metadata: { name: `token-${id}`, namespace, labels: { ...(opts.labels ?? {}), [TOKEN_ID_LABEL]: id } },
        spec: {
          tokenID: id,
          description,
          ...(opts.user ? { user: opts.user } : {}),
          ...(opts.expiresAt ? { expiresAt: opts.expiresAt.toISOString().replace(/\.\d{3}Z$/, 'Z') } : {}),
          salt: salt.toString('base64'),
          hash: hash.toString('base64'),
          scrypt: { ...DEFAULT_SCRYPT },
        },
      });
      return { token: `${id}-${secret}`, object };
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
  }
  throw new Error('could not find a free token ID after 20 attempts');
}

/** Whom a verified token speaks for. */
export interface TokenIdentity {
  namespace: string;
  tokenID: string;
  /** `spec.user`, when the token acts as a User. */
  user?: string;
}

/**
 * Verifies `Authorization: token ID-SECRET` against the AccessTokens the client can read,
 * with the API server's verifier (apiserver/auth/access-tokens.ts: one implementation).
 * Rejects only when the Kubernetes API cannot answer (the caller maps that to 503, never
 * to 401: a control-plane outage must not look like a bad token).
 */
export class TokenAuthenticator {
  private readonly tokens: ResourceClient<AccessToken>;
  private readonly verifier: TokenVerifier;

  constructor(client: KubeClient) {
    this.tokens = client.resource<AccessToken>(Resources.accessTokens);
    this.verifier = new TokenVerifier({
      withId: async (id) => {
        // Every namespace: the token's namespace is where the caller's legacy objects live.
        const all = await this.tokens.list().catch((err: unknown) => {
          // A cluster without the CRD has no tokens at all.
          if (isNotFound(err)) return [];
          throw err;
        });
        return all.filter((t) => t.spec?.tokenID === id);
      },
    });
  }

  async authenticate(authorization: string | undefined, now = new Date()): Promise<TokenIdentity | undefined> {
    const v = await this.verifier.verify(tokenFromHeader(authorization), now);
    return v ? { namespace: v.namespace, tokenID: v.tokenID, ...(v.user ? { user: v.user } : {}) } : undefined;
  }
}
