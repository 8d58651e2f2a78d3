/**
 * What `stratus serve` runs beside its API server: the controllers, in-process, as any
 * external client would, over HTTPS with their own client certificate (user
 * `system:stratus-controllers`, group `system:masters`; unless `--no-controllers`), and with
 * `--sim-node` a ComputeNode named `sim` on libvirt's test driver, so a fresh install
 * reaches a running Instance on any machine.
 */
import { join } from 'node:path';
import type { ComputeNode } from '../crds/types.js';
import { KubeClient } from '../runtime/client.js';
import { Manager } from '../runtime/manager.js';
import { log } from '../runtime/log.js';
import { simNodeUri } from '../providers/libvirt/index.js';
import { registerControllers } from '../controllers/index.js';
import { Resources } from '../controllers/resources.js';
import type { ServeComponent } from './serve.js';

export const SIM_NODE = 'sim';

/** Creates (or points at this data dir) the `sim` ComputeNode. */
export async function ensureSimNode(client: KubeClient, dataDir: string): Promise<void> {
  const nodes = client.resource<ComputeNode>(Resources.computeNodes);
  const uri = simNodeUri(dataDir);
  const existing = await nodes.get(undefined, SIM_NODE);
  if (!existing) {
    await nodes.create({
      apiVersion: 'compute.stratus.dev/v1alpha1',
      kind: 'ComputeNode',
      metadata: { name: SIM_NODE, labels: { 'stratus.dev/simulated': 'true' } },
      spec: { provider: 'libvirt', libvirt: { uri, imagePool: 'default' } },
    });
    log.info({ component: 'serve', node: SIM_NODE, uri }, 'created the simulated ComputeNode');
  } else if (existing.spec.libvirt?.uri !== uri) {
    await nodes.mergePatch(undefined, SIM_NODE, { spec: { libvirt: { uri } } });
  }
}

export const serveControllers: ServeComponent = async (server, options) => {
  const client = KubeClient.fromFile(server.clientKubeconfig('controllers', 'system:stratus-controllers', ['system:masters']));
  if (options.simNode) await ensureSimNode(client, options.dataDir);
  if (!options.controllers) {
    client.close();
    return { close: async () => undefined };
  }
  const mgr = new Manager({ client });
  // Project files live with the rest of the control plane's state unless told otherwise.
  const held = registerControllers(mgr, { projectsDir: process.env.STRATUS_PROJECTS_DIR ?? join(options.dataDir, 'projects') });
  await mgr.start();
  log.info({ component: 'serve', controllers: mgr.controllerNames() }, 'controllers running');
  return {
    async close() {
      await mgr.stop();
      await held.close();
    },
  };
};
