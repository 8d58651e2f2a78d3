/**
 * EmbeddedDNSServer: an authoritative DNS server over UDP and TCP for the zones stratus
 * keeps (`stratus serve --dns-listen`). Packets are decoded and encoded by `dns-packet`;
 * this file only decides answers:
 *
 * - a name in a zone with records of the asked type → those records (AA set);
 * - a name that exists (or has names below it) without that type → NOERROR, no answer, the
 *   SOA in authority (NODATA);
 * - a name that does not exist → the closest wildcard `*.ANCESTOR` if there is one (RFC 4592:
 *   only when no name exists between), otherwise NXDOMAIN with the SOA;
 * - a name in no zone → REFUSED (it is not a resolver).
 *
 * Zones are replaced whole by `setZone` (the controller recomputes them), so a lookup sees
 * one version of a zone, never half an update.
 */
import { createSocket, type Socket } from 'node:dgram';
import { createServer, type Server, type Socket as TcpSocket } from 'node:net';
import * as dnsPacket from 'dns-packet';
import { canonicalName, inZone, type RRset } from './zone.js';

const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
/** UDP answers larger than this (no EDNS) are truncated, so the client retries over TCP. */
const UDP_LIMIT = 512;

interface ZoneData {
  zone: string;
  serial: number;
  ttl: number;
  /** name → type → RRset */
  records: Map<string, Map<string, RRset>>;
  /** every name that exists, including empty non-terminals (for NODATA vs NXDOMAIN) */
  names: Set<string>;
}

export interface Answer {
  rcode: number;
  answers: dnsPacket.Answer[];
  authority: dnsPacket.Answer[];
}

export class EmbeddedDNSServer {
  private zones = new Map<string, ZoneData>();
  private udp: Socket | undefined;
  private tcp: Server | undefined;
  private readonly tcpClients = new Set<TcpSocket>();

  /** Replaces every record of `zone` (its SOA and NS are synthesised). */
  setZone(zone: string, rrsets: RRset[], ttl = 60): void {
    const name = canonicalName(zone);
    const records = new Map<string, Map<string, RRset>>();
    const names = new Set<string>([name]);
    for (const rr of rrsets) {
      const owner = canonicalName(rr.name);
      if (!inZone(owner, name)) throw new Error(`record "${owner}" is outside zone "${name}"`);
      let byType = records.get(owner);
      if (!byType) records.set(owner, (byType = new Map()));
      byType.set(rr.type, { ...rr, name: owner });
      for (let n = owner; n !== name; n = n.slice(n.indexOf('.') + 1)) names.add(n);
    }
    const previous = this.zones.get(name);
    // serials only grow, so a secondary could follow; seconds since epoch, bumped when equal
    const serial = Math.max(Math.floor(Date.now() / 1000), (previous?.serial ?? 0) + 1) >>> 0;
    this.zones.set(name, { zone: name, serial, ttl, records, names });
  }

  removeZone(zone: string): void {
    this.zones.delete(canonicalName(zone));
  }

  zoneNames(): string[] {
    return [...this.zones.keys()];
  }

  /** The answer to one question (exported for tests and the bench's in-process check). */
  lookup(qname: string, qtype: string): Answer {
    const name = canonicalName(qname);
    const zone = this.zoneOf(name);
    if (!zone) return { rcode: RCODE.REFUSED, answers: [], authority: [] };
    const soa = this.soa(zone);
    if (name === zone.zone && (qtype === 'SOA' || qtype === 'NS')) {
      return { rcode: RCODE.NOERROR, answers: [qtype === 'SOA' ? soa : this.ns(zone)], authority: [] };
    }
    let owner = name;
    let byType = zone.records.get(name);
    if (!byType && !zone.names.has(name)) {
      // closest encloser, then its wildcard
      let encloser = name;
      do encloser = encloser.slice(encloser.indexOf('.') + 1);
      while (encloser !== zone.zone && !zone.names.has(encloser));
      owner = `*.${encloser}`;
      byType = zone.records.get(owner);
      if (!byType) return { rcode: RCODE.NXDOMAIN, answers: [], authority: [soa] };
    }
    const wanted = qtype === 'ANY' ? [...(byType?.values() ?? [])] : [byType?.get(qtype)].filter((r): r is RRset => r !== undefined);
    if (wanted.length === 0) return { rcode: RCODE.NOERROR, answers: [], authority: [soa] };
    const answers: dnsPacket.Answer[] = [];
    for (const rr of wanted) for (const data of rr.records) answers.push({ name, type: rr.type, class: 'IN', ttl: rr.ttl, data });
    return { rcode: RCODE.NOERROR, answers, authority: [] };
  }

