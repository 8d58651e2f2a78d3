/**
 * The manager: one API client, shared informers (one per resource and selector), the
 * registered controllers, an event recorder factory, optional leader election, and a small
 * HTTP server for `/metrics`, `/healthz` and `/readyz`.
 *
 * `start()` starts every informer (on every replica, so a standby has a warm cache), waits
 * for them to sync, then runs the controllers' workers — under leader election only while
 * this replica leads. Losing the lease stops the workers (the reconciles in flight see their
 * signal abort and are awaited) and the replica campaigns again.
 *
 * `/healthz` answers 200 while the manager runs; `/readyz` 200 once every informer synced.
 *
 * Usage:
 *   const mgr = new Manager({ client: KubeClient.fromFile(path), metricsListen: '127.0.0.1:8080' });
 *   const instances = mgr.informer<Instance>(InstanceResource);
 *   mgr.addController({ name: 'instance', concurrency: 4 }, instances, new InstanceReconciler(...));
 *   await mgr.start();   // ... await mgr.stop();
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { log as rootLog, type Logger } from './log.js';
import type { KubeClient, KubeObject, ResourceClient, ResourceRef } from './client.js';
import { Informer, type InformerOptions } from './informer.js';
import { Controller, type ControllerOptions, type Reconciler } from './controller.js';
import { EventRecorder, type EventRecorderOptions } from './events.js';
import { LeaderElector, type LeaderElectionConfig } from './leader.js';
import { RuntimeMetrics } from './metrics.js';

export interface ManagerOptions {
  client: KubeClient;
  /** `HOST:PORT` for /metrics, /healthz, /readyz (port 0 picks a free one); none when unset. */
  metricsListen?: string;
  /** Run controllers only while holding this Lease. */
  leaderElection?: LeaderElectionConfig;
  metrics?: RuntimeMetrics;
  log?: Logger;
}

export type SharedInformerOptions = Pick<InformerOptions, 'namespace' | 'labelSelector' | 'fieldSelector'>;

export class Manager {
  readonly client: KubeClient;
  readonly metrics: RuntimeMetrics;
  readonly log: Logger;
  readonly elector: LeaderElector | undefined;
  private readonly informers = new Map<string, Informer<KubeObject>>();
  private readonly controllers: Controller<KubeObject>[] = [];
  private readonly recorders = new Map<string, EventRecorder<string>>();
  private server: Server | undefined;
  private started = false;
  private stopping = false;
  private leading = false;
  private readonly abort = new AbortController();
  private readonly listen: string | undefined;

  constructor(opts: ManagerOptions) {
    this.client = opts.client;
    this.metrics = opts.metrics ?? new RuntimeMetrics();
    this.log = opts.log ?? rootLog;
    this.listen = opts.metricsListen;
    if (opts.leaderElection) {
      const le = opts.leaderElection;
      this.elector = new LeaderElector(
        this.client,
        le,
        {
          onStartedLeading: () => this.startControllers(),
          onStoppedLeading: () => this.stopControllers(),
        },
        this.log,
      );
    }
  }

  resource<T extends KubeObject>(ref: ResourceRef): ResourceClient<T> {
    return this.client.resource<T>(ref);
  }

  /** The shared informer of `ref` (+ selectors): created once, started by `start()`. */
  informer<T extends KubeObject>(ref: ResourceRef, opts: SharedInformerOptions = {}): Informer<T> {
    const id = JSON.stringify([ref.group, ref.version, ref.plural, opts.namespace ?? '', opts.labelSelector ?? '', opts.fieldSelector ?? '']);
    let inf = this.informers.get(id);
    if (!inf) {
      inf = new Informer<KubeObject>(this.client.resource(ref), { ...opts, log: this.log });
      this.informers.set(id, inf);
      if (this.started) inf.start();
    }
    return inf as unknown as Informer<T>;
  }

