/**
 * The "self" reviews kubectl uses, answered from the caller's own identity and nothing it
 * sends can change that: SelfSubjectReview (`kubectl auth whoami`), SelfSubjectAccessReview
 * (`kubectl auth can-i VERB RESOURCE`) and SelfSubjectRulesReview (`kubectl auth can-i
 * --list`). They are create-only and never stored; the answer is the `status` of the posted
 * object, `201 Created`, as kube-apiserver replies.
 */
import { ApiError, badRequest } from '../errors.js';
import { isPlainObject } from '../objects.js';
import type { RbacAuthorizer } from './rbac-authorizer.js';
import type { RequestAttributes } from './requestinfo.js';
import type { UserInfo } from './user.js';

export interface ReviewEndpoint {
  group: string;
  version: string;
  resource: string;
}

const endpoints: ReviewEndpoint[] = [
  { group: 'authentication.k8s.io', version: 'v1', resource: 'selfsubjectreviews' },
  { group: 'authentication.k8s.io', version: 'v1beta1', resource: 'selfsubjectreviews' },
  { group: 'authorization.k8s.io', version: 'v1', resource: 'selfsubjectaccessreviews' },
  { group: 'authorization.k8s.io', version: 'v1', resource: 'selfsubjectrulesreviews' },
];

/** The review a request addresses (POST to its collection), if any. */
export function reviewOf(a: RequestAttributes): ReviewEndpoint | undefined {
  if (!a.resourceRequest || a.namespace !== '' || a.name !== '' || a.subresource !== '') return undefined;
  return endpoints.find((e) => e.group === a.apiGroup && e.version === a.apiVersion && e.resource === a.resource);
}

const kinds: Record<string, string> = {
  selfsubjectreviews: 'SelfSubjectReview',
  selfsubjectaccessreviews: 'SelfSubjectAccessReview',
  selfsubjectrulesreviews: 'SelfSubjectRulesReview',
};

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/** Answers one review; `verb` must be `create` (the caller checked RBAC already). */
export function answerReview(e: ReviewEndpoint, verb: string, body: unknown, user: UserInfo, authorizer: RbacAuthorizer): unknown {
  if (verb !== 'create') throw new ApiError(405, 'MethodNotAllowed', `${e.resource}.${e.group} only supports create`);
  const kind = kinds[e.resource] ?? '';
  const obj = isPlainObject(body) ? body : {};
  if (obj.kind !== undefined && obj.kind !== kind) throw badRequest(`the body must be a ${kind}, not ${JSON.stringify(obj.kind)}`);
  const head = { apiVersion: `${e.group}/${e.version}`, kind, metadata: { creationTimestamp: null } };
  if (e.resource === 'selfsubjectreviews') {
    return { ...head, status: { userInfo: { username: user.username, ...(user.uid ? { uid: user.uid } : {}), groups: user.groups, ...(user.extra ? { extra: user.extra } : {}) } } };
  }
  const spec = isPlainObject(obj.spec) ? obj.spec : {};
  if (e.resource === 'selfsubjectaccessreviews') {
    const ra = isPlainObject(spec.resourceAttributes) ? spec.resourceAttributes : undefined;
    const nra = isPlainObject(spec.nonResourceAttributes) ? spec.nonResourceAttributes : undefined;
    if (!ra === !nra) throw new ApiError(422, 'Invalid', `${kind}.${e.group} "" is invalid: spec.resourceAttributes: Invalid value: exactly one of nonResourceAttributes or resourceAttributes must be specified`);
    const attrs: RequestAttributes = ra
      ? {
          verb: str(ra.verb),
          path: '',
          resourceRequest: true,
          apiGroup: str(ra.group),
          apiVersion: str(ra.version),
          resource: str(ra.resource),
          subresource: str(ra.subresource),
          namespace: str(ra.namespace),
          name: str(ra.name),
        }
      : { verb: str(nra?.verb), path: str(nra?.path), resourceRequest: false, apiGroup: '', apiVersion: '', resource: '', subresource: '', namespace: '', name: '' };
    const allowed = authorizer.authorize(user, attrs);
    return { ...head, spec, status: { allowed, ...(allowed ? { reason: 'RBAC: allowed by a role bound to the user or one of its groups' } : {}) } };
  }
  const namespace = str(spec.namespace);
  const rules = authorizer.rulesFor(user, namespace);
  return {
    ...head,
    spec: { namespace },
    status: {
      resourceRules: rules
        .filter((r) => !(r.nonResourceURLs ?? []).length)
        .map((r) => ({ verbs: r.verbs, apiGroups: r.apiGroups ?? [], resources: r.resources ?? [], ...(r.resourceNames?.length ? { resourceNames: r.resourceNames } : {}) })),
      nonResourceRules: rules.filter((r) => (r.nonResourceURLs ?? []).length).map((r) => ({ verbs: r.verbs, nonResourceURLs: r.nonResourceURLs })),
      incomplete: false,
    },
  };
}
