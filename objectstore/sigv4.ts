/**
 * AWS Signature Version 4 verification, header (`Authorization: AWS4-HMAC-SHA256 ...`) and
 * presigned (`X-Amz-Signature` in the query). The expected signature is computed by
 * `@smithy/signature-v4` — the signer the AWS SDKs use — over the request as received: the
 * raw path (S3 does not normalize or re-encode it), the query, and exactly the headers the
 * client says it signed. Only parsing the client's claims and comparing is done here.
 *
 * The payload: a header request names its hash in `x-amz-content-sha256` (hex SHA-256, or
 * `UNSIGNED-PAYLOAD`); a hex hash is checked against the body as it streams in
 * (`payloadSha256` below, compared by the caller once the body is on disk). Or the body is
 * `aws-chunked` (`streaming` below; chunked.ts decodes it): `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`
 * (every chunk signed, chained on this request's signature: `chunkSigner`),
 * `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER` (the same with a signed trailer) or
 * `STREAMING-UNSIGNED-PAYLOAD-TRAILER`. A presigned request's payload is always
 * `UNSIGNED-PAYLOAD`.
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { SignatureV4 } from '@smithy/signature-v4';
import { Hash } from '@smithy/hash-node';
import type { HttpRequest } from '@smithy/types';
import { S3Error } from './errors.js';
import type { ChunkSigner } from './chunked.js';

/** How far a request's `X-Amz-Date` may be from now (S3's 15 minutes). */
const MAX_SKEW_MS = 15 * 60_000;
const MAX_PRESIGN_SECONDS = 7 * 86400;

export interface SignedRequest {
  accessKeyId: string;
  /** The hex SHA-256 the body must have, when the client signed one. */
  payloadSha256?: string;
  /** An `aws-chunked` body: whether its chunks are signed and whether trailers follow. */
  streaming?: { signed: boolean; trailer: boolean };
  /** The secret was found and the signature verified. */
  verify(secretAccessKey: string): Promise<boolean>;
  /** After a successful `verify`: the signer of this request's chunk and trailer signatures. */
  chunkSigner(): ChunkSigner;
}

/** `x-amz-content-sha256` values of an aws-chunked body. */
const STREAMING: Record<string, { signed: boolean; trailer: boolean }> = {
  'STREAMING-AWS4-HMAC-SHA256-PAYLOAD': { signed: true, trailer: false },
  'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER': { signed: true, trailer: true },
  'STREAMING-UNSIGNED-PAYLOAD-TRAILER': { signed: false, trailer: true },
};

class Sha256 extends Hash {
  constructor(secret?: Parameters<typeof Hash.prototype.update>[0]) {
    super('sha256', secret as never);
  }
}

interface Claims {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  signedHeaders: string[];
  signature: string;
}

/** `20261207T155500Z` → Date, or undefined. */
function amzDate(v: string | undefined): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(v ?? '');
  if (!m) return undefined;
  return new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
}

function credentialOf(value: string): Omit<Claims, 'signedHeaders' | 'signature'> {
  const parts = value.split('/');
  if (parts.length !== 5 || parts[4] !== 'aws4_request') throw new S3Error('AuthorizationHeaderMalformed', `the credential ${JSON.stringify(value)} is not ACCESSKEY/DATE/REGION/SERVICE/aws4_request`);
  return { accessKeyId: parts[0]!, date: parts[1]!, region: parts[2]!, service: parts[3]! };
}

/** Query parameters as S3 reads them (percent-decoded; `+` is a plus). */
export function rawQuery(url: string): Record<string, string | string[]> {
  const q = url.indexOf('?');
  const out: Record<string, string | string[]> = {};
  if (q < 0) return out;
  for (const pair of url.slice(q + 1).split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const k = safeDecode(eq < 0 ? pair : pair.slice(0, eq));
    const v = eq < 0 ? '' : safeDecode(pair.slice(eq + 1));
    const prev = out[k];
    out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return out;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new S3Error('InvalidArgument', 'the query string is not valid percent-encoding');
  }
}

/**
 * Reads the request's SigV4 claims; undefined when it carries none (anonymous). Throws
 * `S3Error` for a malformed, expired or skewed signature.
 */
