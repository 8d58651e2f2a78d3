/**
 * Content negotiation: which representation of a response the client's `Accept` asks for —
 * JSON, YAML, a `meta.k8s.io` Table, PartialObjectMetadata, or aggregated discovery. The
 * first acceptable entry wins; nothing acceptable is a 406.
 */
import { notAcceptable } from '../errors.js';

export type Output =
  | { kind: 'json' }
  | { kind: 'yaml' }
  | { kind: 'table'; version: string }
  | { kind: 'partial' }
  | { kind: 'discovery'; version: string };

interface MediaType {
  type: string;
  params: Record<string, string>;
}

function parseMediaTypes(header: string | undefined): MediaType[] {
  if (!header) return [];
  return header
    .split(',')
    .map((part) => {
      const [type = '', ...rest] = part.split(';').map((s) => s.trim());
      const params: Record<string, string> = {};
      for (const p of rest) {
        const i = p.indexOf('=');
        if (i > 0) params[p.slice(0, i).trim().toLowerCase()] = p.slice(i + 1).trim().replace(/^"|"$/g, '');
      }
      return { type: type.toLowerCase(), params };
    })
    .filter((m) => m.type !== '' && m.params.q !== '0');
}

/** The first acceptable representation the client asked for. */
export function negotiate(accept: string | undefined, allowDiscovery: boolean): Output {
  const types = parseMediaTypes(accept);
  if (types.length === 0) return { kind: 'json' };
  for (const m of types) {
    const isJson = m.type === 'application/json' || m.type === '*/*' || m.type === 'application/*';
    const as = m.params.as;
    if (isJson && as === undefined) return { kind: 'json' };
    if (m.type === 'application/yaml' && as === undefined) return { kind: 'yaml' };
    if (m.type !== 'application/json') continue;
    if (as === 'Table' && m.params.g === 'meta.k8s.io' && (m.params.v === 'v1' || m.params.v === 'v1beta1')) return { kind: 'table', version: m.params.v };
    if ((as === 'PartialObjectMetadata' || as === 'PartialObjectMetadataList') && m.params.g === 'meta.k8s.io') return { kind: 'partial' };
    if (allowDiscovery && as === 'APIGroupDiscoveryList' && m.params.g === 'apidiscovery.k8s.io' && (m.params.v === 'v2' || m.params.v === 'v2beta1')) {
      return { kind: 'discovery', version: m.params.v };
    }
  }
  throw notAcceptable(accept ?? '');
}

/** The Content-Type of a Table response. */
export function tableContentType(version: string): string {
  return `application/json;as=Table;v=${version};g=meta.k8s.io`;
}
