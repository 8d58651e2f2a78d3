/**
 * Watch fan-out receivers, run as their own process (`node dist/bench/watchers.js
 * CONFIG.json`): `watchers` watch streams on one collection from one resourceVersion. Every
 * change carries the time it was sent in an annotation (`bench.stratus.dev/sent`, ms since
 * the epoch with sub-ms precision); each delivered event's latency is now − sent. Prints
 * `ready` once every stream is open, then one JSON line when every stream saw `expect`
 * events or `timeoutMs` passed: `{delivered, expected, p50Ms, p99Ms}`.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { percentile, quantiles } from './report.js';

export const SENT_ANNOTATION = 'bench.stratus.dev/sent';

export interface WatchersConfig {
  url: string;
  token?: string;
  /** The CA to trust for https URLs (PEM). */
  ca?: string;
  /** Collection path, e.g. /apis/compute.stratus.dev/v1alpha1/namespaces/default/instances */
  path: string;
  resourceVersion: string;
  watchers: number;
  expect: number;
  timeoutMs: number;
}

/** Now in ms since the epoch, sub-ms precision, comparable across processes on one machine. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

const SENT = new RegExp(`"${SENT_ANNOTATION.replace(/\./g, '\\.')}":"([0-9.]+)"`);

async function main(cfg: WatchersConfig): Promise<void> {
  const secure = cfg.url.startsWith('https:');
  const agent = secure ? new https.Agent({ keepAlive: true, maxSockets: cfg.watchers + 1, ...(cfg.ca ? { ca: cfg.ca } : {}) }) : new http.Agent({ keepAlive: true, maxSockets: cfg.watchers + 1 });
  const latencies: number[] = [];
  const counts = new Array<number>(cfg.watchers).fill(0);
  let complete = 0;
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((r) => (finish = r));
  const reqs: http.ClientRequest[] = [];
  const opened = Array.from({ length: cfg.watchers }, (_, w) =>
    new Promise<void>((resolve, reject) => {
      const url = `${cfg.url}${cfg.path}?watch=true&resourceVersion=${cfg.resourceVersion}&timeoutSeconds=600`;
      const headers: http.OutgoingHttpHeaders = cfg.token ? { authorization: `Bearer ${cfg.token}` } : {};
      const req = (secure ? https : http).get(url, { agent, headers }, (res) => {
        if (res.statusCode !== 200) return reject(new Error(`watch ${w}: HTTP ${res.statusCode}`));
        resolve();
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buf += chunk;
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            const m = SENT.exec(line);
            if (!m) continue;
            latencies.push(epochMs() - Number(m[1]));
            if (++counts[w]! === cfg.expect && ++complete === cfg.watchers) finish();
          }
        });
        res.on('error', () => undefined);
      });
      req.on('error', (err) => (reqs.length ? undefined : reject(err)));
      reqs.push(req);
    }),
  );
  await Promise.all(opened);
  process.stdout.write('ready\n');
  const timer = setTimeout(finish, cfg.timeoutMs);
  await finished;
  clearTimeout(timer);
  for (const r of reqs) r.destroy();
  agent.destroy();
  process.stdout.write(
    JSON.stringify({ delivered: latencies.length, expected: cfg.expect * cfg.watchers, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99), quantilesMs: quantiles(latencies) }) + '\n',
  );
}

if (process.argv[1]?.endsWith('watchers.js')) {
  main(JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as WatchersConfig).then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`watchers: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(1);
    },
  );
}