export function signedRequest(req: IncomingMessage, now = Date.now()): SignedRequest | undefined {
  const url = req.url ?? '/';
  const query = rawQuery(url);
  const auth = req.headers.authorization;
  const path = url.split('?')[0]!;
  if (typeof auth === 'string' && auth !== '') {
    if (!auth.startsWith('AWS4-HMAC-SHA256 ')) {
      throw new S3Error('AccessDenied', auth.startsWith('AWS ') ? 'Signature Version 2 is not supported: sign requests with Signature Version 4' : 'unsupported Authorization scheme');
    }
    const fields: Record<string, string> = {};
    for (const part of auth.slice('AWS4-HMAC-SHA256 '.length).split(',')) {
      const eq = part.indexOf('=');
      if (eq > 0) fields[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
    }
    if (!fields.Credential || !fields.SignedHeaders || !fields.Signature) throw new S3Error('AuthorizationHeaderMalformed', 'the Authorization header needs Credential, SignedHeaders and Signature');
    const claims: Claims = { ...credentialOf(fields.Credential), signedHeaders: fields.SignedHeaders.split(';'), signature: fields.Signature };
    const dateHeader = header(req, 'x-amz-date');
    const date = amzDate(dateHeader);
    if (!date) throw new S3Error('AccessDenied', 'the request needs an X-Amz-Date header (YYYYMMDDTHHMMSSZ)');
    if (Math.abs(date.getTime() - now) > MAX_SKEW_MS) throw new S3Error('RequestTimeTooSkewed', 'the difference between the request time and the server time is too large');
    if (!claims.signedHeaders.includes('host')) throw new S3Error('AuthorizationHeaderMalformed', 'the host header must be signed');
    const contentSha = header(req, 'x-amz-content-sha256');
    if (contentSha === undefined) throw new S3Error('InvalidRequest', 'missing required header for this request: x-amz-content-sha256');
    const streaming = STREAMING[contentSha];
    if (contentSha !== 'UNSIGNED-PAYLOAD' && !streaming && !/^[0-9a-f]{64}$/.test(contentSha)) {
      throw new S3Error('NotImplemented', `x-amz-content-sha256 ${JSON.stringify(contentSha)} is not supported: send the payload's SHA-256, UNSIGNED-PAYLOAD or an aws-chunked body (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER], STREAMING-UNSIGNED-PAYLOAD-TRAILER)`);
    }
    let signer: SignatureV4 | undefined;
    return {
      accessKeyId: claims.accessKeyId,
      ...(contentSha !== 'UNSIGNED-PAYLOAD' && !streaming ? { payloadSha256: contentSha } : {}),
      ...(streaming ? { streaming } : {}),
      verify: async (secret) => {
        const request: HttpRequest = { method: req.method ?? 'GET', protocol: 'http:', hostname: 'localhost', path, query, headers: signedHeadersOf(req, claims.signedHeaders) };
        const s = signerFor(claims, secret);
        const signed = await s.sign(request, { signingDate: date, signableHeaders: new Set(claims.signedHeaders) });
        const got = /Signature=([0-9a-f]+)/.exec(String(signed.headers.authorization ?? ''))?.[1] ?? '';
        if (!sameHex(got, claims.signature)) return false;
        signer = s;
        return true;
      },
      chunkSigner: () => {
        const s = signer;
        if (!s) throw new Error('chunkSigner() before a successful verify()');
        return {
          seed: claims.signature,
          date: dateHeader!,
          scope: `${claims.date}/${claims.region}/${claims.service}/aws4_request`,
          sign: (stringToSign) => s.sign(stringToSign, { signingDate: date }),
        };
      },
    };
  }
  const algorithm = one(query['X-Amz-Algorithm']);
  if (algorithm === undefined) return undefined;
  if (algorithm !== 'AWS4-HMAC-SHA256') throw new S3Error('AuthorizationQueryParametersError', 'X-Amz-Algorithm must be AWS4-HMAC-SHA256');
  const credential = one(query['X-Amz-Credential']);
  const date = amzDate(one(query['X-Amz-Date']));
  const expires = Number(one(query['X-Amz-Expires']));
  const signedHeaders = one(query['X-Amz-SignedHeaders']);
  const signature = one(query['X-Amz-Signature']);
  if (!credential || !date || !signedHeaders || !signature || !Number.isInteger(expires)) {
    throw new S3Error('AuthorizationQueryParametersError', 'a presigned URL needs X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders and X-Amz-Signature');
  }
  if (expires < 1 || expires > MAX_PRESIGN_SECONDS) throw new S3Error('AuthorizationQueryParametersError', 'X-Amz-Expires must be between 1 and 604800 seconds');
  if (now > date.getTime() + expires * 1000) throw new S3Error('AccessDenied', 'Request has expired');
  if (date.getTime() - now > MAX_SKEW_MS) throw new S3Error('RequestTimeTooSkewed', 'the presigned URL is dated in the future');
  const claims: Claims = { ...credentialOf(credential), signedHeaders: signedHeaders.split(';'), signature };
  return {
    accessKeyId: claims.accessKeyId,
    verify: async (secret) => {
      const unsignedQuery = { ...query };
      delete unsignedQuery['X-Amz-Signature'];
      const request: HttpRequest = {
        method: req.method ?? 'GET',
        protocol: 'http:',
        hostname: 'localhost',
        path,
        query: unsignedQuery,
        headers: signedHeadersOf(req, claims.signedHeaders),
        // a body that is not bytes: smithy hashes it as UNSIGNED-PAYLOAD, as S3 presigning does
        body: req,
      };
      const signed = await signerFor(claims, secret).presign(request, {
        signingDate: date,
        expiresIn: expires,
        signableHeaders: new Set(claims.signedHeaders),
        unhoistableHeaders: new Set(claims.signedHeaders),
      });
      return sameHex(String(signed.query?.['X-Amz-Signature'] ?? ''), claims.signature);
    },
    chunkSigner: () => {
      throw new S3Error('InvalidRequest', 'a presigned request cannot have an aws-chunked body');
    },
  };
}

function signerFor(claims: Claims, secretAccessKey: string): SignatureV4 {
  return new SignatureV4({
    credentials: { accessKeyId: claims.accessKeyId, secretAccessKey },
    region: claims.region,
    service: claims.service,
    sha256: Sha256,
    uriEscapePath: false,
    applyChecksum: false,
  });
}

function signedHeadersOf(req: IncomingMessage, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of names) {
    const v = req.headers[n];
    out[n] = Array.isArray(v) ? v.join(',') : (v ?? '');
  }
  return out;
}

function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function one(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
