/**
 * `dig` (bind9-dnsutils) as the DNS client nobody here wrote: one query, its status and answers.
 */
import { execFileP, requireBinary } from './process.js';

export interface DigResult {
  /** NOERROR, NXDOMAIN, REFUSED, ... */
  status: string;
  /** A-record data of the answer section, sorted. */
  addresses: string[];
  aa: boolean;
}

export async function dig(server: string, port: number, name: string, type = 'A', opts: { tcp?: boolean } = {}): Promise<DigResult> {
  const bin = requireBinary('dig');
  const { stdout } = await execFileP(bin, [`@${server}`, '-p', String(port), name, type, '+norecurse', '+time=2', '+tries=1', ...(opts.tcp ? ['+tcp'] : ['+notcp'])]);
  const status = /status: ([A-Z]+)/.exec(stdout)?.[1] ?? 'NONE';
  const flags = /;; flags: ([a-z ]+);/.exec(stdout)?.[1]?.split(' ') ?? [];
  const answer = stdout.split(';; ANSWER SECTION:')[1]?.split('\n\n')[0] ?? '';
  const addresses = answer
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[3] === type && f[4])
    .map((f) => f[4]!)
    .sort();
  return { status, addresses, aa: flags.includes('aa') };
}
