/**
 * Containers as machines: the `MachineProvider` for one Docker engine. Every container carries
 * the owning Instance's uid in the `stratus.dev/uid` label and in its name
 * (`stratus-<name>-<uid8>`), so each call finds its container by label and is idempotent.
 *
 * - create = pull-if-missing + create + start (when powerState is Running). A container that
 *   already carries the uid is left alone; a name conflict with a container carrying our uid
 *   (a concurrent create) adopts it. A start that fails because the host port is taken
 *   removes the fresh container and raises `PortConflict`, so nothing half-made stays behind.
 * - observe maps Docker states to machine states and reports drift in `upToDate`.
 * - update repairs drift: image/command/env/ports/volumes/hostname/labels → recreate (the
 *   Instance's named volumes survive); cpus/memory/restart policy → `docker update` in place;
 *   power → start/unpause or stop.
 * - delete stops (short grace), removes with its anonymous volumes, then removes the
 *   Instance's named volumes; absent is success.
 */
import { credentialFor, registryOf, type RegistryCredential } from './registry-auth.js';
import type { ContainerInfo, ContainerInspectInfo } from 'dockerode';
import { ReconcileError } from '../../runtime/errors.js';
import type { MachineObservation, MachineProvider, MachineSpec } from '../machine.js';
import { engineMessage, statusCode, type Engine } from './engine.js';

/** What registries answer when a pull lacks or has wrong credentials (Docker's wording varies by registry). */
const PULL_UNAUTHORIZED = /unauthorized|authentication required|no basic auth credentials|denied: requested access|incorrect username or password/i;
import {
  LABEL_UID,
  containerIP,
  containerName,
  createOptions,
  drift,
  dockerSettings,
  machineState,
  memoryBytes,
  nanoCpus,
  restartPolicy,
  stateMessage,
} from './spec.js';

export interface ContainerOptions {
  /** Host address for published ports when neither the port nor `docker.hostIP` sets one. */
  defaultHostIP: string;
  /** Grace period of a power-off stop (SIGTERM → SIGKILL), also the containers' StopTimeout. */
  stopGraceSeconds: number;
  /** Grace period of the stop that precedes removal. */
  deleteGraceSeconds: number;
  /** Pull missing images (in the background; without a registry the pull fails at once). */
  pullMissingImages: boolean;
  /** How long a call waits for a pull it started or found before answering `ImagePulling`. */
  pullWaitMs: number;
  /** Deadline of one background pull. */
  pullTimeoutMs: number;
  /** Registry credentials for pulls (from the node's dockerconfigjson Secret). */
  registryAuth: readonly RegistryCredential[];
}

interface Pull {
  done: boolean;
  error?: unknown;
  promise: Promise<void>;
}

const PORT_TAKEN = /port is already allocated|address already in use/i;

export class DockerMachines implements MachineProvider {
  /** Background pulls by image reference; one per image at a time. */
  private readonly pulls = new Map<string, Pull>();
  private readonly closing = new AbortController();

  constructor(
    private readonly engine: Engine,
    private readonly options: ContainerOptions,
  ) {}

  /** Containers labelled with `uid`, newest first (normally exactly one). */
  async find(uid: string): Promise<ContainerInfo[]> {
    const docker = this.engine.docker;
    const list = await this.engine.must('list containers', () =>
      docker.listContainers({ all: true, filters: { label: [`${LABEL_UID}=${uid}`] }, abortSignal: this.engine.quick() }),
    );
    return list.sort((a, b) => b.Created - a.Created);
  }

  private async inspect(id: string): Promise<ContainerInspectInfo | undefined> {
    const docker = this.engine.docker;
    try {
      return await this.engine.call('inspect container', () => docker.getContainer(id).inspect({ abortSignal: this.engine.quick() }));
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
      if (err instanceof ReconcileError) throw err;
      throw new ReconcileError('EngineError', `cannot inspect container ${id}: ${engineMessage(err)}`);
    }
  }

  /** The inspected container of `uid`, if any. */
  async current(uid: string): Promise<ContainerInspectInfo | undefined> {
    for (const c of await this.find(uid)) {
      const info = await this.inspect(c.Id);
      if (info) return info;
    }
    return undefined;
  }

  observe(spec: MachineSpec, signal?: AbortSignal): Promise<MachineObservation> {
    return this.engine.forCaller(signal, () => this.observeNow(spec));
  }

