/**
 * Domain operations, behind one small interface with two implementations:
 *
 * - `BindingDomains` — the `@unraid/libvirt` N-API binding, for daemon URIs (`qemu:///...`,
 *   `qemu+ssh://...`, `qemu+unix://...`). The handle reconnects on the next call after
 *   any connection failure.
 * - `VirshDomains` — the connection's long-lived virsh shell, for `test:///` URIs, whose
 *   state lives in the process that opened them: domains must live in the same world as the
 *   pools, volumes and networks that only virsh can reach.
 *
 * Both report libvirt's own error text; "absent" outcomes are returned, not thrown.
 */
import { Hypervisor, DomainState, type Domain } from '@unraid/libvirt';
import { ReconcileError } from '../../runtime/errors.js';
import { VirshError, type VirshShell } from './virsh-shell.js';
import { withTempFile } from './storage.js';

export type DomainRunState = 'nostate' | 'running' | 'blocked' | 'paused' | 'shutdown' | 'shutoff' | 'crashed' | 'pmsuspended';

export interface NodeInfo {
  cpus: number;
  memoryKiB: number;
}

export interface DomainBackend {
  readonly kind: 'binding' | 'virsh';
  /** The domain's run state, or undefined when no domain has this UUID. */
  state(uuid: string): Promise<DomainRunState | undefined>;
  /** The domain's XML (`inactive`: the persistent definition), or undefined when absent. */
  xml(uuid: string, inactive?: boolean): Promise<string | undefined>;
  define(xml: string): Promise<void>;
  start(uuid: string): Promise<void>;
  /** Asks the guest to power off by pressing the ACPI power button (never through the guest agent). */
  shutdown(uuid: string): Promise<void>;
  destroy(uuid: string): Promise<void>;
  resume(uuid: string): Promise<void>;
  undefine(uuid: string): Promise<void>;
  /** UUIDs of every domain (active or not) on the node. */
  list(): Promise<string[]>;
  nodeInfo(): Promise<NodeInfo>;
  close(): Promise<void>;
}

export const DOMAIN_ABSENT = /Domain not found|no domain with matching|failed to get domain/i;
const NOT_RUNNING = /domain is not running|not running/i;
const ALREADY_RUNNING = /domain is already running|already active/i;
const CONNECTION_LOST =
  /client socket is closed|Cannot recv data|Cannot write data|End of file while reading|Broken pipe|Connection reset|not connected|invalid connection|Failed to connect socket|unable to connect|failed to connect to the hypervisor|no valid connection/i;

