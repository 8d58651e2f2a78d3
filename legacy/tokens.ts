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
import { createHash, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type { AccessToken } from '../crds/types.js';
import { isAlreadyExists, isNotFound, type KubeClient, type ResourceClient } from '../runtime/client.js';
import { Resources } from '../controllers/resources.js';

export interface ScryptParams {
  cost: number;
  blockSize: number;
  parallelization: number;
  keyLength: number;
}

/** The CRD's documented defaults (what an absent `spec.scrypt` means). */
export const DEFAULT_SCRYPT: ScryptParams = { cost: 16384, blockSize: 8, parallelization: 1, keyLength: 64 };

/** Label carrying the token ID, for `kubectl get atok -l iam.stratus.dev/token-id=7`. */
export const TOKEN_ID_LABEL = 'iam.stratus.dev/token-id';

const TOKEN = /^([0-9]{1,20})-([0-9a-f]{32})$/;
const HEADER = /^token\s+(\S+)\s*$/i;
/** scrypt refuses parameters needing more memory than this; such a token never verifies. */
const MAX_SCRYPT_MEMORY = 256 * 1024 * 1024;

export function scryptHash(secret: string, salt: Buffer, p: ScryptParams): Promise<Buffer> {
  const opts: ScryptOptions = { N: p.cost, r: p.blockSize, p: p.parallelization, maxmem: MAX_SCRYPT_MEMORY };
  return new Promise((resolve, reject) => {
    scrypt(secret, salt, p.keyLength, opts, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** Splits `ID-SECRET`; `undefined` when it is not that shape. */
export function parseToken(token: string): { id: string; secret: string } | undefined {
  const m = TOKEN.exec(token);
  return m ? { id: m[1]!, secret: m[2]! } : undefined;
}

/** The token of an `Authorization: token ID-SECRET` header, or `undefined`. */
export function tokenFromHeader(header: string | undefined): string | undefined {
  if (!header) return undefined;
  return HEADER.exec(header)?.[1];
}

export function scryptParamsOf(spec: AccessToken['spec']): ScryptParams {
  return { ...DEFAULT_SCRYPT, ...Object.fromEntries(Object.entries(spec.scrypt ?? {}).filter(([, v]) => typeof v === 'number')) };
}

/** Decodes stored salt and hash. Both use one encoding: hex when the hash is hex of keyLength bytes, else base64. */
export function decodeStored(spec: AccessToken['spec'], keyLength: number): { salt: Buffer; hash: Buffer } {
  const hex = /^(?:[0-9a-fA-F]{2})+$/;
  if (hex.test(spec.hash) && spec.hash.length === keyLength * 2 && hex.test(spec.salt)) {
    return { salt: Buffer.from(spec.salt, 'hex'), hash: Buffer.from(spec.hash, 'hex') };
  }
  return { salt: Buffer.from(spec.salt, 'base64'), hash: Buffer.from(spec.hash, 'base64') };
}

export interface CreatedToken {
  /** `ID-SECRET`: show it once. */
  token: string;
  object: AccessToken;
}

/**
 * Creates an AccessToken in `namespace` with the next free numeric ID (one more than the
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
 * Verifies `Authorization: token ID-SECRET` against the AccessTokens the client can read.
 * Rejects only when the Kubernetes API cannot answer (the caller maps that to 503, never
 * to 401: a control-plane outage must not look like a bad token).
 */
export class TokenAuthenticator {
  private readonly tokens: ResourceClient<AccessToken>;
  /** Burns one scrypt for unknown IDs, so they cost what a wrong secret costs. */
  private readonly dummySalt = randomBytes(16);
  /**
   * SHA-256 of tokens that verified → the AccessToken version they verified against. scrypt
   * costs ~0.1 s of CPU by design; a token is only re-derived when its object changed.
   * Revocation still takes effect at once: the object is read on every request.
   */
  private readonly verified = new Map<string, string>();

  constructor(client: KubeClient) {
    this.tokens = client.resource<AccessToken>(Resources.accessTokens);
  }

  async authenticate(authorization: string | undefined, now = new Date()): Promise<TokenIdentity | undefined> {
    const parsed = parseToken(tokenFromHeader(authorization) ?? '');
    if (!parsed) return undefined;
    const all = await this.tokens.list().catch((err: unknown) => {
      // A cluster without the CRD has no tokens at all.
      if (isNotFound(err)) return [];
      throw err;
    });
    const candidates = all.filter((t) => t.spec?.tokenID === parsed.id && t.metadata?.namespace);
    if (candidates.length === 0) {
      await scryptHash(parsed.secret, this.dummySalt, DEFAULT_SCRYPT);
      return undefined;
    }
    const digest = createHash('sha256').update(`${parsed.id}-${parsed.secret}`).digest('base64');
    const version = (t: AccessToken): string => `${t.metadata?.uid}/${t.metadata?.resourceVersion}`;
    let found = candidates.find((t) => this.verified.get(digest) === version(t));
    if (!found) {
      // Every candidate is checked (IDs are unique unless created by hand), always to the end.
      for (const t of candidates) {
        if (await matches(t, parsed.secret)) found ??= t;
      }
      if (!found) return undefined;
      if (this.verified.size >= 1024) this.verified.delete(this.verified.keys().next().value!);
      this.verified.set(digest, version(found));
    }
    if (found.spec.revoked === true) return undefined;
    if (found.spec.expiresAt) {
      const exp = Date.parse(found.spec.expiresAt);
      if (!Number.isFinite(exp) || exp <= now.getTime()) return undefined;
    }
    return { namespace: found.metadata!.namespace!, tokenID: parsed.id, ...(found.spec.user ? { user: found.spec.user } : {}) };
  }
}

async function matches(t: AccessToken, secret: string): Promise<boolean> {
  const params = scryptParamsOf(t.spec);
  const { salt, hash } = decodeStored(t.spec, params.keyLength);
  if (hash.length !== params.keyLength || salt.length === 0) return false;
  let computed: Buffer;
  try {
    computed = await scryptHash(secret, salt, params);
  } catch {
    return false; // parameters scrypt refuses (memory bound): never valid
  }
  return timingSafeEqual(computed, hash);
}
