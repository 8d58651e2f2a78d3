/**
 * The S3-compatible endpoint: a second front door of stratus, like the legacy proxy.
 *
 * Per request: find the bucket and key (path-style `/BUCKET/KEY`, or virtual-host style
 * `BUCKET.DOMAIN`), authenticate the SigV4 signature (header or presigned; the access key id
 * names a credential Secret, see credentials.ts), then act **as the credential's User**
 * through the Kubernetes API: bucket operations create, list and delete `Bucket` objects
 * impersonating the caller (RBAC and admission judge the caller), and object operations are
 * authorized by a SelfSubjectAccessReview made as the caller on the `buckets/objects`
 * subresource (verbs get, list, create, delete; answers cached 5 s). Object bytes live in
 * the embedded store (store.ts), streamed to and from disk, never held whole in memory.
 *
 * A namespace Quota's `spec.hard.bucketBytes` / `bucketObjects` bound the bytes and objects
 * of the namespace's buckets: an upload is refused with `QuotaExceeded` (403) up front when
 * its Content-Length would pass the limit, and cut off while streaming when a chunked one
 * does. Concurrent uploads reserve their size, so together they cannot overshoot.
 *
 * Every refusal is S3's XML error with S3's code. Logs carry method, bucket, status and the
 * access key id — never the Authorization header, signatures or secrets.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash, randomBytes, type KeyObject } from 'node:crypto';
import { join } from 'node:path';
import type { Bucket, Group, Quota, User } from '../crds/types.js';
import { Resources } from '../controllers/resources.js';
import { ApiError, CoreResources, type KubeClient } from '../runtime/client.js';
import { Informer } from '../runtime/informer.js';
import { log } from '../runtime/log.js';
import { authenticatedUser } from '../apiserver/auth/membership.js';
import type { UserInfo } from '../apiserver/auth/user.js';
import { parseListen } from '../legacy/proxy.js';
import { S3Error } from './errors.js';
import { errorXml, parseComplete, parseDelete, xmlDocument } from './xml.js';
import { rawQuery, signedRequest, type SignedRequest } from './sigv4.js';
import { AwsChunkedDecoder, CHECKSUM_ALGORITHMS, Checksum, checksumAlgorithmOf } from './chunked.js';
import { ObjectStore, TooLarge, multipartEtag, type ObjectRow } from './store.js';
import { BucketSync } from './buckets.js';
import { ACCESS_KEY_LABEL, CREDENTIALS_NAMESPACE, credentialOf, decryptSecret, loadCredentialKey, publishCredentialKey, type SecretObject } from './credentials.js';

export interface ObjectStoreOptions {
  /** The endpoint's own identity; it needs `impersonate` and reads of Secrets, Users, Groups, Buckets, Quotas. */
  client: KubeClient;
  /** `DATA_DIR`: objects go to `DATA_DIR/objectstore/`, the credential key to `DATA_DIR/pki/`. */
  dataDir: string;
  /** `host:port`; port 0 picks a free one. */
  listen: string;
  /** Virtual-host style: `BUCKET.DOMAIN[:port]` addresses BUCKET. Default `localhost`. */
  domain?: string;
  /** The region answered by GetBucketLocation (any region is accepted in signatures). Default `us-east-1`. */
  region?: string;
}

export interface ObjectStoreServer {
  url: string;
  address: AddressInfo;
  close(): Promise<void>;
}

const logger = log.child({ component: 'objectstore' });

const DECISION_TTL_MS = 5_000;
const MAX_XML_BODY = 2 << 20;
const MIN_PART_SIZE = 5 << 20;
const MAX_PUT_SIZE = 5 * 1024 ** 3;
/** Request headers kept with an object and returned by GET/HEAD. */
const STORED_HEADERS = ['content-type', 'content-encoding', 'content-disposition', 'content-language', 'cache-control', 'expires'];

type Verb = 'get' | 'list' | 'create' | 'delete';

interface Caller {
  accessKeyId: string;
  user: UserInfo;
  /** The User's namespace: where S3 CreateBucket creates Buckets and ListBuckets looks. */
  namespace: string;
  api: KubeClient;
}

interface Target {
  bucket: string;
  key: string;
  query: Record<string, string | string[]>;
}

