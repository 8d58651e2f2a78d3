/**
 * aws-chunked bodies against AWS's published example ("Transferring payload in multiple
 * chunks", SigV4): a 66560-byte object of 'a' sent as chunks of 65536 and 1024 bytes, with
 * the seed, chunk and trailer signatures AWS documents for access key AKIAIOSFODNN7EXAMPLE.
 * A pass means the chain matches AWS's own signer, not merely this code.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { signedRequest } from '../../../objectstore/sigv4.js';
import { AwsChunkedDecoder, Checksum, type ChunkSigner } from '../../../objectstore/chunked.js';
import { S3Error } from '../../../objectstore/errors.js';

const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const SEED = '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9';
const CHUNK1 = 'ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648';
const CHUNK2 = '0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497';
const FINAL = 'b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9';
/** The signature of trailers first:1st, second:2nd, third:3rd after FINAL. */
const TRAILER = 'df5735bd9f3295cd9386572292562fefc93ba94e80a0a1ddcbd652c4e0a75e6c';
const EXAMPLE_TIME = Date.UTC(2013, 4, 24);

function exampleRequest(): IncomingMessage {
  return {
    method: 'PUT',
    url: '/examplebucket/chunkObject.txt',
    headers: {
      host: 's3.amazonaws.com',
      'x-amz-date': '20130524T000000Z',
      'x-amz-storage-class': 'REDUCED_REDUNDANCY',
      'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
      'content-encoding': 'aws-chunked',
      'x-amz-decoded-content-length': '66560',
      'content-length': '66824',
      authorization:
        'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,' +
        'SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,' +
        `Signature=${SEED}`,
    },
  } as unknown as IncomingMessage;
}

async function exampleSigner(): Promise<ChunkSigner> {
  const signed = signedRequest(exampleRequest(), EXAMPLE_TIME)!;
  assert.deepEqual(signed.streaming, { signed: true, trailer: false });
  assert.equal(signed.payloadSha256, undefined);
  assert.equal(await signed.verify(SECRET), true, 'the seed signature is AWS\'s');
  return signed.chunkSigner();
}

function exampleBody(opts: { corrupt?: boolean; trailers?: string } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const [size, sig] of [[65536, CHUNK1], [1024, CHUNK2], [0, FINAL]] as const) {
    parts.push(Buffer.from(`${size.toString(16)};chunk-signature=${sig}\r\n`));
    if (size > 0) {
      const data = Buffer.alloc(size, 'a');
      if (opts.corrupt && size === 1024) data[10] = 0x62;
      parts.push(data, Buffer.from('\r\n'));
    }
  }
  parts.push(Buffer.from(opts.trailers ?? '\r\n'));
  return Buffer.concat(parts);
}

/** Runs `body`, cut in pieces of `piece` bytes, through the decoder; the decoded bytes. */
async function decode(decoder: AwsChunkedDecoder, body: Buffer, piece = 1 << 16): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for (let i = 0; i < body.length; i += piece) pieces.push(body.subarray(i, i + piece));
  const out: Buffer[] = [];
  await pipeline(Readable.from(pieces), decoder, new Writable({ write: (c: Buffer, _e, cb) => (out.push(c), cb()) }));
  return Buffer.concat(out);
}

const code = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
  } catch (err) {
    if (err instanceof S3Error) return err.code;
    throw err;
  }
  return 'no error';
};

