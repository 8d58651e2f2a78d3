/**
 * AccessToken verification — the one implementation behind `Authorization: Bearer ID-SECRET`
 * on the Kubernetes API and `Authorization: token ID-SECRET` on the legacy APIs. A token is
 * `ID-SECRET`: a decimal ID and 32 hex characters of secret. Only a random salt and
 * `scrypt(SECRET, salt)` are stored, in an `AccessToken` (iam.stratus.dev).
 *
 * Verification finds the AccessTokens with that ID (through a `TokenSource`: the API server's
 * in-memory index, or a Kubernetes client), recomputes scrypt with the stored salt and
 * parameters and compares in constant time. Every failure — malformed, unknown ID, wrong
 * secret, revoked, expired — is the same `undefined`, and every failure costs at least one
 * scrypt, so neither the answer nor its timing says which.
 *
 * Verified tokens are cached (bounded, by SHA-256 of the token) against the AccessToken's
 * uid and generation: revoking or deleting the token, or changing its spec in any way, makes
 * the next request verify from scratch, while status writes (`lastUsedTime`) do not.
 */
import { createHash, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type { AccessToken } from '../../crds/types.js';

export interface ScryptParams {
  cost: number;
  blockSize: number;
  parallelization: number;
  keyLength: number;
}

/** The CRD's documented defaults (what an absent `spec.scrypt` means). */
export const DEFAULT_SCRYPT: ScryptParams = { cost: 16384, blockSize: 8, parallelization: 1, keyLength: 64 };

const TOKEN = /^([0-9]{1,20})-([0-9a-f]{32})$/;
/** scrypt refuses parameters needing more memory than this; such a token never verifies. */
const MAX_SCRYPT_MEMORY = 256 * 1024 * 1024;
const CACHE_LIMIT = 1024;

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

/** Where verification finds the AccessTokens carrying an ID (in any namespace). */
export interface TokenSource {
  /** Rejects only when the source cannot answer (an outage, never a bad token). */
  withId(id: string): Promise<AccessToken[]>;
}

/** The AccessToken a token verified against. */
export interface VerifiedToken {
  token: AccessToken;
  namespace: string;
  tokenID: string;
  /** `spec.user`, when the token acts as a User. */
  user?: string;
}

export class TokenVerifier {
  private readonly dummySalt = randomBytes(16);
  /** SHA-256 of tokens that verified → `uid/generation` of the AccessToken they verified against. */
  private readonly verified = new Map<string, string>();

  constructor(private readonly source: TokenSource) {}

  async verify(token: string | undefined, now = new Date()): Promise<VerifiedToken | undefined> {
    let hashed = false;
    const fail = async (): Promise<undefined> => {
      if (!hashed) await scryptHash('0'.repeat(32), this.dummySalt, DEFAULT_SCRYPT);
      return undefined;
    };
    const parsed = parseToken(token ?? '');
    if (!parsed) return fail();
    const candidates = (await this.source.withId(parsed.id)).filter((t) => t.spec?.tokenID === parsed.id && t.metadata?.namespace);
    if (candidates.length === 0) return fail();
    const digest = createHash('sha256').update(`${parsed.id}-${parsed.secret}`).digest('base64');
    const version = (t: AccessToken): string => `${t.metadata?.uid}/${t.metadata?.generation ?? t.metadata?.resourceVersion}`;
    let found = candidates.find((t) => this.verified.get(digest) === version(t));
    if (!found) {
      // Every candidate is checked (IDs are unique unless created by hand), always to the end.
      for (const t of candidates) {
        hashed = true;
        if (await matches(t, parsed.secret)) found ??= t;
      }
      if (!found) return fail();
      if (this.verified.size >= CACHE_LIMIT) this.verified.delete(this.verified.keys().next().value!);
      this.verified.set(digest, version(found));
    }
    if (found.spec.revoked === true) return fail();
    if (found.spec.expiresAt) {
      const exp = Date.parse(found.spec.expiresAt);
      if (!Number.isFinite(exp) || exp <= now.getTime()) return fail();
    }
    return { token: found, namespace: found.metadata!.namespace!, tokenID: parsed.id, ...(found.spec.user ? { user: found.spec.user } : {}) };
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
