/**
 * Kubernetes RBAC kinds (Role, ClusterRole, RoleBinding, ClusterRoleBinding): ordinary
 * objects whose names may be any path segment, as kube's `ValidatePathSegmentName` allows
 * (`system:discovery`). What they grant is checked by the authorizer and the escalation
 * admission in `auth/`, not here.
 */
import { DefaultStrategy, type NameRule } from './strategy.js';

export class RbacStrategy extends DefaultStrategy {
  override readonly nameRule: NameRule = 'pathSegment';
}
