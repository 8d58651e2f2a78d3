/**
 * `connectLibvirt`: one connection per libvirt URI in this process. Handles for the same URI
 * share one session — one virsh shell and one domain backend — which matters for `test:///`
 * URIs, whose state lives in the process that opened them: two sessions would be two
 * different worlds.
 *
 * A daemon URI's session closes with its last handle. A `test:///` session outlives its
 * handles — closing and reopening a node's connection (the controllers do that when a
 * ComputeNode's spec changes) must not wipe the simulated node — until
 * `closeLibvirtSessions()` (or process exit, which ends the virsh child through its stdin).
 */
import type { MachineProvider, NodeConnection, NodeDescription } from '../machine.js';
import { ReconcileError } from '../../runtime/errors.js';
import { VirshShell } from './virsh-shell.js';
import { BindingDomains, VirshDomains, asProviderError, type DomainBackend } from './domains.js';
import { LibvirtMachines } from './machines.js';
import { parseXml, childrenNamed, child } from './xml.js';
import type { VirshAccess } from './networks.js';

export interface LibvirtConnectOptions {
  /** Any libvirt URI: `qemu:///system`, `qemu+ssh://host/system`, `qemu+unix:///session?socket=...`, `test:///default`, `test:///abs/file.xml`. */
  uri: string;
  /** Pool holding base images; machines' volumes (boot clone, data disks, seed) go there too. Default `default`. */
  imagePool?: string;
  /** libvirt domain type; default: `kvm` when the node offers it, else `qemu` (TCG), `test` on the test driver. */
  domainType?: string;
  /** Graceful shutdown budget before `update` destroys a domain (default 60 s; `libvirt.shutdownTimeoutSeconds` overrides). */
  shutdownTimeoutMs?: number;
  /**
   * libvirt network for machines whose spec has no networks (default `default`, as
   * virt-install does), used only when it exists on the node at create time; `null`: none.
   */
  defaultNetwork?: string | null;
  /** Longest a single virsh command may take before the shell is restarted (default 60 s). */
  commandTimeoutMs?: number;
}

/** A `NodeConnection` with the libvirt-specific handles other stratus code needs. */
export interface LibvirtNodeConnection extends NodeConnection, VirshAccess {
  readonly uri: string;
  readonly imagePool: string;
  /** The session's virsh shell (pools, volumes, networks; domains on `test:///`). */
  shell(): VirshShell;
  domains(): DomainBackend;
  machines(): MachineProvider & LibvirtMachines;
  /** The libvirt domain type used for new domains. */
  domainType(): Promise<string>;
}

interface Session {
  uri: string;
  shell: VirshShell;
  domains: DomainBackend;
  refs: number;
  domainType?: Promise<string>;
}

const sessions = new Map<string, Session>();

function isTestUri(uri: string): boolean {
  return /^test(\+[a-z]+)?:/i.test(uri);
}

function openSession(uri: string, commandTimeoutMs?: number): Session {
  let s = sessions.get(uri);
  if (!s) {
    const shell = new VirshShell(uri, commandTimeoutMs);
    const domains = isTestUri(uri) ? new VirshDomains(shell) : new BindingDomains(uri, shell);
    s = { uri, shell, domains, refs: 0 };
    sessions.set(uri, s);
  }
  s.refs++;
  return s;
}

async function detectDomainType(sh: VirshShell): Promise<string> {
  const caps = parseXml(await sh.run(['capabilities']));
  const types = new Set<string>();
  for (const guest of childrenNamed(caps, 'guest')) {
    const arch = child(guest, 'arch');
    if (arch?.attrs.name !== 'x86_64' && arch?.attrs.name !== 'i686') continue;
    for (const d of childrenNamed(arch, 'domain')) if (d.attrs.type) types.add(d.attrs.type);
  }
  for (const t of ['kvm', 'qemu', 'test']) if (types.has(t)) return t;
  const first = [...types][0];
  if (!first) throw new ReconcileError('LibvirtError', 'the node offers no x86 domain type');
  return first;
}

/** Opens (or joins) the connection for `options.uri`. Nothing is contacted until first use. */
export function connectLibvirt(options: LibvirtConnectOptions): LibvirtNodeConnection {
  const session = openSession(options.uri, options.commandTimeoutMs);
  const imagePool = options.imagePool ?? 'default';
  let closed = false;
  let machines: LibvirtMachines | undefined;
  const conn: LibvirtNodeConnection = {
    uri: options.uri,
    imagePool,
    shell: () => session.shell,
    domains: () => session.domains,
    domainType: () => {
      if (options.domainType) return Promise.resolve(options.domainType);
      session.domainType ??= detectDomainType(session.shell).catch((err: unknown) => {
        session.domainType = undefined;
        throw asProviderError(err, 'cannot read the node capabilities');
      });
      return session.domainType;
    },
    machines: () => {
      machines ??= new LibvirtMachines(conn, {
        shutdownTimeoutMs: options.shutdownTimeoutMs ?? 60_000,
        defaultNetwork: options.defaultNetwork === undefined ? 'default' : options.defaultNetwork,
      });
      return machines;
    },
    async describe(): Promise<NodeDescription> {
      try {
        const info = await session.domains.nodeInfo();
        const version = await session.shell.run(['version']);
        const lib = /Using library:\s*libvirt\s+(\S+)/.exec(version)?.[1];
        const hyp = /Running hypervisor:\s*(.+)/.exec(version)?.[1]?.trim();
        const owned = await conn.machines().listOwned();
        const names = (await session.shell.run(['list', '--all', '--name']))
          .split('\n')
          .map((l) => l.trim())
          .filter(Boolean)
          .sort();
        return {
          capacity: { cpus: info.cpus, memoryMiB: Math.floor(info.memoryKiB / 1024) },
          version: [`libvirt ${lib ?? 'unknown'}`, hyp].filter(Boolean).join(' / '),
          machineCount: owned.length,
          machineNames: names,
        };
      } catch (err) {
        throw asProviderError(err, 'cannot describe the node');
      }
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      if (--session.refs > 0 || isTestUri(session.uri)) return;
      await endSession(session);
    },
  };
  return conn;
}

async function endSession(session: Session): Promise<void> {
  if (sessions.get(session.uri) === session) sessions.delete(session.uri);
  await session.domains.close();
  await session.shell.close();
}

/**
 * Ends every libvirt session of this process, open handles or not, and with them the
 * `test:///` worlds: for process shutdown and for tests' cleanup.
 */
export async function closeLibvirtSessions(): Promise<void> {
  await Promise.all([...sessions.values()].map(endSession));
}
