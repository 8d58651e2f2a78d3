/**
 * List and map types from a CRD's `openAPIV3Schema`, for server-side apply: a list is atomic
 * unless `x-kubernetes-list-type` is `set` or `map` (keyed by `x-kubernetes-list-map-keys`), and a
 * map is granular unless `x-kubernetes-map-type: atomic` (answered as `{type: 'atomic'}`).
 */

import type { ListTypeResolver } from './typed.js';

interface SchemaNode {
  properties?: Record<string, SchemaNode>;
  additionalProperties?: SchemaNode | boolean;
  items?: SchemaNode;
  'x-kubernetes-list-type'?: string;
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-map-type'?: string;
}

const isNode = (v: unknown): v is SchemaNode => typeof v === 'object' && v !== null && !Array.isArray(v);

function child(node: SchemaNode, seg: string): SchemaNode | undefined {
  if (seg === '[]') return isNode(node.items) ? node.items : undefined;
  const p = node.properties;
  if (p && Object.prototype.hasOwnProperty.call(p, seg) && isNode(p[seg])) return p[seg];
  return isNode(node.additionalProperties) ? node.additionalProperties : undefined;
}

/** A resolver answering from the schema; paths the schema does not describe get undefined. */
export function listTypesFromSchema(openAPIV3Schema: object): ListTypeResolver {
  return (path) => {
    let node: SchemaNode | undefined = isNode(openAPIV3Schema) ? openAPIV3Schema : undefined;
    for (const seg of path) {
      if (!node) return undefined;
      node = child(node, seg);
    }
    if (!node) return undefined;
    const lt = node['x-kubernetes-list-type'];
    if (lt === 'set' || lt === 'atomic') return { type: lt };
    if (lt === 'map') return { type: 'map', keys: [...(node['x-kubernetes-list-map-keys'] ?? [])] };
    if (node['x-kubernetes-map-type'] === 'atomic') return { type: 'atomic' };
    return undefined;
  };
}
