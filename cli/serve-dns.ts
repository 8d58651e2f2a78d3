/**
 * The embedded DNS server of `stratus serve`: `--dns-listen HOST:PORT` (UDP and TCP, default
 * 127.0.0.1:5353; `off` disables) serving `--dns-zone` (default stratus.internal) with
 * `--dns-ttl` seconds on every record. The controllers fill it (controllers/dns.ts).
 */
import { isIP } from 'node:net';
import { EmbeddedDNSServer } from '../providers/dnsserver/server.js';
import type { EmbeddedDNS } from '../controllers/dns.js';
import { log } from '../runtime/log.js';

export const DNS_DEFAULTS = { listen: '127.0.0.1:5353', zone: 'stratus.internal', ttl: 60 } as const;

const ZONE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** `HOST:PORT` (`[v6]:PORT` for IPv6) → parts; `off` → undefined; anything else throws naming the flag. */
export function parseDnsListen(value: string): { host: string; port: number } | undefined {
  const v = value.trim();
  if (v === 'off') return undefined;
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(v);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!m || !host || !isIP(host) || !Number.isInteger(port) || port > 65535) {
    throw new Error(`--dns-listen: "${value}" is not HOST:PORT with an IP address (e.g. 127.0.0.1:5353) or "off"`);
  }
  return { host, port };
}

export function parseDnsZone(value: string): string {
  const z = value.trim().toLowerCase().replace(/\.$/, '');
  if (!ZONE.test(z) || z.length > 200) throw new Error(`--dns-zone: "${value}" is not a DNS name (e.g. stratus.internal)`);
  return z;
}

export function parseDnsTtl(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 86400) throw new Error(`--dns-ttl: "${value}" is not a whole number of seconds from 1 to 86400`);
  return n;
}

/** Starts the server (or nothing for `off`); the caller closes `server`. */
export async function startEmbeddedDNS(listen: string, zone: string, ttl: number): Promise<EmbeddedDNS | undefined> {
  const at = parseDnsListen(listen);
  if (!at) return undefined;
  const name = parseDnsZone(zone);
  const server = new EmbeddedDNSServer();
  // answer SOA/NXDOMAIN for the zone from the first packet on, before the controllers sync
  server.setZone(name, [], ttl);
  let bound: { host: string; port: number };
  try {
    bound = await server.listen(at.host, at.port);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    // as with the legacy proxy: a taken port (an mDNS responder on 5353) does not stop the control plane
    log.error({ component: 'dns', listen }, 'DNS not served: the address is in use');
    process.stderr.write(`stratus: DNS not served: ${listen} is in use (choose another with --dns-listen, or "off")\n`);
    return undefined;
  }
  log.info({ component: 'dns', host: bound.host, port: bound.port, zone: name }, 'DNS server listening');
  process.stdout.write(`stratus: DNS for zone ${name} at ${bound.host.includes(':') ? `[${bound.host}]` : bound.host}:${bound.port} (UDP and TCP)\n`);
  return { server, zone: name, ttl };
}
