/**
 * The records of a zone as a pure function of the objects (no I/O): what the DNS controller
 * writes to PowerDNS or the embedded server, and the names it reports in `status.dnsNames`.
 *
 * - Instance with an address: `NAME.NAMESPACE.ZONE` and `H.ZONE` for each `spec.hostnames`
 *   entry H. The address is that of the ElasticIP bound to it (same namespace; `status.boundTo`,
 *   else `spec.instanceRef`; `status.address`, else `spec.address`), else `status.ipAddress`.
 *   Names shared by several Instances answer all their addresses.
 * - Project whose guests have addresses: `PROJECT.ZONE` and `*.PROJECT.ZONE` with the
 *   guests' addresses. Project names are not unique across namespaces: the oldest Project
 *   keeps the name, the others get none.
 * - Objects being deleted have no records (the name goes when deletion starts).
 */
import { isIPv4 } from 'node:net';
import type { ElasticIP, Instance, Project } from '../crds/types.js';
import { objectKey } from '../runtime/client.js';
import type { RRset } from '../providers/dnsserver/zone.js';

export interface ZoneSettings {
  zone: string;
  ttl: number;
  /** Only these namespaces; undefined means all. */
  namespaces?: string[];
}

export interface ZoneRecords {
  rrsets: RRset[];
  /** objectKey → the names it got in this zone (Instances and Projects). */
  instanceNames: Map<string, string[]>;
  projectNames: Map<string, string[]>;
}

/** The address an Instance's names answer with, or undefined when it has none yet. */
export function instanceAddress(inst: Instance, eips: ElasticIP[]): string | undefined {
  const ns = inst.metadata?.namespace;
  const name = inst.metadata?.name;
  const bound = eips
    .filter((e) => !e.metadata?.deletionTimestamp && e.metadata?.namespace === ns && (e.status?.boundTo ?? e.spec?.instanceRef?.name) === name)
    .map((e) => e.status?.address ?? e.spec?.address)
    .filter((a): a is string => typeof a === 'string' && isIPv4(a))
    .sort();
  if (bound[0]) return bound[0];
  const ip = inst.status?.ipAddress;
  return ip && isIPv4(ip) ? ip : undefined;
}

export function zoneRecords(settings: ZoneSettings, instances: Instance[], eips: ElasticIP[], projects: Project[]): ZoneRecords {
  const zone = settings.zone.toLowerCase().replace(/\.$/, '');
  const allowed = (ns: string | undefined): boolean => !settings.namespaces || settings.namespaces.includes(ns ?? '');
  const byName = new Map<string, Set<string>>();
  const add = (name: string, address: string): void => {
    let set = byName.get(name);
    if (!set) byName.set(name, (set = new Set()));
    set.add(address);
  };
  const instanceNames = new Map<string, string[]>();
  const addressOf = new Map<string, string>();
  for (const inst of instances) {
    if (inst.metadata?.deletionTimestamp || !allowed(inst.metadata?.namespace)) continue;
    const address = instanceAddress(inst, eips);
    if (!address) continue;
    addressOf.set(objectKey(inst), address);
    const names = [`${inst.metadata?.name}.${inst.metadata?.namespace}.${zone}`, ...(inst.spec.hostnames ?? []).map((h) => `${h.toLowerCase()}.${zone}`)];
    for (const n of names) add(n, address);
    instanceNames.set(objectKey(inst), names);
  }
  const projectNames = new Map<string, string[]>();
  const oldestFirst = projects
    .filter((p) => !p.metadata?.deletionTimestamp && allowed(p.metadata?.namespace))
    .sort((a, b) => (a.metadata?.creationTimestamp ?? '').localeCompare(b.metadata?.creationTimestamp ?? '') || objectKey(a).localeCompare(objectKey(b)));
  const taken = new Set<string>();
  for (const p of oldestFirst) {
    const name = p.metadata?.name ?? '';
    if (taken.has(name)) continue;
    const addresses = (p.spec.guests ?? []).map((g) => addressOf.get(`${p.metadata?.namespace}/${g}`)).filter((a): a is string => a !== undefined);
    if (!addresses.length) continue;
    taken.add(name);
    const names = [`${name}.${zone}`, `*.${name}.${zone}`];
    for (const n of names) for (const a of addresses) add(n, a);
    projectNames.set(objectKey(p), names);
  }
  const rrsets: RRset[] = [...byName.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, set]) => ({ name, type: 'A' as const, ttl: settings.ttl, records: [...set].sort() }));
  return { rrsets, instanceNames, projectNames };
}