  /** Answers one wire-format query; `undefined` when it cannot even be parsed (dropped). */
  respond(query: Buffer, udp: boolean): Buffer | undefined {
    let packet: dnsPacket.DecodedPacket;
    try {
      packet = dnsPacket.decode(query);
    } catch {
      return undefined;
    }
    if (packet.type !== 'query') return undefined;
    const question = packet.questions?.[0];
    const base = { type: 'response' as const, id: packet.id ?? 0, questions: packet.questions ?? [] };
    const recursion = (packet.flags ?? 0) & dnsPacket.RECURSION_DESIRED;
    if (!question || packet.questions?.length !== 1) return dnsPacket.encode({ ...base, flags: recursion | RCODE.FORMERR });
    if (question.class !== 'IN' && question.class !== 'ANY') return dnsPacket.encode({ ...base, flags: recursion | RCODE.NOTIMP });
    const a = this.lookup(question.name, question.type);
    const aa = a.rcode === RCODE.REFUSED ? 0 : dnsPacket.AUTHORITATIVE_ANSWER;
    const out = dnsPacket.encode({ ...base, flags: aa | recursion | a.rcode, answers: a.answers, authorities: a.authority });
    if (udp && out.length > UDP_LIMIT) {
      return dnsPacket.encode({ ...base, flags: aa | recursion | dnsPacket.TRUNCATED_RESPONSE | a.rcode });
    }
    return out;
  }

  /** Listens on UDP and TCP at `host:port` (port 0: one free port, the same for both). */
  async listen(host: string, port: number): Promise<{ host: string; port: number }> {
    const family = host.includes(':') ? 'udp6' : 'udp4';
    for (let attempt = 0; ; attempt++) {
      const udp = createSocket(family);
      const udpPort = await new Promise<number>((resolve, reject) => {
        udp.once('error', (err) => {
          try {
            udp.close();
          } catch {
            // already closed by the failed bind
          }
          reject(err);
        });
        udp.bind(port, host, () => resolve(udp.address().port));
      });
      const tcp = createServer((sock) => this.serveTcp(sock));
      try {
        await new Promise<void>((resolve, reject) => {
          tcp.once('error', reject);
          tcp.listen(udpPort, host, () => resolve());
        });
      } catch (err) {
        udp.close();
        // an ephemeral UDP port may be taken on TCP: try another unless the port was asked for
        if (port === 0 && attempt < 16) continue;
        throw err;
      }
      udp.on('message', (msg, rinfo) => {
        const out = this.respond(msg, true);
        if (out) udp.send(out, rinfo.port, rinfo.address);
      });
      udp.on('error', () => undefined);
      this.udp = udp;
      this.tcp = tcp;
      return { host, port: udpPort };
    }
  }

  /** TCP: each message is prefixed by its 2-byte length (RFC 1035 4.2.2); many per connection. */
  private serveTcp(sock: TcpSocket): void {
    this.tcpClients.add(sock);
    let buf = Buffer.alloc(0);
    sock.setTimeout(30_000, () => sock.destroy());
    sock.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (buf.length < 2 + len) break;
        const msg = buf.subarray(2, 2 + len);
        buf = buf.subarray(2 + len);
        const out = this.respond(msg, false);
        if (!out) {
          sock.destroy();
          return;
        }
        const head = Buffer.alloc(2);
        head.writeUInt16BE(out.length);
        sock.write(Buffer.concat([head, out]));
      }
    });
    sock.on('error', () => undefined);
    sock.on('close', () => this.tcpClients.delete(sock));
  }

  async close(): Promise<void> {
    for (const s of this.tcpClients) s.destroy();
    await Promise.all([
      new Promise<void>((resolve) => (this.udp ? this.udp.close(() => resolve()) : resolve())),
      new Promise<void>((resolve) => (this.tcp ? this.tcp.close(() => resolve()) : resolve())),
    ]);
    this.udp = undefined;
    this.tcp = undefined;
  }

  private zoneOf(name: string): ZoneData | undefined {
    let best: ZoneData | undefined;
    for (const z of this.zones.values()) if (inZone(name, z.zone) && (!best || z.zone.length > best.zone.length)) best = z;
    return best;
  }

  private soa(z: ZoneData): dnsPacket.Answer {
    return {
      name: z.zone,
      type: 'SOA',
      class: 'IN',
      ttl: z.ttl,
      data: { mname: `ns.${z.zone}`, rname: `hostmaster.${z.zone}`, serial: z.serial, refresh: 3600, retry: 600, expire: 86400, minimum: z.ttl },
    };
  }

  private ns(z: ZoneData): dnsPacket.Answer {
    return { name: z.zone, type: 'NS', class: 'IN', ttl: z.ttl, data: `ns.${z.zone}` };
  }
}
