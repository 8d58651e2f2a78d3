/**
 * `Content-Encoding: aws-chunked` request bodies, the framing AWS clients use to stream an
 * upload whose hash they cannot compute up front (AWS's "Transferring payload in multiple
 * chunks" and "trailing headers" SigV4 documents):
 *
 *   STREAMING-AWS4-HMAC-SHA256-PAYLOAD           SIZE;chunk-signature=SIG\r\nDATA\r\n ... 0;chunk-signature=SIG\r\n\r\n
 *   STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER   the same, then trailer lines and x-amz-trailer-signature:SIG\r\n\r\n
 *   STREAMING-UNSIGNED-PAYLOAD-TRAILER           SIZE\r\nDATA\r\n ... 0\r\n, then trailer lines, \r\n
 *
 * Each chunk signature chains on the previous one (the first on the request's own, the
 * "seed"); the string signed is
 *   AWS4-HMAC-SHA256-PAYLOAD \n DATE \n SCOPE \n PREVIOUS \n sha256("") \n sha256(DATA)
 * and the trailer's
 *   AWS4-HMAC-SHA256-TRAILER \n DATE \n SCOPE \n PREVIOUS \n sha256("name:value\n"...)
 * The HMAC itself is `@smithy/signature-v4`'s (see sigv4.ts `ChunkSigner`).
 *
 * `AwsChunkedDecoder` is a Transform: framed bytes in, the object's bytes out, each chunk's
 * signature checked as its last byte arrives. A wrong signature, broken framing or a body cut
 * short fails the stream with an S3Error, so the caller discards what it wrote: a chunk is
 * passed on before its signature is checked, but nothing is committed before the end.
 *
 * `Checksum` is the additional checksum S3 clients send as `x-amz-checksum-ALG` (a header, or a
 * trailer named by `x-amz-trailer`): CRC32, CRC32C, CRC64NVME (`@aws-sdk/checksums`), SHA-1, SHA-256.
 */
