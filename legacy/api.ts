/**
 * What every legacy API handler receives besides the request: the Kubernetes client and the
 * namespace its caller's objects live in (the token's or user's namespace; `default` for an
 * unauthenticated DataCentred/clementine call under `--legacy-insecure`).
 */
import type { KubeClient } from '../runtime/client.js';
import type { Dialect, LegacyRequest, LegacyResponse } from './http.js';

export interface Caller {
  namespace: string;
}

/**
 * How a route proves its caller: a Cloud Brain token always, a token unless the proxy runs
 * with `--legacy-insecure` (DataCentred and clementine had no authentication), or Brume's
 * body signature.
 */
export type AuthMode = 'token' | 'token-unless-insecure' | 'signature';

export type ApiHandler = (r: LegacyRequest, caller: Caller, client: KubeClient) => Promise<LegacyResponse>;

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
  routes: ApiRoute[];
}
