/**
 * RBAC as kube defines it, table by table: the RequestInfo a request becomes, which rules
 * allow which requests (verbs incl. watch/list/deletecollection/patch, subresources,
 * apiGroups, resourceNames, nonResourceURLs), subjects (User, Group, ServiceAccount),
 * Role vs ClusterRole bindings and namespaces, `system:masters`, the decision cache's
 * invalidation, aggregation, the escalation check and the 403 message.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { requestInfo, type RequestAttributes } from '../../../apiserver/auth/requestinfo.js';
import { forbiddenMessage, ruleAllows, uncoveredRules, type PolicyRule } from '../../../apiserver/auth/rbac-rules.js';
import { RbacAuthorizer, type BindingObject, type RoleObject } from '../../../apiserver/auth/rbac-authorizer.js';
import { ClusterRoleAggregator } from '../../../apiserver/auth/rbac-aggregation.js';
import type { ObjectIndex } from '../../../apiserver/auth/live-index.js';
import type { KubeObject } from '../../../apiserver/resources.js';
import type { UserInfo } from '../../../apiserver/auth/user.js';

const info = (method: string, path: string): RequestAttributes => requestInfo(method, new URL(path, 'https://x'));

describe('RequestInfo (kube RequestInfoFactory)', () => {
  const cases: [string, string, Partial<RequestAttributes>][] = [
    ['GET', '/apis/compute.stratus.dev/v1alpha1/namespaces/team-b/instances/x', { verb: 'get', apiGroup: 'compute.stratus.dev', resource: 'instances', namespace: 'team-b', name: 'x', subresource: '' }],
    ['GET', '/apis/compute.stratus.dev/v1alpha1/namespaces/team-b/instances', { verb: 'list', name: '' }],
    ['GET', '/apis/compute.stratus.dev/v1alpha1/namespaces/team-b/instances?watch=true', { verb: 'watch' }],
    ['GET', '/apis/compute.stratus.dev/v1alpha1/watch/namespaces/team-b/instances', { verb: 'watch', namespace: 'team-b', resource: 'instances' }],
    ['GET', '/apis/coordination.k8s.io/v1/namespaces/s/leases?watch=1&fieldSelector=metadata.name%3Dlock', { verb: 'watch', name: 'lock' }],
    ['GET', '/apis/compute.stratus.dev/v1alpha1/instances', { verb: 'list', namespace: '', resource: 'instances' }],
    ['PUT', '/apis/compute.stratus.dev/v1alpha1/namespaces/a/instances/x/status', { verb: 'update', subresource: 'status', name: 'x' }],
    ['PATCH', '/apis/compute.stratus.dev/v1alpha1/namespaces/a/instances/x', { verb: 'patch' }],
    ['POST', '/api/v1/namespaces/a/events', { verb: 'create', apiGroup: '', resource: 'events', namespace: 'a' }],
    ['DELETE', '/api/v1/namespaces/a/configmaps', { verb: 'deletecollection' }],
    ['DELETE', '/api/v1/namespaces/a/configmaps/c', { verb: 'delete', name: 'c' }],
    ['GET', '/api/v1/namespaces/a', { verb: 'get', resource: 'namespaces', namespace: 'a', name: 'a' }],
    ['PUT', '/api/v1/namespaces/a/finalize', { verb: 'update', resource: 'namespaces', name: 'a', subresource: 'finalize' }],
    ['GET', '/api/v1/namespaces', { verb: 'list', resource: 'namespaces', namespace: '' }],
    ['GET', '/apis', { resourceRequest: false, verb: 'get', path: '/apis' }],
    ['GET', '/apis/compute.stratus.dev/v1alpha1', { resourceRequest: false }],
    ['HEAD', '/healthz', { resourceRequest: false, verb: 'get' }],
    ['POST', '/metrics', { resourceRequest: false, verb: 'post' }],
  ];
  for (const [method, path, want] of cases) {
    it(`${method} ${path}`, () => {
      const got = info(method, path);
      for (const [k, v] of Object.entries(want)) assert.equal(got[k as keyof RequestAttributes], v, k);
    });
  }
});

describe('a PolicyRule allows a request', () => {
  const req = (verb: string, resource: string, extra: Partial<RequestAttributes> = {}): RequestAttributes => ({
    verb,
    path: '',
    resourceRequest: true,
    apiGroup: 'compute.stratus.dev',
    apiVersion: 'v1alpha1',
    resource,
    subresource: '',
    namespace: 'a',
    name: '',
    ...extra,
  });
  const rule: PolicyRule = { apiGroups: ['compute.stratus.dev'], resources: ['instances'], verbs: ['get', 'list'] };
  const cases: [string, PolicyRule, RequestAttributes, boolean][] = [
    ['matching verb, group, resource', rule, req('get', 'instances'), true],
    ['list is not watch', rule, req('watch', 'instances'), false],
    ['another group', rule, req('get', 'instances', { apiGroup: 'apps.stratus.dev' }), false],
    ['core group needs ""', { ...rule, apiGroups: [''] }, req('get', 'instances', { apiGroup: '' }), true],
    ['a resource rule does not cover its subresource', rule, req('get', 'instances', { subresource: 'status' }), false],
    ['instances/status covers the subresource', { apiGroups: ['compute.stratus.dev'], resources: ['instances/status'], verbs: ['update'] }, req('update', 'instances', { subresource: 'status' }), true],
    ['instances/status does not cover the object', { apiGroups: ['compute.stratus.dev'], resources: ['instances/status'], verbs: ['update'] }, req('update', 'instances'), false],
    ['*/status covers every status', { apiGroups: ['*'], resources: ['*/status'], verbs: ['patch'] }, req('patch', 'networks', { subresource: 'status' }), true],
    ['* verbs', { apiGroups: ['*'], resources: ['*'], verbs: ['*'] }, req('deletecollection', 'instances'), true],
    ['resourceNames allow the named object', { ...rule, resourceNames: ['x'] }, req('get', 'instances', { name: 'x' }), true],
    ['resourceNames refuse another name', { ...rule, resourceNames: ['x'] }, req('get', 'instances', { name: 'y' }), false],
    ['resourceNames refuse an unnamed list', { ...rule, resourceNames: ['x'] }, req('list', 'instances'), false],
    ['resourceNames allow a list narrowed to the name', { ...rule, resourceNames: ['x'] }, req('list', 'instances', { name: 'x' }), true],
    ['nonResourceURLs exact', { nonResourceURLs: ['/version'], verbs: ['get'] }, { ...req('get', ''), resourceRequest: false, path: '/version' }, true],
    ['nonResourceURLs prefix *', { nonResourceURLs: ['/apis/*'], verbs: ['get'] }, { ...req('get', ''), resourceRequest: false, path: '/apis/compute.stratus.dev' }, true],
    ['nonResourceURLs do not match resources', { nonResourceURLs: ['*'], verbs: ['get'] }, req('get', 'instances'), false],
    ['resource rules do not match paths', { apiGroups: ['*'], resources: ['*'], verbs: ['get'] }, { ...req('get', ''), resourceRequest: false, path: '/metrics' }, false],
  ];
  for (const [name, r, a, want] of cases) it(name, () => assert.equal(ruleAllows(r, a), want));
});

