/**
 * An in-memory provider: machines are entries of a `FakeCloud` map. It exists to prove the
 * provider contract — it is registered through the same `ProviderRegistry.register` line as
 * the real ones — and to drive the lifecycle's table tests, which script its failures
 * (`failNext`), hangs (`hangNext`, honouring the call's signal) and slow starts.
 *
 * Nothing leaves the process; a node of `provider: fake` needs no settings.
 */
import { ReconcileError } from '../../runtime/errors.js';
import type { MachineObservation, MachineProvider, MachineSpec, MachineState, NodeConnection, NodeDescription } from '../machine.js';
import type { MachineDiskResize, ProviderDescriptor } from '../registry.js';

export type FakeOperation = 'describe' | 'observe' | 'create' | 'update' | 'delete' | 'grow';

interface FakeMachine {
  spec: MachineSpec;
  state: MachineState;
  providerID: string;
  /** Observes left before a starting machine runs. */
  startingFor: number;
  /** Data disk sizes in bytes, by name (made at create, grown by `diskResize.grow`). */
  disks: Map<string, number>;
}

/** What the fake does on the next call of an operation: fail with this, or hang until the signal. */
type Script = { kind: 'fail'; error: unknown } | { kind: 'hang' };

export class FakeCloud {
  readonly machines = new Map<string, FakeMachine>();
  /** Every call, in order (`create <uid>`). */
  readonly calls: string[] = [];
  /** Observes a new machine spends in `starting` before `running`. */
  startObserves = 0;
  capacity = { cpus: 8, memoryMiB: 16384 };
  /** While set, every `describe` throws it (a node that stopped answering). */
  unreachable: unknown = undefined;
  /** While set, every disk `grow` throws it (a driver that cannot resize). */
  refuseGrow: unknown = undefined;
  private readonly scripts = new Map<FakeOperation, Script[]>();
  private nextId = 1;

  /** The next call of `op` throws `error` (anything: a `ReconcileError`, an `Error`, a string). */
  failNext(op: FakeOperation, error: unknown): this {
    this.push(op, { kind: 'fail', error });
    return this;
  }

  /** The next call of `op` never answers; it rejects when its signal aborts. */
  hangNext(op: FakeOperation): this {
    this.push(op, { kind: 'hang' });
    return this;
  }

  /** Removes a machine behind the controller's back (drift). */
  vanish(uid: string): void {
    this.machines.delete(uid);
  }

  private push(op: FakeOperation, s: Script): void {
    const list = this.scripts.get(op) ?? [];
    list.push(s);
    this.scripts.set(op, list);
  }

  /** Records the call and plays its script, if any. */
  async enter(op: FakeOperation, subject: string, signal?: AbortSignal): Promise<void> {
    this.calls.push(`${op} ${subject}`.trim());
    signal?.throwIfAborted();
    const s = this.scripts.get(op)?.shift();
    if (!s) return;
    if (s.kind === 'fail') throw s.error;
    await new Promise<never>((_resolve, reject) => {
      const abort = (): void => reject(signal?.reason instanceof Error ? signal.reason : new Error(`${op} aborted`));
      if (!signal) return; // hangs for good: the caller's deadline must end the wait
      if (signal.aborted) abort();
      else signal.addEventListener('abort', abort, { once: true });
    });
  }

  newProviderID(): string {
    return `fake-${this.nextId++}`;
  }
}

const GiB = 1024 ** 3;

class FakeMachines implements MachineProvider {
  constructor(private readonly cloud: FakeCloud) {}

  async observe(spec: MachineSpec, signal?: AbortSignal): Promise<MachineObservation> {
    await this.cloud.enter('observe', spec.uid, signal);
    const m = this.cloud.machines.get(spec.uid);
    if (!m) return { exists: false, state: 'pending', addresses: [], upToDate: false };
    if (m.state === 'starting' && m.startingFor-- <= 0) m.state = 'running';
    const want: MachineState = spec.powerState === 'Stopped' ? 'stopped' : 'running';
    const upToDate = m.state === want || (m.state === 'starting' && want === 'running');
    const ip = m.state === 'running' ? `192.0.2.${(Number(m.providerID.slice(5)) % 250) + 1}` : undefined;
    return {
      exists: true,
      state: m.state,
      providerID: m.providerID,
      ...(ip ? { ipAddress: ip } : {}),
      addresses: ip ? [{ type: 'InternalIP', address: ip }] : [],
      upToDate,
    };
  }

