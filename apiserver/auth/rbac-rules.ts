/**
 * Kubernetes RBAC's matching rules, as pure functions over plain objects: does a PolicyRule
 * allow a request, does a subject name a user, does one rule set cover another (the
 * escalation check), and kube's `forbidden` message. Semantics follow
 * k8s.io/kubernetes/pkg/apis/rbac/v1 and plugin/pkg/auth/authorizer/rbac.
 */
import type { UserInfo } from './user.js';
import type { RequestAttributes } from './requestinfo.js';

export interface PolicyRule {
  verbs: string[];
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

export interface Subject {
  kind: string;
  apiGroup?: string;
  name: string;
  namespace?: string;
}

export interface RoleRef {
  apiGroup: string;
  kind: string;
  name: string;
}

export const RBAC_GROUP = 'rbac.authorization.k8s.io';

const has = (list: readonly string[] | undefined, v: string): boolean => (list ?? []).includes('*') || (list ?? []).includes(v);

function resourceMatches(rule: PolicyRule, resource: string, subresource: string): boolean {
  const combined = subresource ? `${resource}/${subresource}` : resource;
  for (const r of rule.resources ?? []) {
    if (r === '*' || r === combined) return true;
    if (subresource && r === `*/${subresource}`) return true;
  }
  return false;
}

function nonResourceUrlMatches(rule: PolicyRule, path: string): boolean {
  for (const u of rule.nonResourceURLs ?? []) {
    if (u === '*' || u === path) return true;
    if (u.endsWith('*') && path.startsWith(u.slice(0, -1))) return true;
  }
  return false;
}

/** RBAC's RuleAllows: one rule permits the request. */
export function ruleAllows(rule: PolicyRule, a: RequestAttributes): boolean {
  if (!has(rule.verbs, a.verb)) return false;
  if (!a.resourceRequest) return nonResourceUrlMatches(rule, a.path);
  if (!has(rule.apiGroups, a.apiGroup)) return false;
  if (!resourceMatches(rule, a.resource, a.subresource)) return false;
  const names = rule.resourceNames ?? [];
  return names.length === 0 || (a.name !== '' && names.includes(a.name));
}

/** Whether a binding subject names this user (ServiceAccounts by their `system:serviceaccount:NS:NAME` user name). */
export function subjectMatches(s: Subject, user: UserInfo, bindingNamespace: string): boolean {
  switch (s.kind) {
    case 'User':
      return s.name === user.username;
    case 'Group':
      return user.groups.includes(s.name);
    case 'ServiceAccount': {
      const ns = s.namespace || bindingNamespace;
      return ns !== '' && user.username === `system:serviceaccount:${ns}:${s.name}`;
    }
    default:
      return false;
  }
}

/** One atomic permission, the unit of kube's `Covers` check. */
interface Atom {
  verb: string;
  group?: string;
  resource?: string;
  name?: string;
  url?: string;
}

function atomsOf(rule: PolicyRule): Atom[] {
  const out: Atom[] = [];
  for (const verb of rule.verbs) {
    for (const url of rule.nonResourceURLs ?? []) out.push({ verb, url });
    for (const group of rule.apiGroups ?? []) {
      for (const resource of rule.resources ?? []) {
        const names = rule.resourceNames ?? [];
        if (names.length === 0) out.push({ verb, group, resource });
        for (const name of names) out.push({ verb, group, resource, name });
      }
    }
  }
  return out;
}

function ownerCovers(owner: PolicyRule, a: Atom): boolean {
  if (!has(owner.verbs, a.verb)) return false;
  if (a.url !== undefined) {
    return (owner.nonResourceURLs ?? []).some((u) => u === '*' || u === a.url || (u.endsWith('*') && a.url!.startsWith(u.slice(0, -1))));
  }
  if (!has(owner.apiGroups, a.group ?? '')) return false;
  const res = a.resource ?? '';
  const slash = res.indexOf('/');
  const sub = slash >= 0 ? res.slice(slash + 1) : '';
  if (!(owner.resources ?? []).some((r) => r === '*' || r === res || (sub !== '' && r === `*/${sub}`))) return false;
  const names = owner.resourceNames ?? [];
  return names.length === 0 || (a.name !== undefined && names.includes(a.name));
}

/**
 * kube's validation.Covers: every permission in `servant` is held by some rule of `owner`.
 * Returns the rules that are not covered (empty when covered).
 */
export function uncoveredRules(owner: PolicyRule[], servant: PolicyRule[]): PolicyRule[] {
  const missing: PolicyRule[] = [];
  for (const rule of servant) {
    for (const atom of atomsOf(rule)) {
      if (owner.some((o) => ownerCovers(o, atom))) continue;
      missing.push(
        atom.url !== undefined
          ? { verbs: [atom.verb], nonResourceURLs: [atom.url] }
          : { verbs: [atom.verb], apiGroups: [atom.group ?? ''], resources: [atom.resource ?? ''], ...(atom.name !== undefined ? { resourceNames: [atom.name] } : {}) },
      );
    }
  }
  return missing;
}

/** kube's forbiddenMessage + NewForbidden: the whole `message` of a 403 Status. */
export function forbiddenMessage(user: UserInfo, a: RequestAttributes): string {
  const who = `User ${JSON.stringify(user.username)}`;
  if (!a.resourceRequest) return `forbidden: ${who} cannot ${a.verb} path ${JSON.stringify(a.path)}`;
  const resource = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  const scope = a.namespace ? `in the namespace ${JSON.stringify(a.namespace)}` : 'at the cluster scope';
  const why = `${who} cannot ${a.verb} resource ${JSON.stringify(resource)} in API group ${JSON.stringify(a.apiGroup)} ${scope}`;
  const qualified = a.apiGroup ? `${a.resource}.${a.apiGroup}` : a.resource;
  return a.name ? `${qualified} ${JSON.stringify(a.name)} is forbidden: ${why}` : `${qualified} is forbidden: ${why}`;
}

/** `PolicyRule` in kube's compact printed form, for escalation messages. */
export function formatRule(r: PolicyRule): string {
  const parts: string[] = [];
  if (r.apiGroups?.length) parts.push(`APIGroups:[${r.apiGroups.map((g) => JSON.stringify(g)).join(' ')}]`);
  if (r.resources?.length) parts.push(`Resources:[${r.resources.map((g) => JSON.stringify(g)).join(' ')}]`);
  if (r.resourceNames?.length) parts.push(`ResourceNames:[${r.resourceNames.map((g) => JSON.stringify(g)).join(' ')}]`);
  if (r.nonResourceURLs?.length) parts.push(`NonResourceURLs:[${r.nonResourceURLs.map((g) => JSON.stringify(g)).join(' ')}]`);
  parts.push(`Verbs:[${r.verbs.map((g) => JSON.stringify(g)).join(' ')}]`);
  return `{${parts.join(', ')}}`;
}
