/**
 * Storage pools and volumes through the connection's virsh shell (the binding has no
 * storage API). Every function is idempotent: creating what exists and deleting what is
 * absent succeed.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReconcileError } from '../../runtime/errors.js';
import { VirshError, type VirshShell } from './virsh-shell.js';
import { escapeXml, parseXml, child } from './xml.js';

const POOL_ABSENT = /Storage pool not found|no storage pool with matching/i;
const VOLUME_ABSENT = /Storage volume not found|no storage vol(ume)? with matching|failed to get vol/i;

export interface VolumeInfo {
  name: string;
  path: string;
  format: string;
  capacityBytes: number;
}

/** Runs `fn` with a private temp file holding `content`; virsh reads XML from files. */
export async function withTempFile<T>(name: string, content: string | Buffer, fn: (path: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'stratus-virsh-'));
  try {
    const path = join(dir, name);
    await writeFile(path, content);
    return await fn(path);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function poolMissing(pool: string, err: unknown): never {
  if (err instanceof VirshError && POOL_ABSENT.test(err.message)) {
    throw new ReconcileError('PoolNotFound', `storage pool ${JSON.stringify(pool)} does not exist on the node: ${err.message}`);
  }
  throw err;
}

export function parseVolumeXml(xml: string): VolumeInfo {
  const root = parseXml(xml);
  const cap = child(root, 'capacity');
  const unit = (cap?.attrs.unit ?? 'bytes').toLowerCase();
  const mult: Record<string, number> = { bytes: 1, b: 1, kib: 1024, k: 1024, mib: 1024 ** 2, m: 1024 ** 2, gib: 1024 ** 3, g: 1024 ** 3, tib: 1024 ** 4, t: 1024 ** 4 };
  return {
    name: child(root, 'name')?.text.trim() ?? '',
    path: child(root, 'target/path')?.text.trim() ?? '',
    format: child(root, 'target/format')?.attrs.type ?? 'raw',
    capacityBytes: Number(cap?.text.trim() ?? 0) * (mult[unit] ?? 1),
  };
}

/** A volume's path, format and size; undefined when the pool has no such volume. */
export async function volumeInfo(sh: VirshShell, pool: string, name: string): Promise<VolumeInfo | undefined> {
  try {
    const xml = await sh.runOrAbsent(['vol-dumpxml', '--pool', pool, name], VOLUME_ABSENT);
    return xml === undefined ? undefined : parseVolumeXml(xml);
  } catch (err) {
    return poolMissing(pool, err);
  }
}

/** Names of the pool's volumes. */
export async function listVolumes(sh: VirshShell, pool: string): Promise<string[]> {
  let out: string;
  try {
    out = await sh.run(['vol-list', '--pool', pool]);
  } catch (err) {
    return poolMissing(pool, err);
  }
  return out
    .split('\n')
    .filter((l) => l.trim() && !/^\s*Name\s+Path/.test(l) && !/^-+$/.test(l.trim()))
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter(Boolean);
}

/** A qcow2 volume of `capacityBytes` backed (copy-on-write) by `base`. */
export async function createCowClone(sh: VirshShell, pool: string, name: string, base: VolumeInfo): Promise<VolumeInfo> {
  const existing = await volumeInfo(sh, pool, name);
  if (existing) return existing;
  const xml =
    `<volume>\n  <name>${escapeXml(name)}</name>\n  <capacity unit='bytes'>${base.capacityBytes}</capacity>\n` +
    `  <allocation unit='bytes'>0</allocation>\n` +
    `  <target><format type='qcow2'/></target>\n` +
    `  <backingStore><path>${escapeXml(base.path)}</path><format type='${escapeXml(base.format)}'/></backingStore>\n</volume>\n`;
  await withTempFile('volume.xml', xml, (file) => sh.run(['vol-create', '--pool', pool, '--file', file]));
  return (await volumeInfo(sh, pool, name)) ?? fail(`volume ${name} vanished after creation`);
}

/** An empty, thinly provisioned volume (`qcow2` or `raw`) of `bytes`. */
export async function createVolume(sh: VirshShell, pool: string, name: string, bytes: number, format: 'qcow2' | 'raw'): Promise<VolumeInfo> {
  const existing = await volumeInfo(sh, pool, name);
  if (existing) return existing;
  // Thin: allocation 0, so nothing is preallocated (and the test driver's fixed 100 GiB pools last).
  await sh.run(['vol-create-as', '--pool', pool, '--name', name, '--capacity', `${bytes}b`, '--allocation', '0', '--format', format]);
  return (await volumeInfo(sh, pool, name)) ?? fail(`volume ${name} vanished after creation`);
}

/**
 * Writes `content` into a volume (`vol-upload`, which streams over any libvirt URI). A write
 * that fails — including a driver or pool that cannot upload at all ("not supported") — is a
 * `ReconcileError` with `reason` (e.g. `SeedUploadFailed`) naming `what` was not written: a
 * volume left empty must never pass for one holding its content. Retryable unless the driver
 * cannot upload; a lost connection stays a connection error.
 */
export async function uploadVolume(sh: VirshShell, pool: string, name: string, content: Buffer, failure: { reason: string; what: string }): Promise<void> {
  try {
    await withTempFile('upload', content, (file) => sh.run(['vol-upload', '--pool', pool, '--vol', name, '--file', file]));
  } catch (err) {
    if (err instanceof VirshError && err.connectionLost) throw err;
    const unsupported = err instanceof VirshError && /not supported/i.test(err.message);
    const text = err instanceof Error ? err.message : String(err);
    throw new ReconcileError(failure.reason, `cannot write ${failure.what} into volume ${name} of pool ${pool}: ${text}`, !unsupported);
  }
}

export async function deleteVolume(sh: VirshShell, pool: string, name: string): Promise<void> {
  try {
    await sh.runOrAbsent(['vol-delete', '--pool', pool, name], VOLUME_ABSENT);
  } catch (err) {
    if (err instanceof VirshError && POOL_ABSENT.test(err.message)) return;
    throw err;
  }
}

function fail(message: string): never {
  throw new ReconcileError('StorageFailed', message);
}