  async create(spec: MachineSpec, signal?: AbortSignal): Promise<void> {
    await this.cloud.enter('create', spec.uid, signal);
    if (this.cloud.machines.has(spec.uid)) return;
    if (spec.image === 'missing') throw new ReconcileError('ImageNotFound', `image "missing" does not exist`, false);
    const startingFor = this.cloud.startObserves;
    this.cloud.machines.set(spec.uid, {
      spec,
      state: spec.powerState === 'Stopped' ? 'stopped' : startingFor > 0 ? 'starting' : 'running',
      providerID: this.cloud.newProviderID(),
      startingFor,
      disks: new Map(spec.disks.map((d) => [d.name, d.sizeGiB * GiB])),
    });
  }

  async update(spec: MachineSpec, _observed: MachineObservation, signal?: AbortSignal): Promise<void> {
    await this.cloud.enter('update', spec.uid, signal);
    const m = this.cloud.machines.get(spec.uid);
    if (!m) return;
    m.spec = spec;
    m.state = spec.powerState === 'Stopped' ? 'stopped' : 'running';
  }

  async delete(spec: MachineSpec, signal?: AbortSignal): Promise<void> {
    await this.cloud.enter('delete', spec.uid, signal);
    this.cloud.machines.delete(spec.uid);
  }

  async listOwned(signal?: AbortSignal): Promise<string[]> {
    signal?.throwIfAborted();
    return [...this.cloud.machines.keys()];
  }
}

/** Disk sizes as the fake keeps them: grown in place, never shrunk, like a real provider's. */
function fakeDiskResize(cloud: FakeCloud): MachineDiskResize {
  return {
    async sizes(_conn, spec) {
      const m = cloud.machines.get(spec.uid);
      return m ? [...m.disks].map(([name, bytes]) => ({ name, bytes })) : [];
    },
    async grow(_conn, spec, name, bytes, signal) {
      await cloud.enter('grow', `${spec.uid} ${name} ${bytes}`, signal);
      if (cloud.refuseGrow !== undefined) throw cloud.refuseGrow;
      const m = cloud.machines.get(spec.uid);
      const have = m?.disks.get(name);
      if (!m || have === undefined) throw new ReconcileError('DiskNotFound', `machine ${spec.uid} has no disk "${name}"`);
      if (bytes < have) throw new ReconcileError('DiskShrinkRefused', `disk "${name}" is ${have} bytes; it cannot shrink to ${bytes}`, false);
      m.disks.set(name, bytes);
      return { online: m.state === 'running', state: 'done' };
    },
  };
}

/**
 * The provider descriptor over `cloud` (one cloud per descriptor; every fake node shares it).
 * `diskResize: false` leaves the capability out (a provider whose machines have no disks).
 */
export function fakeProvider(cloud: FakeCloud, name = 'fake', options: { diskResize?: boolean } = {}): ProviderDescriptor<Record<string, never>, NodeConnection> {
  return {
    name,
    description: 'in-memory machines (tests)',
    nodeSettings: () => ({}),
    async connect(): Promise<NodeConnection> {
      const machines = new FakeMachines(cloud);
      return {
        async describe(): Promise<NodeDescription> {
          await cloud.enter('describe', '');
          if (cloud.unreachable !== undefined) throw cloud.unreachable;
          return { capacity: { ...cloud.capacity }, version: 'fake 1.0', machineCount: cloud.machines.size };
        },
        machines: () => machines,
        async close() {},
      };
    },
    capabilities: { machines: true, metrics: true, ...(options.diskResize === false ? {} : { diskResize: fakeDiskResize(cloud) }) },
  };
}