/** Turns libvirt's message for a lost connection into `NodeUnreachable`. */
export function asProviderError(err: unknown, context: string): Error {
  if (err instanceof ReconcileError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if ((err instanceof VirshError && err.connectionLost) || CONNECTION_LOST.test(message)) {
    return new ReconcileError('NodeUnreachable', message, true);
  }
  if (/Not enough free space|No space left on device/i.test(message)) {
    return new ReconcileError('InsufficientStorage', `${context}: ${message}`, true);
  }
  return new ReconcileError('LibvirtError', `${context}: ${message}`, true);
}

const VIRSH_STATES: Record<string, DomainRunState> = {
  running: 'running',
  idle: 'blocked',
  blocked: 'blocked',
  paused: 'paused',
  'in shutdown': 'shutdown',
  'shut off': 'shutoff',
  crashed: 'crashed',
  pmsuspended: 'pmsuspended',
  'no state': 'nostate',
};

export class VirshDomains implements DomainBackend {
  readonly kind = 'virsh';
  constructor(private readonly sh: VirshShell) {}

  async state(uuid: string): Promise<DomainRunState | undefined> {
    const out = await this.sh.runOrAbsent(['domstate', '--domain', uuid], DOMAIN_ABSENT);
    if (out === undefined) return undefined;
    return VIRSH_STATES[out.trim().split('\n')[0]?.trim() ?? ''] ?? 'nostate';
  }
  xml(uuid: string, inactive = false): Promise<string | undefined> {
    return this.sh.runOrAbsent(['dumpxml', '--domain', uuid, ...(inactive ? ['--inactive'] : [])], DOMAIN_ABSENT);
  }
  async define(xml: string): Promise<void> {
    await withTempFile('domain.xml', xml, (file) => this.sh.run(['define', '--file', file]));
  }
  async start(uuid: string): Promise<void> {
    await this.sh.runOrAbsent(['start', '--domain', uuid], ALREADY_RUNNING);
  }
  async shutdown(uuid: string): Promise<void> {
    // The test driver takes no shutdown mode (it has no ACPI and no agent to choose between).
    await this.sh.runOrAbsent(['shutdown', '--domain', uuid], NOT_RUNNING);
  }
  async destroy(uuid: string): Promise<void> {
    await this.sh.runOrAbsent(['destroy', '--domain', uuid], new RegExp(`${NOT_RUNNING.source}|${DOMAIN_ABSENT.source}`, 'i'));
  }
  async resume(uuid: string): Promise<void> {
    await this.sh.runOrAbsent(['resume', '--domain', uuid], /not paused|not suspended/i);
  }
  async undefine(uuid: string): Promise<void> {
    await undefineWithVirsh(this.sh, uuid);
  }
  async list(): Promise<string[]> {
    const out = await this.sh.run(['list', '--all', '--uuid']);
    return out.split('\n').map((l) => l.trim()).filter(Boolean);
  }
  async nodeInfo(): Promise<NodeInfo> {
    return parseNodeInfo(await this.sh.run(['nodeinfo']));
  }
  async close(): Promise<void> {
    // the shell belongs to the connection
  }
}

/**
 * Undefines with `--nvram --snapshots-metadata --checkpoints-metadata` so UEFI variables and
 * snapshots made behind stratus's back do not block deletion; drivers that reject those flags
 * (the test driver) get a plain undefine.
 */
export async function undefineWithVirsh(sh: VirshShell, uuid: string): Promise<void> {
  try {
    await sh.runOrAbsent(['undefine', '--domain', uuid, '--nvram', '--snapshots-metadata', '--checkpoints-metadata'], DOMAIN_ABSENT);
  } catch (err) {
    if (!(err instanceof VirshError) || !/unsupported flags|not supported/i.test(err.message)) throw err;
    await sh.runOrAbsent(['undefine', '--domain', uuid], DOMAIN_ABSENT);
  }
}

export function parseNodeInfo(out: string): NodeInfo {
  const cpus = Number(/^CPU\(s\):\s+(\d+)/m.exec(out)?.[1]);
  const mem = /^Memory size:\s+(\d+)\s*KiB/m.exec(out)?.[1];
  if (!cpus || !mem) throw new ReconcileError('LibvirtError', `unexpected nodeinfo output: ${out.slice(0, 200)}`);
  return { cpus, memoryKiB: Number(mem) };
}

const BINDING_STATES: Record<number, DomainRunState> = {
  [DomainState.NOSTATE]: 'nostate',
  [DomainState.RUNNING]: 'running',
  [DomainState.BLOCKED]: 'blocked',
  [DomainState.PAUSED]: 'paused',
  [DomainState.SHUTDOWN]: 'shutdown',
  [DomainState.SHUTOFF]: 'shutoff',
  [DomainState.CRASHED]: 'crashed',
  [DomainState.PMSUSPENDED]: 'pmsuspended',
};

export class BindingDomains implements DomainBackend {
  readonly kind = 'binding';
  private hv: Hypervisor | undefined;
  private opening: Promise<Hypervisor> | undefined;

  /** `sh` serves what the binding lacks (undefine flags); it talks to the same daemon. */
  constructor(
    private readonly uri: string,
    private readonly sh: VirshShell,
  ) {}

  private async open(): Promise<Hypervisor> {
    if (this.hv) return this.hv;
    this.opening ??= (async () => {
      const hv = new Hypervisor({ uri: this.uri });
      try {
        await hv.connectOpen();
      } catch (err) {
        throw new ReconcileError('NodeUnreachable', err instanceof Error ? err.message : String(err), true);
      }
      this.hv = hv;
      return hv;
    })().finally(() => {
      this.opening = undefined;
    });
    return this.opening;
  }

  /**
   * Runs `fn` on an open handle. A lost connection (daemon restarted, network cut) drops the
   * handle and `fn` runs once more on a fresh one — every operation here is idempotent or
   * tolerates its own repetition — so one restart of libvirtd costs no failed call.
   */
  private async call<T>(fn: (hv: Hypervisor) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const hv = await this.open();
      try {
        return await fn(hv);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        if (!CONNECTION_LOST.test(message)) throw err;
        if (this.hv === hv) {
          this.hv = undefined;
          void hv.connectClose().catch(() => undefined);
        }
        if (attempt > 0) throw err;
      }
    }
  }

  private async lookup(hv: Hypervisor, uuid: string): Promise<Domain | undefined> {
    try {
      return await hv.domainLookupByUUIDString(uuid);
    } catch (err) {
      if (err instanceof Error && DOMAIN_ABSENT.test(err.message)) return undefined;
      throw err;
    }
  }

  private async withDomain(uuid: string, fn: (d: Domain) => Promise<void>, tolerate?: RegExp): Promise<void> {
    await this.call(async (hv) => {
      const d = await this.lookup(hv, uuid);
      if (!d) throw new ReconcileError('LibvirtError', `no domain with uuid ${uuid}`);
      try {
        await fn(d);
      } catch (err) {
        if (tolerate && err instanceof Error && tolerate.test(err.message)) return;
        throw err;
      }
    });
  }

  state(uuid: string): Promise<DomainRunState | undefined> {
    return this.call(async (hv) => {
      const d = await this.lookup(hv, uuid);
      if (!d) return undefined;
      try {
        return BINDING_STATES[(await d.getInfo()).state] ?? 'nostate';
      } catch (err) {
        if (err instanceof Error && DOMAIN_ABSENT.test(err.message)) return undefined;
        throw err;
      }
    });
  }
  xml(uuid: string, inactive = false): Promise<string | undefined> {
    return this.call(async (hv) => {
      const d = await this.lookup(hv, uuid);
      if (!d) return undefined;
      try {
        return await d.getXMLDesc(inactive ? 2 : 0);
      } catch (err) {
        if (err instanceof Error && DOMAIN_ABSENT.test(err.message)) return undefined;
        throw err;
      }
    });
  }
  async define(xml: string): Promise<void> {
    await this.call((hv) => hv.domainDefineXML(xml));
  }
  start(uuid: string): Promise<void> {
    return this.withDomain(uuid, (d) => d.create(), ALREADY_RUNNING);
  }
  /**
   * Through virsh on the same daemon: the binding's `shutdown()` is `virDomainShutdown` with no
   * flags, with which qemu's driver prefers the guest agent whenever one is connected (the
   * guest then runs `shutdown -h`, and no power key is ever pressed). `--mode acpi` is the
   * ACPI power-button request this provider promises.
   */
  async shutdown(uuid: string): Promise<void> {
    await this.sh.runOrAbsent(['shutdown', '--domain', uuid, '--mode', 'acpi'], NOT_RUNNING);
  }
  async destroy(uuid: string): Promise<void> {
    await this.call(async (hv) => {
      const d = await this.lookup(hv, uuid);
      if (!d) return;
      try {
        await d.destroy();
      } catch (err) {
        if (err instanceof Error && (NOT_RUNNING.test(err.message) || DOMAIN_ABSENT.test(err.message))) return;
        throw err;
      }
    });
  }
  resume(uuid: string): Promise<void> {
    return this.withDomain(uuid, (d) => d.resume(), /not paused|not suspended/i);
  }
  async undefine(uuid: string): Promise<void> {
    // The binding's undefine takes no flags; virsh on the same daemon handles nvram and snapshots.
    await undefineWithVirsh(this.sh, uuid);
  }
  list(): Promise<string[]> {
    return this.call(async (hv) => {
      const all = await hv.connectListAllDomains();
      const ids: string[] = [];
      for (const d of all) {
        try {
          ids.push(await d.getUUIDString());
        } catch {
          // vanished between list and read
        }
      }
      return ids;
    });
  }
  nodeInfo(): Promise<NodeInfo> {
    return this.call(async (hv) => {
      const info = await hv.nodeGetInfo();
      return { cpus: info.cpus, memoryKiB: info.memory };
    });
  }
  async close(): Promise<void> {
    const hv = this.hv;
    this.hv = undefined;
    if (hv) await hv.connectClose().catch(() => undefined);
  }
}