export async function startObjectStore(opts: ObjectStoreOptions): Promise<ObjectStoreServer> {
  const { host, port } = parseListen(opts.listen);
  const key = await loadCredentialKey(opts.dataDir);
  await publishCredentialKey(opts.client, key.publicPem);
  const store = new ObjectStore(join(opts.dataDir, 'objectstore'));
  const server: Server = createServer({ requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 30_000 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch((err: unknown) => {
    store.close();
    throw err;
  });
  const address = server.address() as AddressInfo;
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  const endpoint = new S3Endpoint(opts, store, key.privateKey, url);
  try {
    await endpoint.start();
  } catch (err) {
    server.close();
    store.close();
    throw err;
  }
  server.on('request', (req: IncomingMessage, res: ServerResponse) => endpoint.handle(req, res));
  return {
    url,
    address,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await endpoint.stop();
      store.close();
    },
  };
}

class S3Endpoint {
  private readonly credentials: Informer<SecretObject>;
  private readonly users: Informer<User>;
  private readonly groups: Informer<Group>;
  private readonly quotas: Informer<Quota>;
  private readonly buckets: BucketSync;
  private readonly decisions = new Map<string, { allowed: boolean; until: number }>();
  private readonly secrets = new Map<string, { rv: string; secret: string }>();
  /** Bytes and objects admitted but not yet stored, per namespace. */
  private readonly reserved = new Map<string, { bytes: number; objects: number }>();
  private readonly domain: string;
  private readonly region: string;

  constructor(
    private readonly opts: ObjectStoreOptions,
    private readonly store: ObjectStore,
    private readonly privateKey: KeyObject,
    readonly url: string,
  ) {
    const c = opts.client;
    this.credentials = new Informer<SecretObject>(c.resource<SecretObject>(CoreResources.secrets), { namespace: CREDENTIALS_NAMESPACE, labelSelector: ACCESS_KEY_LABEL });
    this.users = new Informer<User>(c.resource<User>(Resources.users));
    this.groups = new Informer<Group>(c.resource<Group>(Resources.groups));
    this.quotas = new Informer<Quota>(c.resource<Quota>(Resources.quotas));
    this.buckets = new BucketSync(c, store, url);
    this.domain = (opts.domain ?? 'localhost').toLowerCase();
    this.region = opts.region ?? 'us-east-1';
  }

  async start(): Promise<void> {
    for (const i of [this.credentials, this.users, this.groups, this.quotas]) i.start();
    await Promise.all([this.credentials, this.users, this.groups, this.quotas].map((i) => i.waitForSync()));
    await this.buckets.start();
  }

  async stop(): Promise<void> {
    await Promise.all([this.credentials, this.users, this.groups, this.quotas].map((i) => i.stop()));
    await this.buckets.stop();
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    const requestId = randomBytes(8).toString('hex').toUpperCase();
    res.setHeader('x-amz-request-id', requestId);
    res.setHeader('Server', 'stratus');
    let target: Target | undefined;
    let who: string | undefined;
    this.serve(req, res, (t, c) => {
      target = t;
      who = c;
    }).catch((err: unknown) => {
      const e = err instanceof S3Error ? err : mapDownstream(err);
      if (e.status >= 500) logger.warn({ method: req.method, bucket: target?.bucket, accessKeyId: who, err: err instanceof Error ? err.message : String(err) }, 'S3 request failed');
      logger.debug({ method: req.method, bucket: target?.bucket, status: e.status, code: e.code }, 'S3 request refused');
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const path = (req.url ?? '/').split('?')[0]!;
      const body = errorXml(e.code, e.message, path, requestId, e.detail);
      // a refused upload's body is not read: close the connection instead of draining it
      const unread = !req.complete && req.method !== 'GET' && req.method !== 'HEAD';
      res.writeHead(e.status, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(body), ...(unread ? { Connection: 'close' } : {}) });
      res.end(req.method === 'HEAD' ? undefined : body);
      if (!req.complete) req.resume();
    });
  }

  private async serve(req: IncomingMessage, res: ServerResponse, note: (t: Target, accessKeyId: string) => void): Promise<void> {
    const t = this.targetOf(req);
    const signed = signedRequest(req);
    if (!signed) throw new S3Error('AccessDenied', 'Access Denied: anonymous requests are not accepted; sign with an access key from `stratus s3 credentials create`');
    note(t, signed.accessKeyId);
    const caller = await this.authenticate(signed.accessKeyId, (secret) => signed.verify(secret));
    const method = req.method ?? 'GET';
    const q = t.query;
    const has = (k: string): boolean => q[k] !== undefined;
    const ctx: Ctx = { req, res, t, caller, payloadSha256: signed.payloadSha256, signed };
    if (isAwsChunked(req) !== (signed.streaming !== undefined)) {
      throw new S3Error('InvalidRequest', 'Content-Encoding: aws-chunked goes with x-amz-content-sha256 STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER] or STREAMING-UNSIGNED-PAYLOAD-TRAILER, and only with them');
    }
    if (signed.streaming && !(method === 'PUT' && t.key !== '' && !req.headers['x-amz-copy-source'])) {
      throw new S3Error('InvalidRequest', 'an aws-chunked body is accepted only by PutObject and UploadPart');
    }
    if (t.bucket === '') {
      if (method === 'GET') return this.listBuckets(ctx);
      throw new S3Error('MethodNotAllowed', 'The specified method is not allowed against this resource.');
    }
    if (t.key === '') {
      if (method === 'PUT' && !hasSubresource(q)) return this.createBucket(ctx);
      if (method === 'DELETE' && !hasSubresource(q)) return this.deleteBucket(ctx);
      if (method === 'HEAD') return this.headBucket(ctx);
      if (method === 'POST' && has('delete')) return this.deleteObjects(ctx);
      if (method === 'GET') {
        if (has('location')) return this.bucketLocation(ctx);
        if (has('versioning')) return this.simpleBucketDoc(ctx, 'VersioningConfiguration', {});
        if (has('acl')) return this.acl(ctx);
        if (has('uploads')) return this.listUploads(ctx);
        if (hasSubresource(q)) throw new S3Error('NotImplemented', `this bucket subresource is not implemented (${Object.keys(q).join(', ')})`);
        return this.listObjects(ctx);
      }
      throw new S3Error('MethodNotAllowed', 'The specified method is not allowed against this resource.');
    }
    if (method === 'PUT') {
      if (has('uploadId')) return this.uploadPart(ctx);
      if (hasSubresource(q)) throw new S3Error('NotImplemented', `this object subresource is not implemented (${Object.keys(q).join(', ')})`);
      if (req.headers['x-amz-copy-source']) return this.copyObject(ctx);
      return this.putObject(ctx);
    }
    if (method === 'GET' || method === 'HEAD') {
      if (has('uploadId')) return this.listParts(ctx);
      if (has('acl')) return this.acl(ctx);
      return this.getObject(ctx, method === 'HEAD');
    }
    if (method === 'DELETE') {
      if (has('uploadId')) return this.abortUpload(ctx);
      return this.deleteObject(ctx);
    }
    if (method === 'POST') {
      if (has('uploads')) return this.createUpload(ctx);
      if (has('uploadId')) return this.completeUpload(ctx);
    }
    throw new S3Error('MethodNotAllowed', 'The specified method is not allowed against this resource.');
  }

  // ---- addressing, identity, authorization ----

  private targetOf(req: IncomingMessage): Target {
    const raw = req.url ?? '/';
    const path = raw.split('?')[0]!;
    const query = rawQuery(raw);
    const hostname = String(req.headers.host ?? '').replace(/:\d+$/, '').toLowerCase();
    let rest: string;
    try {
      rest = decodeURIComponent(path);
    } catch {
      throw new S3Error('InvalidArgument', 'the path is not valid percent-encoding');
    }
    if (hostname.endsWith(`.${this.domain}`)) {
      const bucket = hostname.slice(0, -this.domain.length - 1);
      return { bucket, key: rest.replace(/^\//, ''), query };
    }
    const m = /^\/([^/]*)(?:\/(.*))?$/s.exec(rest);
    return { bucket: m?.[1] ?? '', key: m?.[2] ?? '', query };
  }

  private async authenticate(accessKeyId: string, verify: (secret: string) => Promise<boolean>): Promise<Caller> {
    const cred = this.credentials.get(`${CREDENTIALS_NAMESPACE}/s3-${accessKeyId.toLowerCase()}`);
    const parsed = cred && cred.metadata?.labels?.[ACCESS_KEY_LABEL] === accessKeyId && !cred.metadata.deletionTimestamp ? credentialOf(cred) : undefined;
    if (!parsed || parsed.accessKeyId !== accessKeyId) throw new S3Error('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.');
    const rv = cred!.metadata?.resourceVersion ?? '';
    let cached = this.secrets.get(accessKeyId);
    if (!cached || cached.rv !== rv) {
      cached = { rv, secret: decryptSecret(this.privateKey, parsed.encrypted) };
      this.secrets.set(accessKeyId, cached);
    }
    if (!(await verify(cached.secret))) throw new S3Error('SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your key and signing method.');
    const user = this.users.get(parsed.user);
    if (!user || user.spec.disabled || user.metadata?.deletionTimestamp) throw new S3Error('InvalidAccessKeyId', 'The AWS Access Key Id you provided belongs to no active user.');
    const info = await authenticatedUser(parsed.user, async () => this.groups.list());
    return { accessKeyId, user: info, namespace: user.spec.namespace ?? 'default', api: this.opts.client.impersonating({ user: info.username, groups: info.groups }) };
  }

  /** The Bucket of `name`, or NoSuchBucket. */
  private bucketOf(name: string): Bucket {
    const b = this.buckets.byName(name);
    if (!b || b.metadata?.deletionTimestamp) throw new S3Error('NoSuchBucket', 'The specified bucket does not exist', { BucketName: name });
    return b;
  }

  /** RBAC's answer for the caller on `buckets/objects` of a bucket (SelfSubjectAccessReview as the caller). */
  private async authorize(caller: Caller, verb: Verb, b: Bucket): Promise<void> {
    const ns = b.metadata!.namespace!;
    const name = b.metadata!.name!;
    const key = [caller.user.username, caller.user.groups.join(','), verb, ns, name].join('\0');
    const now = Date.now();
    let d = this.decisions.get(key);
    if (!d || d.until < now) {
      const review = (await caller.api.request({
        method: 'POST',
        path: '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
        body: {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SelfSubjectAccessReview',
          spec: { resourceAttributes: { namespace: ns, verb, group: 'storage.stratus.dev', resource: 'buckets', subresource: 'objects', name } },
        },
      })) as { status?: { allowed?: boolean } };
      d = { allowed: review.status?.allowed === true, until: now + DECISION_TTL_MS };
      if (this.decisions.size > 10_000) this.decisions.clear();
      this.decisions.set(key, d);
    }
    if (!d.allowed) throw new S3Error('AccessDenied', `Access Denied: user ${caller.user.username} may not ${verb} objects of bucket ${name}`);
  }

  // ---- quota ----

  /** Reserves `bytes` (and `objects`) against the namespace's Quotas; the returned release undoes it. */
  private reserve(namespace: string, bytes: number, objects: number): { release(): void; limit: number } {
    const quotas = this.quotas.list().filter((q) => q.metadata?.namespace === namespace && (q.spec.hard.bucketBytes !== undefined || q.spec.hard.bucketObjects !== undefined));
    // summing a namespace's objects costs a scan of them: only when a Quota bounds them
    const used = quotas.length > 0 ? this.store.namespaceUsage(namespace) : { bytes: 0, objects: 0 };
    const r = this.reserved.get(namespace) ?? { bytes: 0, objects: 0 };
    let limit = Number.MAX_SAFE_INTEGER;
    for (const q of quotas) {
      const hard = q.spec.hard;
      if (hard.bucketBytes !== undefined) {
        const left = hard.bucketBytes - used.bytes - r.bytes;
        if (bytes > left) throw new S3Error('QuotaExceeded', `exceeded quota: ${q.metadata!.name!}, requested: bucketBytes=${bytes}, used: bucketBytes=${used.bytes + r.bytes}, limited: bucketBytes=${hard.bucketBytes}`);
        limit = Math.min(limit, left);
      }
      if (hard.bucketObjects !== undefined && objects > 0 && used.objects + r.objects + objects > hard.bucketObjects) {
        throw new S3Error('QuotaExceeded', `exceeded quota: ${q.metadata!.name!}, requested: bucketObjects=${objects}, used: bucketObjects=${used.objects + r.objects}, limited: bucketObjects=${hard.bucketObjects}`);
      }
    }
    r.bytes += bytes;
    r.objects += objects;
    this.reserved.set(namespace, r);
    let released = false;
    return {
      limit,
      release: () => {
        if (released) return;
        released = true;
        r.bytes -= bytes;
        r.objects -= objects;
      },
    };
  }

  // ---- buckets ----

  private async listBuckets({ res, caller }: Ctx): Promise<void> {
    const items = await caller.api.resource<Bucket>(Resources.buckets).list(caller.namespace);
    const mine = items.filter((b) => this.store.bucket(b.metadata!.name!)?.uid === b.metadata!.uid);
    sendXml(res, 200, xmlDocument('ListAllMyBucketsResult', {
      Owner: owner(caller),
      Buckets: { Bucket: mine.map((b) => ({ Name: b.metadata!.name!, CreationDate: new Date(b.metadata!.creationTimestamp ?? Date.now()).toISOString() })) },
    }));
  }

  private async createBucket({ req, res, t, caller }: Ctx): Promise<void> {
    await readXmlBody(req); // CreateBucketConfiguration (a location constraint): any region is this one
    if (!validBucketName(t.bucket)) throw new S3Error('InvalidBucketName', 'The specified bucket is not valid: 3-63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit', { BucketName: t.bucket });
    const existing = this.buckets.byName(t.bucket);
    if (existing) {
      if (existing.metadata?.namespace === caller.namespace) throw new S3Error('BucketAlreadyOwnedByYou', 'Your previous request to create the named bucket succeeded and you already own it.', { BucketName: t.bucket });
      throw new S3Error('BucketAlreadyExists', 'The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.', { BucketName: t.bucket });
    }
    const api = caller.api.resource<Bucket>(Resources.buckets);
    let created: Bucket;
    try {
      created = await api.create({ apiVersion: 'storage.stratus.dev/v1alpha1', kind: 'Bucket', metadata: { name: t.bucket, namespace: caller.namespace }, spec: { backend: 'embedded' } });
    } catch (err) {
      if (err instanceof ApiError && err.code === 409) throw new S3Error('BucketAlreadyOwnedByYou', 'Your previous request to create the named bucket succeeded and you already own it.', { BucketName: t.bucket });
      throw err;
    }
    if (!this.buckets.claim(created)) throw new S3Error('BucketAlreadyExists', 'The requested bucket name is not available.', { BucketName: t.bucket });
    res.writeHead(200, { Location: `/${t.bucket}`, 'Content-Length': 0 });
    res.end();
  }

  private async deleteBucket({ res, t, caller }: Ctx): Promise<void> {
    const b = this.bucketOf(t.bucket);
    if (!this.store.isEmpty(t.bucket)) throw new S3Error('BucketNotEmpty', 'The bucket you tried to delete is not empty', { BucketName: t.bucket });
    const api = caller.api.resource<Bucket>(Resources.buckets);
    await api.delete(b.metadata!.namespace!, t.bucket, { preconditions: { uid: b.metadata!.uid! } });
    const gone = await this.opts.client.resource<Bucket>(Resources.buckets).get(b.metadata!.namespace!, t.bucket);
    if (gone && gone.metadata?.uid === b.metadata!.uid) await this.buckets.finalize(gone);
    else await this.store.dropBucket(t.bucket);
    res.writeHead(204);
    res.end();
  }

  private async headBucket({ res, t, caller }: Ctx): Promise<void> {
    await this.authorize(caller, 'list', this.bucketOf(t.bucket));
    res.writeHead(200, { 'x-amz-bucket-region': this.region, 'Content-Length': 0 });
    res.end();
  }

  private async bucketLocation({ res, t, caller }: Ctx): Promise<void> {
    await this.authorize(caller, 'list', this.bucketOf(t.bucket));
    sendXml(res, 200, xmlDocument('LocationConstraint', { '#text': this.region === 'us-east-1' ? '' : this.region }));
  }

  private async simpleBucketDoc({ res, t, caller }: Ctx, root: string, body: Record<string, unknown>): Promise<void> {
    await this.authorize(caller, 'list', this.bucketOf(t.bucket));
    sendXml(res, 200, xmlDocument(root, body));
  }

  private async acl({ res, t, caller }: Ctx): Promise<void> {
    await this.authorize(caller, 'get', this.bucketOf(t.bucket));
    sendXml(res, 200, xmlDocument('AccessControlPolicy', {
      Owner: owner(caller),
      AccessControlList: { Grant: { Grantee: { '@_xmlns:xsi': 'http://www.w3.org/2001/XMLSchema-instance', '@_xsi:type': 'CanonicalUser', ...owner(caller) }, Permission: 'FULL_CONTROL' } },
    }));
  }

  /** ListObjectsV2 (`list-type=2`) and the original ListObjects. */
  private async listObjects({ res, t, caller }: Ctx): Promise<void> {
    const b = this.bucketOf(t.bucket);
    await this.authorize(caller, 'list', b);
    const q = t.query;
    const v2 = one(q['list-type']) === '2';
    const prefix = one(q.prefix) ?? '';
    const delimiter = one(q.delimiter) ?? '';
    const maxKeysRaw = one(q['max-keys']);
    const maxKeys = maxKeysRaw === undefined ? 1000 : Number(maxKeysRaw);
    if (!Number.isInteger(maxKeys) || maxKeys < 0) throw new S3Error('InvalidArgument', 'max-keys must be a non-negative integer');
    const encode = one(q['encoding-type']) === 'url';
    const token = one(q['continuation-token']);
    let after = '';
    if (v2) {
      if (token !== undefined) {
        after = Buffer.from(token, 'base64url').toString('utf8');
        if (token === '' || Buffer.from(after, 'utf8').toString('base64url') !== token) throw new S3Error('InvalidArgument', 'The continuation token provided is incorrect');
      } else {
        after = one(q['start-after']) ?? '';
      }
    } else {
      after = one(q.marker) ?? '';
    }
    const contents: ObjectRow[] = [];
    const prefixes: string[] = [];
    let truncated = false;
    let last = '';
    const limit = Math.min(maxKeys, 1000);
    for (const row of this.store.scan(t.bucket, prefix, after)) {
      if (delimiter !== '') {
        const i = row.key.indexOf(delimiter, prefix.length);
        if (i >= 0) {
          const cp = row.key.slice(0, i + delimiter.length);
          if (prefixes[prefixes.length - 1] === cp) continue;
          if (contents.length + prefixes.length >= limit) {
            truncated = true;
            break;
          }
          prefixes.push(cp);
          last = cp;
          continue;
        }
      }
      if (contents.length + prefixes.length >= limit) {
        truncated = true;
        break;
      }
      contents.push(row);
      last = row.key;
    }
    // a common prefix resumes after every key under it
    const resume = last !== '' && delimiter !== '' && last.endsWith(delimiter) && prefixes.includes(last) ? `${last}\u{10FFFF}` : last;
    const enc = (s: string): string => (encode ? encodeURIComponent(s).replace(/%2F/g, '/') : s);
    const body: Record<string, unknown> = {
      Name: t.bucket,
      Prefix: enc(prefix),
      ...(v2 ? { KeyCount: contents.length + prefixes.length } : { Marker: enc(one(q.marker) ?? '') }),
      MaxKeys: maxKeys,
      ...(delimiter ? { Delimiter: enc(delimiter) } : {}),
      ...(encode ? { EncodingType: 'url' } : {}),
      IsTruncated: truncated,
      ...(v2 && token !== undefined ? { ContinuationToken: token } : {}),
      ...(v2 && one(q['start-after']) !== undefined ? { StartAfter: enc(one(q['start-after'])!) } : {}),
      ...(truncated ? (v2 ? { NextContinuationToken: Buffer.from(resume, 'utf8').toString('base64url') } : { NextMarker: enc(resume) }) : {}),
      Contents: contents.map((o) => ({
        Key: enc(o.key),
        LastModified: o.modified,
        ETag: `"${o.etag}"`,
        Size: o.size,
        ...(v2 && one(q['fetch-owner']) !== 'true' ? {} : { Owner: owner(caller) }),
        StorageClass: 'STANDARD',
      })),
      CommonPrefixes: prefixes.map((p) => ({ Prefix: enc(p) })),
    };
    sendXml(res, 200, xmlDocument('ListBucketResult', body));
  }

  // ---- objects ----

  private async putObject(ctx: Ctx): Promise<void> {
    const { req, res, t, caller } = ctx;
    const b = this.bucketOf(t.bucket);
    await this.authorize(caller, 'create', b);
    const length = contentLength(req);
    const ns = b.metadata!.namespace!;
    const isNew = this.store.get(t.bucket, t.key) === undefined;
    const quota = this.reserve(ns, length ?? 0, isNew ? 1 : 0);
    try {
      const data = await this.receiveChecked(ctx, length, Math.min(quota.limit, MAX_PUT_SIZE));
      const etag = data.md5.toString('hex');
      await this.store.put(t.bucket, t.key, { file: data.file, size: data.size, etag }, storedHeaders(req));
      this.buckets.touch(ns, t.bucket);
      res.writeHead(200, { ETag: `"${etag}"`, ...data.checksumHeader, 'Content-Length': 0 });
      res.end();
    } finally {
      quota.release();
    }
  }

  /**
   * Streams the body to disk (decoding aws-chunked framing, checking each chunk signature) and
   * checks its length, Content-MD5, signed SHA-256 and `x-amz-checksum-*` (header or trailer).
   */
  private async receiveChecked({ req, signed, payloadSha256: sha256 }: Ctx, length: number | undefined, limit: number) {
    if (length !== undefined && length > limit) throw new S3Error(limit < MAX_PUT_SIZE ? 'QuotaExceeded' : 'EntityTooLarge', `the upload of ${length} bytes is larger than the ${limit} bytes allowed`);
    const checksum = requestedChecksum(req, signed.streaming?.trailer === true);
    const decode = signed.streaming ? new AwsChunkedDecoder({ ...(signed.streaming.signed ? { signer: signed.chunkSigner() } : {}), trailer: signed.streaming.trailer }) : undefined;
    let data;
    try {
      data = await this.store.receive(req, { limit: length ?? limit, sha256: sha256 !== undefined, ...(decode ? { decode } : {}), ...(checksum ? { checksum: checksum.sum } : {}) });
    } catch (err) {
      if (err instanceof S3Error) throw err;
      if (err instanceof TooLarge) throw new S3Error('QuotaExceeded', err.message);
      if ((err as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE' || (err as NodeJS.ErrnoException).code === 'ECONNRESET') throw new S3Error('IncompleteBody', 'the request body ended early');
      throw err;
    }
    const problem =
      length !== undefined && data.size !== length
        ? new S3Error('IncompleteBody', 'You did not provide the number of bytes specified by the Content-Length HTTP header')
        : sha256 !== undefined && sha256 !== data.sha256
          ? new S3Error('XAmzContentSHA256Mismatch', "The provided 'x-amz-content-sha256' header does not match what was computed.")
          : typeof req.headers['content-md5'] === 'string' && req.headers['content-md5'] !== data.md5.toString('base64')
            ? new S3Error('BadDigest', 'The Content-MD5 you specified did not match what we received.')
            : checksumProblem(checksum, decode, data.checksum);
    if (problem) {
      await this.store.discard(data.file);
      throw problem;
    }
    return { ...data, checksumHeader: checksum ? { [checksum.sum.header]: data.checksum } : {} };
  }

  private async getObject({ req, res, t, caller }: Ctx, head: boolean): Promise<void> {
    const b = this.bucketOf(t.bucket);
    await this.authorize(caller, 'get', b);
    const o = this.store.get(t.bucket, t.key);
    if (!o) throw new S3Error('NoSuchKey', 'The specified key does not exist.', { Key: t.key });
    const etag = `"${o.etag}"`;
    const modified = new Date(o.modified);
    const ifMatch = req.headers['if-match'];
    if (ifMatch && !etagListHas(ifMatch, etag)) throw new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold');
    const ifUnmodified = req.headers['if-unmodified-since'];
    if (!ifMatch && ifUnmodified && Math.floor(modified.getTime() / 1000) > Math.floor(Date.parse(ifUnmodified) / 1000)) throw new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold');
    const headers: Record<string, string | number> = {
      ETag: etag,
      'Last-Modified': modified.toUTCString(),
      'Accept-Ranges': 'bytes',
      'Content-Type': 'binary/octet-stream',
      ...Object.fromEntries(Object.entries(o.headers).map(([k, v]) => [k, v])),
    };
    for (const [param, name] of Object.entries(RESPONSE_OVERRIDES)) {
      const v = one(t.query[param]);
      if (v !== undefined) headers[name] = v;
    }
    const ifNoneMatch = req.headers['if-none-match'];
    const ifModified = req.headers['if-modified-since'];
    if ((ifNoneMatch && etagListHas(ifNoneMatch, etag)) || (!ifNoneMatch && ifModified && Math.floor(modified.getTime() / 1000) <= Math.floor(Date.parse(ifModified) / 1000))) {
      res.writeHead(304, { ETag: etag, 'Last-Modified': headers['Last-Modified']! });
      res.end();
      return;
    }
    const range = parseRange(req.headers.range, o.size);
    if (range === 'invalid') throw new S3Error('InvalidRange', 'The requested range is not satisfiable', { RangeRequested: String(req.headers.range), ActualObjectSize: String(o.size) });
    if (range) {
      headers['Content-Range'] = `bytes ${range.start}-${range.end}/${o.size}`;
      headers['Content-Length'] = range.end - range.start + 1;
    } else {
      headers['Content-Length'] = o.size;
    }
    res.writeHead(range ? 206 : 200, headers);
    if (head || o.size === 0) {
      res.end();
      return;
    }
    const stream = this.store.read(o, range?.start ?? 0, range?.end ?? o.size - 1);
    stream.on('error', () => res.destroy());
    res.on('close', () => stream.destroy());
    stream.pipe(res);
  }

  private async deleteObject({ res, t, caller }: Ctx): Promise<void> {
    const b = this.bucketOf(t.bucket);
    await this.authorize(caller, 'delete', b);
    if (await this.store.delete(t.bucket, t.key)) this.buckets.touch(b.metadata!.namespace!, t.bucket);
    res.writeHead(204);
    res.end();
  }

  private async deleteObjects({ req, res, t, caller }: Ctx): Promise<void> {
    const b = this.bucketOf(t.bucket);
    await this.authorize(caller, 'delete', b);
    const body = await readXmlBody(req);
    const md5 = req.headers['content-md5'];
    if (typeof md5 === 'string' && md5 !== createHash('md5').update(body).digest('base64')) throw new S3Error('BadDigest', 'The Content-MD5 you specified did not match what we received.');
    const { keys, quiet } = parseDelete(body);
    for (const k of keys) await this.store.delete(t.bucket, k);
    this.buckets.touch(b.metadata!.namespace!, t.bucket);
    sendXml(res, 200, xmlDocument('DeleteResult', { Deleted: quiet ? [] : keys.map((k) => ({ Key: k })) }));
  }

  private async copyObject({ req, res, t, caller }: Ctx): Promise<void> {
    const src = parseCopySource(String(req.headers['x-amz-copy-source']));
    const srcBucket = this.bucketOf(src.bucket);
    await this.authorize(caller, 'get', srcBucket);
    const b = this.bucketOf(t.bucket);
    await this.authorize(caller, 'create', b);
    const o = this.store.get(src.bucket, src.key);
    if (!o) throw new S3Error('NoSuchKey', 'The specified key does not exist.', { Key: src.key });
    const replace = String(req.headers['x-amz-metadata-directive'] ?? 'COPY').toUpperCase() === 'REPLACE';
    if (src.bucket === t.bucket && src.key === t.key && !replace) {
      throw new S3Error('InvalidRequest', 'This copy request is illegal because it is trying to copy an object to itself without changing the object\'s metadata, storage class, website redirect location or encryption attributes.');
    }
    const ns = b.metadata!.namespace!;
    const quota = this.reserve(ns, o.size, this.store.get(t.bucket, t.key) ? 0 : 1);
    try {
      const data = await this.store.copyData(o);
      const etag = o.etag.includes('-') ? data.md5.toString('hex') : o.etag;
      const row = await this.store.put(t.bucket, t.key, { file: data.file, size: data.size, etag }, replace ? storedHeaders(req) : o.headers);
      this.buckets.touch(ns, t.bucket);
      sendXml(res, 200, xmlDocument('CopyObjectResult', { LastModified: row.modified, ETag: `"${etag}"` }));
    } finally {
      quota.release();
    }
  }

  // ---- multipart ----

  private async createUpload({ res, req, t, caller }: Ctx): Promise<void> {
    const b = this.bucketOf(t.bucket);
    await this.authorize(caller, 'create', b);
    req.resume();
    const u = this.store.createUpload(t.bucket, t.key, storedHeaders(req));
    sendXml(res, 200, xmlDocument('InitiateMultipartUploadResult', { Bucket: t.bucket, Key: t.key, UploadId: u.id }));
  }

  private uploadOf(t: Target) {
    const id = one(t.query.uploadId) ?? '';
    const u = this.store.upload(id);
    if (!u || u.bucket !== t.bucket || u.key !== t.key) throw new S3Error('NoSuchUpload', 'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.', { UploadId: id });
    return u;
  }

  private async uploadPart(ctx: Ctx): Promise<void> {
    const { req, res, t, caller } = ctx;
    const b = this.bucketOf(t.bucket);
    await this.authorize(caller, 'create', b);
    const u = this.uploadOf(t);
    const number = Number(one(t.query.partNumber));
    if (!Number.isInteger(number) || number < 1 || number > 10000) throw new S3Error('InvalidArgument', 'Part number must be an integer between 1 and 10000, inclusive');
    if (req.headers['x-amz-copy-source']) throw new S3Error('NotImplemented', 'UploadPartCopy is not implemented');
    const length = contentLength(req);
    const ns = b.metadata!.namespace!;
    const quota = this.reserve(ns, length ?? 0, 0);
    try {
      const data = await this.receiveChecked(ctx, length, Math.min(quota.limit, MAX_PUT_SIZE));
      const etag = data.md5.toString('hex');
      if (!(await this.store.putPart(u.id, number, { file: data.file, size: data.size, etag }))) throw new S3Error('NoSuchUpload', 'The specified upload does not exist.', { UploadId: u.id });
      res.writeHead(200, { ETag: `"${etag}"`, ...data.checksumHeader, 'Content-Length': 0 });
      res.end();
    } finally {
      quota.release();
    }
  }

  private async completeUpload({ req, res, t, caller }: Ctx): Promise<void> {
    const b = this.bucketOf(t.bucket);
    await this.authorize(caller, 'create', b);
    const u = this.uploadOf(t);
    const wanted = parseComplete(await readXmlBody(req));
    const stored = new Map(this.store.parts(u.id).map((p) => [p.number, p]));
    const chosen = wanted.map((w, i) => {
      if (i > 0 && w.number <= wanted[i - 1]!.number) throw new S3Error('InvalidPartOrder', 'The list of parts was not in ascending order. The parts list must be specified in order by part number.');
      const p = stored.get(w.number);
      if (!p || p.etag !== w.etag) throw new S3Error('InvalidPart', 'One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part\'s entity tag.', { PartNumber: String(w.number) });
      return p;
    });
    chosen.forEach((p, i) => {
      if (i < chosen.length - 1 && p.size < MIN_PART_SIZE) throw new S3Error('EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed object size.', { PartNumber: String(p.number) });
    });
    const ns = b.metadata!.namespace!;
    const quota = this.reserve(ns, 0, this.store.get(t.bucket, t.key) ? 0 : 1);
    try {
      const etag = multipartEtag(chosen.map((p) => p.etag));
      await this.store.completeUpload(u, chosen, etag);
      this.buckets.touch(ns, t.bucket);
      sendXml(res, 200, xmlDocument('CompleteMultipartUploadResult', { Location: `${this.url}/${t.bucket}/${encodeKey(t.key)}`, Bucket: t.bucket, Key: t.key, ETag: `"${etag}"` }));
    } finally {
      quota.release();
    }
  }

  private async abortUpload({ res, t, caller }: Ctx): Promise<void> {
    const b = this.bucketOf(t.bucket);
    await this.authorize(caller, 'delete', b);
    const u = this.uploadOf(t);
    await this.store.abortUpload(u.id);
    res.writeHead(204);
    res.end();
  }

  private async listParts({ res, t, caller }: Ctx): Promise<void> {
    const b = this.bucketOf(t.bucket);
    await this.authorize(caller, 'list', b);
    const u = this.uploadOf(t);
    sendXml(res, 200, xmlDocument('ListPartsResult', {
      Bucket: t.bucket,
      Key: t.key,
      UploadId: u.id,
      IsTruncated: false,
      Part: this.store.parts(u.id).map((p) => ({ PartNumber: p.number, LastModified: p.modified, ETag: `"${p.etag}"`, Size: p.size })),
    }));
  }

  private async listUploads({ res, t, caller }: Ctx): Promise<void> {
    const b = this.bucketOf(t.bucket);
    await this.authorize(caller, 'list', b);
    sendXml(res, 200, xmlDocument('ListMultipartUploadsResult', {
      Bucket: t.bucket,
      IsTruncated: false,
      Upload: this.store.uploads(t.bucket).map((u) => ({ Key: u.key, UploadId: u.id, Initiated: u.initiated, StorageClass: 'STANDARD' })),
    }));
  }
}

interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  t: Target;
  caller: Caller;
  payloadSha256: string | undefined;
  signed: SignedRequest;
}

/**
 * The `x-amz-checksum-ALG` the client asks to be checked: a header's value, or a trailer
 * named by `x-amz-trailer` (only with an aws-chunked body with trailers).
 */
function requestedChecksum(req: IncomingMessage, trailers: boolean): { sum: Checksum; value?: string } | undefined {
  const declared = req.headers['x-amz-trailer'];
  if (typeof declared === 'string') {
    if (!trailers) throw new S3Error('InvalidRequest', 'x-amz-trailer needs an aws-chunked body with trailers (x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER or STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER)');
    const alg = checksumAlgorithmOf(declared);
    if (!alg) throw new S3Error('InvalidRequest', `x-amz-trailer ${JSON.stringify(declared)} is not one of ${CHECKSUM_ALGORITHMS.map((a) => `x-amz-checksum-${a}`).join(', ')}`);
    return { sum: new Checksum(alg) };
  }
  for (const alg of CHECKSUM_ALGORITHMS) {
    const v = req.headers[`x-amz-checksum-${alg}`];
    if (typeof v === 'string') return { sum: new Checksum(alg), value: v };
  }
  return undefined;
}

function checksumProblem(checksum: { sum: Checksum; value?: string } | undefined, decode: AwsChunkedDecoder | undefined, computed: string): S3Error | undefined {
  if (!checksum) return undefined;
  const sent = checksum.value ?? decode?.trailers[checksum.sum.header];
  if (sent === undefined) return new S3Error('InvalidRequest', `the trailer ${checksum.sum.header} named by x-amz-trailer was not sent`);
  if (sent !== computed) return new S3Error('BadDigest', `The ${checksum.sum.algorithm.toUpperCase()} you specified did not match the calculated checksum.`);
  return undefined;
}

/** Query parameters of a presigned GET that set response headers. */
const RESPONSE_OVERRIDES: Record<string, string> = {
  'response-content-type': 'Content-Type',
  'response-content-disposition': 'Content-Disposition',
  'response-content-encoding': 'Content-Encoding',
  'response-content-language': 'Content-Language',
  'response-cache-control': 'Cache-Control',
  'response-expires': 'Expires',
};

/** Query keys that are parameters, not subresources. */
const PLAIN_PARAMS = new Set(['list-type', 'prefix', 'delimiter', 'max-keys', 'marker', 'continuation-token', 'start-after', 'encoding-type', 'fetch-owner', 'x-id', ...Object.keys(RESPONSE_OVERRIDES)]);

function hasSubresource(q: Record<string, unknown>): boolean {
  return Object.keys(q).some((k) => !PLAIN_PARAMS.has(k) && !k.startsWith('X-Amz-'));
}

function one(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function owner(c: Caller): { ID: string; DisplayName: string } {
  return { ID: c.user.username, DisplayName: c.user.username };
}

function sendXml(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function mapDownstream(err: unknown): S3Error {
  if (err instanceof ApiError) {
    if (err.code === 403) return / cannot impersonate /.test(err.message) ? new S3Error('InternalError', 'the object store may not act as this user') : new S3Error('AccessDenied', `Access Denied: ${err.message}`);
    if (err.code === 422 || err.code === 400) return new S3Error('InvalidArgument', err.message);
    if (err.code === 404) return new S3Error('NoSuchBucket', err.message);
    if (err.code === 409) return new S3Error('BucketAlreadyExists', err.message);
    if (err.code >= 500 || err.code === 429) return new S3Error('ServiceUnavailable', 'the control plane is unavailable; try again');
  }
  if ((err as NodeJS.ErrnoException | undefined)?.code === 'ECONNREFUSED') return new S3Error('ServiceUnavailable', 'the control plane is unavailable; try again');
  return new S3Error('InternalError', 'We encountered an internal error. Please try again.');
}

function validBucketName(n: string): boolean {
  return /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(n) && !n.includes('..') && !/^\d+\.\d+\.\d+\.\d+$/.test(n);
}

/** The object's length: Content-Length, or `x-amz-decoded-content-length` of an aws-chunked body. */
function contentLength(req: IncomingMessage): number | undefined {
  if (isAwsChunked(req)) {
    const d = req.headers['x-amz-decoded-content-length'];
    if (d === undefined) throw new S3Error('MissingContentLength', 'An aws-chunked body needs the x-amz-decoded-content-length header.');
    const n = Number(d);
    if (!Number.isInteger(n) || n < 0) throw new S3Error('InvalidArgument', 'x-amz-decoded-content-length must be a non-negative integer');
    return n;
  }
  const v = req.headers['content-length'];
  if (v === undefined) {
    if (req.headers['transfer-encoding']) return undefined;
    throw new S3Error('MissingContentLength', 'You must provide the Content-Length HTTP header.');
  }
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new S3Error('InvalidArgument', 'Content-Length must be a non-negative integer');
  return n;
}

function isAwsChunked(req: IncomingMessage): boolean {
  return String(req.headers['content-encoding'] ?? '').split(',').some((e) => e.trim().toLowerCase() === 'aws-chunked');
}

function storedHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined) continue;
    if (STORED_HEADERS.includes(k) || k.startsWith('x-amz-meta-')) out[k] = Array.isArray(v) ? v.join(',') : v;
  }
  // aws-chunked is the request's framing, not the object's encoding
  if (out['content-encoding'] !== undefined) {
    const kept = out['content-encoding'].split(',').map((e) => e.trim()).filter((e) => e !== '' && e.toLowerCase() !== 'aws-chunked');
    if (kept.length > 0) out['content-encoding'] = kept.join(',');
    else delete out['content-encoding'];
  }
  out['content-type'] ??= 'binary/octet-stream';
  return out;
}

async function readXmlBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_XML_BODY) throw new S3Error('MalformedXML', 'the XML body is too large');
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

function etagListHas(list: string, etag: string): boolean {
  return list.split(',').some((e) => e.trim() === '*' || e.trim() === etag || `"${e.trim()}"` === etag);
}

/** `bytes=a-b`, `bytes=a-`, `bytes=-n`; undefined = whole object (absent or several ranges). */
function parseRange(h: string | undefined, size: number): { start: number; end: number } | undefined | 'invalid' {
  if (!h) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(h.trim());
  if (!m) return undefined;
  if (m[1] === '' && m[2] === '') return undefined;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0) return 'invalid';
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (m[2] !== '' && Number(m[2]) < start) return undefined;
  }
  if (start >= size) return 'invalid';
  return { start, end };
}

function parseCopySource(v: string): { bucket: string; key: string } {
  let s: string;
  try {
    s = decodeURIComponent(v.split('?')[0]!);
  } catch {
    throw new S3Error('InvalidArgument', 'x-amz-copy-source is not valid percent-encoding');
  }
  const m = /^\/?([^/]+)\/(.+)$/s.exec(s);
  if (!m) throw new S3Error('InvalidArgument', 'Copy Source must mention the source bucket and key: sourcebucket/sourcekey');
  return { bucket: m[1]!, key: m[2]! };
}

function encodeKey(k: string): string {
  return k.split('/').map(encodeURIComponent).join('/');
}