class MapIndex<T extends KubeObject> implements ObjectIndex<T> {
  private listeners: (() => void)[] = [];
  constructor(public objects: T[] = []) {}
  get(namespace: string | undefined, name: string): T | undefined {
    return this.objects.find((o) => o.metadata?.name === name && (o.metadata?.namespace ?? undefined) === namespace);
  }
  list(namespace?: string): T[] {
    return namespace === undefined ? this.objects : this.objects.filter((o) => o.metadata?.namespace === namespace);
  }
  onChange(l: () => void): void {
    this.listeners.push(l);
  }
  set(objects: T[]): void {
    this.objects = objects;
    for (const l of this.listeners) l();
  }
}

const role = (name: string, rules: PolicyRule[], namespace?: string): RoleObject => ({ metadata: { name, ...(namespace ? { namespace } : {}) }, rules });
const binding = (name: string, kind: 'Role' | 'ClusterRole', roleName: string, subjects: BindingObject['subjects'], namespace?: string): BindingObject => ({
  metadata: { name, ...(namespace ? { namespace } : {}) },
  roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind, name: roleName },
  subjects,
});
const user = (username: string, groups: string[] = []): UserInfo => ({ username, groups: [...groups, 'system:authenticated'] });
const instances = (verb: string, namespace: string, name = ''): RequestAttributes => ({
  verb,
  path: '',
  resourceRequest: true,
  apiGroup: 'compute.stratus.dev',
  apiVersion: 'v1alpha1',
  resource: 'instances',
  subresource: '',
  namespace,
  name,
});

