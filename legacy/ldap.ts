/**
 * corpus's accounts in LDAP: checks a user name and password with an LDAP bind and reads
 * the user's groups.
 *
 * 1. Find the user's entry under `baseDN` by `(userAttribute=USERNAME)` — bound as
 *    `bindDN` when one is configured, anonymously otherwise; exactly one entry must match.
 * 2. Bind as that entry's DN with the password. An empty password is refused before any
 *    bind: LDAP treats it as an unauthenticated bind, which "succeeds" (RFC 4513 §5.1.2).
 * 3. Search groups under `baseDN` listing the user — `member` or `uniqueMember` = the DN
 *    (groupOfNames, groupOfUniqueNames) or `memberUid` = the user name (posixGroup) — and
 *    return their `cn`s.
 *
 * Filters are built from filter objects, never by pasting the user name into a string, so
 * `*`, `(` or `\` in a user name match only themselves. The password is never logged.
 */
import { Client, EqualityFilter, InvalidCredentialsError, OrFilter } from 'ldapts';

export interface LdapOptions {
  /** `ldap://host:port` or `ldaps://host:port`. */
  url: string;
  /** Where users and groups are searched, e.g. `dc=example,dc=org`. */
  baseDN: string;
  /** Attribute holding the login name (default `uid`). */
  userAttribute?: string;
  /** A DN to search as (optional; anonymous search otherwise) and its password. */
  bindDN?: string;
  bindPassword?: string;
  /** Per-operation timeout (default 5 s). */
  timeoutMs?: number;
}

export interface LdapIdentity {
  dn: string;
  /** `cn` of every group listing the user. */
  groups: string[];
}

/** The directory answered, and the credentials are wrong (or the user is unknown). */
export class LdapAuthenticationError extends Error {
  override readonly name = 'LdapAuthenticationError';
}

const first = (v: unknown): string | undefined => {
  if (Array.isArray(v)) return first(v[0]);
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  return typeof v === 'string' ? v : undefined;
};

export class LdapDirectory {
  constructor(private readonly opts: LdapOptions) {}

  private client(): Client {
    const timeout = this.opts.timeoutMs ?? 5000;
    return new Client({ url: this.opts.url, timeout, connectTimeout: timeout });
  }

  /**
   * The user's DN and groups when `password` is right; `LdapAuthenticationError` when it is
   * not or the user is unknown; any other error when the directory cannot be asked.
   */
  async authenticate(username: string, password: string): Promise<LdapIdentity> {
    if (username === '' || password === '') throw new LdapAuthenticationError('user name and password are required');
    const search = this.client();
    let dn: string;
    let groups: string[];
    try {
      if (this.opts.bindDN) await search.bind(this.opts.bindDN, this.opts.bindPassword ?? '');
      const { searchEntries } = await search.search(this.opts.baseDN, {
        scope: 'sub',
        filter: new EqualityFilter({ attribute: this.opts.userAttribute ?? 'uid', value: username }),
        attributes: ['dn'],
        sizeLimit: 2,
      });
      if (searchEntries.length !== 1) throw new LdapAuthenticationError('unknown user');
      dn = searchEntries[0]!.dn;
      const memberOf = new OrFilter({
        filters: [
          new EqualityFilter({ attribute: 'member', value: dn }),
          new EqualityFilter({ attribute: 'uniqueMember', value: dn }),
          new EqualityFilter({ attribute: 'memberUid', value: username }),
        ],
      });
      const found = await search.search(this.opts.baseDN, {
        scope: 'sub',
        filter: memberOf,
        attributes: ['cn'],
      });
      groups = [...new Set(found.searchEntries.map((e) => first(e.cn)).filter((g): g is string => g !== undefined))].sort();
    } finally {
      await search.unbind().catch(() => undefined);
    }
    const user = this.client();
    try {
      await user.bind(dn, password);
    } catch (err) {
      if (err instanceof InvalidCredentialsError) throw new LdapAuthenticationError('invalid credentials');
      throw err;
    } finally {
      await user.unbind().catch(() => undefined);
    }
    return { dn, groups };
  }
}