import { createHash, timingSafeEqual, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { Crc32, Crc32c, Crc64Nvme } from '@aws-sdk/checksums/crc';
import { S3Error } from './errors.js';

/** Signs a SigV4 string-to-sign with the request's signing key (hex HMAC-SHA256). */
export interface ChunkSigner {
  /** The request's own signature: the first chunk chains on it. */
  seed: string;
  /** `X-Amz-Date` of the request. */
  date: string;
  /** `DATE/REGION/SERVICE/aws4_request`. */
  scope: string;
  sign(stringToSign: string): Promise<string>;
}

export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
/** Longest chunk-header or trailer line accepted. */
const MAX_LINE = 4096;
const MAX_TRAILERS = 16;
const CRLF = Buffer.from('\r\n');

type State = 'size' | 'data' | 'data-crlf' | 'trailer' | 'end' | 'done';

export class AwsChunkedDecoder extends Transform {
  /** Trailer headers received (lower-case names), once the stream has ended. */
  readonly trailers: Record<string, string> = {};
  private state: State = 'size';
  private pending: Buffer = Buffer.alloc(0);
  private remaining = 0;
  private chunkHash: Hash | undefined;
  private chunkSignature = '';
  private previous: string;

  constructor(
    private readonly opts: {
      /** Present for the signed variants: every chunk's signature is checked. */
      signer?: ChunkSigner;
      /** A trailer section follows the last chunk. */
      trailer: boolean;
    },
  ) {
    super({ highWaterMark: 1 << 20 });
    this.previous = opts.signer?.seed ?? '';
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.consume(chunk).then(
      () => cb(),
      (err: unknown) => cb(err as Error),
    );
  }

  override _flush(cb: TransformCallback): void {
    if (this.state === 'done' || (this.state === 'end' && this.pending.length === 0)) cb();
    else cb(new S3Error('IncompleteBody', 'the aws-chunked body ended before its last chunk'));
  }

  private async consume(chunk: Buffer): Promise<void> {
    const input = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    let pos = 0;
    for (;;) {
      if (this.state === 'data') {
        const n = Math.min(this.remaining, input.length - pos);
        if (n > 0) {
          const slice = input.subarray(pos, pos + n);
          this.chunkHash?.update(slice);
          this.push(slice);
          this.remaining -= n;
          pos += n;
        }
        if (this.remaining > 0) break;
        this.state = 'data-crlf';
        continue;
      }
      if (this.state === 'data-crlf') {
        if (input.length - pos < 2) break;
        if (!input.subarray(pos, pos + 2).equals(CRLF)) throw malformed('a chunk is longer than its size says');
        pos += 2;
        if (this.chunkHash) await this.checkChunk(this.chunkSignature, this.chunkHash.digest('hex'));
        this.state = 'size';
        continue;
      }
      if (this.state === 'done') {
        if (input.subarray(pos).some((b) => b !== 0x0d && b !== 0x0a)) throw malformed('bytes after the last chunk');
        pos = input.length;
        break;
      }
      const nl = input.indexOf(0x0a, pos);
      if (nl < 0) {
        if (input.length - pos > MAX_LINE) throw malformed('a chunk header line is too long');
        break;
      }
      if (nl - pos > MAX_LINE) throw malformed('a chunk header line is too long');
      const line = input.subarray(pos, nl > pos && input[nl - 1] === 0x0d ? nl - 1 : nl).toString('latin1');
      pos = nl + 1;
      await this.line(line);
    }
    this.pending = pos < input.length ? Buffer.from(input.subarray(pos)) : Buffer.alloc(0);
  }

  private async line(line: string): Promise<void> {
    if (this.state === 'size') {
      const m = /^([0-9a-fA-F]{1,16})(?:;(.*))?$/.exec(line);
      if (!m) throw malformed(`a chunk header is not SIZE[;chunk-signature=SIG]: ${JSON.stringify(line.slice(0, 80))}`);
      const size = parseInt(m[1]!, 16);
      let signature = '';
      for (const ext of (m[2] ?? '').split(';')) {
        const eq = ext.indexOf('=');
        if (eq > 0 && ext.slice(0, eq).trim() === 'chunk-signature') signature = ext.slice(eq + 1).trim();
      }
      if (this.opts.signer && signature === '') throw new S3Error('SignatureDoesNotMatch', 'a chunk of a signed aws-chunked body has no chunk-signature');
      if (size > 0) {
        this.state = 'data';
        this.remaining = size;
        this.chunkSignature = signature;
        this.chunkHash = this.opts.signer ? createHash('sha256') : undefined;
        return;
      }
      if (this.opts.signer) await this.checkChunk(signature, EMPTY_SHA256);
      this.state = this.opts.trailer ? 'trailer' : 'end';
      return;
    }
    if (this.state === 'trailer') {
      if (line === '') {
        await this.checkTrailer();
        this.state = 'done';
        return;
      }
      const colon = line.indexOf(':');
      if (colon <= 0) throw malformed(`a trailer line is not NAME:VALUE: ${JSON.stringify(line.slice(0, 80))}`);
      if (Object.keys(this.trailers).length >= MAX_TRAILERS) throw malformed('too many trailer headers');
      this.trailers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      return;
    }
    // 'end': the CRLF closing a body without trailers
    if (line !== '') throw malformed('bytes after the last chunk');
    this.state = 'done';
  }

  private async checkChunk(signature: string, dataSha256: string): Promise<void> {
    const s = this.opts.signer!;
    const expected = await s.sign(['AWS4-HMAC-SHA256-PAYLOAD', s.date, s.scope, this.previous, EMPTY_SHA256, dataSha256].join('\n'));
    if (!sameHex(expected, signature)) throw new S3Error('SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided: a chunk signature of the aws-chunked body is wrong.');
    this.previous = expected;
  }

  private async checkTrailer(): Promise<void> {
    const s = this.opts.signer;
    if (!s) return;
    const signature = this.trailers['x-amz-trailer-signature'];
    delete this.trailers['x-amz-trailer-signature'];
    if (signature === undefined) throw new S3Error('SignatureDoesNotMatch', 'the signed aws-chunked body has no x-amz-trailer-signature');
    const canonical = Object.keys(this.trailers)
      .sort()
      .map((k) => `${k}:${this.trailers[k]}\n`)
      .join('');
    const expected = await s.sign(['AWS4-HMAC-SHA256-TRAILER', s.date, s.scope, this.previous, createHash('sha256').update(canonical).digest('hex')].join('\n'));
    if (!sameHex(expected, signature)) throw new S3Error('SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided: the trailer signature of the aws-chunked body is wrong.');
  }
}

function malformed(message: string): S3Error {
  return new S3Error('InvalidRequest', `malformed aws-chunked body: ${message}`);
}

function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

// ---- additional checksums (x-amz-checksum-*) ----

export const CHECKSUM_ALGORITHMS = ['crc32', 'crc32c', 'crc64nvme', 'sha1', 'sha256'] as const;
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

interface Summer {
  update(data: Uint8Array): void;
  digest(): Promise<Uint8Array> | Uint8Array;
}

/** A running `x-amz-checksum-ALG` over the object's bytes; `digest()` is S3's base64 form. */
export class Checksum {
  private readonly summer: Summer;
  constructor(readonly algorithm: ChecksumAlgorithm) {
    this.summer =
      algorithm === 'crc32' ? new Crc32() : algorithm === 'crc32c' ? new Crc32c() : algorithm === 'crc64nvme' ? new Crc64Nvme() : nodeHash(algorithm === 'sha1' ? 'sha1' : 'sha256');
  }
  get header(): string {
    return `x-amz-checksum-${this.algorithm}`;
  }
  update(data: Uint8Array): void {
    this.summer.update(data);
  }
  async digest(): Promise<string> {
    return Buffer.from(await this.summer.digest()).toString('base64');
  }
}

function nodeHash(name: 'sha1' | 'sha256'): Summer {
  const h = createHash(name);
  return { update: (d) => h.update(d), digest: () => h.digest() };
}

/** `x-amz-checksum-crc32` → 'crc32'; undefined for a name that is not one. */
export function checksumAlgorithmOf(headerName: string): ChecksumAlgorithm | undefined {
  const m = /^x-amz-checksum-([a-z0-9]+)$/.exec(headerName.trim().toLowerCase());
  return m && (CHECKSUM_ALGORITHMS as readonly string[]).includes(m[1]!) ? (m[1] as ChecksumAlgorithm) : undefined;
}