describe('RbacAuthorizer', () => {
  const tenant: PolicyRule[] = [{ apiGroups: ['compute.stratus.dev'], resources: ['instances'], verbs: ['get', 'list', 'watch', 'create', 'delete'] }];
  const make = (): { authz: RbacAuthorizer; rb: MapIndex<BindingObject> } => {
    const rb = new MapIndex<BindingObject>([
      binding('alice', 'ClusterRole', 'tenant', [{ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: 'alice' }], 'team-a'),
      binding('devs', 'Role', 'reader', [{ kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: 'devs' }], 'team-b'),
      binding('ctl', 'Role', 'reader', [{ kind: 'ServiceAccount', name: 'ctl' }], 'team-b'),
      binding('ghost', 'Role', 'missing', [{ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: 'ghost' }], 'team-b'),
    ]);
    const authz = new RbacAuthorizer({
      roles: new MapIndex([role('reader', [{ apiGroups: ['compute.stratus.dev'], resources: ['instances'], verbs: ['get'] }], 'team-b')]),
      clusterRoles: new MapIndex([role('tenant', tenant), role('node-reader', [{ apiGroups: ['compute.stratus.dev'], resources: ['computenodes'], verbs: ['list'] }])]),
      roleBindings: rb,
      clusterRoleBindings: new MapIndex([binding('nodes', 'ClusterRole', 'node-reader', [{ kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: 'ops' }])]),
    });
    return { authz, rb };
  };
  const cases: [string, UserInfo, RequestAttributes, boolean][] = [
    ['a RoleBinding to a ClusterRole grants in its namespace', user('alice'), instances('delete', 'team-a', 'x'), true],
    ['...and nowhere else', user('alice'), instances('delete', 'team-b', 'x'), false],
    ['...not cluster-wide', user('alice'), instances('list', ''), false],
    ['watch needs its own verb', user('alice'), instances('watch', 'team-a'), true],
    ['patch is not granted by create', user('alice'), instances('patch', 'team-a', 'x'), false],
    ['a Group subject', user('bob', ['devs']), instances('get', 'team-b', 'x'), true],
    ['a Group subject, other verb', user('bob', ['devs']), instances('list', 'team-b'), false],
    ['a ServiceAccount subject', { username: 'system:serviceaccount:team-b:ctl', groups: [] }, instances('get', 'team-b', 'x'), true],
    ['a ServiceAccount of another namespace', { username: 'system:serviceaccount:team-a:ctl', groups: [] }, instances('get', 'team-b', 'x'), false],
    ['a binding to a missing role grants nothing', user('ghost'), instances('get', 'team-b', 'x'), false],
    ['a ClusterRoleBinding grants at cluster scope', user('carol', ['ops']), { ...instances('list', ''), resource: 'computenodes' }, true],
    ['system:masters bypasses', user('root', ['system:masters']), instances('deletecollection', 'anything'), true],
    ['nobody', user('mallory'), instances('get', 'team-a', 'x'), false],
  ];
  const { authz } = make();
  for (const [name, u, a, want] of cases) it(name, () => assert.equal(authz.authorize(u, a), want));

  it('a removed binding stops granting at the next request (the decision cache is dropped)', () => {
    const { authz: z, rb } = make();
    assert.equal(z.authorize(user('alice'), instances('get', 'team-a', 'x')), true);
    rb.set(rb.objects.filter((b) => b.metadata?.name !== 'alice'));
    assert.equal(z.authorize(user('alice'), instances('get', 'team-a', 'x')), false);
  });

  it('rulesFor lists what applies in a namespace (can-i --list)', () => {
    assert.deepEqual(authz.rulesFor(user('alice'), 'team-a'), tenant);
    assert.deepEqual(authz.rulesFor(user('alice'), 'team-b'), []);
  });
});

