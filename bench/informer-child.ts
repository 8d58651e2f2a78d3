/**
 * The controllers' cache, measured alone (`node --expose-gc dist/bench/informer-child.js
 * KUBECONFIG`): memory after a full GC before and after one Instance informer (the one the
 * controllers share) has listed and synced every Instance. Prints one JSON line
 * `{objects, rssDeltaMiB, heapDeltaMiB}`.
 */
import { KubeClient } from '../runtime/client.js';
import { Informer } from '../runtime/informer.js';
import { Resources } from '../controllers/resources.js';
import type { Instance } from '../crds/types.js';

function settled(): NodeJS.MemoryUsage {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc');
  gc();
  gc();
  return process.memoryUsage();
}

async function main(kubeconfig: string): Promise<void> {
  const client = KubeClient.fromFile(kubeconfig);
  // warm the client (TLS/agent, JSON paths) so the delta is the cache, not the code
  await client.resource<Instance>(Resources.instances).list('kube-system');
  const before = settled();
  const inf = new Informer<Instance>(client.resource<Instance>(Resources.instances));
  inf.start();
  if (!(await inf.waitForSync())) throw new Error('informer did not sync');
  await new Promise((r) => setTimeout(r, 200));
  const after = settled();
  const objects = inf.size;
  await inf.stop();
  client.close();
  const mib = (b: number): number => b / 1024 / 1024;
  process.stdout.write(JSON.stringify({ objects, rssDeltaMiB: mib(after.rss - before.rss), heapDeltaMiB: mib(after.heapUsed - before.heapUsed) }) + '\n');
}

if (process.argv[1]?.endsWith('informer-child.js')) {
  main(process.argv[2]!).then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`informer-child: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(1);
    },
  );
}
