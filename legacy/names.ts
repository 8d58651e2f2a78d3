/**
 * Legacy names (DataCentred's `ns.example.com` and `ns_example_com_vlan_10`, Brume's key
 * names) are not always DNS-1123 labels, which Kubernetes object names must be. `objectName`
 * maps each legacy name to one label, deterministically, so a lookup needs no listing and two
 * concurrent creates of the same legacy name collide on the object name (409), never both
 * succeed. The original is kept in the annotation `legacy.stratus.dev/name`.
 */
import { createHash } from 'node:crypto';
import { isDnsLabel } from '../runtime/basics.js';

export const LEGACY_NAME_ANNOTATION = 'legacy.stratus.dev/name';
/** Which legacy API created an object (`cloudbrain`, `datacentred`, `clementine`, `brume`). */
export const LEGACY_API_LABEL = 'legacy.stratus.dev/api';

export { isDnsLabel };

/**
 * A DNS-1123 label for `legacy`: itself when it already is one; otherwise a sanitised form
 * plus 8 hex of its SHA-256, so distinct legacy names never share a label
 * (`ns.example.com` → `ns-example-com-1c2d3e4f`).
 */
export function objectName(legacy: string, prefix = ''): string {
  const plain = prefix + legacy;
  if (isDnsLabel(plain)) return plain;
  const hash = createHash('sha256').update(legacy).digest('hex').slice(0, 8);
  const cleaned = plain
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63 - 9)
    .replace(/-+$/g, '');
  return cleaned ? `${cleaned}-${hash}` : `x-${hash}`;
}

/** The first label of a host name when it can be a guest hostname (`ns.example.com` → `ns`). */
export function guestHostname(hostname: string): string | undefined {
  const first = hostname.split('.')[0]?.toLowerCase() ?? '';
  return isDnsLabel(first) ? first : undefined;
}
