/**
 * Puts a network namespace (a named one, or a container's, by PID) on a VLAN: a veth pair
 * whose host end is an OVS access port with the VLAN tag and whose other end sits in the
 * namespace under the requested name (e.g. `eth1`) with its address, up.
 *
 * Guarantees: `attachNamespace` is idempotent (a second call repairs the tag and address and
 * changes nothing else) and cleans up after itself when a step fails; `detachNamespace`
 * removes the port and both veth ends, and absent is success. The host end's name is derived
 * from `ownerUid` and `ifName`, so it survives controller restarts and one owner can have
 * one interface per name.
 *
 * Assumes `ip` (iproute2) and `nsenter` (util-linux) are installed and we are root. The
 * host end must live where ovs-vswitchd runs: the current namespace in production,
 * `switchNetns` when vswitchd runs in a namespace of its own (tests).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { ReconcileError } from '../../runtime/errors.js';
import { type EnsureResult, type OvsSwitch } from './switch.js';

const execFileP = promisify(execFile);

/** A named namespace (`ip netns add NAME`) or the namespace of a process (a container's init). */
export type NamespaceTarget = { netns: string } | { pid: number };

export interface NamespaceAttachment {
  bridge: string;
  vlan: number;
  /** The uid of the object owning the attachment (a container's Instance, a test endpoint). */
  ownerUid: string;
  /** The Network the attachment belongs to; lets `OvsSwitch.retagNetwork` find the port. */
  networkUid?: string;
  target: NamespaceTarget;
  /** The interface name inside the namespace (default `eth1`). */
  ifName?: string;
  /** CIDR, e.g. `10.99.0.1/24`. */
  address?: string;
  mac?: string;
  /** Namespace of ovs-vswitchd when it is not ours (tests run it in a private one). */
  switchNetns?: string;
}

export interface AttachResult {
  /** The OVS port / host-side veth name. */
  hostIfName: string;
  port: EnsureResult;
}

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

/** `st` + 12 hex digits of sha256(ownerUid/ifName): stable, unique per owner and interface, ≤ 15 chars. */
export function hostInterfaceName(ownerUid: string, ifName = 'eth1'): string {
  return 'st' + createHash('sha256').update(`${ownerUid}/${ifName}`).digest('hex').slice(0, 12);
}

function targetPath(target: NamespaceTarget): string {
  return 'pid' in target ? `/proc/${target.pid}/ns/net` : `/run/netns/${target.netns}`;
}

function targetArg(target: NamespaceTarget): string {
  return 'pid' in target ? String(target.pid) : target.netns;
}

function describeTarget(target: NamespaceTarget): string {
  return 'pid' in target ? `the network namespace of PID ${target.pid}` : `network namespace ${target.netns}`;
}

