/**
 * What a request asks to do, as kube-apiserver's RequestInfoFactory sees it: the verb
 * (`get`/`list`/`watch` from GET, `create`, `update`, `patch`, `delete`/`deletecollection`),
 * and for resource requests the API group, version, resource, subresource, namespace and
 * name. Everything outside `/api/v1/...` and `/apis/g/v/...` is a non-resource request whose
 * verb is the lower-case method (`get` for HEAD too). A list or watch narrowed by
 * `fieldSelector=metadata.name=X` carries name X, so `resourceNames` rules can allow it.
 * The Projects' Git remotes (`/git/projects/...`) are the resource requests `../git/paths.ts`
 * maps them to.
 */
import { gitRequestAttributes } from '../git/paths.js';

export interface RequestAttributes {
  verb: string;
  path: string;
  resourceRequest: boolean;
  apiGroup: string;
  apiVersion: string;
  resource: string;
  subresource: string;
  namespace: string;
  name: string;
}

const namespaceSubresources = new Set(['status', 'finalize']);

export function requestInfo(method: string, url: URL): RequestAttributes {
  const path = url.pathname;
  const m = method.toUpperCase();
  const nonResource: RequestAttributes = {
    verb: m === 'HEAD' ? 'get' : m.toLowerCase(),
    path,
    resourceRequest: false,
    apiGroup: '',
    apiVersion: '',
    resource: '',
    subresource: '',
    namespace: '',
    name: '',
  };
  const git = gitRequestAttributes(url);
  if (git) return git;
  let parts: string[];
  try {
    parts = path.split('/').filter((s) => s !== '').map((s) => decodeURIComponent(s));
  } catch {
    return nonResource;
  }
  let apiGroup = '';
  if (parts[0] === 'api') {
    if (parts.length < 3) return nonResource;
    parts = parts.slice(1);
  } else if (parts[0] === 'apis') {
    if (parts.length < 4) return nonResource;
    apiGroup = parts[1] ?? '';
    parts = parts.slice(2);
  } else {
    return nonResource;
  }
  const apiVersion = parts[0] ?? '';
  parts = parts.slice(1);
  let verb = { POST: 'create', GET: 'get', HEAD: 'get', PUT: 'update', PATCH: 'patch', DELETE: 'delete' }[m] ?? m.toLowerCase();
  // The deprecated /watch/ path prefix.
  if (parts[0] === 'watch') {
    if (verb === 'get') verb = 'watch';
    parts = parts.slice(1);
  }
  let namespace = '';
  if (parts[0] === 'namespaces') {
    if (parts.length > 1) {
      namespace = parts[1] ?? '';
      if (parts.length > 2 && !namespaceSubresources.has(parts[2] ?? '')) parts = parts.slice(2);
    }
  }
  const resource = parts[0] ?? '';
  let name = parts[1] ?? '';
  const subresource = parts[2] ?? '';
  if (name === '' && verb === 'get') {
    const watch = url.searchParams.get('watch');
    verb = watch === 'true' || watch === '1' ? 'watch' : 'list';
  }
  if (name === '' && (verb === 'list' || verb === 'watch')) {
    name = nameFromFieldSelector(url.searchParams.get('fieldSelector') ?? '');
  }
  if (name === '' && verb === 'delete') verb = 'deletecollection';
  return { verb, path, resourceRequest: true, apiGroup, apiVersion, resource, subresource, namespace, name };
}

/** `metadata.name=X` (or `==`) among the terms of a field selector, else ''. */
function nameFromFieldSelector(selector: string): string {
  for (const term of selector.split(',')) {
    const m = /^\s*metadata\.name\s*==?\s*(.*?)\s*$/.exec(term);
    if (m && !m[1]!.startsWith('=')) return m[1] ?? '';
  }
  return '';
}

/** Verbs that change state, i.e. what the audit log records. */
export function isMutating(verb: string): boolean {
  return verb === 'create' || verb === 'update' || verb === 'patch' || verb === 'delete' || verb === 'deletecollection' || verb === 'post' || verb === 'put';
}
