/** Kubernetes API paths: `/api/v1/...` and `/apis/<group>/<version>/...`, split into their parts. */

export interface ResourcePath {
  group: string;
  version: string;
  namespace?: string;
  plural?: string;
  name?: string;
  subresource?: string;
}

/** The path's parts; undefined for non-resource paths (`/version`, `/openapi/v2`, ...). */
export function parseResourcePath(segs: string[]): ResourcePath | undefined {
  let rest: string[];
  let group: string;
  let version: string;
  if (segs[0] === 'api' && segs.length >= 2) {
    group = '';
    version = segs[1] ?? '';
    rest = segs.slice(2);
  } else if (segs[0] === 'apis' && segs.length >= 3) {
    group = segs[1] ?? '';
    version = segs[2] ?? '';
    rest = segs.slice(3);
  } else {
    return undefined;
  }
  if (rest.length === 0) return { group, version };
  if (rest[0] === 'namespaces' && rest.length >= 3 && rest[2] !== 'status' && rest[2] !== 'finalize') {
    return { group, version, namespace: rest[1], plural: rest[2], name: rest[3], subresource: rest.slice(4).join('/') || undefined };
  }
  return { group, version, plural: rest[0], name: rest[1], subresource: rest.slice(2).join('/') || undefined };
}