async function run(cmd: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileP(cmd, args, { timeout: 15_000 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${(e.stderr ?? '').trim() || e.message}`);
  }
}

/** `ip` in the switch's namespace. */
function ipSwitch(switchNetns: string | undefined, args: string[]): Promise<string> {
  return run('ip', switchNetns ? ['-n', switchNetns, ...args] : args);
}

/** `ip` inside the target namespace. */
function ipTarget(target: NamespaceTarget, args: string[]): Promise<string> {
  return run('nsenter', [`--net=${targetPath(target)}`, '--', 'ip', ...args]);
}

async function linkExists(ip: (args: string[]) => Promise<string>, name: string): Promise<boolean> {
  try {
    await ip(['link', 'show', 'dev', name]);
    return true;
  } catch {
    return false;
  }
}

async function configureInside(a: NamespaceAttachment, ifName: string): Promise<void> {
  const ip = (args: string[]): Promise<string> => ipTarget(a.target, args);
  if (a.mac) await ip(['link', 'set', 'dev', ifName, 'address', a.mac]);
  if (a.address) await ip(['addr', 'replace', a.address, 'dev', ifName]);
  await ip(['link', 'set', 'dev', ifName, 'up']);
  await ip(['link', 'set', 'dev', 'lo', 'up']);
}

/** Attaches `a.target` to VLAN `a.vlan` on `a.bridge`. */
export async function attachNamespace(sw: OvsSwitch, a: NamespaceAttachment): Promise<AttachResult> {
  const ifName = a.ifName ?? 'eth1';
  if (!IFNAME.test(ifName)) throw new ReconcileError('InvalidName', `interface name ${JSON.stringify(ifName)} is not a valid Linux interface name`, false);
  const hostIfName = hostInterfaceName(a.ownerUid, ifName);
  const hostIp = (args: string[]): Promise<string> => ipSwitch(a.switchNetns, args);
  const inside = (args: string[]): Promise<string> => ipTarget(a.target, args);
  const portSpec = {
    bridge: a.bridge,
    port: hostIfName,
    vlan: a.vlan,
    ownerUid: a.ownerUid,
    ...(a.networkUid ? { networkUid: a.networkUid } : {}),
    interfaceType: '' as const,
  };

  try {
    await inside(['link', 'show', 'dev', 'lo']);
  } catch (err) {
    throw new ReconcileError('NamespaceNotFound', `cannot enter ${describeTarget(a.target)}: ${(err as Error).message}`);
  }

  if (await linkExists(hostIp, hostIfName)) {
    if (await linkExists(inside, ifName)) {
      // Already attached: repair what may have drifted.
      const port = await sw.ensureAccessPort(portSpec);
      await hostIp(['link', 'set', 'dev', hostIfName, 'up']);
      await configureInside(a, ifName);
      return { hostIfName, port };
    }
    // A half-made pair from an interrupted attach: start over.
    await hostIp(['link', 'del', 'dev', hostIfName]).catch(() => undefined);
  }

  // The peer is created directly in the target under its final name.
  try {
    await hostIp(['link', 'add', hostIfName, 'type', 'veth', 'peer', 'name', ifName, 'netns', targetArg(a.target)]);
  } catch (err) {
    throw new ReconcileError('AttachFailed', `cannot create veth pair ${hostIfName}/${ifName} into ${describeTarget(a.target)}: ${(err as Error).message}`);
  }
  try {
    await hostIp(['link', 'set', 'dev', hostIfName, 'up']);
    const port = await sw.ensureAccessPort(portSpec);
    // vswitchd has applied the port by now; if it could not open the device (e.g. the host
    // end is not in vswitchd's namespace) it says so in Interface.error.
    const observed = (await sw.listOwnedPorts(a.ownerUid)).find((p) => p.name === hostIfName);
    const failure = observed?.interfaces.find((i) => i.error)?.error;
    if (failure) throw new ReconcileError('AttachFailed', `ovs-vswitchd cannot use ${hostIfName}: ${failure}`);
    await configureInside(a, ifName);
    return { hostIfName, port };
  } catch (err) {
    await sw.removePort(hostIfName).catch(() => undefined);
    await hostIp(['link', 'del', 'dev', hostIfName]).catch(() => undefined);
    if (err instanceof ReconcileError) throw err;
    throw new ReconcileError('AttachFailed', `cannot attach ${describeTarget(a.target)} to bridge ${a.bridge}: ${(err as Error).message}`);
  }
}

/** Removes the OVS port and the veth pair of `ownerUid`/`ifName`; true when something was removed. */
export async function detachNamespace(
  sw: OvsSwitch,
  d: { ownerUid: string; ifName?: string; switchNetns?: string },
): Promise<boolean> {
  const hostIfName = hostInterfaceName(d.ownerUid, d.ifName ?? 'eth1');
  const hostIp = (args: string[]): Promise<string> => ipSwitch(d.switchNetns, args);
  const removedPort = await sw.removePort(hostIfName);
  let removedLink = false;
  if (await linkExists(hostIp, hostIfName)) {
    try {
      await hostIp(['link', 'del', 'dev', hostIfName]);
      removedLink = true;
    } catch (err) {
      // Gone in between (the namespace's owner exited) is fine.
      if (await linkExists(hostIp, hostIfName)) {
        throw new ReconcileError('DetachFailed', `cannot delete veth ${hostIfName}: ${(err as Error).message}`);
      }
    }
  }
  return removedPort || removedLink;
}
