/**
 * The record sets of one zone, as the embedded server answers from them and as the PowerDNS
 * client writes them. Names are lower-case FQDNs without the trailing dot; a wildcard owner
 * is `*.PARENT`. Only `A` is produced today, so that is the only type modelled.
 */
export interface RRset {
  name: string;
  type: 'A';
  ttl: number;
  /** IPv4 addresses, sorted, no duplicates. */
  records: string[];
}

/** Normalises a DNS name: lower case, no trailing dot. */
export function canonicalName(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/** True when `name` is `zone` or below it. */
export function inZone(name: string, zone: string): boolean {
  return name === zone || name.endsWith(`.${zone}`);
}
