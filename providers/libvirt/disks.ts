/**
 * Growing a domain's data disks (the `diskResize` capability). A data disk is the volume
 * `<uid>-disk-<name>.qcow2` in the node's image pool. A running (or paused) domain's disk
 * grows through qemu (`virsh blockresize`, virDomainBlockResize): the guest sees the new size
 * at once. A stopped domain's volume grows in the pool (`virsh vol-resize`, virStorageVolResize,
 * `qemu-img resize` underneath) — never while a qemu has it open, which would corrupt the qcow2.
 * Nothing here shrinks a disk.
 */
import { ReconcileError } from '../../runtime/errors.js';
import type { MachineSpec } from '../machine.js';
import type { DiskGrowth, MachineDiskSize } from '../registry.js';
import type { LibvirtNodeConnection } from './connection.js';
import { dataVolumeName } from './domain-xml.js';
import { asProviderError } from './domains.js';
import { volumeInfo } from './storage.js';
import { VirshError } from './virsh-shell.js';

/** Domain states in which a qemu process holds the disk open. */
const QEMU_RUNS = new Set(['running', 'blocked', 'paused', 'shutdown', 'pmsuspended']);

export async function dataDiskSizes(conn: LibvirtNodeConnection, spec: MachineSpec): Promise<MachineDiskSize[]> {
  const uid = spec.uid.toLowerCase();
  const out: MachineDiskSize[] = [];
  for (const d of spec.disks) {
    const v = await volumeInfo(conn.shell(), conn.imagePool, dataVolumeName(uid, d.name));
    if (v) out.push({ name: d.name, bytes: v.capacityBytes });
  }
  return out;
}

export async function growDataDisk(conn: LibvirtNodeConnection, spec: MachineSpec, name: string, bytes: number): Promise<DiskGrowth> {
  const uid = spec.uid.toLowerCase();
  const volume = dataVolumeName(uid, name);
  const sh = conn.shell();
  const v = await volumeInfo(sh, conn.imagePool, volume);
  if (!v) throw new ReconcileError('DiskNotFound', `volume ${volume} of disk "${name}" is not in pool ${conn.imagePool}`);
  if (bytes < v.capacityBytes) {
    throw new ReconcileError('DiskShrinkRefused', `disk "${name}" is ${v.capacityBytes} bytes; shrinking it to ${bytes} would lose data`, false);
  }
  let run: string | undefined;
  try {
    run = await conn.domains().state(uid);
  } catch (err) {
    throw asProviderError(err, 'cannot look up the domain');
  }
  const online = run !== undefined && QEMU_RUNS.has(run);
  if (bytes === v.capacityBytes) return { online, state: 'done' };
  try {
    if (online) await sh.run(['blockresize', '--domain', uid, '--path', v.path, '--size', `${bytes}b`]);
    else await sh.run(['vol-resize', '--pool', conn.imagePool, '--vol', volume, '--capacity', `${bytes}b`]);
  } catch (err) {
    // The test driver (the sim node) implements neither call.
    if (err instanceof VirshError && /not supported/i.test(err.message)) {
      throw new ReconcileError('DiskResizeUnsupported', `this libvirt driver cannot grow disk "${name}": ${err.message}`, false);
    }
    const e = asProviderError(err, `cannot grow disk "${name}" to ${bytes} bytes`);
    throw e instanceof ReconcileError && e.reason === 'LibvirtError' ? new ReconcileError('DiskResizeFailed', e.message) : e;
  }
  return { online, state: 'done' };
}