  /** An event recorder reporting as `component` (one per component). */
  eventRecorder<R extends string = string>(component: string, opts: EventRecorderOptions = {}): EventRecorder<R> {
    let rec = this.recorders.get(component);
    if (!rec) {
      rec = new EventRecorder<string>(this.client, component, { log: this.log, ...opts });
      this.recorders.set(component, rec);
    }
    return rec as EventRecorder<R>;
  }

  /** Creates and registers a controller (metrics wired in). */
  addController<T extends KubeObject>(opts: Omit<ControllerOptions, 'metrics'>, primary: Informer<T>, reconciler: Reconciler): Controller<T> {
    if (this.controllers.some((c) => c.name === opts.name)) throw new Error(`controller ${opts.name} is already registered`);
    const ctl = new Controller<T>({ log: this.log, ...opts, metrics: this.metrics }, primary, reconciler);
    this.controllers.push(ctl as unknown as Controller<KubeObject>);
    if (this.started && (this.leading || !this.elector)) void ctl.start(this.abort.signal);
    return ctl;
  }

  controllerNames(): string[] {
    return this.controllers.map((c) => c.name);
  }

  /** True while this replica may reconcile (always, without leader election). */
  isLeader(): boolean {
    return this.elector ? this.leading : this.started && !this.stopping;
  }

  isReady(): boolean {
    return this.started && [...this.informers.values()].every((i) => i.hasSynced());
  }

  /** Address of the metrics server once listening. */
  metricsAddress(): AddressInfo | undefined {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a : undefined;
  }

  /**
   * Starts informers and the HTTP server, waits for every cache to sync, then runs the
   * controllers (or campaigns for the Lease). Resolves once that is under way.
   */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    if (this.listen !== undefined) await this.serve(this.listen);
    for (const inf of this.informers.values()) inf.start();
    for (const inf of this.informers.values()) {
      if (!(await inf.waitForSync(this.abort.signal))) return;
    }
    this.log.info({ informers: this.informers.size, controllers: this.controllers.length }, 'caches synced');
    if (this.elector) this.elector.start();
    else await this.startControllers();
  }

  /** Stops workers (releasing the Lease), informers and the HTTP server. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.abort.abort();
    if (this.elector) await this.elector.stop();
    await this.stopControllers();
    await Promise.all([...this.recorders.values()].map((r) => r.flush()));
    await Promise.all([...this.informers.values()].map((i) => i.stop()));
    if (this.server) {
      this.server.closeAllConnections();
      await new Promise<void>((r) => this.server?.close(() => r()));
    }
    this.client.close();
  }

  private async startControllers(): Promise<void> {
    if (this.stopping) return;
    this.leading = true;
    if (this.elector) this.metrics.leaderStatus.set({ name: this.elector.identity }, 1);
    await Promise.all(this.controllers.map((c) => c.start(this.abort.signal)));
  }

  private async stopControllers(): Promise<void> {
    this.leading = false;
    if (this.elector) this.metrics.leaderStatus.set({ name: this.elector.identity }, 0);
    await Promise.all(this.controllers.map((c) => c.stop()));
  }

  private async serve(listen: string): Promise<void> {
    const i = listen.lastIndexOf(':');
    const host = i > 0 ? listen.slice(0, i).replace(/^\[|\]$/g, '') : '0.0.0.0';
    const port = Number(i >= 0 ? listen.slice(i + 1) : listen);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--metrics-listen ${listen}: expected HOST:PORT`);
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/metrics') {
        this.metrics.metricsText().then(
          (text) => {
            res.writeHead(200, { 'content-type': this.metrics.contentType });
            res.end(text);
          },
          (err: unknown) => {
            res.writeHead(500, { 'content-type': 'text/plain' });
            res.end(String(err));
          },
        );
        return;
      }
      if (path === '/healthz' || path === '/livez') {
        const ok = this.started && !this.stopping;
        res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' });
        res.end(ok ? 'ok' : 'stopping');
        return;
      }
      if (path === '/readyz') {
        const ok = this.isReady() && !this.stopping;
        res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' });
        res.end(ok ? 'ok' : 'caches not synced');
        return;
      }
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    this.log.info({ address: server.address() }, 'serving /metrics, /healthz, /readyz');
  }
}
