/**
 * The API server's Prometheus metrics, kube-apiserver's names. Each server has its own
 * registry so several servers can live in one process (tests); `/metrics` serves it.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { collectProcessMetrics } from '../runtime/metrics.js';

export interface RequestLabels {
  verb: string;
  group: string;
  version: string;
  resource: string;
  subresource: string;
  scope: string;
  code: string;
}

export class ApiMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter;
  private readonly duration: Histogram;
  readonly inflight: Gauge;
  readonly watchers: Gauge;

  constructor() {
    const labelNames = ['verb', 'group', 'version', 'resource', 'subresource', 'scope', 'component', 'code'];
    this.requests = new Counter({
      name: 'apiserver_request_total',
      help: 'Counter of apiserver requests broken out for each verb, group, version, resource, scope, component, and HTTP response code.',
      labelNames,
      registers: [this.registry],
    });
    this.duration = new Histogram({
      name: 'apiserver_request_duration_seconds',
      help: 'Response latency distribution in seconds for each verb, group, version, resource, subresource, scope and component.',
      labelNames: labelNames.filter((l) => l !== 'code'),
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60],
      registers: [this.registry],
    });
    this.inflight = new Gauge({ name: 'apiserver_current_inflight_requests', help: 'Requests being served now (watches excluded).', registers: [this.registry] });
    this.watchers = new Gauge({ name: 'apiserver_registered_watchers', help: 'Open watch connections.', registers: [this.registry] });
    collectProcessMetrics(this.registry);
  }

  observe(labels: RequestLabels, seconds: number): void {
    const base = { ...labels, component: 'apiserver' };
    this.requests.inc(base);
    const { code: _code, ...rest } = base;
    this.duration.observe(rest, seconds);
  }
}