  private async observeNow(spec: MachineSpec): Promise<MachineObservation> {
    const info = await this.current(spec.uid);
    if (!info) return { exists: false, state: 'pending', addresses: [], upToDate: false };
    const state = machineState(info, spec.powerState);
    const d = drift(spec, info, this.options.defaultHostIP);
    const ip = containerIP(info);
    const obs: MachineObservation = {
      exists: true,
      state,
      providerID: info.Id,
      addresses: ip ? [{ type: 'InternalIP', address: ip }] : [],
      upToDate: d.needs.size === 0,
    };
    if (ip) obs.ipAddress = ip;
    if (info.State.Pid > 0) obs.pid = info.State.Pid;
    const messages = [stateMessage(info), d.reasons.length > 0 ? `drift: ${d.reasons.join('; ')}` : undefined].filter(
      (m): m is string => m !== undefined,
    );
    if (messages.length > 0) obs.message = messages.join('; ');
    return obs;
  }

  create(spec: MachineSpec, signal?: AbortSignal): Promise<void> {
    return this.engine.forCaller(signal, async () => {
      if ((await this.find(spec.uid)).length > 0) return;
      await this.createNew(spec);
    });
  }

  private async createNew(spec: MachineSpec): Promise<void> {
    const body = createOptions(spec, this.options.defaultHostIP, this.options.stopGraceSeconds);
    await this.ensureImage(body.Image as string);
    const docker = this.engine.docker;
    let id: string;
    try {
      const created = await this.engine.call(
        'create container',
        () => docker.createContainer({ ...body, abortSignal: this.engine.slow() }),
        this.engine.operationTimeoutMs,
      );
      id = created.id;
    } catch (err) {
      const code = statusCode(err);
      if (code === 409) {
        id = await this.adopt(spec, body.name as string, err);
      } else if (code === 404) {
        throw new ReconcileError('ImageNotFound', `image ${body.Image} is not on the engine: ${engineMessage(err)}`, false);
      } else if (code === 400) {
        throw new ReconcileError('InvalidSpec', `the engine refused the container: ${engineMessage(err)}`, false);
      } else if (err instanceof ReconcileError) {
        throw err;
      } else {
        throw new ReconcileError('EngineError', `cannot create container ${body.name}: ${engineMessage(err)}`);
      }
    }
    if (spec.powerState !== 'Running') return;
    try {
      await this.start(id);
    } catch (err) {
      if (err instanceof ReconcileError && err.reason === 'PortConflict') {
        // Leave nothing half-made: the scheduler may place the Instance elsewhere.
        await this.remove(id, 0);
      }
      throw err;
    }
  }

