/**
 * What `stratus serve` runs beside its API server: the controllers, in-process, as any
 * external client would, over HTTPS with their own client certificate (user
 * `system:stratus-controllers`, group `system:masters`; unless `--no-controllers`), and with
 * `--sim-node` a ComputeNode named `sim` from the provider that can simulate one (libvirt's
 * test driver), so a fresh install reaches a running Instance on any machine.
 *
 * The controllers' metrics (`controller_runtime_*`, `workqueue_*`, the providers') are
 * registered on the API server's registry, so its one `/metrics` carries everything.
 */
import { join } from 'node:path';
import type { ComputeNode } from '../crds/types.js';
import { KubeClient } from '../runtime/client.js';
import { Manager } from '../runtime/manager.js';
import { log } from '../runtime/log.js';
import { RuntimeMetrics } from '../runtime/metrics.js';
import { builtinProviders } from '../providers/index.js';
import type { ProviderRegistry } from '../providers/registry.js';
import { registerControllers } from '../controllers/index.js';
import { Resources } from '../controllers/resources.js';
import type { ServeComponent } from './serve.js';
import { parseDnsListen, parseDnsTtl, parseDnsZone, startEmbeddedDNS } from './serve-dns.js';

export const SIM_NODE = 'sim';

/** Creates (or points at this data dir) the `sim` ComputeNode, from the first provider that can simulate one. */
export async function ensureSimNode(client: KubeClient, dataDir: string, providers: ProviderRegistry = builtinProviders()): Promise<void> {
  const simulator = providers.withCapability('simulatedNode')[0];
  if (!simulator) throw new Error('--sim-node: no provider in this build can simulate a ComputeNode');
  const spec = simulator.capabilities.simulatedNode!(dataDir);
  const section = spec[simulator.name as keyof typeof spec];
  const nodes = client.resource<ComputeNode>(Resources.computeNodes);
  const existing = await nodes.get(undefined, SIM_NODE);
  if (!existing) {
    await nodes.create({
      apiVersion: 'compute.stratus.dev/v1alpha1',
      kind: 'ComputeNode',
      metadata: { name: SIM_NODE, labels: { 'stratus.dev/simulated': 'true' } },
      spec,
    });
    log.info({ component: 'serve', node: SIM_NODE, provider: simulator.name, settings: section }, 'created the simulated ComputeNode');
  } else if (JSON.stringify(existing.spec[simulator.name as keyof typeof spec]) !== JSON.stringify(section)) {
    // The data dir moved: point the node's section at this one.
    await nodes.mergePatch(undefined, SIM_NODE, { spec: { [simulator.name]: section } });
  }
}

export const serveControllers: ServeComponent = async (server, options) => {
  const client = KubeClient.fromFile(server.clientKubeconfig('controllers', 'system:stratus-controllers', ['system:masters']));
  if (options.simNode) await ensureSimNode(client, options.dataDir);
  if (!options.controllers) {
    client.close();
    return { close: async () => undefined };
  }
  // bad DNS flags fail before anything starts
  parseDnsListen(options.dnsListen);
  const dnsTtl = parseDnsTtl(options.dnsTtl);
  parseDnsZone(options.dnsZone);
  const dns = await startEmbeddedDNS(options.dnsListen, options.dnsZone, dnsTtl);
  const mgr = new Manager({ client, metrics: new RuntimeMetrics({ registry: server.metricsRegistry }) });
  // Project files live with the rest of the control plane's state unless told otherwise.
  const held = registerControllers(mgr, {
    projectsDir: process.env.STRATUS_PROJECTS_DIR ?? join(options.dataDir, 'projects'),
    // the Projects' push remotes are the API server's (apiserver/git/)
    apiURL: server.url,
    gitDir: join(options.dataDir, 'git'),
    ...(dns ? { dns } : {}),
  });
  await mgr.start();
  log.info({ component: 'serve', controllers: mgr.controllerNames() }, 'controllers running');
  return {
    async close() {
      await mgr.stop();
      await held.close();
      await dns?.server.close();
    },
  };
};
