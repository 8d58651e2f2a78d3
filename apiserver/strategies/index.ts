/**
 * Which strategy serves which kind. Adding a built-in kind with behaviour of its own is one
 * strategy file and one line here; kinds not listed get the default strategy, and every
 * CustomResourceDefinition's kind gets the custom-resource strategy.
 */
import type { Resource } from '../resources.js';
import { ConfigMapStrategy, SecretStrategy } from './configdata.js';
import { CustomResourceDefinitionStrategy } from './crds.js';
import { CustomResourceStrategy } from './custom.js';
import { NamespaceStrategy } from './namespaces.js';
import { RbacStrategy } from './rbac.js';
import { DefaultStrategy, type KindStrategy } from './strategy.js';

export type { KindStrategy, NameRule, ValidationContext } from './strategy.js';
export { DefaultStrategy } from './strategy.js';
export { validateObjectMeta } from './meta.js';

/** Built-in kinds by `group/plural` (`''` is the core group). */
const builtinStrategies: ReadonlyMap<string, KindStrategy> = new Map<string, KindStrategy>([
  ['/namespaces', new NamespaceStrategy()],
  ['/secrets', new SecretStrategy()],
  ['/configmaps', new ConfigMapStrategy()],
  ['apiextensions.k8s.io/customresourcedefinitions', new CustomResourceDefinitionStrategy()],
  ...['roles', 'clusterroles', 'rolebindings', 'clusterrolebindings'].map((plural): [string, KindStrategy] => [`rbac.authorization.k8s.io/${plural}`, new RbacStrategy()]),
]);
const defaultStrategy = new DefaultStrategy();
const customResourceStrategy = new CustomResourceStrategy();

export function strategyFor(r: Resource): KindStrategy {
  if (!r.builtin) return customResourceStrategy;
  return builtinStrategies.get(`${r.group}/${r.plural}`) ?? defaultStrategy;
}
