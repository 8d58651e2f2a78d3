/**
 * A request addressed to one resource, after routing: which resource and served version, in
 * which namespace, the already-validated common parameters, and how to answer with an object
 * in the negotiated representation.
 */
import type { Target } from '../registry.js';
import type { KubeObject, Resource, ResourceVersion } from '../resources.js';
import { toTable } from '../table.js';
import type { HttpDeps } from './deps.js';
import type { Exchange } from './exchange.js';
import { tableContentType, type Output } from './negotiate.js';
import { includeObject, type CommonParams } from './params.js';
import type { ResourcePath } from './paths.js';

export interface ResourceRequest {
  deps: HttpDeps;
  ex: Exchange;
  path: ResourcePath;
  resource: Resource;
  version: ResourceVersion;
  target: Target;
  common: CommonParams;
}

/** One object in the representation `out` asks for. */
export function presentObject(rq: ResourceRequest, obj: KubeObject, out: Output): unknown {
  if (out.kind === 'partial') return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: obj.metadata };
  if (out.kind === 'table') return toTable(rq.version.columns, [obj], { includeObject: includeObject(rq.ex) });
  return obj;
}

/** Answers with one object. */
export function respondObject(rq: ResourceRequest, code: number, obj: KubeObject, out: Output): void {
  rq.ex.send(code, presentObject(rq, obj, out), out, out.kind === 'table' ? tableContentType(out.version) : undefined);
}
