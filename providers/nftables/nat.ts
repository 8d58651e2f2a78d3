/**
 * Elastic IPs on a Linux host as NAT: in one nftables table stratus owns (family `ip`, its
 * name from the node's `spec.elasticIP.table`), per bound address
 *
 *   prerouting   ip daddr EIP dnat to PRIVATE                 (inbound from the uplink)
 *   output       ip daddr EIP dnat to PRIVATE                 (from the host itself)
 *   postrouting  ip saddr PRIVATE oifname UPLINK snat to EIP  (the machine's outbound)
 *
 * and the address held on the uplink (`mode: address`: `EIP/32` on the interface) or
 * answered for (`mode: proxyARP`: `ip neigh add proxy EIP`).
 *
 * Guarantees: no other table is ever read or written. Every rule carries the comment
 * `stratus-eip UID EIP PRIVATE`, which is how a binding is observed and removed. `bind`
 * replaces a uid's rules in one nft transaction (`nft -f`: atomic), so a move between two
 * machines of one host never has both or neither rule set; it is idempotent and repairs
 * drift (a flushed chain, a deleted table, a removed address). `unbind` of an absent
 * binding is success. Flows to the address that were open before a move are forgotten
 * (`conntrack -D`), so the next packet follows the new rule.
 *
 * Assumes root, `nft` and `ip` (iproute2), and IPv4 forwarding on in the namespace (checked:
 * a clear `ForwardingDisabled` error rather than a silent black hole). Commands run in the
 * node's `netns` when it names one (`ip netns exec`).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { isIPv4 } from 'node:net';
import { ReconcileError } from '../../runtime/errors.js';

const execFileP = promisify(execFile);

export interface NatSettings {
  /** The uplink addresses arrive on and outbound traffic leaves by. */
  interface: string;
  mode: 'address' | 'proxyARP';
  /** The nftables table (family ip) stratus owns. */
  table: string;
  /** Network namespace of the uplink and the machines' bridge; absent: the host's. */
  netns?: string;
}

/** One address translated to one private address. */
export interface NatBinding {
  /** The ElasticIP's uid. */
  uid: string;
  address: string;
  privateAddress: string;
}

/** What is programmed for a uid. */
export interface NatObservation {
  /** The rules found (undefined: none). */
  rules?: { address: string; privateAddress: string; count: number };
  /** Whether the address is on (or proxied on) the uplink. */
  held: boolean;
}

const CHAINS = [
  { name: 'prerouting', hook: 'prerouting', priority: 'dstnat' },
  { name: 'output', hook: 'output', priority: '-100' },
  { name: 'postrouting', hook: 'postrouting', priority: 'srcnat' },
] as const;

const RULES_PER_BINDING = CHAINS.length;
const COMMENT = /^stratus-eip (\S+) (\S+) (\S+)$/;

interface RuleInfo {
  chain: string;
  handle: number;
  uid: string;
  address: string;
  privateAddress: string;
}

