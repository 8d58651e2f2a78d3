/** Shared setup of the runtime integration tests. */
import { copyFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startStratusServe, type StratusServe } from '../../harness/apiserver.js';
import { removeDir, tempDir } from '../../harness/process.js';
import { repoRoot } from '../../harness/paths.js';
import { CoreResources, isAlreadyExists, type KubeClient } from '../../../runtime/client.js';
import { writeWidgetCrd } from './widgets.js';

/** `stratus serve` with the stratus CRDs plus the Widget test kind; `stop()` removes everything. */
export async function startWidgetServer(): Promise<StratusServe> {
  const crdDir = await tempDir('runtime-crds');
  try {
    for (const f of readdirSync(join(repoRoot(), 'crds'))) if (f.endsWith('.yaml')) copyFileSync(join(repoRoot(), 'crds', f), join(crdDir, f));
    writeWidgetCrd(crdDir);
    const srv = await startStratusServe({ args: ['--crd-dir', crdDir] });
    const stop = srv.stop.bind(srv);
    srv.stop = async () => {
      try {
        await stop();
      } finally {
        await removeDir(crdDir);
      }
    };
    return srv;
  } catch (err) {
    await removeDir(crdDir);
    throw err;
  }
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

/**
 * Retries an unconditioned write through a down or restarting API server (connection
 * refused/reset). Not on 409: a patch without a resourceVersion never conflicts (the server
 * queues and retries it, as kube-apiserver does), so a 409 here is a defect to surface.
 */
export async function retrying<T>(fn: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await fn();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (i > 200 || !(code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'EPIPE')) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export async function ensureNamespace(client: KubeClient, name: string): Promise<void> {
  try {
    await client.resource(CoreResources.namespaces).create({ metadata: { name } });
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
  }
}

/** The helper controller process, run from dist after `make build` or from source under tsx. */
export function widgetManagerCommand(): string[] {
  const js = fileURLToPath(new URL('./widget-manager.js', import.meta.url));
  if (existsSync(js)) return [js];
  return ['--import', 'tsx', fileURLToPath(new URL('./widget-manager.ts', import.meta.url))];
}

/** Value of one sample in a Prometheus text exposition (undefined when absent). */
export function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1));
  }
  return undefined;
}
