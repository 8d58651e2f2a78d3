/**
 * `POST /login` on the API server's address: exchanges an LDAP user name and password for a
 * short-lived AccessToken (what `stratus login` calls). The one endpoint besides the probes
 * that needs no credentials — so it is rate-limited, and the password is never logged or
 * stored.
 *
 * Request: `{"username": "U", "password": "P"}` (JSON, at most 4 KiB). Answers, all JSON:
 *   201 `{"apiVersion": "iam.stratus.dev/v1alpha1", "kind": "LoginResult", "username",
 *        "groups", "namespace", "token": "ID-SECRET", "expirationTimestamp"}`
 *   400 a malformed body; 401 wrong user name or password, or a disabled User (one answer
 *   for all); 405 not a POST; 429 too many attempts (`Retry-After`); 503 LDAP unreachable.
 * Errors are Kubernetes `Status` objects.
 *
 * On success, as the same step: the cluster-scoped User exists (created in
 * `userNamespace` on first login, labelled `iam.stratus.dev/source=ldap`), the user is a
 * member of a Group per LDAP group (its `cn` lower-cased, when it is a DNS label; Groups
 * created here are labelled `iam.stratus.dev/source=ldap`) and no longer a member of
 * LDAP-sourced Groups LDAP does not list, `status.lastLoginTime` is now, and a new
 * AccessToken (in the user's namespace, `spec.user` = the user, `spec.expiresAt` = now + TTL)
 * is returned once.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Group, User } from '../crds/types.js';
import { isAlreadyExists, type KubeClient } from '../runtime/client.js';
import { log } from '../runtime/log.js';
import { Resources } from '../controllers/resources.js';
import { createAccessToken } from './tokens.js';
import { addGroupMember, removeGroupMember } from './users.js';
import { ensureNamespace, ensureNamespaceRole } from './namespaces.js';
import { isDnsLabel } from './names.js';
import { LdapAuthenticationError, type LdapDirectory } from './ldap.js';
import { readBody, LegacyError } from './http.js';

export const LOGIN_PATH = '/login';
export const SOURCE_LABEL = 'iam.stratus.dev/source';
const MAX_LOGIN_BODY = 4096;

export interface LoginOptions {
  /** Acts for the endpoint (creates Users, Groups, AccessTokens). */
  client: KubeClient;
  directory: LdapDirectory;
  /** Lifetime of a token (default 8 h). */
  tokenTtlMs?: number;
  /** `spec.namespace` of Users created at first login (default `default`). */
  userNamespace?: string;
  /** Attempts per client address per minute (default 10). */
  attemptsPerMinute?: number;
  now?: () => number;
}

/**
 * A fixed-window counter per key: at most `limit` attempts per `windowMs`. Bounded: at most
 * `maxKeys` keys are tracked, the oldest windows dropped first.
 */
export class AttemptLimiter {
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(
    private readonly limit: number,
    private readonly windowMs = 60_000,
    private readonly maxKeys = 10_000,
  ) {}

  /** 0 when the attempt may go ahead (and is counted), else the seconds until it may. */
  take(key: string, now: number): number {
    let w = this.windows.get(key);
    if (!w || now - w.start >= this.windowMs) {
      this.windows.delete(key);
      if (this.windows.size >= this.maxKeys) this.windows.delete(this.windows.keys().next().value!);
      w = { start: now, count: 0 };
      this.windows.set(key, w);
    }
    if (w.count >= this.limit) return Math.max(1, Math.ceil((w.start + this.windowMs - now) / 1000));
    w.count++;
    return 0;
  }
}

function status(res: ServerResponse, code: number, reason: string, message: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

function parseCredentials(body: Buffer): { username: string; password: string } {
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    throw new LegacyError(400, 'the body must be JSON: {"username": ..., "password": ...}');
  }
  const o = (typeof v === 'object' && v !== null && !Array.isArray(v) ? v : {}) as Record<string, unknown>;
  if (typeof o.username !== 'string' || o.username === '') throw new LegacyError(400, 'username is required (a string)');
  if (typeof o.password !== 'string' || o.password === '') throw new LegacyError(400, 'password is required (a string)');
  if (!isDnsLabel(o.username)) throw new LegacyError(400, 'username must be a DNS-1123 label (a-z, 0-9, \'-\', at most 63)');
  return { username: o.username, password: o.password };
}

