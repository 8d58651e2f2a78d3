/**
 * PowerDNSClient: the zones and RRsets of a PowerDNS authoritative server through its HTTP
 * API (`/api/v1/servers/{server}/zones`). stratus marks every RRset it writes with a comment
 * whose `account` is `OWNER_ACCOUNT`; `syncOwned` changes only RRsets carrying that mark and
 * never one that someone else wrote — a wanted name held by a foreign RRset is reported as
 * a conflict and left alone.
 */
import { ReconcileError } from '../../runtime/errors.js';
import type { RRset } from '../dnsserver/zone.js';
import { canonicalName } from '../dnsserver/zone.js';

/** The comment account that marks an RRset as stratus's. */
export const OWNER_ACCOUNT = 'stratus';
const OWNER_COMMENT = 'managed by stratus; changes are overwritten';

interface PdnsRecord {
  content: string;
  disabled: boolean;
}
interface PdnsComment {
  content: string;
  account: string;
}
interface PdnsRRset {
  name: string;
  type: string;
  ttl?: number;
  records: PdnsRecord[];
  comments?: PdnsComment[];
}
interface PdnsZone {
  name: string;
  rrsets?: PdnsRRset[];
}

export interface PowerDNSSettings {
  /** Base URL, e.g. http://127.0.0.1:8081 */
  url: string;
  apiKey: string;
  serverId?: string;
  timeoutMs?: number;
}

export interface SyncResult {
  /** RRsets written (created or repaired). */
  written: number;
  /** Owned RRsets deleted because nothing wants them any more. */
  deleted: number;
  /** `name/type` wanted but held by an RRset stratus does not own. */
  conflicts: string[];
  /** RRsets stratus owns in the zone after the sync. */
  owned: number;
}

const fqdn = (name: string): string => `${canonicalName(name)}.`;
const isOwned = (rr: PdnsRRset): boolean => (rr.comments ?? []).some((c) => c.account === OWNER_ACCOUNT);

export class PowerDNSClient {
  private readonly base: string;

  constructor(private readonly s: PowerDNSSettings) {
    this.base = `${s.url.replace(/\/+$/, '')}/api/v1/servers/${encodeURIComponent(s.serverId ?? 'localhost')}`;
  }

  /** The zone's RRsets, or undefined when PowerDNS has no such zone. */
  async getZone(zone: string, signal?: AbortSignal): Promise<PdnsRRset[] | undefined> {
    const res = await this.request('GET', `/zones/${encodeURIComponent(fqdn(zone))}`, undefined, signal);
    if (res.status === 404 || res.status === 422) return undefined;
    return ((await this.body<PdnsZone>(res, 'cannot read zone')).rrsets ?? []);
  }

  /** Creates a Native zone with an SOA and an NS record `ns.ZONE.` (PowerDNS writes both). */
  async createZone(zone: string, signal?: AbortSignal): Promise<void> {
    const res = await this.request('POST', '/zones', { name: fqdn(zone), kind: 'Native', nameservers: [`ns.${fqdn(zone)}`] }, signal);
    if (res.status === 409) return; // created meanwhile
    await this.body(res, 'cannot create zone');
  }

  /**
   * Makes the owned RRsets of `zone` exactly `wanted`: missing or different ones are
   * replaced (that is how a record deleted behind stratus's back returns), owned ones not
   * wanted are deleted, foreign ones are never touched. Creates the zone when absent.
   */
  async syncOwned(zone: string, wanted: RRset[], signal?: AbortSignal): Promise<SyncResult> {
    let current = await this.getZone(zone, signal);
    if (!current) {
      await this.createZone(zone, signal);
      current = (await this.getZone(zone, signal)) ?? [];
    }
    const key = (name: string, type: string): string => `${canonicalName(name)}/${type}`;
    const existing = new Map(current.map((rr) => [key(rr.name, rr.type), rr]));
    const want = new Map(wanted.map((rr) => [key(rr.name, rr.type), rr]));
    const changes: Record<string, unknown>[] = [];
    const conflicts: string[] = [];
    let written = 0;
    let deleted = 0;
    for (const [k, rr] of want) {
      const have = existing.get(k);
      if (have && !isOwned(have)) {
        conflicts.push(k);
        continue;
      }
      const same =
        have &&
        have.ttl === rr.ttl &&
        JSON.stringify(have.records.filter((r) => !r.disabled).map((r) => r.content).sort()) === JSON.stringify([...rr.records].sort()) &&
        have.records.every((r) => !r.disabled);
      if (same) continue;
      changes.push({
        name: fqdn(rr.name),
        type: rr.type,
        ttl: rr.ttl,
        changetype: 'REPLACE',
        records: rr.records.map((content) => ({ content, disabled: false })),
        comments: [{ content: OWNER_COMMENT, account: OWNER_ACCOUNT }],
      });
      written++;
    }
    for (const [k, rr] of existing) {
      if (!isOwned(rr) || want.has(k)) continue;
      changes.push({ name: rr.name, type: rr.type, changetype: 'DELETE' });
      deleted++;
    }
    if (changes.length) {
      const res = await this.request('PATCH', `/zones/${encodeURIComponent(fqdn(zone))}`, { rrsets: changes }, signal);
      await this.body(res, 'cannot write records');
    }
    return { written, deleted, conflicts: conflicts.sort(), owned: want.size - conflicts.length };
  }

  /** Deletes every RRset stratus owns in `zone` (the DNSZone is going); the zone itself stays. */
  async removeOwned(zone: string, signal?: AbortSignal): Promise<number> {
    const current = await this.getZone(zone, signal);
    if (!current) return 0;
    const mine = current.filter(isOwned);
    if (!mine.length) return 0;
    const res = await this.request('PATCH', `/zones/${encodeURIComponent(fqdn(zone))}`, { rrsets: mine.map((rr) => ({ name: rr.name, type: rr.type, changetype: 'DELETE' })) }, signal);
    await this.body(res, 'cannot delete records');
    return mine.length;
  }

  private async request(method: string, path: string, body: unknown, signal?: AbortSignal): Promise<Response> {
    const timeout = AbortSignal.timeout(this.s.timeoutMs ?? 10_000);
    try {
      return await fetch(`${this.base}${path}`, {
        method,
        headers: { 'X-API-Key': this.s.apiKey, Accept: 'application/json', ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
    } catch (err) {
      throw new ReconcileError('PowerDNSUnreachable', `cannot reach the PowerDNS API at ${this.s.url}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private async body<T>(res: Response, context: string): Promise<T> {
    const text = await res.text();
    if (res.status === 401 || res.status === 403) {
      throw new ReconcileError('PowerDNSUnauthorized', `${context}: the PowerDNS API refused the API key (HTTP ${res.status})`, false);
    }
    if (!res.ok) {
      let detail = text;
      try {
        detail = (JSON.parse(text) as { error?: string }).error ?? text;
      } catch {
        // not JSON: keep the text
      }
      throw new ReconcileError('PowerDNSError', `${context}: HTTP ${res.status}: ${detail.slice(0, 500)}`);
    }
    return (text ? JSON.parse(text) : {}) as T;
  }
}
