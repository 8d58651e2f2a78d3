/**
 * What the signed-in user may do, asked of the API server as kubectl does: a
 * SelfSubjectReview for the name (`kubectl auth whoami`) and a SelfSubjectRulesReview per
 * namespace (`kubectl auth can-i --list -n NS`). Buttons for actions the rules do not allow
 * are not drawn; the server still decides every request (RBAC), so a forced action gets its
 * 403 shown as it came.
 */
import { request } from './api.js';

interface ResourceRule {
  verbs: string[];
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
}

export interface Rules {
  namespace: string;
  rules: ResourceRule[];
}

const matches = (list: string[] | undefined, value: string): boolean => (list ?? []).some((x) => x === '*' || x === value);

/** Whether `rules` allow `verb` on `group/resource` (any name). */
export function allows(rules: Rules | undefined, verb: string, group: string, resource: string): boolean {
  if (!rules) return false;
  return rules.rules.some((r) => matches(r.verbs, verb) && matches(r.apiGroups, group) && matches(r.resources, resource) && (r.resourceNames ?? []).length === 0);
}

export async function rulesFor(namespace: string): Promise<Rules> {
  const review = await request<{ status?: { resourceRules?: ResourceRule[] } }>('POST', '/apis/authorization.k8s.io/v1/selfsubjectrulesreviews', {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SelfSubjectRulesReview',
    spec: { namespace },
  });
  return { namespace, rules: review.status?.resourceRules ?? [] };
}

export interface Identity {
  username: string;
  groups: string[];
}

export async function whoAmI(): Promise<Identity> {
  const review = await request<{ status?: { userInfo?: { username?: string; groups?: string[] } } }>('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'SelfSubjectReview',
  });
  return { username: review.status?.userInfo?.username ?? '?', groups: review.status?.userInfo?.groups ?? [] };
}

/**
 * `kubectl auth can-i VERB RESOURCE [-n NS]` as a SelfSubjectAccessReview: needed for
 * cluster-scoped kinds, which a namespace's rules (from RoleBindings there) cannot grant.
 */
export async function canI(verb: string, group: string, resource: string, namespace = ''): Promise<boolean> {
  const review = await request<{ status?: { allowed?: boolean } }>('POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SelfSubjectAccessReview',
    spec: { resourceAttributes: { verb, group, resource, ...(namespace ? { namespace } : {}) } },
  });
  return review.status?.allowed === true;
}
