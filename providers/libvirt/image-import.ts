/**
 * Imports a disk image file (a distribution's cloud image, or one `stratus image build` made)
 * into a node's image pool as a base volume that Instances name in `spec.image`.
 *
 * Contract: the file must be a qcow2 or raw disk image (`qemu-img info` decides, so a file
 * that only carries an image's name is refused); an existing volume of that name is an error
 * unless `replace` is set, so an import never overwrites a base image that clones still use
 * by accident. The bytes travel with `vol-upload`, which works over any libvirt URI (local,
 * `qemu+ssh://`), and the pool is refreshed so libvirt probes the format.
 */
import { execFile } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { ReconcileError } from '../../runtime/errors.js';
import type { VirshShell } from './virsh-shell.js';
import { deleteVolume, volumeInfo, type VolumeInfo } from './storage.js';

const execFileP = promisify(execFile);

export interface ImageFileInfo {
  format: 'qcow2' | 'raw';
  virtualBytes: number;
  fileBytes: number;
}

/** What `qemu-img` says the file is; a clear error for anything but a qcow2 or raw image. */
export async function inspectImageFile(file: string): Promise<ImageFileInfo> {
  let fileBytes: number;
  try {
    fileBytes = (await stat(file)).size;
  } catch {
    throw new ReconcileError('InvalidImage', `${file}: no such file`, false);
  }
  let info: { format?: string; 'virtual-size'?: number; 'backing-filename'?: string };
  try {
    const { stdout } = await execFileP('qemu-img', ['info', '--output=json', file]);
    info = JSON.parse(stdout) as typeof info;
  } catch (err) {
    throw new ReconcileError('InvalidImage', `${file}: qemu-img cannot read it: ${(err as { stderr?: string }).stderr?.trim() ?? String(err)}`, false);
  }
  if (info.format !== 'qcow2' && info.format !== 'raw') {
    throw new ReconcileError('InvalidImage', `${file} is a ${info.format ?? 'unknown'} image; only qcow2 and raw disk images can be imported`, false);
  }
  if (info['backing-filename']) {
    throw new ReconcileError('InvalidImage', `${file} has a backing file (${info['backing-filename']}); flatten it first (qemu-img convert)`, false);
  }
  // A raw "image" with no partition table or file system is most likely not a disk at all;
  // qemu-img calls any file raw, so at least refuse empty files.
  if (fileBytes === 0) throw new ReconcileError('InvalidImage', `${file} is empty`, false);
  return { format: info.format, virtualBytes: info['virtual-size'] ?? fileBytes, fileBytes };
}

export async function importImage(
  sh: VirshShell,
  pool: string,
  name: string,
  file: string,
  opts: { replace?: boolean } = {},
): Promise<VolumeInfo> {
  if (!/^[A-Za-z0-9][-A-Za-z0-9_.]{0,252}$/.test(name)) {
    throw new ReconcileError('InvalidSpec', `image name ${JSON.stringify(name)} must start with a letter or digit and hold only letters, digits, '-', '_' and '.'`, false);
  }
  const info = await inspectImageFile(file);
  const existing = await volumeInfo(sh, pool, name);
  if (existing && !opts.replace) {
    throw new ReconcileError('AlreadyExists', `pool ${JSON.stringify(pool)} already has a volume ${JSON.stringify(name)} (${existing.path}); pass --replace to overwrite it`, false);
  }
  if (existing) await deleteVolume(sh, pool, name);
  // A raw volume of the file's size receives the file's bytes as they are (qcow2 header included).
  await sh.run(['vol-create-as', '--pool', pool, '--name', name, '--capacity', `${info.fileBytes}b`, '--format', 'raw']);
  try {
    await sh.run(['vol-upload', '--pool', pool, '--vol', name, '--file', file]);
    await sh.run(['pool-refresh', pool]);
  } catch (err) {
    await deleteVolume(sh, pool, name).catch(() => undefined);
    throw err;
  }
  const v = await volumeInfo(sh, pool, name);
  if (!v) throw new ReconcileError('StorageFailed', `volume ${name} vanished after the upload`);
  if (v.format !== info.format) {
    throw new ReconcileError('StorageFailed', `pool ${pool} sees volume ${name} as ${v.format}, the file is ${info.format}`);
  }
  return v;
}
