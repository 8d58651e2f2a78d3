/**
 * The S3 endpoint of `stratus serve` driven by clients nobody here wrote: the AWS CLI
 * (Debian's awscli), s3cmd and `@aws-sdk/client-s3`. One server for the file; users alice
 * and bob (each in its own namespace, made by `stratus user create`) get access keys from
 * `stratus s3 credentials create`.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { Readable } from 'node:stream';
import { lookup as dnsLookup } from 'node:dns';
import { Agent } from 'node:http';
import { readdirSync, writeFileSync, readFileSync, mkdirSync, truncateSync, openSync, writeSync, closeSync, createReadStream } from 'node:fs';
import { join } from 'node:path';
import { crc32 as zlibCrc32 } from 'node:zlib';
import {
  S3Client,
  PutObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  CopyObjectCommand,
  DeleteObjectsCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  UploadPartCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  ListBucketsCommand,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { SignatureV4 } from '@smithy/signature-v4';
import { Hash } from '@smithy/hash-node';
import type { Bucket, Quota } from '../../crds/types.js';
import { CoreResources, KubeClient } from '../../runtime/client.js';
import type { SecretObject } from '../../objectstore/credentials.js';
import { Resources } from '../../controllers/resources.js';
import { startStratusServe, type StratusServe } from '../harness/apiserver.js';
import { execFileP, freePort, removeDir, requireBinary, tempDir, waitFor } from '../harness/process.js';
import { stratus } from './legacy/helpers.js';

interface Keys {
  accessKeyId: string;
  secretAccessKey: string;
}

describe('S3 object store (aws, s3cmd, @aws-sdk/client-s3)', () => {
  let serve: StratusServe;
  let client: KubeClient;
  let dir: string;
  let endpoint: string;
  let alice: Keys;
  let bob: Keys;
  let aws: string;
  let s3cmd: string;

  const sdk = (keys: Keys, extra: Record<string, unknown> = {}): S3Client =>
    new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: keys, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED', maxAttempts: 1, ...extra });

  const awsCli = async (keys: Keys, args: string[], url = endpoint): Promise<string> => {
    const config = join(dir, 'aws-config');
    try {
      const { stdout } = await execFileP(aws, ['--endpoint-url', url, ...args], {
        env: { PATH: process.env.PATH, HOME: dir, AWS_PAGER: '', AWS_CONFIG_FILE: config, AWS_SHARED_CREDENTIALS_FILE: join(dir, 'none'), AWS_ACCESS_KEY_ID: keys.accessKeyId, AWS_SECRET_ACCESS_KEY: keys.secretAccessKey, AWS_DEFAULT_REGION: 'us-east-1' },
        maxBuffer: 16 << 20,
      });
      return stdout;
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      throw new Error(`aws ${args.join(' ')} failed: ${e.stderr ?? ''}${e.stdout ?? ''}`);
    }
  };

  const s3cmdRun = async (keys: Keys, args: string[]): Promise<string> => {
    const host = new URL(endpoint).host;
    const cfg = join(dir, 's3cmd.cfg');
    writeFileSync(cfg, `[default]\naccess_key = ${keys.accessKeyId}\nsecret_key = ${keys.secretAccessKey}\nhost_base = ${host}\nhost_bucket = ${host}\nuse_https = False\nsignature_v2 = False\nbucket_location = us-east-1\n`, { mode: 0o600 });
    try {
      const { stdout } = await execFileP(s3cmd, ['-c', cfg, '--no-progress', ...args], { env: { PATH: process.env.PATH, HOME: dir } });
      return stdout;
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      throw new Error(`s3cmd ${args.join(' ')} failed: ${e.stderr ?? ''}${e.stdout ?? ''}`);
    }
  };

  const credentials = async (user: string): Promise<Keys> => {
    const { stdout } = await stratus(['s3', 'credentials', 'create', '--user', user, '--kubeconfig', serve.kubeconfig]);
    const m = /^AccessKeyId: (AKST[A-Z2-7]{16})\nSecretAccessKey: ([A-Za-z0-9]{40})\n$/.exec(stdout);
    assert.ok(m, `unexpected output: ${stdout}`);
    return { accessKeyId: m[1]!, secretAccessKey: m[2]! };
  };

  const s3Code = async (p: Promise<unknown>): Promise<string> => {
    try {
      await p;
    } catch (err) {
      if (err instanceof S3ServiceException) return err.name;
      throw err;
    }
    return 'no error';
  };

  before(async () => {
    aws = requireBinary('aws', 'make deps-apt (awscli)');
    s3cmd = requireBinary('s3cmd', 'make deps-apt (s3cmd)');
    const port = await freePort();
    endpoint = `http://127.0.0.1:${port}`;
    serve = await startStratusServe({ args: ['--s3-listen', `127.0.0.1:${port}`] });
    client = KubeClient.fromFile(serve.kubeconfig);
    dir = await tempDir('s3');
    writeFileSync(join(dir, 'aws-config'), '[default]\ns3 =\n  signature_version = s3v4\n');
    await stratus(['user', 'create', 'alice', '--namespace', 'alice', '--kubeconfig', serve.kubeconfig]);
    await stratus(['user', 'create', 'bob', '--namespace', 'bob', '--kubeconfig', serve.kubeconfig]);
    alice = await credentials('alice');
    bob = await credentials('bob');
  });

  after(async () => {
    if (process.env.S3_TEST_OUTPUT) writeFileSync(process.env.S3_TEST_OUTPUT, serve?.output() ?? '');
    client?.close();
    await serve?.stop();
    if (dir) await removeDir(dir);
  });

  it('stores the secret access key only encrypted', async () => {
    const secret = (await client.resource<SecretObject>(CoreResources.secrets).get('stratus-system', `s3-${alice.accessKeyId.toLowerCase()}`))!;
    const stored = JSON.stringify(secret);
    assert.ok(!stored.includes(alice.secretAccessKey) && !stored.includes(Buffer.from(alice.secretAccessKey).toString('base64')), 'the secret is not in the Secret in clear');
    assert.ok(secret.data?.secretAccessKeyEncrypted);
    assert.ok(!serve.output().includes(alice.secretAccessKey), 'the secret is not logged');
  });

  it('aws s3: mb, cp, ls with prefixes, sync, presign + curl, rm, rb', async () => {
    await awsCli(alice, ['s3', 'mb', 's3://alice-files']);
    const src = join(dir, 'src');
    mkdirSync(join(src, 'docs'), { recursive: true });
    writeFileSync(join(src, 'a.txt'), 'alpha\n');
    writeFileSync(join(src, 'docs', 'b.txt'), 'bravo\n');
    writeFileSync(join(src, 'docs', 'c.txt'), 'charlie\n');
    await awsCli(alice, ['s3', 'cp', join(src, 'a.txt'), 's3://alice-files/a.txt']);
    await awsCli(alice, ['s3', 'sync', src, 's3://alice-files/tree/']);
    const top = await awsCli(alice, ['s3', 'ls', 's3://alice-files/']);
    assert.match(top, /PRE tree\//);
    assert.match(top, / 6 a\.txt/);
    const docs = await awsCli(alice, ['s3', 'ls', 's3://alice-files/tree/docs/']);
    assert.deepEqual(docs.trim().split('\n').map((l) => l.trim().split(/\s+/).pop()), ['b.txt', 'c.txt']);
    assert.equal(await awsCli(alice, ['s3', 'cp', 's3://alice-files/tree/docs/c.txt', '-']), 'charlie\n');

    const url = (await awsCli(alice, ['s3', 'presign', 's3://alice-files/a.txt', '--expires-in', '300'])).trim();
    assert.match(url, /X-Amz-Signature=/);
    const { stdout } = await execFileP('curl', ['-sS', '-f', url]);
    assert.equal(stdout, 'alpha\n');
    const tampered = url.replace('a.txt', 'tree/docs/b.txt');
    const bad = await execFileP('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', tampered]);
    assert.equal(bad.stdout, '403');

    await awsCli(alice, ['s3', 'rm', 's3://alice-files/', '--recursive']);
    await awsCli(alice, ['s3', 'rb', 's3://alice-files']);
    assert.equal(await client.resource<Bucket>(Resources.buckets).get('alice', 'alice-files'), undefined, 'rb deleted the Bucket object');
  });

  it('aws s3 cp of a 200 MB file goes multipart and comes back identical', async () => {
    // bucket and HEAD through the SDK: each aws process costs seconds of Python start-up
    const s3 = sdk(alice);
    await s3.send(new CreateBucketCommand({ Bucket: 'alice-big' }));
    const big = join(dir, 'big.bin');
    // sparse, with a few real bytes so a misplaced part would show
    writeFileSync(big, '');
    truncateSync(big, 200 * 1024 * 1024);
    const fd = openSync(big, 'r+');
    for (let i = 0; i < 25; i++) writeSync(fd, Buffer.from(`part marker ${i}`), 0, undefined, i * 8 * 1024 * 1024 + 17);
    closeSync(fd);
    await awsCli(alice, ['s3', 'cp', '--only-show-errors', big, 's3://alice-big/big.bin']);
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'alice-big', Key: 'big.bin' }));
    assert.equal(head.ContentLength, 200 * 1024 * 1024);
    assert.match(head.ETag ?? '', /^"[0-9a-f]{32}-\d+"$/, 'a multipart ETag');
    const back = join(dir, 'big.back');
    await awsCli(alice, ['s3', 'cp', '--only-show-errors', 's3://alice-big/big.bin', back]);
    const digest = (f: string): string => createHash('sha256').update(readFileSync(f)).digest('hex');
    assert.equal(digest(back), digest(big));
    await s3.send(new DeleteObjectsCommand({ Bucket: 'alice-big', Delete: { Objects: [{ Key: 'big.bin' }] } }));
    await s3.send(new DeleteBucketCommand({ Bucket: 'alice-big' }));
  });

  it('s3cmd: mb, put, ls, get, sync, del, rb', async () => {
    await s3cmdRun(bob, ['mb', 's3://bob-cmd']);
    const f = join(dir, 'cmd.txt');
    writeFileSync(f, 's3cmd was here\n');
    await s3cmdRun(bob, ['put', f, 's3://bob-cmd/x/cmd.txt']);
    assert.match(await s3cmdRun(bob, ['ls', 's3://bob-cmd/']), /DIR\s+s3:\/\/bob-cmd\/x\//);
    assert.match(await s3cmdRun(bob, ['ls', 's3://bob-cmd/x/']), /15\s+s3:\/\/bob-cmd\/x\/cmd\.txt/);
    const got = join(dir, 'cmd.got');
    await s3cmdRun(bob, ['get', 's3://bob-cmd/x/cmd.txt', got]);
    assert.equal(readFileSync(got, 'utf8'), 's3cmd was here\n');
    const tree = join(dir, 'cmdtree');
    mkdirSync(join(tree, 'sub'), { recursive: true });
    writeFileSync(join(tree, 'one'), '1');
    writeFileSync(join(tree, 'sub', 'two'), '22');
    await s3cmdRun(bob, ['sync', `${tree}/`, 's3://bob-cmd/tree/']);
    assert.match(await s3cmdRun(bob, ['ls', '-r', 's3://bob-cmd/tree/']), /s3:\/\/bob-cmd\/tree\/sub\/two/);
    await s3cmdRun(bob, ['del', '--recursive', '--force', 's3://bob-cmd/']);
    await s3cmdRun(bob, ['rb', 's3://bob-cmd']);
  });

  it('@aws-sdk/client-s3: metadata, ranges, ListObjectsV2 pages and delimiters, copy, batch delete, multipart ETag, presigned PUT', async () => {
    const s3 = sdk(alice);
    await s3.send(new CreateBucketCommand({ Bucket: 'alice-sdk' }));
    await s3.send(new PutObjectCommand({ Bucket: 'alice-sdk', Key: 'dir/hello.txt', Body: 'hello, world', ContentType: 'text/plain', Metadata: { colour: 'blue' } }));
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'alice-sdk', Key: 'dir/hello.txt' }));
    assert.equal(head.ContentType, 'text/plain');
    assert.deepEqual(head.Metadata, { colour: 'blue' });
    assert.equal(head.ETag, `"${createHash('md5').update('hello, world').digest('hex')}"`);
    const part = await s3.send(new GetObjectCommand({ Bucket: 'alice-sdk', Key: 'dir/hello.txt', Range: 'bytes=7-11' }));
    assert.equal(await part.Body!.transformToString(), 'world');
    assert.equal(part.ContentRange, 'bytes 7-11/12');
    assert.equal(await s3Code(s3.send(new GetObjectCommand({ Bucket: 'alice-sdk', Key: 'dir/hello.txt', Range: 'bytes=50-60' }))), 'InvalidRange');
    assert.equal(await s3Code(s3.send(new GetObjectCommand({ Bucket: 'alice-sdk', Key: 'missing' }))), 'NoSuchKey');
    assert.equal(await s3Code(s3.send(new GetObjectCommand({ Bucket: 'no-such-bucket-here', Key: 'k' }))), 'NoSuchBucket');

    for (const k of ['a/1', 'a/2', 'b/1', 'c', 'd', 'ü/é']) await s3.send(new PutObjectCommand({ Bucket: 'alice-sdk', Key: k, Body: k }));
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: 'alice-sdk', MaxKeys: 2, ContinuationToken: token }));
      keys.push(...(page.Contents ?? []).map((c) => c.Key!));
      token = page.NextContinuationToken;
    } while (token);
    assert.deepEqual(keys, ['a/1', 'a/2', 'b/1', 'c', 'd', 'dir/hello.txt', 'ü/é']);
    const grouped = await s3.send(new ListObjectsV2Command({ Bucket: 'alice-sdk', Delimiter: '/' }));
    assert.deepEqual(grouped.CommonPrefixes?.map((p) => p.Prefix), ['a/', 'b/', 'dir/', 'ü/']);
    assert.deepEqual(grouped.Contents?.map((c) => c.Key), ['c', 'd']);
    const prefixed = await s3.send(new ListObjectsV2Command({ Bucket: 'alice-sdk', Prefix: 'a/' }));
    assert.deepEqual(prefixed.Contents?.map((c) => c.Key), ['a/1', 'a/2']);

    await s3.send(new CopyObjectCommand({ Bucket: 'alice-sdk', Key: 'copy.txt', CopySource: 'alice-sdk/dir/hello.txt' }));
    const copied = await s3.send(new GetObjectCommand({ Bucket: 'alice-sdk', Key: 'copy.txt' }));
    assert.equal(await copied.Body!.transformToString(), 'hello, world');
    assert.deepEqual(copied.Metadata, { colour: 'blue' });

    const del = await s3.send(new DeleteObjectsCommand({ Bucket: 'alice-sdk', Delete: { Objects: [{ Key: 'a/1' }, { Key: 'a/2' }, { Key: 'never-was' }] } }));
    assert.deepEqual(del.Deleted?.map((d) => d.Key).sort(), ['a/1', 'a/2', 'never-was']);

    const p1 = Buffer.alloc(5 * 1024 * 1024, 1);
    const p2 = Buffer.from('tail');
    const up = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'alice-sdk', Key: 'multi.bin' }));
    const e1 = (await s3.send(new UploadPartCommand({ Bucket: 'alice-sdk', Key: 'multi.bin', UploadId: up.UploadId, PartNumber: 1, Body: p1 }))).ETag!;
    const e2 = (await s3.send(new UploadPartCommand({ Bucket: 'alice-sdk', Key: 'multi.bin', UploadId: up.UploadId, PartNumber: 2, Body: p2 }))).ETag!;
    const done = await s3.send(new CompleteMultipartUploadCommand({ Bucket: 'alice-sdk', Key: 'multi.bin', UploadId: up.UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: e1 }, { PartNumber: 2, ETag: e2 }] } }));
    const md5 = (b: Buffer): Buffer => createHash('md5').update(b).digest();
    assert.equal(done.ETag, `"${createHash('md5').update(Buffer.concat([md5(p1), md5(p2)])).digest('hex')}-2"`);
    const across = await s3.send(new GetObjectCommand({ Bucket: 'alice-sdk', Key: 'multi.bin', Range: `bytes=${p1.length - 2}-${p1.length + 1}` }));
    assert.deepEqual(Buffer.from(await across.Body!.transformToByteArray()), Buffer.from([1, 1, 0x74, 0x61]), 'a range across the two parts');

    const putUrl = await getSignedUrl(s3, new PutObjectCommand({ Bucket: 'alice-sdk', Key: 'presigned.txt' }), { expiresIn: 60 });
    const put = await fetch(putUrl, { method: 'PUT', body: 'via a presigned URL' });
    assert.equal(put.status, 200);
    const getUrl = await getSignedUrl(s3, new GetObjectCommand({ Bucket: 'alice-sdk', Key: 'presigned.txt' }), { expiresIn: 60 });
    assert.equal(await (await fetch(getUrl)).text(), 'via a presigned URL');

    const wrong = sdk({ accessKeyId: alice.accessKeyId, secretAccessKey: 'x'.repeat(40) });
    assert.equal(await s3Code(wrong.send(new ListBucketsCommand({}))), 'SignatureDoesNotMatch');
    const unknown = sdk({ accessKeyId: 'AKSTAAAAAAAAAAAAAAAA', secretAccessKey: 'x'.repeat(40) });
    assert.equal(await s3Code(unknown.send(new ListBucketsCommand({}))), 'InvalidAccessKeyId');
    const anon = await fetch(`${endpoint}/alice-sdk/dir/hello.txt`);
    assert.equal(anon.status, 403);
    assert.match(await anon.text(), /<Code>AccessDenied<\/Code>/);
  });

  it('serves virtual-host-style requests (BUCKET.localhost)', async () => {
    const port = new URL(endpoint).port;
    // BUCKET.localhost resolves to loopback whatever the resolver says
    const loopback = (_host: string, options: { all?: boolean }, cb: (err: null, address: unknown, family?: number) => void): void => {
      if (options.all) cb(null, [{ address: '127.0.0.1', family: 4 }]);
      else cb(null, '127.0.0.1', 4);
    };
    const agent = new Agent({ lookup: loopback as unknown as typeof dnsLookup });
    const s3 = sdk(alice, { endpoint: `http://localhost:${port}`, forcePathStyle: false, requestHandler: new NodeHttpHandler({ httpAgent: agent }) });
    const got = await s3.send(new GetObjectCommand({ Bucket: 'alice-sdk', Key: 'dir/hello.txt' }));
    assert.equal(await got.Body!.transformToString(), 'hello, world');
    agent.destroy();
  });

  it('keeps users out of each other\'s buckets', async () => {
    const asBob = sdk(bob);
    assert.equal(await s3Code(asBob.send(new GetObjectCommand({ Bucket: 'alice-sdk', Key: 'dir/hello.txt' }))), 'AccessDenied');
    assert.equal(await s3Code(asBob.send(new ListObjectsV2Command({ Bucket: 'alice-sdk' }))), 'AccessDenied');
    assert.equal(await s3Code(asBob.send(new PutObjectCommand({ Bucket: 'alice-sdk', Key: 'intruder', Body: 'x' }))), 'AccessDenied');
    assert.equal(await s3Code(asBob.send(new CreateBucketCommand({ Bucket: 'alice-sdk' }))), 'BucketAlreadyExists');
    const bobs = await asBob.send(new ListBucketsCommand({}));
    assert.ok(!(bobs.Buckets ?? []).some((b) => b.Name === 'alice-sdk'), 'bob does not see alice\'s bucket');
  });

  it('reports usage on the Bucket and refuses an upload past the namespace Quota', async () => {
    const buckets = client.resource<Bucket>(Resources.buckets);
    const b = await waitFor('usedBytes of alice-sdk', async () => {
      const o = await buckets.get('alice', 'alice-sdk');
      return o?.status?.usedBytes !== undefined && o.status.objectCount === 8 ? o : undefined;
    }, 15_000);
    assert.equal(b.status?.endpoint, `${endpoint}/alice-sdk`);
    assert.deepEqual(b.metadata?.finalizers, ['storage.stratus.dev/objects']);
    const used = b.status!.usedBytes!;
    await client.resource<Quota>(Resources.quotas).create({ apiVersion: 'iam.stratus.dev/v1alpha1', kind: 'Quota', metadata: { name: 'storage', namespace: 'alice' }, spec: { hard: { bucketBytes: used + 1000 } } });
    const s3 = sdk(alice);
    await waitFor('the quota to be seen', async () => (await s3Code(s3.send(new PutObjectCommand({ Bucket: 'alice-sdk', Key: 'too-big', Body: Buffer.alloc(2000) })))) === 'QuotaExceeded');
    await s3.send(new PutObjectCommand({ Bucket: 'alice-sdk', Key: 'fits', Body: Buffer.alloc(900) }));
    assert.equal(await s3Code(s3.send(new PutObjectCommand({ Bucket: 'alice-sdk', Key: 'no-longer-fits', Body: Buffer.alloc(200) }))), 'QuotaExceeded');
    assert.equal(await s3Code(s3.send(new HeadObjectCommand({ Bucket: 'alice-sdk', Key: 'too-big' }))), 'NotFound');
    await client.resource<Quota>(Resources.quotas).delete('alice', 'storage');
  });

  it('aws-chunked uploads: the AWS SDK streaming with checksum trailers, signed chunks, and tampered ones refused', async () => {
    const s3 = sdk(alice, { requestChecksumCalculation: 'WHEN_SUPPORTED' });
    const framing: string[] = [];
    s3.middlewareStack.add(
      (next) => async (args) => {
        framing.push(String((args.request as { headers: Record<string, string> }).headers['x-amz-content-sha256']));
        return next(args);
      },
      { step: 'finalizeRequest', name: 'recordFraming' },
    );
    await s3.send(new CreateBucketCommand({ Bucket: 'alice-stream' }));
    const file = join(dir, 'stream.bin');
    const bytes = Buffer.alloc(300_000);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919) % 251;
    writeFileSync(file, bytes);
    const body = async (key: string): Promise<Buffer> => Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: 'alice-stream', Key: key }))).Body!.transformToByteArray());
    for (const alg of ['CRC32', 'CRC32C', 'SHA256'] as const) {
      const put = await s3.send(new PutObjectCommand({ Bucket: 'alice-stream', Key: alg, Body: createReadStream(file), ContentLength: bytes.length, ChecksumAlgorithm: alg }));
      assert.equal(put.ETag, `"${createHash('md5').update(bytes).digest('hex')}"`);
      assert.ok((await body(alg)).equals(bytes), `${alg}: the bytes come back`);
    }
    assert.deepEqual(framing.filter((f) => f.startsWith('STREAMING-')), ['STREAMING-UNSIGNED-PAYLOAD-TRAILER', 'STREAMING-UNSIGNED-PAYLOAD-TRAILER', 'STREAMING-UNSIGNED-PAYLOAD-TRAILER'], 'the SDK streamed');
    assert.equal((await s3.send(new HeadObjectCommand({ Bucket: 'alice-stream', Key: 'CRC32' }))).ContentEncoding, undefined, 'aws-chunked is not stored as the object\'s encoding');
    const up = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'alice-stream', Key: 'parts', ChecksumAlgorithm: 'CRC32' }));
    const p1 = Buffer.alloc(5 * 1024 * 1024, 3);
    const e1 = (await s3.send(new UploadPartCommand({ Bucket: 'alice-stream', Key: 'parts', UploadId: up.UploadId, PartNumber: 1, Body: Readable.from([p1]), ContentLength: p1.length, ChecksumAlgorithm: 'CRC32' }))).ETag!;
    const e2 = (await s3.send(new UploadPartCommand({ Bucket: 'alice-stream', Key: 'parts', UploadId: up.UploadId, PartNumber: 2, Body: createReadStream(file), ContentLength: bytes.length, ChecksumAlgorithm: 'CRC32' }))).ETag!;
    await s3.send(new CompleteMultipartUploadCommand({ Bucket: 'alice-stream', Key: 'parts', UploadId: up.UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: e1 }, { PartNumber: 2, ETag: e2 }] } }));
    assert.ok((await body('parts')).equals(Buffer.concat([p1, bytes])), 'the streamed parts make the object');

    // a checksum header (what the aws CLI sends over plain HTTP) is checked too
    const crcOf = (text: string): string => {
      const c = Buffer.alloc(4);
      c.writeUInt32BE(zlibCrc32(text));
      return c.toString('base64');
    };
    const good = await s3.send(new PutObjectCommand({ Bucket: 'alice-stream', Key: 'header-sum', Body: 'abc', ChecksumCRC32: crcOf('abc') }));
    assert.equal(good.ChecksumCRC32, crcOf('abc'));
    assert.equal(await s3Code(s3.send(new PutObjectCommand({ Bucket: 'alice-stream', Key: 'bad-header-sum', Body: 'abc', ChecksumCRC32: crcOf('abd') }))), 'BadDigest');

    // raw HTTP: the framing signed with @smithy/signature-v4 (the SDKs' signer), then tampered with
    class Sha256 extends Hash {
      constructor(secret?: ConstructorParameters<typeof Hash>[1]) {
        super('sha256', secret);
      }
    }
    const host = new URL(endpoint).host;
    const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
    const crc32 = (b: Buffer): string => {
      const c = Buffer.alloc(4);
      c.writeUInt32BE(zlibCrc32(b));
      return c.toString('base64');
    };
    const raw = async (key: string, mode: 'signed' | 'signed-trailer' | 'unsigned-trailer', data: Buffer, tamper: { byte?: boolean; checksum?: string } = {}): Promise<{ status: number; body: string }> => {
      const signer = new SignatureV4({ credentials: alice, region: 'us-east-1', service: 's3', sha256: Sha256, uriEscapePath: false, applyChecksum: false });
      const contentSha = { signed: 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD', 'signed-trailer': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER', 'unsigned-trailer': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER' }[mode];
      const headers: Record<string, string> = { host, 'content-encoding': 'aws-chunked', 'transfer-encoding': 'chunked', 'x-amz-content-sha256': contentSha, 'x-amz-decoded-content-length': String(data.length) };
      if (mode !== 'signed') headers['x-amz-trailer'] = 'x-amz-checksum-crc32';
      const date = new Date();
      const req = await signer.sign({ method: 'PUT', protocol: 'http:', hostname: '127.0.0.1', path: `/alice-stream/${key}`, query: {}, headers }, { signingDate: date, unsignableHeaders: new Set(['transfer-encoding']) });
      const seed = /Signature=([0-9a-f]{64})/.exec(String(req.headers.authorization))![1]!;
      const scope = `${req.headers['x-amz-date']!.slice(0, 8)}/us-east-1/s3/aws4_request`;
      let previous = seed;
      const chunkSig = async (chunk: Buffer): Promise<string> => {
        previous = await signer.sign(['AWS4-HMAC-SHA256-PAYLOAD', req.headers['x-amz-date'], scope, previous, sha256(''), sha256(chunk)].join('\n'), { signingDate: date });
        return previous;
      };
      const frames: Buffer[] = [];
      const chunks: Buffer[] = [];
      for (let off = 0; off < data.length; off += 65536) chunks.push(data.subarray(off, off + 65536));
      chunks.push(Buffer.alloc(0));
      for (const [i, chunk] of chunks.entries()) {
        const ext = mode === 'unsigned-trailer' ? '' : `;chunk-signature=${await chunkSig(chunk)}`;
        const sent = tamper.byte && i === 1 ? Buffer.from(chunk).fill(0x21, 0, 1) : chunk;
        frames.push(Buffer.from(`${chunk.length.toString(16)}${ext}\r\n`), sent, Buffer.from(chunk.length > 0 ? '\r\n' : ''));
      }
      if (mode === 'signed') frames.push(Buffer.from('\r\n'));
      else {
        const trailer = `x-amz-checksum-crc32:${tamper.checksum ?? crc32(data)}`;
        frames.push(Buffer.from(`${trailer}\r\n`));
        if (mode === 'signed-trailer') {
          const sig = await signer.sign(['AWS4-HMAC-SHA256-TRAILER', req.headers['x-amz-date'], scope, previous, sha256(`${trailer}\n`)].join('\n'), { signingDate: date });
          frames.push(Buffer.from(`x-amz-trailer-signature:${sig}\r\n`));
        }
        frames.push(Buffer.from('\r\n'));
      }
      const url = new URL(endpoint);
      return new Promise((resolve, reject) => {
        const r = httpRequest({ host: url.hostname, port: url.port, method: 'PUT', path: `/alice-stream/${key}`, headers: req.headers }, (res) => {
          const out: Buffer[] = [];
          res.on('data', (c: Buffer) => out.push(c));
          res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(out).toString() }));
        });
        r.on('error', reject);
        for (const f of frames) r.write(f);
        r.end();
      });
    };
    const data = bytes.subarray(0, 200_000);
    for (const mode of ['signed', 'signed-trailer', 'unsigned-trailer'] as const) {
      assert.equal((await raw(`raw-${mode}`, mode, data)).status, 200, mode);
      assert.ok((await body(`raw-${mode}`)).equals(data), `${mode}: the bytes come back`);
      if (mode !== 'unsigned-trailer') {
        const bad = await raw(`bad-sig-${mode}`, mode, data, { byte: true });
        assert.equal(bad.status, 403, `${mode}: a changed byte`);
        assert.match(bad.body, /<Code>SignatureDoesNotMatch<\/Code>/);
      }
      if (mode !== 'signed') {
        const bad = await raw(`bad-sum-${mode}`, mode, data, { checksum: crc32(Buffer.from('something else')) });
        assert.equal(bad.status, 400, `${mode}: a wrong checksum`);
        assert.match(bad.body, /<Code>BadDigest<\/Code>/);
      }
    }
    const kept = await s3.send(new ListObjectsV2Command({ Bucket: 'alice-stream' }));
    assert.deepEqual(kept.Contents?.map((c) => c.Key).filter((k) => k!.startsWith('bad-')), [], 'no refused upload was stored');

    // the aws CLI streams only over HTTPS: through a TLS front
    const cert = join(dir, 'tls.crt');
    const key = join(dir, 'tls.key');
    await execFileP('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']);
    const heads: string[] = [];
    const front: TlsServer = createTlsServer({ key: readFileSync(key), cert: readFileSync(cert) }, (sock) => {
      const upstream = connect(Number(new URL(endpoint).port), '127.0.0.1');
      sock.on('data', (d: Buffer) => {
        if (/^(PUT|POST) /.test(d.subarray(0, 5).toString('latin1'))) heads.push(d.subarray(0, 4096).toString('latin1'));
      });
      sock.on('error', () => upstream.destroy());
      upstream.on('error', () => sock.destroy());
      sock.pipe(upstream).pipe(sock);
    });
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    try {
      const tlsUrl = `https://127.0.0.1:${(front.address() as { port: number }).port}`;
      const big = join(dir, 'stream-10m.bin');
      writeFileSync(big, Buffer.concat([p1, p1]));
      await awsCli(alice, ['--ca-bundle', cert, 's3', 'cp', '--only-show-errors', file, 's3://alice-stream/cli.bin'], tlsUrl);
      await awsCli(alice, ['--ca-bundle', cert, 's3', 'cp', '--only-show-errors', big, 's3://alice-stream/cli-10m.bin'], tlsUrl);
      assert.ok(heads.some((h) => /^PUT \/alice-stream\/cli\.bin /.test(h) && /x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER/i.test(h)), 'the aws CLI streamed the PUT');
      assert.ok(heads.some((h) => /partNumber=/.test(h.split('\r\n')[0]!) && /x-amz-trailer: x-amz-checksum-/i.test(h)), 'the aws CLI streamed the parts');
    } finally {
      await new Promise((resolve) => front.close(resolve));
    }
    assert.ok((await body('cli.bin')).equals(bytes));
    assert.ok((await body('cli-10m.bin')).equals(Buffer.concat([p1, p1])));

    const all = await s3.send(new ListObjectsV2Command({ Bucket: 'alice-stream' }));
    for (const o of all.Contents ?? []) await s3.send(new DeleteObjectCommand({ Bucket: 'alice-stream', Key: o.Key }));
    await s3.send(new DeleteBucketCommand({ Bucket: 'alice-stream' }));
  });

  it('an acknowledged PUT survives SIGKILL and one cut short by it never appears', async () => {
    const s3 = sdk(alice);
    await s3.send(new PutObjectCommand({ Bucket: 'alice-sdk', Key: 'durable.txt', Body: 'acknowledged' }));
    const url = new URL(await getSignedUrl(s3, new PutObjectCommand({ Bucket: 'alice-sdk', Key: 'partial.bin' }), { expiresIn: 120 }));
    const total = 64 * 1024 * 1024;
    const req = httpRequest({ host: url.hostname, port: url.port, path: url.pathname + url.search, method: 'PUT', headers: { 'Content-Length': total } });
    req.on('error', () => undefined);
    req.write(Buffer.alloc(8 * 1024 * 1024, 7));
    await waitFor('the upload to reach the disk', () => readdirSync(join(serve.dataDir, 'objectstore', 'tmp')).length > 0);
    await serve.kill();
    req.destroy();
    await serve.restart();
    await waitFor('the S3 endpoint after restart', async () => (await fetch(endpoint).catch(() => undefined))?.status === 403, 30_000);
    const again = sdk(alice);
    const got = await again.send(new GetObjectCommand({ Bucket: 'alice-sdk', Key: 'durable.txt' }));
    assert.equal(await got.Body!.transformToString(), 'acknowledged');
    assert.equal(await s3Code(again.send(new HeadObjectCommand({ Bucket: 'alice-sdk', Key: 'partial.bin' }))), 'NotFound');
    assert.deepEqual(readdirSync(join(serve.dataDir, 'objectstore', 'tmp')), [], 'the partial upload was swept');
  });
});
