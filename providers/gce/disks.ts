/**
 * Growing a VM's data disks (the `diskResize` capability): `disks.resize` (POST
 * `.../zones/Z/disks/NAME/resize {"sizeGb": "N"}`), which GCE applies online — a running VM's
 * guest sees the new size without a restart. The resize operation is tracked in the background
 * like the VM's own (`OperationTracker`, keyed by uid and disk), so `grow` returns at once and
 * `sizes` (`disks.get`) shows the new size when it is done. GCE refuses a smaller size itself;
 * stratus never asks for one.
 */
import { randomUUID } from 'node:crypto';
import { ReconcileError } from '../../runtime/errors.js';
import type { MachineSpec } from '../machine.js';
import type { DiskGrowth, MachineDiskSize } from '../registry.js';
import type { ComputeApi } from './api.js';
import { GceApiError } from './http.js';
import type { OperationTracker } from './operations.js';
import { dataDiskName, instanceName } from './spec.js';

const GiB = 1024 ** 3;

export class GceDisks {
  constructor(
    private readonly api: ComputeApi,
    private readonly operations: OperationTracker,
  ) {}

  /** The data disks of `spec` that exist, with `disks.get`'s `sizeGb` (GCE's GB are GiB). */
  async sizes(spec: MachineSpec, signal?: AbortSignal): Promise<MachineDiskSize[]> {
    return this.api.forCaller(signal, async () => {
      const out: MachineDiskSize[] = [];
      for (const [i, d] of spec.disks.entries()) {
        const disk = await this.api.getDisk(this.diskName(spec, i));
        if (disk) out.push({ name: d.name, bytes: Number(disk.sizeGb ?? 0) * GiB });
      }
      return out;
    });
  }

  async grow(spec: MachineSpec, name: string, bytes: number, signal?: AbortSignal): Promise<DiskGrowth> {
    return this.api.forCaller(signal, async () => {
      const index = spec.disks.findIndex((d) => d.name === name);
      const diskName = this.diskName(spec, index);
      const key = `${spec.uid}/disk/${name}`;
      const failure = this.operations.takeFailure(key);
      if (failure) throw failure;
      const vm = await this.api.getInstance(instanceName(spec.uid));
      const online = vm?.status === 'RUNNING';
      if (this.operations.pending(key)) return { online, state: 'underway' };
      const disk = index < 0 ? undefined : await this.api.getDisk(diskName);
      if (!disk) throw new ReconcileError('DiskNotFound', `disk ${diskName} ("${name}") does not exist in zone ${this.api.zone}`);
      const have = Number(disk.sizeGb ?? 0) * GiB;
      const sizeGb = Math.ceil(bytes / GiB);
      if (bytes < have) throw new ReconcileError('DiskShrinkRefused', `disk ${diskName} is ${have / GiB} GB; shrinking it to ${sizeGb} GB would lose data`, false);
      if (bytes === have) return { online, state: 'done' };
      let op;
      try {
        op = await this.api.resizeDisk(diskName, sizeGb, randomUUID());
      } catch (err) {
        // GCE's own refusal (400: not larger, over the disk type's limit) needs a spec change.
        if (err instanceof GceApiError && err.status === 400) throw new ReconcileError('DiskResizeFailed', err.message, false);
        throw err;
      }
      const t = this.operations.track(key, 'resize', op);
      if (t.failure) throw this.operations.takeFailure(key) ?? t.failure;
      return { online, state: t.done ? 'done' : 'started' };
    });
  }

  private diskName(spec: MachineSpec, index: number): string {
    return dataDiskName(instanceName(spec.uid), index + 1, spec.disks[index]?.name ?? '');
  }
}
