/**
 * What every legacy API handler receives besides the request: a Kubernetes client that acts
 * as the caller (impersonation, so RBAC and quotas apply to it) and the namespace its
 * caller's objects live in (the token's namespace or the user's `spec.namespace`; `default`
 * for an anonymous call admitted by `--legacy-anonymous`).
 */
import type { KubeClient } from '../runtime/client.js';
import type { UserInfo } from '../apiserver/auth/user.js';
import type { Dialect, LegacyRequest, LegacyResponse } from './http.js';

export interface Caller {
  namespace: string;
  /** Who the caller is: a token's user, a Brume user, or `system:anonymous`. */
  user: UserInfo;
}

/**
 * How a route proves its caller: a Cloud Brain token, a token or nothing (DataCentred and
 * clementine had no authentication: `--legacy-anonymous` admits callers without credentials
 * as `system:anonymous`), or Brume's body signature.
 */
export type AuthMode = 'token' | 'token-unless-insecure' | 'signature';

/**
 * `client` acts as the caller; `proxy` is the proxy's own identity, only for checks no caller
 * could make under RBAC and whose result reveals nothing of other tenants beyond what the
 * legacy API itself promised (Brume: "a key name must be unique to the server").
 */
export type ApiHandler = (r: LegacyRequest, caller: Caller, client: KubeClient, proxy: KubeClient) => Promise<LegacyResponse>;

export interface ApiRoute {
  method: 'GET' | 'POST' | 'DELETE';
  pattern: string;
  auth: AuthMode;
  handler: ApiHandler;
}

export interface LegacyApi {
  dialect: Dialect;
  /** Path prefixes this API owns (for 404/405 in its own style). */
  prefixes: string[];
  /** Its callers manage ComputeNodes (clementine's engines, DataCentred's hosts), which are cluster-scoped. */
  managesNodes?: boolean;
  routes: ApiRoute[];
}