export class NftablesNat {
  constructor(readonly settings: NatSettings) {
    if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(settings.table)) throw new ReconcileError('InvalidSpec', `"${settings.table}" is not an nftables table name`, false);
    if (!/^[A-Za-z0-9][A-Za-z0-9_.@-]{0,14}$/.test(settings.interface)) throw new ReconcileError('InvalidSpec', `"${settings.interface}" is not an interface name`, false);
  }

  /** Where this NAT lives: bindings in the same place share one table. */
  get location(): string {
    return `nftables:${this.settings.netns ?? ''}:${this.settings.table}`;
  }

  async observe(uid: string, signal?: AbortSignal): Promise<NatObservation> {
    const mine = (await this.rules(signal)).filter((r) => r.uid === uid);
    const first = mine[0];
    if (!first) return { held: false };
    const consistent = mine.every((r) => r.address === first.address && r.privateAddress === first.privateAddress);
    const chains = new Set(mine.map((r) => r.chain));
    return {
      rules: { address: first.address, privateAddress: first.privateAddress, count: consistent && chains.size === RULES_PER_BINDING ? mine.length : -1 },
      held: await this.holds(first.address, signal),
    };
  }

  /** True when `b` is programmed exactly (three rules, the address held). */
  static matches(o: NatObservation, b: Pick<NatBinding, 'address' | 'privateAddress'>): boolean {
    return o.held && o.rules?.count === RULES_PER_BINDING && o.rules.address === b.address && o.rules.privateAddress === b.privateAddress;
  }

  async bind(b: NatBinding, signal?: AbortSignal): Promise<void> {
    for (const a of [b.address, b.privateAddress]) if (!isIPv4(a)) throw new ReconcileError('InvalidSpec', `"${a}" is not an IPv4 address`, false);
    const forwarding = (await this.run('sysctl', ['-n', 'net.ipv4.ip_forward'], signal)).trim();
    if (forwarding !== '1') {
      throw new ReconcileError('ForwardingDisabled', `IPv4 forwarding is off${this.where()} (sysctl net.ipv4.ip_forward=1 is needed to route elastic IPs)`, false);
    }
    const before = (await this.rules(signal)).filter((r) => r.uid === b.uid);
    const comment = `stratus-eip ${b.uid} ${b.address} ${b.privateAddress}`;
    const t = `ip ${this.settings.table}`;
    const script = [
      ...this.skeleton(),
      ...before.map((r) => `delete rule ${t} ${r.chain} handle ${r.handle}`),
      `add rule ${t} prerouting ip daddr ${b.address} dnat to ${b.privateAddress} comment "${comment}"`,
      `add rule ${t} output ip daddr ${b.address} dnat to ${b.privateAddress} comment "${comment}"`,
      `add rule ${t} postrouting ip saddr ${b.privateAddress} oifname "${this.settings.interface}" snat to ${b.address} comment "${comment}"`,
    ];
    await this.nft(script, signal);
    // A different address before (spec.address changed) is no longer ours to hold.
    for (const old of new Set(before.map((r) => r.address))) if (old !== b.address) await this.release(old, signal);
    await this.hold(b.address, signal);
    if (before.some((r) => r.privateAddress !== b.privateAddress || r.address !== b.address)) await this.forgetFlows(b.address, signal);
  }

  /** Removes every rule of `uid` and gives up the addresses they named. */
  async unbind(uid: string, signal?: AbortSignal): Promise<void> {
    const mine = (await this.rules(signal)).filter((r) => r.uid === uid);
    if (mine.length > 0) {
      const t = `ip ${this.settings.table}`;
      await this.nft(mine.map((r) => `delete rule ${t} ${r.chain} handle ${r.handle}`), signal);
    }
    for (const address of new Set(mine.map((r) => r.address))) {
      await this.release(address, signal);
      await this.forgetFlows(address, signal);
    }
  }

  /** Gives up `address` on the uplink (whether or not rules name it); absent is success. */
  async release(address: string, signal?: AbortSignal): Promise<void> {
    if (!(await this.holds(address, signal))) return;
    const dev = this.settings.interface;
    if (this.settings.mode === 'proxyARP') await this.run('ip', ['neigh', 'del', 'proxy', address, 'dev', dev], signal);
    else await this.run('ip', ['addr', 'del', `${address}/32`, 'dev', dev], signal);
  }

  /** The uids with rules in the table (for finding orphans). */
  async uids(signal?: AbortSignal): Promise<string[]> {
    return [...new Set((await this.rules(signal)).map((r) => r.uid))];
  }

  private skeleton(): string[] {
    const t = `ip ${this.settings.table}`;
    return [`add table ${t}`, ...CHAINS.map((c) => `add chain ${t} ${c.name} { type nat hook ${c.hook} priority ${c.priority}; policy accept; }`)];
  }

  private async hold(address: string, signal?: AbortSignal): Promise<void> {
    if (await this.holds(address, signal)) return;
    const dev = this.settings.interface;
    if (this.settings.mode === 'proxyARP') await this.run('ip', ['neigh', 'replace', 'proxy', address, 'dev', dev], signal);
    else await this.run('ip', ['addr', 'replace', `${address}/32`, 'dev', dev], signal);
  }

  private async holds(address: string, signal?: AbortSignal): Promise<boolean> {
    const dev = this.settings.interface;
    if (this.settings.mode === 'proxyARP') {
      const out = await this.run('ip', ['-j', 'neigh', 'show', 'proxy', 'dev', dev], signal);
      return (JSON.parse(out || '[]') as { dst?: string }[]).some((n) => n.dst === address);
    }
    const out = await this.run('ip', ['-j', '-4', 'addr', 'show', 'dev', dev], signal);
    const links = JSON.parse(out || '[]') as { addr_info?: { local?: string; prefixlen?: number }[] }[];
    return links.some((l) => (l.addr_info ?? []).some((a) => a.local === address && a.prefixlen === 32));
  }

  /** The stratus rules of the table; an absent table has none. */
  private async rules(signal?: AbortSignal): Promise<RuleInfo[]> {
    let out: string;
    try {
      out = await this.run('nft', ['-j', 'list', 'table', 'ip', this.settings.table], signal);
    } catch (err) {
      if (/No such file or directory/.test(String((err as Error).message))) return [];
      throw err;
    }
    const items = (JSON.parse(out) as { nftables?: { rule?: { chain: string; handle: number; comment?: string } }[] }).nftables ?? [];
    const rules: RuleInfo[] = [];
    for (const item of items) {
      const m = item.rule?.comment ? COMMENT.exec(item.rule.comment) : null;
      if (item.rule && m) rules.push({ chain: item.rule.chain, handle: item.rule.handle, uid: m[1]!, address: m[2]!, privateAddress: m[3]! });
    }
    return rules;
  }

  /** Drops conntrack entries of flows to `address` (none is success; no conntrack tool: skipped). */
  private async forgetFlows(address: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.run('conntrack', ['-D', '--orig-dst', address], signal);
    } catch {
      // exit status 1 with "0 flow entries have been deleted" is the common case
    }
  }

  private async nft(lines: string[], signal?: AbortSignal): Promise<void> {
    await this.run('nft', ['-f', '-'], signal, lines.join('\n') + '\n');
  }

  private where(): string {
    return this.settings.netns ? ` in network namespace ${this.settings.netns}` : ' on this host';
  }

  private async run(cmd: string, args: string[], signal?: AbortSignal, input?: string): Promise<string> {
    const [file, argv] = this.settings.netns ? ['ip', ['netns', 'exec', this.settings.netns, cmd, ...args]] : [cmd, args];
    try {
      const child = execFileP(file, argv, { timeout: 15_000, ...(signal ? { signal } : {}) });
      if (input !== undefined) {
        child.child.stdin?.end(input);
      }
      return (await child).stdout;
    } catch (err) {
      const e = err as { stderr?: string; message: string; code?: string };
      if (e.code === 'ENOENT') throw new ReconcileError('NatToolMissing', `${file} is not installed (make deps installs nftables and iproute2)`, false);
      throw new ReconcileError('NatError', `${cmd} ${args.join(' ')}${this.where()}: ${(e.stderr ?? '').trim() || e.message}`);
    }
  }
}
