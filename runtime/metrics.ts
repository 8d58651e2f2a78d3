/**
 * Prometheus metrics with controller-runtime's names, so existing dashboards and alerts
 * work unchanged:
 *
 * - `controller_runtime_reconcile_total{controller,result}` (success|error|requeue|requeue_after)
 * - `controller_runtime_reconcile_errors_total{controller}` (every throw, expected or not)
 * - `controller_runtime_reconcile_panics_total{controller}` (throws that look like bugs, recovered)
 * - `controller_runtime_reconcile_time_seconds{controller}` (histogram)
 * - `controller_runtime_active_workers{controller}`, `controller_runtime_max_concurrent_reconciles{controller}`
 * - `workqueue_depth{name}`, `workqueue_adds_total{name}`, `workqueue_retries_total{name}`,
 *   `workqueue_queue_duration_seconds{name}`, `workqueue_work_duration_seconds{name}`
 * - `leader_election_master_status{name}` (1 while leading)
 * - prom-client's default process metrics (`process_cpu_seconds_total`, ...).
 *
 * Each `RuntimeMetrics` owns its registry, so two managers in one process (tests) do not
 * collide — or registers on one it is given (`stratus serve` joins the API server's, so one
 * `/metrics` serves both; the owner of that registry collects the process metrics). Series
 * of a controller start at 0 when it is created, as in controller-runtime.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { QueueMetrics } from './queue.js';

/** How one reconcile ended (the `result` label of `controller_runtime_reconcile_total`). */
export type ReconcileOutcome = 'success' | 'error' | 'requeue' | 'requeue_after';

const RECONCILE_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.25, 1.5, 1.75, 2, 2.5, 3, 3.5, 4,
  4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
];
/** client-go: 10 exponential buckets from 1 ns ×10. */
const QUEUE_BUCKETS = Array.from({ length: 10 }, (_, i) => 1e-8 * 10 ** i);

export interface ControllerMetrics {
  reconciled(outcome: ReconcileOutcome, seconds: number): void;
  error(): void;
  panic(): void;
  /** A worker started (+1) or finished (-1) a reconcile. */
  active(delta: number): void;
  workers(n: number): void;
}

/**
 * prom-client's default process and Node.js metrics on `registry`, minus the three gauges
 * named like counters (`nodejs_active_{handles,requests,resources}_total`), which
 * `promtool check metrics` rejects; the same counts stay available per type in
 * `nodejs_active_handles`, `nodejs_active_requests` and `nodejs_active_resources`.
 */
export function collectProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name);
}

export class RuntimeMetrics {
  readonly registry: Registry;
  private readonly reconcileTotal: Counter<'controller' | 'result'>;
  private readonly reconcileErrors: Counter<'controller'>;
  private readonly reconcilePanics: Counter<'controller'>;
  private readonly reconcileTime: Histogram<'controller'>;
  private readonly activeWorkers: Gauge<'controller'>;
  private readonly maxConcurrent: Gauge<'controller'>;
  private readonly depth: Gauge<'name'>;
  private readonly adds: Counter<'name'>;
  private readonly retries: Counter<'name'>;
  private readonly queueDuration: Histogram<'name'>;
  private readonly workDuration: Histogram<'name'>;
  readonly leaderStatus: Gauge<'name'>;

  /** `registry`: register there instead of on a registry of our own (process metrics then default to off). */
  constructor(opts: { processMetrics?: boolean; registry?: Registry } = {}) {
    this.registry = opts.registry ?? new Registry();
    const registers = [this.registry];
    this.reconcileTotal = new Counter({ name: 'controller_runtime_reconcile_total', help: 'Total number of reconciliations per controller', labelNames: ['controller', 'result'], registers });
    this.reconcileErrors = new Counter({ name: 'controller_runtime_reconcile_errors_total', help: 'Total number of reconciliation errors per controller', labelNames: ['controller'], registers });
    this.reconcilePanics = new Counter({ name: 'controller_runtime_reconcile_panics_total', help: 'Total number of reconciliation panics per controller', labelNames: ['controller'], registers });
    this.reconcileTime = new Histogram({ name: 'controller_runtime_reconcile_time_seconds', help: 'Length of time per reconciliation per controller', labelNames: ['controller'], buckets: RECONCILE_BUCKETS, registers });
    this.activeWorkers = new Gauge({ name: 'controller_runtime_active_workers', help: 'Number of currently used workers per controller', labelNames: ['controller'], registers });
    this.maxConcurrent = new Gauge({ name: 'controller_runtime_max_concurrent_reconciles', help: 'Maximum number of concurrent reconciles per controller', labelNames: ['controller'], registers });
    this.depth = new Gauge({ name: 'workqueue_depth', help: 'Current depth of workqueue', labelNames: ['name'], registers });
    this.adds = new Counter({ name: 'workqueue_adds_total', help: 'Total number of adds handled by workqueue', labelNames: ['name'], registers });
    this.retries = new Counter({ name: 'workqueue_retries_total', help: 'Total number of retries handled by workqueue', labelNames: ['name'], registers });
    this.queueDuration = new Histogram({ name: 'workqueue_queue_duration_seconds', help: 'How long in seconds an item stays in workqueue before being requested', labelNames: ['name'], buckets: QUEUE_BUCKETS, registers });
    this.workDuration = new Histogram({ name: 'workqueue_work_duration_seconds', help: 'How long in seconds processing an item from workqueue takes', labelNames: ['name'], buckets: QUEUE_BUCKETS, registers });
    this.leaderStatus = new Gauge({ name: 'leader_election_master_status', help: 'Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master', labelNames: ['name'], registers });
    if (opts.processMetrics ?? opts.registry === undefined) collectProcessMetrics(this.registry);
  }

  controller(name: string): ControllerMetrics {
    for (const result of ['success', 'error', 'requeue', 'requeue_after'] as const) this.reconcileTotal.inc({ controller: name, result }, 0);
    this.reconcileErrors.inc({ controller: name }, 0);
    this.reconcilePanics.inc({ controller: name }, 0);
    this.activeWorkers.set({ controller: name }, 0);
    return {
      active: (delta) => this.activeWorkers.inc({ controller: name }, delta),
      workers: (n) => this.maxConcurrent.set({ controller: name }, n),
      reconciled: (outcome, seconds) => {
        this.reconcileTotal.inc({ controller: name, result: outcome });
        this.reconcileTime.observe({ controller: name }, seconds);
      },
      error: () => this.reconcileErrors.inc({ controller: name }),
      panic: () => this.reconcilePanics.inc({ controller: name }),
    };
  }

  queue(name: string): QueueMetrics {
    this.depth.set({ name }, 0);
    this.adds.inc({ name }, 0);
    this.retries.inc({ name }, 0);
    return {
      depth: (n) => this.depth.set({ name }, n),
      added: () => this.adds.inc({ name }),
      queued: (s) => this.queueDuration.observe({ name }, s),
      worked: (s) => this.workDuration.observe({ name }, s),
      retried: () => this.retries.inc({ name }),
    };
  }

  /** The Prometheus text exposition of every series. */
  metricsText(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
