/**
 * Reaching a VM Instance's guest from a terminal.
 *
 *   stratus console NAME [--namespace NS] [--kubeconfig FILE]
 *     attaches to the domain's serial console (`virsh console`; leave with Ctrl-]). The
 *     Instance needs `spec.libvirt.console: serial` (or pty).
 *   stratus ssh NAME [--user U] [-i KEY] [--known-hosts F] [--namespace NS] [--kubeconfig FILE] [-- CMD...]
 *     runs the system `ssh` to `status.ipAddress` as the image's default cloud user (see
 *     `guestLoginUser`), with CMD if given (as with ssh, its words are joined by spaces and
 *     run by the guest's shell: quote a script as one argument); the exit status is ssh's.
 */
import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import type { ComputeNode, Instance } from '../crds/types.js';
import { KubeClient } from '../runtime/client.js';
import { Resources } from '../controllers/resources.js';
import { guestLoginUser } from '../providers/libvirt/guest-user.js';
import { DEFAULT_KUBECONFIG } from './token.js';

async function lookup(raw: Record<string, unknown>, name: string): Promise<{ inst: Instance; node: ComputeNode | undefined }> {
  const client = KubeClient.fromFile(String(raw.kubeconfig));
  try {
    const ns = String(raw.namespace);
    const inst = await client.resource<Instance>(Resources.instances).get(ns, name);
    if (!inst) throw new Error(`Instance "${name}" does not exist in namespace ${ns}`);
    const nodeName = inst.spec.nodeName;
    const node = nodeName ? await client.resource<ComputeNode>(Resources.computeNodes).get(undefined, nodeName) : undefined;
    return { inst, node };
  } finally {
    client.close();
  }
}

/** Runs `cmd` attached to this terminal; resolves its exit status. */
function attach(cmd: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: 'inherit' });
    child.once('error', (err) => reject(new Error(`cannot run ${cmd}: ${err.message}`)));
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

export function registerGuest(program: Command): void {
  program
    .command('console')
    .description('attach to a VM Instance\'s serial console (leave with Ctrl-])')
    .argument('<name>', 'the Instance')
    .option('--namespace <ns>', 'namespace of the Instance', 'default')
    .option('--kubeconfig <file>', 'kubeconfig of the API server', DEFAULT_KUBECONFIG)
    .action(async (name: string, raw: Record<string, unknown>) => {
      const { inst, node } = await lookup(raw, name);
      if (!node?.spec.libvirt) throw new Error(`Instance "${name}" is not on a libvirt ComputeNode (node: ${inst.spec.nodeName ?? 'none yet'})`);
      const mode = inst.spec.libvirt?.console;
      if (mode !== 'serial' && mode !== 'pty') throw new Error(`Instance "${name}" has no serial console: set spec.libvirt.console to serial`);
      const uid = inst.metadata?.uid;
      if (!uid) throw new Error(`Instance "${name}" has no uid yet`);
      process.exitCode = await attach('virsh', ['-c', node.spec.libvirt.uri, 'console', '--force', uid]);
    });
  program
    .command('ssh')
    .description('ssh into a VM Instance as its image\'s cloud user (optionally running a command)')
    .argument('<name>', 'the Instance')
    .argument('[command...]', 'command to run on the guest (after --)')
    .option('--user <user>', 'login user (default: the image\'s cloud user, or the compute.stratus.dev/ssh-user annotation)')
    .option('-i, --identity <file>', 'private key file (default: ssh\'s own)')
    .option('--known-hosts <file>', 'known_hosts file (default: ssh\'s own); a new guest\'s key is added to it')
    .option('--namespace <ns>', 'namespace of the Instance', 'default')
    .option('--kubeconfig <file>', 'kubeconfig of the API server', DEFAULT_KUBECONFIG)
    .action(async (name: string, command: string[], raw: Record<string, unknown>) => {
      const { inst } = await lookup(raw, name);
      const address = inst.status?.ipAddress;
      if (!address) throw new Error(`Instance "${name}" has no IP address yet (status.state: ${inst.status?.state ?? 'unknown'})`);
      const user = raw.user === undefined ? guestLoginUser(inst.spec.image, inst.metadata?.annotations) : String(raw.user);
      const args = ['-l', user, '-o', 'StrictHostKeyChecking=accept-new'];
      if (raw.identity !== undefined) args.push('-i', String(raw.identity), '-o', 'IdentitiesOnly=yes');
      if (raw.knownHosts !== undefined) args.push('-o', `UserKnownHostsFile=${String(raw.knownHosts)}`);
      if (!command.length && process.stdin.isTTY) args.push('-t');
      args.push(address);
      if (command.length) args.push('--', ...command);
      process.exitCode = await attach('ssh', args);
    });
}
