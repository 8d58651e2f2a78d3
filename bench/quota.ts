/**
 * What quota admission costs and how fast `Quota.status.used` follows a change, on SQLite
 * and etcd (an in-process API server each, the identity controllers in-process):
 *
 *   - Instance creates/s, 16 clients, under a namespace Quota (every create charged with a
 *     compare-and-swap on one Quota object) — the limit it is compared with: the same run's
 *     creates/s in a namespace without a Quota;
 *   - the median and p95 time from a create/delete being acknowledged to the controller's
 *     recomputed `status.used` reflecting it (no pending charges left), over 20 changes.
 *
 *   node --import tsx bench/quota.ts        (BENCH_QUOTA_CREATES, default 400 per phase)
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startApiServer, type ApiServer } from '../apiserver/server.js';
import { KubeClient } from '../runtime/client.js';
import { Manager } from '../runtime/manager.js';
import { registerIdentityControllers } from '../controllers/index.js';
import { startEtcd } from '../test/harness/etcd.js';
import { repoRoot } from '../test/harness/paths.js';
import { removeDir, tempDir } from '../test/harness/process.js';
import { call, ensureNamespace, instance, instancesPath, quota, quotasPath, quotaStatus } from '../test/integration/iam/helpers.js';
import { median, percentile, publish, type Figure } from './report.js';

const CREATES = Number(process.env.BENCH_QUOTA_CREATES) > 0 ? Number(process.env.BENCH_QUOTA_CREATES) : 400;
const CLIENTS = 16;

async function createsPerSecond(base: string, ns: string, count: number): Promise<number> {
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      for (;;) {
        const i = next++;
        if (i >= count) return;
        const r = await call(base, 'POST', instancesPath(ns), instance(`b-${i}`));
        if (r.status !== 201) throw new Error(`create ${i}: ${r.status} ${JSON.stringify(r.body)}`);
      }
    }),
  );
  return count / ((performance.now() - start) / 1000);
}

async function settleMs(base: string, ns: string, change: () => Promise<void>, instances: number): Promise<number> {
  const start = performance.now();
  await change();
  for (;;) {
    const st = await quotaStatus(base, ns, 'q');
    if (!st.pending && st.used?.instances === instances) return performance.now() - start;
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function run(backend: 'sqlite' | 'etcd'): Promise<void> {
  const dir = await tempDir('bench-quota');
  const etcd = backend === 'etcd' ? await startEtcd() : undefined;
  let server: ApiServer | undefined;
  let mgr: Manager | undefined;
  try {
    server = await startApiServer({ dataDir: dir, listen: '127.0.0.1:0', crdDir: join(repoRoot(), 'crds'), ...(etcd ? { etcdServers: [etcd.endpoint] } : {}) });
    mgr = new Manager({ client: KubeClient.fromFile(server.kubeconfigPath) });
    registerIdentityControllers(mgr);
    await mgr.start();
    for (const ns of ['free', 'bounded', 'settle']) await ensureNamespace(server.url, ns);
    await call(server.url, 'POST', quotasPath('bounded'), quota('q', { instances: CREATES * 10 }));
    await call(server.url, 'POST', quotasPath('settle'), quota('q', { instances: 1000 }));
    const free = await createsPerSecond(server.url, 'free', CREATES);
    const bounded = await createsPerSecond(server.url, 'bounded', CREATES);
    const settle: number[] = [];
    const base = server.url;
    for (let i = 0; i < 10; i++) {
      settle.push(await settleMs(base, 'settle', async () => void (await call(base, 'POST', instancesPath('settle'), instance(`s-${i}`))), i + 1));
    }
    for (let i = 9; i >= 0; i--) {
      settle.push(await settleMs(base, 'settle', async () => void (await call(base, 'DELETE', `${instancesPath('settle')}/s-${i}`)), i));
    }
    const figures: Figure[] = [
      { name: 'creates/s under a namespace Quota', value: bounded, unit: '/s', limit: { name: 'creates/s without a Quota', value: free, unit: '/s' } },
      { name: 'status.used settles after a change, median', value: median(settle), unit: 'ms', limit: { name: 'goal', value: 1000, unit: 'ms' } },
      { name: 'status.used settles after a change, p95', value: percentile(settle, 95), unit: 'ms', limit: { name: 'goal', value: 1000, unit: 'ms' } },
    ];
    publish({ benchmark: `quota-${backend}`, conditions: { backend, creates: CREATES, clients: CLIENTS, changes: settle.length }, figures });
  } finally {
    await mgr?.stop();
    await server?.close();
    await etcd?.stop();
    await removeDir(dir);
  }
}

await run('sqlite');
await run('etcd');
