/**
 * The fake's OAuth 2.0 side, checked as Google checks it: a service account with an RSA key
 * (the key file the fake hands out, whose `token_uri` is the fake's `/token`), the JWT-bearer
 * grant (RFC 7523: an RS256 JWT signed by that key, `iss` the account's email, `aud` Google's
 * token URL, a Compute scope, at most an hour long, not expired), and bearer access tokens
 * that expire. Every Compute request must carry one.
 */
import { createVerify, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { JWT, OAuth2Client } from 'google-auth-library';
import { ApiError } from './state.js';

/** The audience Google's token endpoint requires in the assertion. */
export const GOOGLE_TOKEN_AUDIENCE = 'https://oauth2.googleapis.com/token';
const GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
// Compute's scopes; Monitoring's read scope is accepted beside one of them (the provider asks for both).
const COMPUTE_SCOPES = ['https://www.googleapis.com/auth/compute', 'https://www.googleapis.com/auth/cloud-platform'];
const SKEW_S = 300;

/** An OAuth error body as Google's token endpoint answers (`{error, error_description}`). */
export class OAuthError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    description: string,
  ) {
    super(description);
  }
  body(): object {
    return { error: this.error, error_description: this.message };
  }
}

export class FakeOAuth {
  readonly email: string;
  private readonly keyId = randomBytes(20).toString('hex');
  private readonly publicKey: KeyObject;
  private readonly privatePem: string;
  private readonly tokens = new Map<string, { email: string; expiresAt: number }>();
  /** Access tokens minted so far (for tests). */
  minted = 0;
  /** Lifetime of minted tokens, seconds (Google: 3600). */
  tokenLifetimeS = 3600;

  constructor(
    private readonly project: string,
    private readonly tokenUri: () => string,
  ) {
    this.email = `stratus-test@${project}.iam.gserviceaccount.com`;
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.publicKey = publicKey;
    this.privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  }

  /** The service-account key file (JSON), as the Cloud console downloads it. */
  serviceAccountKey(): string {
    return JSON.stringify({
      type: 'service_account',
      project_id: this.project,
      private_key_id: this.keyId,
      private_key: this.privatePem,
      client_email: this.email,
      client_id: '100000000000000000001',
      auth_uri: 'https://accounts.google.com/o/oauth2/auth',
      token_uri: this.tokenUri(),
      auth_provider_x509_cert_url: 'https://www.googleapis.com/oauth2/v1/certs',
      universe_domain: 'googleapis.com',
    });
  }

  /** Forgets every access token: the next request with one gets 401, as after a revocation. */
  revokeAll(): void {
    this.tokens.clear();
  }

  /** `POST /token` with `grant_type` and `assertion` (form-encoded). */
  grant(form: string): object {
    const params = new URLSearchParams(form);
    if (params.get('grant_type') !== GRANT_TYPE) throw new OAuthError(400, 'unsupported_grant_type', `Invalid grant_type: ${params.get('grant_type') ?? ''}`);
    const assertion = params.get('assertion') ?? '';
    const [h, p, sig] = assertion.split('.');
    if (!h || !p || sig === undefined) throw new OAuthError(400, 'invalid_request', 'Invalid JWT: not a JWS compact serialization.');
    let header: { alg?: string; kid?: string };
    let claims: { iss?: string; aud?: string; scope?: string; iat?: number; exp?: number };
    try {
      header = JSON.parse(Buffer.from(h, 'base64url').toString()) as typeof header;
      claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as typeof claims;
    } catch {
      throw new OAuthError(400, 'invalid_grant', 'Invalid JWT: the header or claim set is not JSON.');
    }
    if (header.alg !== 'RS256') throw new OAuthError(400, 'invalid_grant', `Invalid JWT: alg ${String(header.alg)} (RS256 expected).`);
    const verify = createVerify('RSA-SHA256');
    verify.update(`${h}.${p}`);
    if (!verify.verify(this.publicKey, Buffer.from(sig, 'base64url'))) throw new OAuthError(400, 'invalid_grant', 'Invalid JWT Signature.');
    if (claims.iss !== this.email) throw new OAuthError(400, 'invalid_grant', `Invalid JWT: no service account ${String(claims.iss)}.`);
    if (claims.aud !== GOOGLE_TOKEN_AUDIENCE) throw new OAuthError(400, 'invalid_grant', `Invalid JWT: aud must be ${GOOGLE_TOKEN_AUDIENCE}.`);
    const scopes = (claims.scope ?? '').split(' ');
    if (!scopes.some((s) => COMPUTE_SCOPES.includes(s))) throw new OAuthError(400, 'invalid_scope', `Invalid OAuth scope or ID token audience provided (${claims.scope ?? 'none'}).`);
    const now = Math.floor(Date.now() / 1000);
    if (typeof claims.iat !== 'number' || typeof claims.exp !== 'number') throw new OAuthError(400, 'invalid_grant', 'Invalid JWT: iat and exp are required.');
    if (claims.iat > now + SKEW_S || claims.exp <= now - SKEW_S || claims.exp - claims.iat > 3600) {
      throw new OAuthError(400, 'invalid_grant', 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.');
    }
    const token = `ya29.fake-${randomBytes(24).toString('base64url')}`;
    this.tokens.set(token, { email: this.email, expiresAt: Date.now() + this.tokenLifetimeS * 1000 });
    this.minted++;
    return { access_token: token, expires_in: this.tokenLifetimeS, token_type: 'Bearer' };
  }

  /** Throws the Compute API's 401 unless `authorization` is a live bearer token. */
  authenticate(authorization: string | undefined): void {
    const m = /^Bearer (\S+)$/.exec(authorization ?? '');
    if (!m?.[1]) {
      throw new ApiError(
        401,
        'required',
        'Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.',
      );
    }
    const t = this.tokens.get(m[1]);
    if (!t || t.expiresAt <= Date.now()) {
      throw new ApiError(
        401,
        'authError',
        'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.',
      );
    }
  }

  /** Mints a token directly (for a test that builds a raw client without a key). */
  issueToken(): string {
    const token = `ya29.fake-${randomBytes(24).toString('base64url')}`;
    this.tokens.set(token, { email: this.email, expiresAt: Date.now() + this.tokenLifetimeS * 1000 });
    this.minted++;
    return token;
  }
}

/**
 * An access token for a key the fake handed out, obtained as the provider obtains one: the
 * JWT-bearer grant signed by google-auth-library, sent to the key's `token_uri`.
 */
export async function fetchAccessToken(keyJson: string): Promise<string> {
  const key = JSON.parse(keyJson) as { client_email: string; private_key: string; token_uri: string };
  const client = new JWT({ email: key.client_email, key: key.private_key, scopes: ['https://www.googleapis.com/auth/compute'] });
  client.transporter.interceptors.request.add({
    resolved: async (config) => {
      if (String(config.url) === GOOGLE_TOKEN_AUDIENCE) config.url = new URL(key.token_uri);
      return config;
    },
  });
  const { token } = await client.getAccessToken();
  if (!token) throw new Error('the fake minted no token');
  return token;
}

/** Credentials for a raw client: an access token the fake minted directly (no key involved). */
export function tokenClient(oauth: FakeOAuth): OAuth2Client {
  const client = new OAuth2Client();
  client.setCredentials({ access_token: oauth.issueToken(), expiry_date: Date.now() + 3_600_000 });
  return client;
}