describe('aws-chunked bodies (AWS SigV4 streaming example)', () => {
  it('verifies AWS\'s seed and chunk signatures and yields the 66560 bytes, however the body is cut', async () => {
    const signer = await exampleSigner();
    for (const piece of [1, 7, 4096, 1 << 20]) {
      const got = await decode(new AwsChunkedDecoder({ signer, trailer: false }), exampleBody(), piece);
      assert.ok(got.equals(Buffer.alloc(66560, 'a')), `piece ${piece}`);
    }
  });

  it('refuses a changed byte, a changed signature, a missing signature and a truncated body', async () => {
    const signer = await exampleSigner();
    assert.equal(await code(decode(new AwsChunkedDecoder({ signer, trailer: false }), exampleBody({ corrupt: true }))), 'SignatureDoesNotMatch');
    const forged = Buffer.from(exampleBody().toString('latin1').replace(CHUNK2, CHUNK1), 'latin1');
    assert.equal(await code(decode(new AwsChunkedDecoder({ signer, trailer: false }), forged)), 'SignatureDoesNotMatch');
    const unsigned = Buffer.from(exampleBody().toString('latin1').replace(`;chunk-signature=${FINAL}`, ''), 'latin1');
    assert.equal(await code(decode(new AwsChunkedDecoder({ signer, trailer: false }), unsigned)), 'SignatureDoesNotMatch');
    assert.equal(await code(decode(new AwsChunkedDecoder({ signer, trailer: false }), exampleBody().subarray(0, 66_000))), 'IncompleteBody');
    const wrongSeed = { ...signer, seed: CHUNK1 };
    assert.equal(await code(decode(new AwsChunkedDecoder({ signer: wrongSeed, trailer: false }), exampleBody())), 'SignatureDoesNotMatch', 'the chain starts at the request signature');
  });

  it('checks the trailer signature (AWS\'s trailing-headers example)', async () => {
    const signer = await exampleSigner();
    const trailers = 'first:1st\r\nsecond:2nd\r\nthird:3rd\r\n';
    const decoder = new AwsChunkedDecoder({ signer, trailer: true });
    await decode(decoder, exampleBody({ trailers: `${trailers}x-amz-trailer-signature:${TRAILER}\r\n\r\n` }));
    assert.deepEqual(decoder.trailers, { first: '1st', second: '2nd', third: '3rd' });
    const changed = exampleBody({ trailers: `first:1st\r\nsecond:2nd\r\nthird:4th\r\nx-amz-trailer-signature:${TRAILER}\r\n\r\n` });
    assert.equal(await code(decode(new AwsChunkedDecoder({ signer, trailer: true }), changed)), 'SignatureDoesNotMatch');
    assert.equal(await code(decode(new AwsChunkedDecoder({ signer, trailer: true }), exampleBody({ trailers: `${trailers}\r\n` }))), 'SignatureDoesNotMatch');
  });

  it('decodes an unsigned body with a checksum trailer (the AWS SDK\'s STREAMING-UNSIGNED-PAYLOAD-TRAILER)', async () => {
    const decoder = new AwsChunkedDecoder({ trailer: true });
    const got = await decode(decoder, Buffer.from('5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n'), 3);
    assert.equal(got.toString(), 'hello world');
    assert.deepEqual(decoder.trailers, { 'x-amz-checksum-crc32': 'DUoRhQ==' });
    assert.equal(await code(decode(new AwsChunkedDecoder({ trailer: true }), Buffer.from('5\r\nhello!\r\n0\r\n\r\n'))), 'InvalidRequest');
    assert.equal(await code(decode(new AwsChunkedDecoder({ trailer: true }), Buffer.from('zz\r\nhello\r\n'))), 'InvalidRequest');
  });

  it('computes S3\'s checksums (base64, big-endian)', async () => {
    const sum = async (alg: ConstructorParameters<typeof Checksum>[0], s: string): Promise<string> => {
      const c = new Checksum(alg);
      c.update(Buffer.from(s));
      return c.digest();
    };
    assert.equal(await sum('crc32', 'hello world'), 'DUoRhQ==');
    assert.equal(await sum('crc32c', 'hello'), Buffer.from('9a71bb4c', 'hex').toString('base64'));
    assert.equal(await sum('sha256', ''), Buffer.from('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 'hex').toString('base64'));
    assert.equal(await sum('sha1', 'abc'), Buffer.from('a9993e364706816aba3e25717850c26c9cd0d89d', 'hex').toString('base64'));
  });
});
