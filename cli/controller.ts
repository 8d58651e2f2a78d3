/**
 * `stratus controller`: every stratus controller against any Kubernetes API (a real cluster
 * with the CRDs of `crds/` installed, or `stratus serve`), from a kubeconfig.
 *
 *   stratus controller (--kubeconfig FILE | --in-cluster) [--leader-elect]
 *     [--lease-namespace NS] [--lease-name NAME] [--identity ID] [--metrics-listen HOST:PORT]
 *
 * `--kubeconfig` defaults to `$KUBECONFIG`; `--identity` to `$STRATUS_IDENTITY` (the pod
 * name in manifests/), else `hostname_uuid`.
 *
 * SIGTERM/SIGINT stop the workers (reconciles in flight finish or abort), release the
 * Lease so a standby takes over at once, and exit 0.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import { KubeClient } from '../runtime/client.js';
import type { Manager } from '../runtime/manager.js';
import { log } from '../runtime/log.js';

export interface ControllerManagerOptions {
  client: KubeClient;
  leaderElect?: boolean;
  leaseNamespace?: string;
  leaseName?: string;
  identity?: string;
  metricsListen?: string;
}

export interface RunningControllers {
  mgr: Manager;
  /** Stops the manager (releasing the Lease), then closes provider connections. */
  stop(): Promise<void>;
}

/** Builds the manager with every stratus controller and starts it. */
export async function startControllerManager(opts: ControllerManagerOptions): Promise<RunningControllers> {
  // Loaded here, not at the top: every other `stratus` command would pay for them.
  const [{ Manager }, { registerControllers }] = await Promise.all([import('../runtime/manager.js'), import('../controllers/index.js')]);
  const mgr = new Manager({
    client: opts.client,
    metricsListen: opts.metricsListen,
    leaderElection: opts.leaderElect
      ? {
          namespace: opts.leaseNamespace ?? 'default',
          name: opts.leaseName ?? 'stratus-controller',
          identity: opts.identity ?? `${hostname()}_${randomUUID()}`,
        }
      : undefined,
  });
  const held = registerControllers(mgr);
  await mgr.start();
  return {
    mgr,
    async stop() {
      await mgr.stop();
      await held.close();
    },
  };
}

/** The API client from `--in-cluster` or `--kubeconfig`; one of them is required. */
async function controllerClient(raw: Record<string, unknown>): Promise<KubeClient> {
  const options = { userAgent: 'stratus-controller' };
  if (raw.inCluster === true) {
    // client-node knows the in-cluster layout (token file, CA, KUBERNETES_SERVICE_HOST).
    const { KubeConfig } = await import('@kubernetes/client-node');
    const kc = new KubeConfig();
    kc.loadFromCluster();
    return KubeClient.fromKubeConfig(kc, options);
  }
  if (typeof raw.kubeconfig !== 'string' || raw.kubeconfig === '') {
    throw new Error('stratus controller needs --kubeconfig FILE (or $KUBECONFIG), or --in-cluster inside a Pod');
  }
  return KubeClient.fromFile(raw.kubeconfig, options);
}

export function registerController(program: Command): void {
  program
    .command('controller')
    .description('run the stratus controllers against a Kubernetes API (a real cluster or `stratus serve`)')
    .option('--kubeconfig <file>', 'kubeconfig of the API server (default $KUBECONFIG)', process.env.KUBECONFIG)
    .option('--in-cluster', 'use the Pod\'s service account (running inside Kubernetes)', false)
    .option('--leader-elect', 'run the controllers only while holding a coordination.k8s.io Lease', false)
    .option('--lease-namespace <ns>', 'namespace of the leader election Lease', 'default')
    .option('--lease-name <name>', 'name of the leader election Lease', 'stratus-controller')
    .option('--identity <id>', 'this replica in the Lease (default: $STRATUS_IDENTITY, else hostname_uuid)')
    .option('--metrics-listen <host:port>', 'serve /metrics, /healthz and /readyz here')
    .action(async (raw: Record<string, unknown>) => {
      const running = await startControllerManager({
        client: await controllerClient(raw),
        leaderElect: raw.leaderElect === true,
        leaseNamespace: String(raw.leaseNamespace),
        leaseName: String(raw.leaseName),
        identity: typeof raw.identity === 'string' ? raw.identity : process.env.STRATUS_IDENTITY || undefined,
        metricsListen: typeof raw.metricsListen === 'string' ? raw.metricsListen : undefined,
      });
      const mgr = running.mgr;
      const addr = mgr.metricsAddress();
      process.stdout.write(
        `stratus: controllers ${mgr.controllerNames().join(', ') || '(none)'} running against ${mgr.client.server}${addr ? `; metrics at http://${addr.address}:${addr.port}/metrics` : ''}\n`,
      );
      await waitForSignalThenStop(running);
    });
}

async function waitForSignalThenStop(running: RunningControllers): Promise<never> {
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  log.info({ signal }, 'stopping controllers');
  try {
    await running.stop();
    process.exit(0);
  } catch (err) {
    process.stderr.write(`stratus: shutdown failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
