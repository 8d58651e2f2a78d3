/**
 * Compute Engine VMs as machines: the `MachineProvider` for one project and zone. A VM is
 * named `st-<uid hex>` and labelled `stratus-uid` / `stratus-namespace` / `stratus-name`, so
 * every call finds it by name and checks the label before touching it.
 *
 * Nothing blocks on a GCE operation: create / update / delete start one, hand it to the
 * `OperationTracker` and return; `observe` reports the transition (`creating` while the
 * insert runs, `terminating` while the delete runs) and surfaces a failed operation as its
 * `ReconcileError` once (e.g. `QuotaExceeded`), after which create may try again.
 *
 * - create: resolves the image (images.get, then images.getFromFamily, in the image project),
 *   inserts; `409 alreadyExists` on a VM carrying our uid label adopts it, anyone else's is
 *   `NameConflict`.
 * - update: power (start / resume / stop) first, then labels (setLabels with the current
 *   `labelFingerprint`); nothing while an operation of ours is in flight or the VM is between
 *   states. Machine type, image and disks are not changed in place.
 * - delete: deletes the VM (boot and extra disks go with it: `autoDelete`); absent is success.
 */
import { randomUUID } from 'node:crypto';
import { ReconcileError } from '../../runtime/errors.js';
import type { MachineAddress, MachineObservation, MachineProvider, MachineSpec } from '../machine.js';
import type { ComputeApi } from './api.js';
import { GceApiError } from './http.js';
import type { OperationTracker } from './operations.js';
import {
  LABEL_UID,
  insertBody,
  instanceName,
  labelsFor,
  labelValue,
  machineState,
  parseImage,
  powerSettled,
  reconciledLabels,
  sameLabels,
  type Instance,
} from './spec.js';

export interface GceMachineOptions {
  /** Project that holds short-named images (default: the node's project). */
  imageProject: string;
  /** VPC network of the first NIC. */
  network: string;
}

const SETTLED = new Set(['RUNNING', 'TERMINATED', 'SUSPENDED']);

export class GceMachines implements MachineProvider {
  constructor(
    private readonly api: ComputeApi,
    private readonly operations: OperationTracker,
    private readonly options: GceMachineOptions,
  ) {}

  /** `gce://<project>/<zone>/<name>`, the Instance's `status.providerID`. */
  providerID(name: string): string {
    return `gce://${this.api.project}/${this.api.zone}/${name}`;
  }

  /** The VM of `spec`, if one exists and carries its uid (a foreign VM with our name is a conflict). */
  private async current(spec: MachineSpec): Promise<Instance | undefined> {
    const name = instanceName(spec.uid);
    const inst = await this.api.getInstance(name);
    if (inst && inst.labels?.[LABEL_UID] !== labelValue(spec.uid)) {
      throw new ReconcileError(
        'NameConflict',
        `GCE instance ${name} in ${this.api.zone} exists but is not labelled ${LABEL_UID}=${spec.uid}; stratus leaves it alone`,
        false,
      );
    }
    return inst;
  }

  observe(spec: MachineSpec, signal?: AbortSignal): Promise<MachineObservation> {
    return this.api.forCaller(signal, () => this.observeNow(spec));
  }

  private async observeNow(spec: MachineSpec): Promise<MachineObservation> {
    const failure = this.operations.takeFailure(spec.uid);
    if (failure) throw failure;
    const pending = this.operations.pending(spec.uid);
    const inst = await this.current(spec);
    const name = instanceName(spec.uid);
    if (!inst) {
      if (pending?.kind === 'insert') {
        // The insert runs but the VM is not visible yet: it exists as far as the controller
        // is concerned (a delete now must wait for it instead of leaving it behind).
        return { exists: true, state: 'creating', addresses: [], upToDate: true, providerID: this.providerID(name), message: `insert operation ${pending.name} is ${pending.status}` };
      }
      return { exists: false, state: 'pending', addresses: [], upToDate: false };
    }
    const nic = inst.networkInterfaces?.[0];
    const internal = nic?.networkIP ?? undefined;
    const external = nic?.accessConfigs?.find((a) => a.natIP)?.natIP ?? undefined;
    const addresses: MachineAddress[] = [];
    if (internal) addresses.push({ type: 'InternalIP', address: internal });
    if (external) addresses.push({ type: 'ExternalIP', address: external });
    const state = machineState(inst.status, pending?.kind);
    const labelsOk = sameLabels(inst.labels ?? {}, reconciledLabels(inst.labels ?? {}, labelsFor(spec)));
    const powerOk = powerSettled(spec, inst.status, pending?.kind);
    const messages: string[] = [];
    if (pending) messages.push(`${pending.kind} operation ${pending.name} is ${pending.status}`);
    if (inst.status === 'REPAIRING') messages.push('GCE is repairing the VM (host failure)');
    if (state === 'failed') messages.push(`unknown GCE status ${inst.status}`);
    if (inst.statusMessage) messages.push(inst.statusMessage);
    if (!labelsOk) messages.push('drift: labels differ');
    const obs: MachineObservation = {
      exists: true,
      state,
      providerID: this.providerID(name),
      addresses,
      upToDate: pending !== undefined || (labelsOk && powerOk),
    };
    const ip = external ?? internal;
    if (ip) obs.ipAddress = ip;
    if (messages.length > 0) obs.message = messages.join('; ');
    return obs;
  }

