/**
 * Who is asking, as kube-apiserver decides it: a client certificate signed by a trusted CA
 * (CN = user, O = groups), else `Authorization: Bearer ID-SECRET` naming an AccessToken
 * (user = its `spec.user`, groups from that User's memberships). Every authenticated user
 * is also in `system:authenticated`. No credentials at all → `anonymous`; credentials that
 * do not verify → `invalid` (the caller answers 401 either way, except anonymous on the
 * open probes). On the Projects' Git remotes (`/git/projects/...`) the token may also come as
 * the password of HTTP basic authentication (any user name), which is what git sends.
 *
 * A verified certificate is remembered per TLS connection. A token's `status.lastUsedTime`
 * is written at most once a minute per token, after the response, never awaited.
 */
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { AccessToken } from '../../crds/types.js';
import { log } from '../../runtime/log.js';
import type { Registry } from '../registry.js';
import { storageVersion } from '../resources.js';
import { TokenVerifier, type VerifiedToken } from './access-tokens.js';
import type { LiveIndex } from './live-index.js';
import type { Memberships } from './memberships.js';
import { certificateIdentity } from './pki.js';
import { GIT_PREFIX } from '../git/paths.js';
import type { UserInfo } from './user.js';

export const AUTHENTICATED_GROUP = 'system:authenticated';
const LAST_USED_EVERY_MS = 60_000;

export type Authentication = { kind: 'user'; user: UserInfo } | { kind: 'anonymous' } | { kind: 'invalid' };


/** The password of `Authorization: Basic` on a Git remote path; undefined elsewhere. */
function gitBasicPassword(req: IncomingMessage, header: string): string | undefined {
  if (!(req.url ?? '').startsWith(GIT_PREFIX)) return undefined;
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon >= 0 ? decoded.slice(colon + 1) : undefined;
}

export class Authenticator {
  /** Per TLS connection: its certificate's user, `null` (did not verify) or `false` (none sent). */
  private readonly byConnection = new WeakMap<TLSSocket, UserInfo | null | false>();
  private readonly verifier: TokenVerifier;
  private readonly lastUsedWrites = new Map<string, number>();

  constructor(
    private readonly registry: Registry,
    private readonly tokens: LiveIndex<AccessToken> | undefined,
    private readonly memberships: Memberships,
  ) {
    this.verifier = new TokenVerifier({
      withId: (id) => Promise.resolve((this.tokens?.list() ?? []).filter((t) => t.spec?.tokenID === id)),
    });
  }

  async authenticate(req: IncomingMessage): Promise<Authentication> {
    const socket = req.socket as TLSSocket;
    const fromCert = this.certificateUser(socket);
    if (fromCert === null) return { kind: 'invalid' };
    if (fromCert) return { kind: 'user', user: fromCert };
    const header = req.headers.authorization;
    if (header === undefined || header === '') return { kind: 'anonymous' };
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    const verified = await this.verifier.verify(m?.[1] ?? gitBasicPassword(req, header));
    if (!verified) return { kind: 'invalid' };
    const user = this.tokenUser(verified);
    if (!user) return { kind: 'invalid' };
    this.touch(verified.token);
    return { kind: 'user', user };
  }

  /** The certificate's user; undefined without a certificate; null for one that does not verify. */
  private certificateUser(socket: TLSSocket): UserInfo | undefined | null {
    if (typeof socket.getPeerX509Certificate !== 'function') return undefined; // plain HTTP (tests of the handler alone)
    const known = this.byConnection.get(socket);
    if (known !== undefined) return known === false ? undefined : known;
    const cert = socket.getPeerX509Certificate();
    if (!cert) {
      this.byConnection.set(socket, false);
      return undefined;
    }
    let user: UserInfo | null = null;
    if (socket.authorized) {
      const id = certificateIdentity(cert);
      if (id.user !== '') user = { username: id.user, groups: [...new Set([...id.groups, AUTHENTICATED_GROUP])] };
    }
    this.byConnection.set(socket, user);
    return user;
  }

  private tokenUser(v: VerifiedToken): UserInfo | undefined {
    const extra = { 'stratus.dev/token-id': [v.tokenID], 'stratus.dev/token-namespace': [v.namespace] };
    // A token without a user acts as its namespace's default identity, as membership.ts's
    // tokenUser says for every other authenticator (the legacy proxy included).
    if (!v.user) {
      const sa = `system:serviceaccount:${v.namespace}:default`;
      return { username: sa, groups: ['system:serviceaccounts', `system:serviceaccounts:${v.namespace}`, AUTHENTICATED_GROUP], extra };
    }
    if (!this.memberships.enabled(v.user, v.namespace)) return undefined;
    return { username: v.user, groups: [...this.memberships.groupsOf(v.user, v.namespace), AUTHENTICATED_GROUP], extra };
  }

  /** Records `status.lastUsedTime` off the request path, at most once a minute per token. */
  private touch(token: AccessToken): void {
    const uid = token.metadata?.uid ?? '';
    const now = Date.now();
    const last = Math.max(this.lastUsedWrites.get(uid) ?? 0, Date.parse(token.status?.lastUsedTime ?? '') || 0);
    if (now - last < LAST_USED_EVERY_MS || !this.tokens) return;
    if (this.lastUsedWrites.size >= 4096) this.lastUsedWrites.clear();
    this.lastUsedWrites.set(uid, now);
    const resource = this.tokens.resource;
    const target = { resource, version: storageVersion(resource), namespace: token.metadata?.namespace ?? '' };
    setImmediate(() => {
      this.registry
        .patch(target, token.metadata?.name ?? '', 'merge', { status: { lastUsedTime: new Date(now).toISOString().replace(/\.\d+Z$/, 'Z') } }, { fieldManager: 'stratus-authenticator' }, 'status')
        .catch((err: unknown) => log.debug({ component: 'apiserver', token: token.metadata?.name, err: String(err) }, 'cannot record lastUsedTime'));
    });
  }
}
