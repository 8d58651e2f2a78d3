/**
 * Assembles access control for one API server: the in-memory indexes (RBAC kinds,
 * AccessTokens, Users, Groups), the bootstrap roles, ClusterRole aggregation, the RBAC
 * admission plugin, the authenticator and the audit log. Call after the CRDs are registered
 * (the iam.stratus.dev kinds are CRDs); `close()` stops what it started.
 */
import type { AccessToken, Group, User } from '../../crds/types.js';
import type { Registry } from '../registry.js';
import type { KubeObject, ResourceCatalog } from '../resources.js';
import type { WatchCaches } from '../watchcache.js';
import { AuditLog } from './audit.js';
import { Authenticator } from './authenticator.js';
import type { AccessControl } from './filter.js';
import { LiveIndex } from './live-index.js';
import { Memberships } from './memberships.js';
import { RbacAdmission } from './rbac-admission.js';
import { ClusterRoleAggregator } from './rbac-aggregation.js';
import { RbacAuthorizer, type BindingObject, type RoleObject } from './rbac-authorizer.js';
import { bootstrapRbac } from './rbac-bootstrap.js';
import { RBAC_GROUP } from './rbac-rules.js';

export interface AccessControlSetup {
  accessControl: AccessControl;
  close(): Promise<void>;
}

export async function startAccessControl(deps: { registry: Registry; catalog: ResourceCatalog; caches: WatchCaches; auditDir: string }): Promise<AccessControlSetup> {
  const { registry, catalog, caches } = deps;
  const indexes: LiveIndex[] = [];
  const index = <T extends object>(group: string, plural: string): LiveIndex<T> | undefined => {
    const r = catalog.all().find((x) => x.group === group && x.plural === plural);
    if (!r) return undefined;
    const i = new LiveIndex<T>(registry, caches, r);
    indexes.push(i as unknown as LiveIndex);
    return i;
  };
  const must = <T extends KubeObject>(plural: string): LiveIndex<T> => {
    const i = index<T>(RBAC_GROUP, plural);
    if (!i) throw new Error(`${plural}.${RBAC_GROUP} is not in the catalog`);
    return i;
  };
  const rbac = {
    roles: must<RoleObject>('roles'),
    clusterRoles: must<RoleObject>('clusterroles'),
    roleBindings: must<BindingObject>('rolebindings'),
    clusterRoleBindings: must<BindingObject>('clusterrolebindings'),
  };
  const tokens = index<AccessToken>('iam.stratus.dev', 'accesstokens');
  const users = index<User>('iam.stratus.dev', 'users');
  const groups = index<Group>('iam.stratus.dev', 'groups');
  const authorizer = new RbacAuthorizer(rbac);
  const admission = new RbacAdmission(authorizer, (kind, namespace, name) =>
    kind === 'Role' ? rbac.roles.get(namespace, name) : kind === 'ClusterRole' ? rbac.clusterRoles.get(undefined, name) : undefined,
  );
  registry.admission.push(admission);
  const aggregator = new ClusterRoleAggregator(registry, rbac.clusterRoles);
  const audit = new AuditLog(deps.auditDir);
  try {
    await bootstrapRbac(registry, catalog);
    for (const i of indexes) await i.start();
  } catch (err) {
    aggregator.stop();
    for (const i of indexes) i.close();
    await audit.close();
    throw err;
  }
  aggregator.kick();
  return {
    accessControl: { authenticator: new Authenticator(registry, tokens, new Memberships(users, groups)), authorizer, audit },
    async close() {
      aggregator.stop();
      for (const i of indexes) i.close();
      const at = registry.admission.indexOf(admission);
      if (at >= 0) registry.admission.splice(at, 1);
      await audit.close();
    },
  };
}
