/**
 * The providers' Prometheus metrics: every call the controllers make into a provider with
 * the `metrics` capability, by provider and operation.
 *
 * - `stratus_provider_requests_total{provider,operation,result}` (result: `success`, or the
 *   failure's reason, e.g. `NodeUnreachable`, `DeadlineExceeded`)
 * - `stratus_provider_request_duration_seconds{provider,operation}` (histogram)
 *
 * Registered on the registry it is given (the controller manager's, which `stratus serve`
 * joins to the API server's), so one `/metrics` carries them.
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import { ReconcileError } from '../runtime/errors.js';

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export class ProviderMetrics {
  private readonly requests: Counter<'provider' | 'operation' | 'result'>;
  private readonly duration: Histogram<'provider' | 'operation'>;

  constructor(registry: Registry) {
    this.requests = new Counter({
      name: 'stratus_provider_requests_total',
      help: 'Calls from the controllers into a provider, by provider, operation and result (success or the failure reason).',
      labelNames: ['provider', 'operation', 'result'],
      registers: [registry],
    });
    this.duration = new Histogram({
      name: 'stratus_provider_request_duration_seconds',
      help: 'Duration of calls from the controllers into a provider, by provider and operation.',
      labelNames: ['provider', 'operation'],
      buckets: BUCKETS,
      registers: [registry],
    });
  }

  /** Runs `fn`, counting and timing it under `provider`/`operation`; its result or error passes through. */
  async track<X>(provider: string, operation: string, fn: () => Promise<X>): Promise<X> {
    const end = this.duration.startTimer({ provider, operation });
    try {
      const out = await fn();
      this.requests.inc({ provider, operation, result: 'success' });
      return out;
    } catch (err) {
      this.requests.inc({ provider, operation, result: err instanceof ReconcileError ? err.reason : 'error' });
      throw err;
    } finally {
      end();
    }
  }
}
