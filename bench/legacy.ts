/**
 * Legacy: Cloud Brain `POST /instances` through the proxy `stratus serve --legacy-listen`
 * runs, with a token from `bin/stratus token create`: one POST alone (the token's scrypt
 * is derived and cached), then `requests` POSTs from 32 concurrent clients; the Instances are reconciled by the controllers of the storm this runs inside.
 * Measures POST requests/s and p50/p99, and POST → `running` (watched through the
 * Kubernetes API, matched by uid = the Cloud Brain id) p50/p99 and the time until all run.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { performance } from 'node:perf_hooks';
import type { Instance } from '../crds/types.js';
import { KubeClient } from '../runtime/client.js';
import { Resources } from '../controllers/resources.js';
import { stratusBin } from '../test/harness/paths.js';
import type { StratusServe } from '../test/harness/apiserver.js';
import { percentile, quantiles } from './report.js';
import { benchWarn, progress } from './progress.js';
import { STORM_CLIENTS } from './storm.js';

const execFileP = promisify(execFile);

export interface LegacyResult {
  /** The first POST with a fresh token: the proxy derives scrypt once, then caches it. */
  firstPostMs: number;
  requests: number;
  created: number;
  postsPerSec: number;
  postP50Ms: number;
  postP99Ms: number;
  running: number;
  runningP50Ms: number;
  runningP99Ms: number;
  /** requests ÷ seconds from the first POST until the last one ran. */
  runningPerSec: number;
  /** POST latencies, 0th..100th percentile (ms). */
  postQuantilesMs: number[];
}

/** The proxy's address as `stratus serve` prints it; undefined when it is not served. */
export function legacyUrlOf(serve: StratusServe): string | undefined {
  return /legacy APIs at (http:\/\/\S+)/.exec(serve.output())?.[1];
}

export async function runLegacyBench(serve: StratusServe, requests: number, deadlineMs: number): Promise<LegacyResult> {
  const url = legacyUrlOf(serve);
  if (!url) throw new Error(`the legacy proxy is not served by stratus serve:\n${serve.output().slice(-2000)}`);
  const { stdout } = await execFileP(process.execPath, [stratusBin(), 'token', 'create', 'bench', '--kubeconfig', serve.kubeconfig], { timeout: 30_000 });
  const token = /generated token: (\S+)/.exec(stdout)?.[1];
  if (!token) throw new Error(`stratus token create printed no token: ${stdout}`);

  const client = KubeClient.fromFile(serve.kubeconfig);
  const instances = client.resource<Instance>(Resources.instances);
  const abort = new AbortController();
  const runningAt = new Map<string, number>();
  const postedAt = new Map<string, number>();
  let wake: () => void = () => undefined;
  const { resourceVersion } = await instances.listWithVersion('default', { labelSelector: 'legacy.stratus.dev/api=cloudbrain' });
  const watching = instances
    .watch('default', { resourceVersion, labelSelector: 'legacy.stratus.dev/api=cloudbrain', signal: abort.signal, timeoutSeconds: Math.ceil(deadlineMs / 1000) + 30 }, (_t, obj) => {
      const uid = obj.metadata?.uid ?? '';
      if (obj.status?.state === 'running' && !runningAt.has(uid)) {
        runningAt.set(uid, performance.now());
        wake();
      }
    })
    .catch((err: unknown) => {
      if (!abort.signal.aborted) benchWarn(`legacy: watch ended: ${String(err)}`);
    });
  try {
    const post = (): Promise<Response> =>
      fetch(`${url}/instances`, {
        method: 'POST',
        headers: { authorization: `token ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ provider: 'libvirt', image: 'debian-12' }),
      });
    // One request alone first: the token's scrypt is derived once and cached, as it would be
    // for a client that has used its token before (32 cold requests at once all derive it).
    const first0 = performance.now();
    const first = await post();
    await first.arrayBuffer();
    const firstPostMs = performance.now() - first0;
    if (first.status !== 201) throw new Error(`POST /instances answered ${first.status}`);
    const posts: number[] = [];
    let failures = 0;
    let next = 0;
    const start = performance.now();
    const shown = progress('legacy POST /instances', requests, 'POSTs');
    await Promise.all(
      Array.from({ length: STORM_CLIENTS }, async () => {
        for (let i = next++; i < requests; i = next++) {
          const t0 = performance.now();
          const res = await post();
          const body = (await res.json()) as { id?: string };
          if (res.status !== 201 || !body.id) {
            failures++;
            continue;
          }
          posts.push(performance.now() - t0);
          postedAt.set(body.id, t0);
          shown.add();
        }
      }),
    );
    const postSeconds = (performance.now() - start) / 1000;
    shown.end(failures ? `${failures} failed` : undefined);
    const deadline = start + deadlineMs;
    while ([...postedAt.keys()].some((id) => !runningAt.has(id)) && performance.now() < deadline) {
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 500);
      });
    }
    const ran = [...postedAt].filter(([id]) => runningAt.has(id));
    const toRunning = ran.map(([id, t0]) => runningAt.get(id)! - t0);
    const last = ran.length ? Math.max(...ran.map(([id]) => runningAt.get(id)!)) : performance.now();
    if (failures) benchWarn(`legacy: ${failures} of ${requests} POSTs failed`);
    return {
      firstPostMs,
      requests,
      created: postedAt.size,
      postsPerSec: posts.length / postSeconds,
      postP50Ms: percentile(posts, 50),
      postP99Ms: percentile(posts, 99),
      running: ran.length,
      runningP50Ms: percentile(toRunning, 50),
      runningP99Ms: percentile(toRunning, 99),
      runningPerSec: ran.length / ((last - start) / 1000),
      postQuantilesMs: quantiles(posts),
    };
  } finally {
    abort.abort();
    await watching;
    client.close();
  }
}