/** Group names of LDAP group `cn`s: lower-cased, DNS labels only. */
export function groupNamesOf(cns: readonly string[]): string[] {
  return [...new Set(cns.map((c) => c.toLowerCase()).filter((c) => isDnsLabel(c)))].sort();
}

export function loginHandler(opts: LoginOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const logger = log.child({ component: 'login' });
  const limiter = new AttemptLimiter(opts.attemptsPerMinute ?? 10);
  const now = opts.now ?? Date.now;
  const users = opts.client.resource<User>(Resources.users);
  const groups = opts.client.resource<Group>(Resources.groups);

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'POST') {
      req.resume();
      status(res, 405, 'MethodNotAllowed', 'POST {"username", "password"} to log in', { allow: 'POST' });
      return;
    }
    const wait = limiter.take(req.socket.remoteAddress ?? '', now());
    if (wait > 0) {
      req.resume();
      status(res, 429, 'TooManyRequests', `too many login attempts, try again in ${wait} s`, { 'retry-after': String(wait) });
      return;
    }
    let creds: { username: string; password: string };
    try {
      creds = parseCredentials(await readBody(req, MAX_LOGIN_BODY));
    } catch (err) {
      const e = err instanceof LegacyError ? err : new LegacyError(400, 'request body incomplete');
      status(res, e.status, e.status === 413 ? 'RequestEntityTooLarge' : 'BadRequest', e.message);
      return;
    }
    const { username } = creds;
    let identity;
    try {
      identity = await opts.directory.authenticate(username, creds.password);
    } catch (err) {
      if (err instanceof LdapAuthenticationError) {
        logger.info({ username, outcome: 'refused' }, 'login');
        status(res, 401, 'Unauthorized', 'invalid user name or password');
        return;
      }
      logger.warn({ username, err: err instanceof Error ? err.message : String(err) }, 'LDAP directory failed');
      status(res, 503, 'ServiceUnavailable', 'the LDAP directory cannot be reached');
      return;
    }
    let user = await users.get(undefined, username);
    if (!user) {
      const namespace = opts.userNamespace ?? 'default';
      await ensureNamespace(opts.client, namespace);
      try {
        user = await users.create({
          apiVersion: 'iam.stratus.dev/v1alpha1',
          kind: 'User',
          metadata: { name: username, labels: { [SOURCE_LABEL]: 'ldap' } },
          spec: { namespace },
        });
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
        user = (await users.get(undefined, username))!;
      }
    }
    if (user.spec.disabled === true) {
      logger.info({ username, outcome: 'disabled' }, 'login');
      status(res, 401, 'Unauthorized', 'invalid user name or password');
      return;
    }
    const wanted = groupNamesOf(identity.groups);
    for (const g of wanted) await addGroupMember(opts.client, g, username, { [SOURCE_LABEL]: 'ldap' });
    const ldapGroups = await groups.list(undefined, { labelSelector: `${SOURCE_LABEL}=ldap` });
    for (const g of ldapGroups) {
      const name = g.metadata?.name ?? '';
      if (!wanted.includes(name) && (g.spec?.members ?? []).includes(username)) await removeGroupMember(opts.client, name, username);
    }
    const namespace = user.spec.namespace ?? 'default';
    // A user works in its own namespace: what stratus:tenant allows there is its to do.
    await ensureNamespaceRole(opts.client, namespace, username, 'stratus:tenant');
    const expires = new Date(now() + (opts.tokenTtlMs ?? 8 * 3600_000));
    const created = await createAccessToken(opts.client, namespace, `login of ${username}`, {
      user: username,
      expiresAt: expires,
      labels: { [SOURCE_LABEL]: 'login' },
    });
    const loginTime = new Date(now()).toISOString().replace(/\.\d{3}Z$/, 'Z');
    await users.mergePatchStatus(undefined, username, { status: { lastLoginTime: loginTime } });
    logger.info({ username, outcome: 'accepted', tokenID: created.object.spec.tokenID, groups: wanted }, 'login');
    const body = JSON.stringify({
      apiVersion: 'iam.stratus.dev/v1alpha1',
      kind: 'LoginResult',
      username,
      groups: wanted,
      namespace,
      token: created.token,
      expirationTimestamp: created.object.spec.expiresAt,
    });
    res.writeHead(201, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
    res.end(body);
  };

  return (req, res) => {
    handle(req, res).catch((err: unknown) => {
      logger.error({ err: err instanceof Error ? err.message : String(err) }, 'login failed');
      if (!res.headersSent) status(res, 503, 'ServiceUnavailable', 'login is unavailable, try again');
    });
  };
}