describe('escalation check (kube validation.Covers)', () => {
  const owner: PolicyRule[] = [
    { apiGroups: ['compute.stratus.dev'], resources: ['instances', 'instances/status'], verbs: ['get', 'list'] },
    { apiGroups: [''], resources: ['configmaps'], verbs: ['get'], resourceNames: ['settings'] },
    { nonResourceURLs: ['/apis/*'], verbs: ['get'] },
  ];
  const cases: [string, PolicyRule[], number][] = [
    ['a subset is covered', [{ apiGroups: ['compute.stratus.dev'], resources: ['instances'], verbs: ['get'] }], 0],
    ['a verb not held', [{ apiGroups: ['compute.stratus.dev'], resources: ['instances'], verbs: ['get', 'delete'] }], 1],
    ['"*" is not covered by a list', [{ apiGroups: ['compute.stratus.dev'], resources: ['instances'], verbs: ['*'] }], 1],
    ['a named object within resourceNames', [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'], resourceNames: ['settings'] }], 0],
    ['all objects when only one is held', [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }], 1],
    ['a URL under a held prefix', [{ nonResourceURLs: ['/apis/x'], verbs: ['get'] }], 0],
    ['a URL outside it', [{ nonResourceURLs: ['/metrics'], verbs: ['get'] }], 1],
  ];
  for (const [name, servant, missing] of cases) it(name, () => assert.equal(uncoveredRules(owner, servant).length, missing));
});

describe('ClusterRole aggregation', () => {
  it('unions the rules of the ClusterRoles the selectors match, first occurrence kept', () => {
    const a: RoleObject = { metadata: { name: 'a', labels: { agg: 'yes' } }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get'] }] };
    const b: RoleObject = { metadata: { name: 'b', labels: { agg: 'yes' } }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get'] }, { apiGroups: ['x'], resources: ['y'], verbs: ['list'] }] };
    const c: RoleObject = { metadata: { name: 'c', labels: { agg: 'no' } }, rules: [{ apiGroups: ['z'], resources: ['z'], verbs: ['*'] }] };
    const top: RoleObject = { metadata: { name: 'top', labels: { agg: 'yes' } }, aggregationRule: { clusterRoleSelectors: [{ matchLabels: { agg: 'yes' } }] }, rules: [] };
    assert.deepEqual(ClusterRoleAggregator.aggregate(top, [c, b, top, a]), [
      { apiGroups: [''], resources: ['pods'], verbs: ['get'] },
      { apiGroups: ['x'], resources: ['y'], verbs: ['list'] },
    ]);
  });
});

describe('the 403 message', () => {
  it('has kube forbidden shape for a named object in a namespace', () => {
    assert.equal(
      forbiddenMessage(user('alice'), instances('delete', 'team-b', 'x')),
      'instances.compute.stratus.dev "x" is forbidden: User "alice" cannot delete resource "instances" in API group "compute.stratus.dev" in the namespace "team-b"',
    );
  });
  it('for a cluster-scoped list of a core resource', () => {
    assert.equal(
      forbiddenMessage(user('alice'), { ...instances('list', ''), apiGroup: '', resource: 'namespaces' }),
      'namespaces is forbidden: User "alice" cannot list resource "namespaces" in API group "" at the cluster scope',
    );
  });
  it('for a subresource and a path', () => {
    assert.equal(
      forbiddenMessage(user('alice'), { ...instances('update', 'a', 'x'), subresource: 'status' }),
      'instances.compute.stratus.dev "x" is forbidden: User "alice" cannot update resource "instances/status" in API group "compute.stratus.dev" in the namespace "a"',
    );
    assert.equal(forbiddenMessage(user('alice'), info('GET', '/metrics')), 'forbidden: User "alice" cannot get path "/metrics"');
  });
});
