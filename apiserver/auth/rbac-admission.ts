/**
 * Admission for the four RBAC kinds: kube's validation (422 naming the field) and kube's
 * privilege-escalation prevention (403). A user may create or update a Role/ClusterRole only
 * if it holds every permission the role grants, or holds `escalate` on it; and a
 * RoleBinding/ClusterRoleBinding only if it holds every permission of the referenced role,
 * or holds `bind` on it. `system:masters` and the server's own writes are exempt.
 */
import type { AdmissionAttributes, AdmissionPlugin } from '../admission.js';
import { ApiError, invalid, type StatusCause } from '../errors.js';
import { isPlainObject } from '../objects.js';
import { labelSelectorFromObject, type LabelSelectorObject } from '../selectors.js';
import { MASTERS_GROUP, type RbacAuthorizer, type RoleObject } from './rbac-authorizer.js';
import { formatRule, RBAC_GROUP, uncoveredRules, type PolicyRule } from './rbac-rules.js';
import type { RequestAttributes } from './requestinfo.js';
import type { UserInfo } from './user.js';

const stringList = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');

function validateRules(rules: unknown, namespaced: boolean, causes: StatusCause[]): void {
  if (rules === undefined || rules === null) return;
  if (!Array.isArray(rules)) {
    causes.push({ reason: 'FieldValueInvalid', field: 'rules', message: 'Invalid value: must be a list of PolicyRules' });
    return;
  }
  rules.forEach((r: unknown, i) => {
    const f = `rules[${i}]`;
    if (!isPlainObject(r)) {
      causes.push({ reason: 'FieldValueInvalid', field: f, message: 'Invalid value: must be an object' });
      return;
    }
    for (const k of ['verbs', 'apiGroups', 'resources', 'resourceNames', 'nonResourceURLs']) {
      if (r[k] !== undefined && r[k] !== null && !stringList(r[k])) causes.push({ reason: 'FieldValueInvalid', field: `${f}.${k}`, message: 'Invalid value: must be a list of strings' });
    }
    if (!stringList(r.verbs) || r.verbs.length === 0) causes.push({ reason: 'FieldValueRequired', field: `${f}.verbs`, message: 'Required value: verbs must contain at least one value' });
    const urls = stringList(r.nonResourceURLs) ? r.nonResourceURLs : [];
    if (urls.length > 0) {
      if (namespaced) causes.push({ reason: 'FieldValueInvalid', field: `${f}.nonResourceURLs`, message: 'Invalid value: namespaced rules cannot apply to non-resource URLs' });
      if ((stringList(r.apiGroups) && r.apiGroups.length > 0) || (stringList(r.resources) && r.resources.length > 0)) {
        causes.push({ reason: 'FieldValueInvalid', field: `${f}.nonResourceURLs`, message: 'Invalid value: rules cannot apply to both regular resources and non-resource URLs' });
      }
      return;
    }
    if (!stringList(r.apiGroups) || r.apiGroups.length === 0) causes.push({ reason: 'FieldValueRequired', field: `${f}.apiGroups`, message: 'Required value: resource rules must supply at least one api group' });
    if (!stringList(r.resources) || r.resources.length === 0) causes.push({ reason: 'FieldValueRequired', field: `${f}.resources`, message: 'Required value: resource rules must supply at least one resource' });
  });
}

function validateBinding(obj: Record<string, unknown>, old: Record<string, unknown> | undefined, clusterBinding: boolean, causes: StatusCause[]): void {
  const ref = obj.roleRef;
  if (!isPlainObject(ref)) {
    causes.push({ reason: 'FieldValueRequired', field: 'roleRef', message: 'Required value' });
  } else {
    if (ref.apiGroup !== RBAC_GROUP) causes.push({ reason: 'FieldValueNotSupported', field: 'roleRef.apiGroup', message: `Unsupported value: ${JSON.stringify(ref.apiGroup ?? '')}: supported values: "${RBAC_GROUP}"` });
    const kinds = clusterBinding ? ['ClusterRole'] : ['Role', 'ClusterRole'];
    if (typeof ref.kind !== 'string' || !kinds.includes(ref.kind)) {
      causes.push({ reason: 'FieldValueNotSupported', field: 'roleRef.kind', message: `Unsupported value: ${JSON.stringify(ref.kind ?? '')}: supported values: ${kinds.map((k) => `"${k}"`).join(', ')}` });
    }
    if (typeof ref.name !== 'string' || ref.name === '') causes.push({ reason: 'FieldValueRequired', field: 'roleRef.name', message: 'Required value' });
    if (old && JSON.stringify(old.roleRef) !== JSON.stringify(ref)) causes.push({ reason: 'FieldValueInvalid', field: 'roleRef', message: 'Invalid value: cannot change roleRef' });
  }
  const subjects = obj.subjects;
  if (subjects === undefined || subjects === null) return;
  if (!Array.isArray(subjects)) {
    causes.push({ reason: 'FieldValueInvalid', field: 'subjects', message: 'Invalid value: must be a list of subjects' });
    return;
  }
  subjects.forEach((s: unknown, i) => {
    const f = `subjects[${i}]`;
    if (!isPlainObject(s)) {
      causes.push({ reason: 'FieldValueInvalid', field: f, message: 'Invalid value: must be an object' });
      return;
    }
    if (typeof s.name !== 'string' || s.name === '') causes.push({ reason: 'FieldValueRequired', field: `${f}.name`, message: 'Required value' });
    switch (s.kind) {
      case 'ServiceAccount':
        if ((s.apiGroup ?? '') !== '') causes.push({ reason: 'FieldValueNotSupported', field: `${f}.apiGroup`, message: `Unsupported value: ${JSON.stringify(s.apiGroup)}: supported values: ""` });
        if (clusterBinding && (typeof s.namespace !== 'string' || s.namespace === '')) causes.push({ reason: 'FieldValueRequired', field: `${f}.namespace`, message: 'Required value' });
        break;
      case 'User':
      case 'Group':
        if (s.apiGroup !== RBAC_GROUP) causes.push({ reason: 'FieldValueNotSupported', field: `${f}.apiGroup`, message: `Unsupported value: ${JSON.stringify(s.apiGroup ?? '')}: supported values: "${RBAC_GROUP}"` });
        break;
      default:
        causes.push({ reason: 'FieldValueNotSupported', field: `${f}.kind`, message: `Unsupported value: ${JSON.stringify(s.kind ?? '')}: supported values: "ServiceAccount", "User", "Group"` });
    }
  });
}

