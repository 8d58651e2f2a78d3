/**
 * The object store's throughput against the disk it writes to, in the same run:
 *
 *   raw write: the same bytes written to a file in the server's data dir and fsynced (what a
 *              crash-safe PUT must at least do), then read back;
 *   S3:        PutObject / GetObject of the same sizes through `@aws-sdk/client-s3` against
 *              `stratus serve --s3-listen` (SigV4 with a signed payload hash, authorization as
 *              the user, index commit) — one request at a time.
 *
 * Sizes: 1 MiB × BENCH_S3_SMALL (40) and 100 MiB × BENCH_S3_LARGE (3). Goal: S3 ≥ 70 % of raw
 * for each. GET reads come from the page cache in both cases (same bytes just written).
 *
 *   node dist/bench/objectstore.js
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Writable, Readable } from 'node:stream';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { loadavg } from 'node:os';
import { S3Client, PutObjectCommand, GetObjectCommand, CreateBucketCommand } from '@aws-sdk/client-s3';
import { startStratusServe } from '../test/harness/apiserver.js';
import { execFileP, freePort } from '../test/harness/process.js';
import { stratusBin } from '../test/harness/paths.js';
import { publish, type BenchReport, type Figure } from './report.js';

const MiB = 1024 * 1024;

const num = (name: string, fallback: number): number => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
};

const sink = (): Writable => new Writable({ write: (_c, _e, cb) => cb() });

async function timed(fn: () => Promise<void>): Promise<number> {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
}

export async function runObjectStoreBench(): Promise<BenchReport> {
  const port = await freePort();
  const serve = await startStratusServe({ args: ['--s3-listen', `127.0.0.1:${port}`] });
  try {
    const run = (args: string[]): Promise<{ stdout: string }> => execFileP(process.execPath, [stratusBin(), ...args], { env: { ...process.env, STRATUS_LOG_LEVEL: 'warn' } });
    await run(['user', 'create', 'bench', '--namespace', 'bench', '--kubeconfig', serve.kubeconfig]);
    const { stdout } = await run(['s3', 'credentials', 'create', '--user', 'bench', '--kubeconfig', serve.kubeconfig]);
    const accessKeyId = /AccessKeyId: (\S+)/.exec(stdout)![1]!;
    const secretAccessKey = /SecretAccessKey: (\S+)/.exec(stdout)![1]!;
    const s3 = new S3Client({ endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId, secretAccessKey }, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
    await s3.send(new CreateBucketCommand({ Bucket: 'bench' }));

    const figures: Figure[] = [];
    const conditions: Record<string, string | number> = {};
    for (const [label, size, count] of [
      ['1 MiB', MiB, num('BENCH_S3_SMALL', 40)],
      ['100 MiB', 100 * MiB, num('BENCH_S3_LARGE', 3)],
    ] as const) {
      const body = Buffer.alloc(size, 0x5a);
      const rawFile = (i: number): string => join(serve.dataDir, `raw-${i}`);
      const rawWrite = await timed(async () => {
        for (let i = 0; i < count; i++) await pipeline(Readable.from([body]), createWriteStream(rawFile(i), { flush: true }));
      });
      const rawRead = await timed(async () => {
        for (let i = 0; i < count; i++) await pipeline(createReadStream(rawFile(i), { highWaterMark: MiB }), sink());
      });
      for (let i = 0; i < count; i++) await rm(rawFile(i), { force: true });
      const put = await timed(async () => {
        for (let i = 0; i < count; i++) await s3.send(new PutObjectCommand({ Bucket: 'bench', Key: `${label}/${i}`, Body: body }));
      });
      const get = await timed(async () => {
        for (let i = 0; i < count; i++) {
          const r = await s3.send(new GetObjectCommand({ Bucket: 'bench', Key: `${label}/${i}` }));
          await pipeline(r.Body as Readable, sink());
        }
      });
      const mbps = (secs: number): number => (count * size) / MiB / secs;
      figures.push(
        { name: `S3 PUT ${label}`, value: mbps(put), unit: 'MiB/s', limit: { name: 'raw write+fsync, 70 % goal of', value: mbps(rawWrite), unit: 'MiB/s' } },
        { name: `S3 GET ${label}`, value: mbps(get), unit: 'MiB/s', limit: { name: 'raw read, 70 % goal of', value: mbps(rawRead), unit: 'MiB/s' } },
      );
      conditions[`${label} objects`] = count;
    }
    s3.destroy();
    conditions.loadavg1m = Number(loadavg()[0]!.toFixed(1));
    return { benchmark: 'objectstore', conditions, figures };
  } finally {
    await serve.stop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  publish(await runObjectStoreBench());
}