  /**
   * A name conflict: adopt the container if it carries our uid (a concurrent create). Docker
   * reserves the name before the container can be inspected, so a 404 is retried briefly.
   */
  private async adopt(spec: MachineSpec, name: string, cause: unknown): Promise<string> {
    const deadline = performance.now() + this.engine.timeoutMs;
    for (;;) {
      const info = await this.inspect(name);
      if (info && info.Config.Labels?.[LABEL_UID] === spec.uid) return info.Id;
      if (info) {
        throw new ReconcileError(
          'NameConflict',
          `container name ${name} is taken by a container not owned by Instance ${spec.namespace}/${spec.name} (${engineMessage(cause)})`,
          false,
        );
      }
      if (performance.now() > deadline) {
        throw new ReconcileError('NameConflict', `container name ${name} is reserved by a container that is still being created`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /**
   * Makes sure `image` is on the engine. A missing image is pulled in the background: if the
   * pull settles within `pullWaitMs` the call goes on (or fails with `ImageNotFound`),
   * otherwise it raises the retryable `ImagePulling` and a later call picks up the result.
   * Without a reachable registry the pull fails at once, so a missing image is reported fast.
   */
  private async ensureImage(image: string): Promise<void> {
    try {
      await this.engine.call('inspect image', () => this.engine.getJSON(`/images/${encodeURIComponent(image)}/json`, this.engine.quick()));
      this.pulls.delete(image);
      return;
    } catch (err) {
      if (statusCode(err) !== 404) {
        if (err instanceof ReconcileError) throw err;
        throw new ReconcileError('EngineError', `cannot inspect image ${image}: ${engineMessage(err)}`);
      }
    }
    if (!this.options.pullMissingImages) {
      throw new ReconcileError('ImageNotFound', `image ${image} is not on the engine (pulling is disabled for this node)`, false);
    }
    let pull = this.pulls.get(image);
    if (!pull) {
      const started: Pull = { done: false, promise: Promise.resolve() };
      // The pull outlives this call: it must not end with the caller's deadline.
      started.promise = this.engine.detached(() => this.pull(image)).then(
        () => {
          started.done = true;
        },
        (err: unknown) => {
          started.done = true;
          started.error = err;
        },
      );
      this.pulls.set(image, started);
      pull = started;
    }
    if (!pull.done) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([pull.promise, new Promise<void>((r) => (timer = setTimeout(r, this.options.pullWaitMs)))]);
      clearTimeout(timer);
    }
    if (!pull.done) {
      throw new ReconcileError('ImagePulling', `image ${image} is not on the engine yet: pulling it`, true, this.options.pullWaitMs);
    }
    // A settled pull is used once: the next miss tries again.
    this.pulls.delete(image);
    const failure = pull.error;
    if (failure === undefined) return;
    if (failure instanceof ReconcileError && (failure.reason === 'NodeUnreachable' || failure.reason === 'TLSError')) throw failure;
    const why = failure instanceof Error ? failure.message : String(failure);
    if (PULL_UNAUTHORIZED.test(why)) {
      const hint = credentialFor(image, this.options.registryAuth) ? 'the credentials of the node\'s registryAuthSecretRef were refused' : `the node has no credentials for ${registryOf(image)} (spec.docker.registryAuthSecretRef)`;
      // Retryable with backoff (Kubernetes' ImagePullBackOff): the Secret may be fixed.
      throw new ReconcileError('RegistryUnauthorized', `cannot pull image ${image}: ${hint}: ${why}`, true, 30_000);
    }
    const registry = registryOf(image);
    const noCredentials = registry !== 'docker.io' && !credentialFor(image, this.options.registryAuth) ? ` (the node has no credentials for ${registry}: spec.docker.registryAuthSecretRef)` : '';
    throw new ReconcileError('ImageNotFound', `image ${image} is not on the engine and could not be pulled: ${why}${noCredentials}`, false);
  }

  private async pull(image: string): Promise<void> {
    const docker = this.engine.docker;
    const signal = AbortSignal.any([this.closing.signal, AbortSignal.timeout(this.options.pullTimeoutMs)]);
    const cred = credentialFor(image, this.options.registryAuth);
    const authconfig = cred ? { username: cred.username, password: cred.password, serveraddress: cred.registry } : undefined;
    const stream = await this.engine.must('pull image', () => docker.pull(image, { abortSignal: signal, ...(authconfig ? { authconfig } : {}) }), this.options.pullTimeoutMs);
    await new Promise<void>((resolve, reject) => {
      docker.modem.followProgress(stream, (err: Error | null, events: Array<{ error?: string }>) => {
        const failed = events?.find((e) => e.error);
        if (err) reject(err);
        else if (failed) reject(new Error(failed.error));
        else resolve();
      });
    });
  }

  /** Abandons background pulls (the connection is closing). */
  close(): void {
    this.closing.abort();
  }

  private async start(id: string): Promise<void> {
    const docker = this.engine.docker;
    try {
      await this.engine.call('start container', () => docker.getContainer(id).start({ abortSignal: this.engine.slow() }), this.engine.operationTimeoutMs);
    } catch (err) {
      const code = statusCode(err);
      if (code === 304) return; // already running
      if (err instanceof ReconcileError) throw err;
      const message = engineMessage(err);
      // A concurrent start (another worker, a restart policy) got there first.
      if ((await this.inspect(id))?.State.Running) return;
      if (PORT_TAKEN.test(message)) throw new ReconcileError('PortConflict', `a host port is already in use on the engine: ${message}`);
      throw new ReconcileError('StartFailed', `cannot start container: ${message}`, code !== 400);
    }
  }

  private async stop(id: string, graceSeconds: number): Promise<void> {
    const docker = this.engine.docker;
    const deadline = this.engine.operationTimeoutMs + graceSeconds * 1000;
    try {
      await this.engine.call(
        'stop container',
        () => docker.getContainer(id).stop({ t: graceSeconds, abortSignal: this.engine.slow(graceSeconds * 1000) }),
        deadline,
      );
    } catch (err) {
      const code = statusCode(err);
      if (code === 304 || code === 404) return; // already stopped / gone
      if (err instanceof ReconcileError) throw err;
      throw new ReconcileError('EngineError', `cannot stop container ${id}: ${engineMessage(err)}`);
    }
  }

  /** Stops (grace seconds, 0 = kill) and removes a container with its anonymous volumes. */
  private async remove(id: string, graceSeconds: number): Promise<void> {
    if (graceSeconds > 0) await this.stop(id, graceSeconds);
    const docker = this.engine.docker;
    try {
      await this.engine.call(
        'remove container',
        () => docker.getContainer(id).remove({ force: true, v: true, abortSignal: this.engine.slow() }),
        this.engine.operationTimeoutMs,
      );
    } catch (err) {
      const code = statusCode(err);
      if (code === 404) return;
      // "removal of container X is already in progress": someone else is finishing the job.
      if (code === 409 && /already in progress/i.test(engineMessage(err))) return;
      if (err instanceof ReconcileError) throw err;
      throw new ReconcileError('EngineError', `cannot remove container ${id}: ${engineMessage(err)}`);
    }
  }

  update(spec: MachineSpec, observed: MachineObservation, signal?: AbortSignal): Promise<void> {
    return this.engine.forCaller(signal, () => this.updateNow(spec, observed));
  }

  private async updateNow(spec: MachineSpec, _observed: MachineObservation): Promise<void> {
    const info = await this.current(spec.uid);
    if (!info) return; // nothing to update: the controller creates it
    const d = drift(spec, info, this.options.defaultHostIP);
    if (d.needs.has('recreate')) {
      // Check what can fail before destroying a working container.
      const body = createOptions(spec, this.options.defaultHostIP, this.options.stopGraceSeconds);
      await this.ensureImage(body.Image as string);
      await this.remove(info.Id, this.options.deleteGraceSeconds);
      await this.createNew(spec);
      return;
    }
    const container = this.engine.docker.getContainer(info.Id);
    if (d.needs.has('resources')) {
      const settings = dockerSettings(spec.providerSpec);
      const memory = memoryBytes(spec.memoryMiB);
      await this.engine.must(
        'update container resources',
        () =>
          container.update({
            NanoCpus: nanoCpus(spec.cpus),
            Memory: memory,
            // Raising memory above the old swap limit is refused unless swap moves too.
            MemorySwap: memory * 2,
            RestartPolicy: restartPolicy(settings),
            abortSignal: this.engine.slow(),
          }),
        this.engine.operationTimeoutMs,
      );
    }
    if (d.needs.has('power')) {
      const s = info.State;
      if (spec.powerState === 'Running') {
        if (s.Paused) await this.engine.must('unpause container', () => container.unpause({ abortSignal: this.engine.slow() }));
        else await this.start(info.Id);
      } else {
        if (s.Paused) await this.engine.must('unpause container', () => container.unpause({ abortSignal: this.engine.slow() }));
        await this.stop(info.Id, this.options.stopGraceSeconds);
      }
    }
  }

  delete(spec: MachineSpec, signal?: AbortSignal): Promise<void> {
    return this.engine.forCaller(signal, () => this.deleteNow(spec));
  }

  private async deleteNow(spec: MachineSpec): Promise<void> {
    for (const c of await this.find(spec.uid)) await this.remove(c.Id, this.options.deleteGraceSeconds);
    // The Instance's named volumes (stratus-<uid>-<name>) go with it.
    const docker = this.engine.docker;
    const volumes = await this.engine.must('list volumes', () =>
      docker.listVolumes({ filters: { label: [`${LABEL_UID}=${spec.uid}`] }, abortSignal: this.engine.quick() }),
    );
    for (const v of volumes.Volumes ?? []) {
      try {
        await this.engine.call('remove volume', () => docker.getVolume(v.Name).remove({ abortSignal: this.engine.slow() }), this.engine.operationTimeoutMs);
      } catch (err) {
        if (statusCode(err) === 404) continue;
        if (err instanceof ReconcileError) throw err;
        throw new ReconcileError('EngineError', `cannot remove volume ${v.Name}: ${engineMessage(err)}`);
      }
    }
  }

  listOwned(signal?: AbortSignal): Promise<string[]> {
    return this.engine.forCaller(signal, () => this.listOwnedNow());
  }

  private async listOwnedNow(): Promise<string[]> {
    const docker = this.engine.docker;
    const list = await this.engine.must('list containers', () =>
      docker.listContainers({ all: true, filters: { label: [LABEL_UID] }, abortSignal: this.engine.quick() }),
    );
    return [...new Set(list.map((c) => c.Labels[LABEL_UID]).filter((u): u is string => !!u))].sort();
  }

  /** The name a container for `spec` gets (for logs and humans). */
  static containerName(spec: Pick<MachineSpec, 'name' | 'uid'>): string {
    return containerName(spec);
  }
}
