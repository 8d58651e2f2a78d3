/**
 * The cloud-init NoCloud seed of a machine: `meta-data` (instance-id = uid, hostname),
 * `user-data` (SSH keys, hostname, and the user's own `userData`) and, when the machine has
 * networks, `network-config` (v2: static addresses or DHCP, matched by MAC). Everything is
 * produced by a YAML serialiser, never by string concatenation, so no value can inject keys.
 *
 * How `userData` combines with stratus's part: a `#cloud-config` document is merged
 * (stratus's SSH keys are appended to `ssh_authorized_keys`, `hostname` is set unless the
 * user set it); anything else (a `#!` script, `#cloud-boothook`, `#include`, ...) travels as
 * its own part of a MIME multipart message beside stratus's cloud-config.
 */
import { randomBytes } from 'node:crypto';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { ReconcileError } from '../../runtime/errors.js';
import type { MachineSpec } from '../machine.js';
import { derivedMac } from './domain-xml.js';
import { buildIso } from './iso9660.js';

export interface SeedFiles {
  'meta-data': string;
  'user-data': string;
  'network-config'?: string;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const PART_TYPES: [string, string][] = [
  ['#!', 'text/x-shellscript'],
  ['#cloud-boothook', 'text/cloud-boothook'],
  ['#include', 'text/x-include-url'],
  ['#upstart-job', 'text/upstart-job'],
  ['#part-handler', 'text/part-handler'],
  ['#cloud-config-archive', 'text/cloud-config-archive'],
  ['#cloud-config-jsonp', 'text/cloud-config-jsonp'],
];

function userData(spec: MachineSpec): string {
  const own: Record<string, unknown> = {
    hostname: spec.hostname,
    ssh_authorized_keys: [...spec.sshAuthorizedKeys],
  };
  const given = spec.userData?.replace(/^\uFEFF/, '');
  if (!given || !given.trim()) return `#cloud-config\n${stringifyYaml(own)}`;
  const firstLine = given.split('\n', 1)[0]?.trim() ?? '';
  if (firstLine === '#cloud-config') {
    let doc: unknown;
    try {
      doc = parseYaml(given);
    } catch (err) {
      throw new ReconcileError('InvalidSpec', `userData: not valid cloud-config YAML: ${(err as Error).message}`, false);
    }
    if (doc !== null && doc !== undefined && !isRecord(doc)) {
      throw new ReconcileError('InvalidSpec', 'userData: a #cloud-config document must be a mapping', false);
    }
    const merged: Record<string, unknown> = { ...(doc ?? {}) };
    const keys = merged.ssh_authorized_keys;
    merged.ssh_authorized_keys = [...(Array.isArray(keys) ? keys : []), ...spec.sshAuthorizedKeys];
    if (merged.hostname === undefined) merged.hostname = spec.hostname;
    return `#cloud-config\n${stringifyYaml(merged)}`;
  }
  const type = PART_TYPES.find(([prefix]) => firstLine.startsWith(prefix))?.[1] ?? 'text/x-shellscript';
  let boundary = '';
  do boundary = `==stratus-${randomBytes(12).toString('hex')}==`;
  while (given.includes(boundary));
  const part = (contentType: string, body: string): string =>
    `--${boundary}\nContent-Type: ${contentType}; charset="utf-8"\nMIME-Version: 1.0\nContent-Transfer-Encoding: base64\n\n` +
    `${(Buffer.from(body).toString('base64').match(/.{1,76}/g) ?? []).join('\n')}\n`;
  return (
    `Content-Type: multipart/mixed; boundary="${boundary}"\nMIME-Version: 1.0\n\n` +
    part('text/cloud-config', `#cloud-config\n${stringifyYaml(own)}`) +
    part(type, given) +
    `--${boundary}--\n`
  );
}

/** The seed's files. Pure apart from the random MIME boundary. */
export function seedFiles(spec: MachineSpec): SeedFiles {
  const files: SeedFiles = {
    'meta-data': stringifyYaml({ 'instance-id': spec.uid.toLowerCase(), 'local-hostname': spec.hostname }),
    'user-data': userData(spec),
  };
  if (spec.networks.length) {
    const ethernets: Record<string, unknown> = {};
    spec.networks.forEach((n, i) => {
      const nic: Record<string, unknown> = { match: { macaddress: (n.mac ?? derivedMac(spec.uid, i)).toLowerCase() }, 'set-name': `eth${i}` };
      if (n.address) {
        nic.addresses = [n.address];
        if (n.gateway) nic.routes = [{ to: n.gateway.includes(':') ? '::/0' : '0.0.0.0/0', via: n.gateway }];
      } else {
        nic.dhcp4 = true;
      }
      ethernets[`eth${i}`] = nic;
    });
    files['network-config'] = stringifyYaml({ version: 2, ethernets });
  }
  return files;
}

/**
 * The seed as an ISO 9660 image labelled `cidata` with a Joliet tree (providers/libvirt/iso9660.ts),
 * built in-process: no `xorriso` process, no temp dir per machine.
 */
export function buildSeedIso(files: SeedFiles): Promise<Buffer> {
  const entries = Object.entries(files).filter((e): e is [string, string] => e[1] !== undefined);
  return Promise.resolve(buildIso('cidata', entries.map(([name, content]) => ({ name, data: Buffer.from(content) }))));
}
