/**
 * The front of the request pipeline, in kube-apiserver's order: authenticate →
 * `setRequestUser` → audit (mutating requests, when the response is sent) → authorize →
 * the self-reviews → the API handler. Anonymous requests reach only the open probes
 * (`/healthz`, `/livez`, `/readyz`, `/version`); everything else without valid credentials
 * is `401 Unauthorized`, and a request RBAC does not allow is `403 Forbidden` with kube's
 * message. Both refusals are kube `Status` objects.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { log } from '../../runtime/log.js';
import { ApiError, badRequest, internalError, serviceUnavailable, tooLarge } from '../errors.js';
import { UnavailableError } from '../storage/store.js';
import { decodeKubeProtobuf } from '../protobuf.js';
import type { AuditLog } from './audit.js';
import type { Authenticator } from './authenticator.js';
import type { RbacAuthorizer } from './rbac-authorizer.js';
import { forbiddenMessage } from './rbac-rules.js';
import { isMutating, requestInfo, type RequestAttributes } from './requestinfo.js';
import { answerReview, reviewOf } from './reviews.js';
import { anonymousUser, requestUser, setRequestUser, type UserInfo } from './user.js';
import { applyImpersonation, type ImpersonationAuthorizer } from './impersonation.js';
import { GIT_PREFIX } from '../git/paths.js';

export interface AccessControl {
  authenticator: Authenticator;
  authorizer: RbacAuthorizer;
  audit: AuditLog;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const openProbes = ['/healthz', '/livez', '/readyz', '/version'];
const MAX_REVIEW_BYTES = 1024 * 1024;

function isOpenProbe(path: string): boolean {
  return openProbes.some((p) => path === p || path === `${p}/` || path.startsWith(`${p}/`));
}

function sendStatus(res: ServerResponse, err: ApiError): void {
  if (res.headersSent) return;
  const text = JSON.stringify(err.toStatus());
  // git sends its credentials (the token as a basic password) only when asked
  const ask = err.code === 401 && (res.req?.url ?? '').startsWith(GIT_PREFIX) ? { 'WWW-Authenticate': 'Basic realm="stratus"' } : {};
  res.writeHead(err.code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-cache, private', ...ask });
  res.end(text);
}

/** A review body: JSON, or protobuf as kubectl's typed clients send it. */
async function readReview(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_REVIEW_BYTES) throw tooLarge();
    chunks.push(chunk as Buffer);
  }
  const body = Buffer.concat(chunks);
  if ((req.headers['content-type'] ?? '').startsWith('application/vnd.kubernetes.protobuf')) {
    try {
      return decodeKubeProtobuf(body);
    } catch (err) {
      throw new ApiError(415, 'UnsupportedMediaType', `cannot decode the protobuf body: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch (err) {
    throw badRequest(`the body of the request could not be decoded as JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** May the requester impersonate this user/group/uid? RBAC's `impersonate` verb decides. */
function rbacImpersonation(authorizer: AccessControl['authorizer']): ImpersonationAuthorizer {
  return (requester, what) =>
    Promise.resolve(
      requester !== undefined &&
        authorizer.authorize(requester, {
          verb: 'impersonate',
          path: '',
          resourceRequest: true,
          apiGroup: '',
          apiVersion: 'v1',
          resource: what.resource,
          subresource: '',
          namespace: what.namespace ?? '',
          name: what.name,
        }),
    );
}

export function unauthorized(): ApiError {
  return new ApiError(401, 'Unauthorized', 'Unauthorized');
}

export function forbiddenError(user: UserInfo, a: RequestAttributes): ApiError {
  const details = a.resourceRequest ? { ...(a.name ? { name: a.name } : {}), group: a.apiGroup, kind: a.resource } : undefined;
  return new ApiError(403, 'Forbidden', forbiddenMessage(user, a), details);
}

/** Wraps the API handler with authentication, authorization and audit. */
export function withAccessControl(ac: AccessControl, inner: Handler, isOpenRoute: (path: string) => boolean = () => false): Handler {
  return (req, res) => {
    let url: URL;
    try {
      url = new URL(req.url?.startsWith('/') ? req.url : `/${req.url ?? ''}`, 'http://localhost');
    } catch {
      url = new URL('http://localhost/');
    }
    const attrs = requestInfo(req.method ?? 'GET', url);
    const refuse = (err: ApiError, who: UserInfo): void => {
      req.resume(); // the body is not read; drain it so the connection stays usable
      log.info({ component: 'apiserver', verb: attrs.verb, uri: req.url, code: err.code, user: who.username, userAgent: req.headers['user-agent'] }, 'request');
      sendStatus(res, err);
    };
    void (async () => {
      const auth = await ac.authenticator.authenticate(req);
      if (auth.kind !== 'user') {
        if (isMutating(attrs.verb)) res.once('finish', () => ac.audit.record(anonymousUser, attrs, res.statusCode));
        // The probes, and routes other components serve for callers who have no credentials
        // yet (`POST /login` exchanges an LDAP bind for a token), are open.
        if (auth.kind === 'anonymous' && ((isOpenProbe(url.pathname) && (req.method === 'GET' || req.method === 'HEAD')) || isOpenRoute(url.pathname))) {
          setRequestUser(req, anonymousUser);
          inner(req, res);
          return;
        }
        refuse(unauthorized(), anonymousUser);
        return;
      }
      setRequestUser(req, auth.user);
      // As kube-apiserver: impersonation after authentication and before authorization, so
      // RBAC, admission (quotas) and audit judge the impersonated identity.
      await applyImpersonation(req, rbacImpersonation(ac.authorizer));
      const user = requestUser(req) ?? auth.user;
      if (isMutating(attrs.verb)) res.once('finish', () => ac.audit.record(user, attrs, res.statusCode));
      if (!ac.authorizer.authorize(user, attrs)) {
        refuse(forbiddenError(user, attrs), user);
        return;
      }
      const review = reviewOf(attrs);
      if (review) {
        const body = await readReview(req);
        const answer = JSON.stringify(answerReview(review, attrs.verb, body, user, ac.authorizer));
        res.writeHead(201, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(answer) });
        res.end(answer);
        return;
      }
      inner(req, res);
    })().catch((err: unknown) => {
      req.resume();
      if (err instanceof ApiError) sendStatus(res, err);
      else if (err instanceof UnavailableError) sendStatus(res, serviceUnavailable(`storage is unavailable: ${err.message}`));
      else {
        log.error({ component: 'apiserver', err: err instanceof Error ? err.stack : String(err), uri: req.url }, 'internal error in authentication');
        sendStatus(res, internalError(err instanceof Error ? err.message : String(err)));
      }
    });
  };
}