export class RbacAdmission implements AdmissionPlugin {
  readonly name = 'RBAC';

  constructor(
    private readonly authorizer: RbacAuthorizer,
    private readonly rolesOf: (kind: string, namespace: string, name: string) => RoleObject | undefined,
  ) {}

  async admit(a: AdmissionAttributes): Promise<void> {
    if (a.resource.group !== RBAC_GROUP || a.operation === 'DELETE' || !a.object) return;
    const obj = a.object as Record<string, unknown>;
    const plural = a.resource.plural;
    const causes: StatusCause[] = [];
    if (plural === 'roles' || plural === 'clusterroles') {
      validateRules(obj.rules, plural === 'roles', causes);
      if (plural === 'clusterroles' && obj.aggregationRule !== undefined && obj.aggregationRule !== null) {
        const sels = isPlainObject(obj.aggregationRule) ? obj.aggregationRule.clusterRoleSelectors : undefined;
        if (!Array.isArray(sels) || sels.length === 0) {
          causes.push({ reason: 'FieldValueRequired', field: 'aggregationRule.clusterRoleSelectors', message: 'Required value: at least one clusterRoleSelector required if aggregationRule is non-nil' });
        } else {
          sels.forEach((s: unknown, i) => {
            try {
              labelSelectorFromObject(s as LabelSelectorObject);
            } catch (err) {
              causes.push({ reason: 'FieldValueInvalid', field: `aggregationRule.clusterRoleSelectors[${i}]`, message: `Invalid value: ${err instanceof Error ? err.message : String(err)}` });
            }
          });
        }
      }
    } else if (plural === 'rolebindings' || plural === 'clusterrolebindings') {
      validateBinding(obj, a.oldObject as Record<string, unknown> | undefined, plural === 'clusterrolebindings', causes);
    } else {
      return;
    }
    if (causes.length > 0) throw invalid(a.resource, a.name, causes);
    if (!a.user || a.user.groups.includes(MASTERS_GROUP)) return;
    this.preventEscalation(a, obj, a.user);
  }

  private preventEscalation(a: AdmissionAttributes, obj: Record<string, unknown>, user: UserInfo): void {
    const plural = a.resource.plural;
    const ns = a.namespace ?? '';
    const attrs = (verb: string, resource: string, name: string): RequestAttributes => ({
      verb,
      path: '',
      resourceRequest: true,
      apiGroup: RBAC_GROUP,
      apiVersion: 'v1',
      resource,
      subresource: '',
      namespace: ns,
      name,
    });
    let granted: PolicyRule[];
    if (plural === 'roles' || plural === 'clusterroles') {
      if (this.authorizer.authorize(user, attrs('escalate', plural, a.name))) return;
      if (plural === 'clusterroles' && obj.aggregationRule) {
        throw this.refuse(a, `user ${JSON.stringify(user.username)} cannot create or update a ClusterRole with an aggregationRule without the escalate verb`);
      }
      granted = (obj.rules as PolicyRule[] | undefined) ?? [];
    } else {
      const ref = obj.roleRef as { kind: string; name: string };
      const refPlural = ref.kind === 'Role' ? 'roles' : 'clusterroles';
      if (this.authorizer.authorize(user, attrs('bind', refPlural, ref.name))) return;
      const role = this.rolesOf(ref.kind, ns, ref.name);
      if (!role) throw new ApiError(404, 'NotFound', `${refPlural}.${RBAC_GROUP} "${ref.name}" not found`, { name: ref.name, group: RBAC_GROUP, kind: refPlural });
      granted = role.rules ?? [];
    }
    const missing = uncoveredRules(this.authorizer.rulesFor(user, ns), granted);
    if (missing.length === 0) return;
    throw this.refuse(
      a,
      `user ${JSON.stringify(user.username)} (groups=[${user.groups.map((g) => JSON.stringify(g)).join(' ')}]) is attempting to grant RBAC permissions not currently held:\n${missing.map(formatRule).join('\n')}`,
    );
  }

  private refuse(a: AdmissionAttributes, why: string): ApiError {
    return new ApiError(403, 'Forbidden', `${a.resource.plural}.${RBAC_GROUP} "${a.name}" is forbidden: ${why}`, { name: a.name, group: RBAC_GROUP, kind: a.resource.plural });
  }
}