  create(spec: MachineSpec, signal?: AbortSignal): Promise<void> {
    return this.api.forCaller(signal, () => this.createNow(spec));
  }

  private async createNow(spec: MachineSpec): Promise<void> {
    const failure = this.operations.takeFailure(spec.uid);
    if (failure) throw failure;
    if (this.operations.pending(spec.uid)) return;
    const sourceImage = await this.resolveImage(spec);
    const body = insertBody(spec, {
      project: this.api.project,
      zone: this.api.zone,
      network: this.options.network,
      sourceImage: sourceImage.link,
      imageSizeGb: sourceImage.sizeGb,
    });
    try {
      const op = await this.api.insertInstance(body, randomUUID());
      this.operations.track(spec.uid, 'insert', op);
    } catch (err) {
      if (err instanceof GceApiError && err.status === 409) {
        // Already there: ours (an earlier create whose answer we lost, another worker) is adopted.
        await this.current(spec);
        return;
      }
      throw this.failure(err, 'InvalidSpec');
    }
  }

  /** The image's self link and size; `ImageNotFound` (not retryable) when it does not exist. */
  private async resolveImage(spec: MachineSpec): Promise<{ link: string; sizeGb: number }> {
    const ref = parseImage(spec.image, this.options.imageProject);
    let found;
    if (ref.kind === 'url') {
      found = await this.api.getImage(ref.project, (ref.family ?? ref.name) as string, ref.family !== undefined);
    } else {
      found = (await this.api.getImage(ref.project, ref.name)) ?? (await this.api.getImage(ref.project, ref.name, true));
    }
    if (!found?.selfLink) {
      const where = ref.kind === 'url' ? ref.url : `project ${ref.project} (neither an image nor an image family of that name)`;
      throw new ReconcileError('ImageNotFound', `image "${spec.image}" does not exist in ${where}`, false);
    }
    // A family resolves to today's image; pin the VM to it.
    return { link: found.selfLink, sizeGb: Number(found.diskSizeGb ?? 10) };
  }

  update(spec: MachineSpec, observed: MachineObservation, signal?: AbortSignal): Promise<void> {
    return this.api.forCaller(signal, () => this.updateNow(spec, observed));
  }

  private async updateNow(spec: MachineSpec, _observed: MachineObservation): Promise<void> {
    if (this.operations.pending(spec.uid)) return;
    const inst = await this.current(spec);
    if (!inst?.name || !SETTLED.has(inst.status ?? '')) return;
    const name = inst.name;
    try {
      if (spec.powerState === 'Running' && inst.status === 'TERMINATED') {
        this.operations.track(spec.uid, 'start', await this.api.instanceAction('start', name));
      } else if (spec.powerState === 'Running' && inst.status === 'SUSPENDED') {
        this.operations.track(spec.uid, 'resume', await this.api.instanceAction('resume', name));
      } else if (spec.powerState === 'Stopped' && inst.status === 'RUNNING') {
        this.operations.track(spec.uid, 'stop', await this.api.instanceAction('stop', name));
      } else {
        const want = reconciledLabels(inst.labels ?? {}, labelsFor(spec));
        if (!sameLabels(inst.labels ?? {}, want)) {
          this.operations.track(spec.uid, 'setLabels', await this.api.setLabels(name, want, inst.labelFingerprint ?? ''));
        }
      }
    } catch (err) {
      throw this.failure(err, 'UpdateFailed');
    }
  }

  delete(spec: MachineSpec, signal?: AbortSignal): Promise<void> {
    return this.api.forCaller(signal, () => this.deleteNow(spec));
  }

  private async deleteNow(spec: MachineSpec): Promise<void> {
    this.operations.takeFailure(spec.uid);
    const pending = this.operations.pending(spec.uid);
    if (pending?.kind === 'delete') return;
    let inst: Instance | undefined;
    try {
      inst = await this.current(spec);
    } catch (err) {
      // Someone else's VM under our name: there is nothing of ours to delete.
      if (err instanceof ReconcileError && err.reason === 'NameConflict') return;
      throw err;
    }
    if (!inst?.name) return; // absent (an insert in flight is deleted once the VM shows up)
    try {
      this.operations.track(spec.uid, 'delete', await this.api.instanceAction('delete', inst.name));
    } catch (err) {
      if (err instanceof GceApiError && err.status === 404) return;
      throw this.failure(err, 'DeleteFailed');
    }
  }

  async listOwned(signal?: AbortSignal): Promise<string[]> {
    const list = await this.api.forCaller(signal, () => this.api.listInstances(`labels.${LABEL_UID}:*`));
    return list.map((i) => i.labels?.[LABEL_UID]).filter((u): u is string => typeof u === 'string' && u !== '');
  }

  /** An API answer the call cannot act on, as the `ReconcileError` the controller reports. */
  private failure(err: unknown, fallback: string): Error {
    if (!(err instanceof GceApiError)) return err instanceof Error ? err : new Error(String(err));
    if (err.status === 404 && /\/images\//.test(err.message)) return new ReconcileError('ImageNotFound', err.message, false);
    if (err.status === 404) return new ReconcileError('NotFound', err.message, false);
    if (err.reason === 'resourceNotReady') return new ReconcileError('ResourceNotReady', err.message, true, 5_000);
    if (err.status === 412) return new ReconcileError('Conflict', err.message, true, 1_000);
    if (err.status === 400) return new ReconcileError('InvalidSpec', err.message, false);
    return new ReconcileError(fallback, err.message, true);
  }
}
