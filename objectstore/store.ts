/**
 * The embedded backend's objects on local disk: `DATA_DIR/objectstore/`.
 *
 *   index.db      SQLite (WAL, synchronous=FULL): buckets, objects, multipart uploads, parts
 *   data/XX/ID    object bytes, one file per segment (a PUT is one segment; a completed
 *                 multipart upload keeps its parts as its segments, so completing copies nothing)
 *   tmp/          uploads being received; emptied at start
 *
 * Crash safety: bytes are streamed into `tmp/` and renamed into `data/XX/`, then the file and
 * that directory are fsynced (both at once: one wait instead of two); only then is the index
 * row committed (synchronous=FULL), and only after that is the client answered. So an acknowledged PUT survives SIGKILL or power loss,
 * and an interrupted one is at worst an unreferenced file, never an object: files in `data/`
 * that no row names are removed at start. An overwritten or deleted object's files are
 * unlinked after the commit that dropped them.
 *
 * Nothing here knows HTTP, S3 or Kubernetes: callers pass streams and get rows back.
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { copyFile, mkdir, open, rename, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Transform, type Readable, type TransformCallback, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import Database from 'better-sqlite3';
import type { Checksum } from './chunked.js';

/** One file holding a contiguous part of an object's bytes. */
export interface Segment {
  file: string;
  size: number;
}

export interface ObjectRow {
  bucket: string;
  key: string;
  size: number;
  /** S3's ETag without quotes: MD5 hex, or MD5-of-part-MD5s + `-N` for a multipart object. */
  etag: string;
  /** `Content-Type`, `Content-Encoding`, ... and `x-amz-meta-*`, as stored headers. */
  headers: Record<string, string>;
  /** ISO time of the last write. */
  modified: string;
  segments: Segment[];
}

export interface BucketRow {
  name: string;
  uid: string;
  namespace: string;
  created: string;
}

export interface UploadRow {
  id: string;
  bucket: string;
  key: string;
  headers: Record<string, string>;
  initiated: string;
}

export interface PartRow {
  upload: string;
  number: number;
  file: string;
  size: number;
  etag: string;
  modified: string;
}

/** What a stream written to disk turned out to be. */
export interface Received {
  file: string;
  size: number;
  md5: Buffer;
  /** Hex SHA-256 of the bytes, or '' when not asked for. */
  sha256: string;
  /** The additional checksum asked for (`x-amz-checksum-*`, base64), or ''. */
  checksum: string;
}

export interface ReceiveOptions {
  /** At most this many bytes (after `decode`), else `TooLarge`. */
  limit?: number;
  /** Compute the SHA-256 (SigV4's signed payload hash). Default true. */
  sha256?: boolean;
  /** Turns the body into the object's bytes first (aws-chunked framing). */
  decode?: Transform;
  /** An additional checksum to compute over the object's bytes. */
  checksum?: Checksum;
}

/** A write refused while streaming (size limit); the temp file is already gone. */
export class TooLarge extends Error {
  constructor(readonly limit: number) {
    super(`the upload is larger than the ${limit} bytes allowed`);
  }
}

const WRITE_HIGH_WATER = 1 << 20;

/** Counts bytes and hashes them (MD5 for the ETag, SHA-256 for SigV4's payload hash, any x-amz-checksum). */
class Digests extends Transform {
  size = 0;
  readonly md5: Hash = createHash('md5');
  /** Only when the payload hash was signed (SigV4's UNSIGNED-PAYLOAD needs none). */
  readonly sha256: Hash | undefined;
  constructor(
    private readonly limit: number,
    withSha256: boolean,
    readonly checksum: Checksum | undefined,
  ) {
    super({ highWaterMark: WRITE_HIGH_WATER });
    this.sha256 = withSha256 ? createHash('sha256') : undefined;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.size += chunk.length;
    if (this.size > this.limit) {
      cb(new TooLarge(this.limit));
      return;
    }
    this.md5.update(chunk);
    this.sha256?.update(chunk);
    this.checksum?.update(chunk);
    cb(null, chunk);
  }
}

export class ObjectStore {
  private readonly db: Database.Database;
  private readonly tmpDir: string;
  private readonly dataDir: string;
  private readonly statements = new Map<string, Database.Statement>();
  /** `data/XX` directories known to exist. */
  private readonly dirs = new Set<string>();

  constructor(readonly root: string) {
    this.tmpDir = join(root, 'tmp');
    this.dataDir = join(root, 'data');
    rmSync(this.tmpDir, { recursive: true, force: true });
    mkdirSync(this.tmpDir, { recursive: true });
    mkdirSync(this.dataDir, { recursive: true });
    this.db = new Database(join(root, 'index.db'));
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS buckets (name TEXT PRIMARY KEY, uid TEXT NOT NULL, namespace TEXT NOT NULL, created TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS objects (bucket TEXT NOT NULL, key TEXT NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL,
        headers TEXT NOT NULL, modified TEXT NOT NULL, segments TEXT NOT NULL, PRIMARY KEY (bucket, key)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS uploads (id TEXT PRIMARY KEY, bucket TEXT NOT NULL, key TEXT NOT NULL, headers TEXT NOT NULL, initiated TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS parts (upload TEXT NOT NULL, number INTEGER NOT NULL, file TEXT NOT NULL, size INTEGER NOT NULL,
        etag TEXT NOT NULL, modified TEXT NOT NULL, PRIMARY KEY (upload, number)) WITHOUT ROWID;
    `);
    this.sweepOrphans();
  }

  close(): void {
    this.db.close();
  }

  /** A prepared statement, compiled once per SQL text. */
  private sql(text: string): Database.Statement {
    let st = this.statements.get(text);
    if (!st) {
      st = this.db.prepare(text);
      this.statements.set(text, st);
    }
    return st;
  }

  // ---- buckets ----

  bucket(name: string): BucketRow | undefined {
    return this.sql('SELECT name, uid, namespace, created FROM buckets WHERE name = ?').get(name) as BucketRow | undefined;
  }

  buckets(): BucketRow[] {
    return this.sql('SELECT name, uid, namespace, created FROM buckets ORDER BY name').all() as BucketRow[];
  }

  /** Claims `name` for the Bucket object `uid`; false when another Bucket holds it. */
  claimBucket(row: BucketRow): boolean {
    this.sql('INSERT OR IGNORE INTO buckets (name, uid, namespace, created) VALUES (?, ?, ?, ?)').run(row.name, row.uid, row.namespace, row.created);
    return this.bucket(row.name)?.uid === row.uid;
  }

  isEmpty(bucket: string): boolean {
    return this.sql('SELECT 1 FROM objects WHERE bucket = ? LIMIT 1').get(bucket) === undefined;
  }

  /** Removes the bucket, its objects and uploads (index first, then the files). */
  async dropBucket(name: string): Promise<void> {
    const files: string[] = [];
    this.db.transaction(() => {
      for (const r of this.sql('SELECT segments FROM objects WHERE bucket = ?').all(name) as { segments: string }[]) {
        files.push(...(JSON.parse(r.segments) as Segment[]).map((s) => s.file));
      }
      for (const r of this.sql('SELECT p.file FROM parts p JOIN uploads u ON p.upload = u.id WHERE u.bucket = ?').all(name) as { file: string }[]) files.push(r.file);
      this.sql('DELETE FROM parts WHERE upload IN (SELECT id FROM uploads WHERE bucket = ?)').run(name);
      this.sql('DELETE FROM uploads WHERE bucket = ?').run(name);
      this.sql('DELETE FROM objects WHERE bucket = ?').run(name);
      this.sql('DELETE FROM buckets WHERE name = ?').run(name);
    })();
    await this.unlinkAll(files);
  }

  /** Bytes and objects stored in one bucket. */
  bucketUsage(bucket: string): { bytes: number; objects: number } {
    const r = this.sql('SELECT COALESCE(SUM(size), 0) AS bytes, COUNT(*) AS objects FROM objects WHERE bucket = ?').get(bucket) as { bytes: number; objects: number };
    return r;
  }

  /** Bytes (objects and uploaded parts) and objects of every bucket of a namespace. */
  namespaceUsage(namespace: string): { bytes: number; objects: number } {
    const o = this
      .sql('SELECT COALESCE(SUM(o.size), 0) AS bytes, COUNT(*) AS objects FROM objects o JOIN buckets b ON o.bucket = b.name WHERE b.namespace = ?')
      .get(namespace) as { bytes: number; objects: number };
    const p = this
      .sql('SELECT COALESCE(SUM(p.size), 0) AS bytes FROM parts p JOIN uploads u ON p.upload = u.id JOIN buckets b ON u.bucket = b.name WHERE b.namespace = ?')
      .get(namespace) as { bytes: number };
    return { bytes: o.bytes + p.bytes, objects: o.objects };
  }

  // ---- objects ----

  /**
   * Streams `body` into a new data file (at most `limit` bytes, else `TooLarge`), durable in
   * `data/` — not yet referenced by any object: `put`/`putPart` do that.
   */
  async receive(body: Readable, opts: ReceiveOptions = {}): Promise<Received> {
    const id = randomBytes(16).toString('hex');
    const tmp = join(this.tmpDir, id);
    const digests = new Digests(opts.limit ?? Number.MAX_SAFE_INTEGER, opts.sha256 ?? true, opts.checksum);
    const first = opts.decode ?? digests;
    try {
      // the body is fed, not part of the pipeline: a refusal half-way (a bad chunk signature, a
      // quota) leaves the request readable, so it can still be answered instead of reset
      feed(body, first);
      const out = createWriteStream(tmp, { flags: 'wx', mode: 0o600, highWaterMark: WRITE_HIGH_WATER });
      await (opts.decode ? pipeline(opts.decode, digests, out) : pipeline(digests, out));
      const checksum = opts.checksum ? await opts.checksum.digest() : '';
      return { ...(await this.publish(id)), size: digests.size, md5: digests.md5.digest(), sha256: digests.sha256?.digest('hex') ?? '', checksum };
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  /**
   * Moves `tmp/ID` (written, not yet fsynced) to `data/XX/ID`, then makes both the bytes and
   * the directory entry durable: the file and the directory are fsynced together (one journal
   * commit on ext4 instead of two in a row). Only after that may a row name it.
   */
  private async publish(id: string): Promise<{ file: string }> {
    const dir = join(this.dataDir, id.slice(0, 2));
    const file = join(id.slice(0, 2), id);
    if (!this.dirs.has(dir)) {
      await mkdir(dir, { recursive: true });
      this.dirs.add(dir);
    }
    await rename(join(this.tmpDir, id), join(this.dataDir, file));
    try {
      await Promise.all([fsyncPath(join(this.dataDir, file)), fsyncPath(dir)]);
    } catch (err) {
      await unlink(join(this.dataDir, file)).catch(() => undefined);
      throw err;
    }
    return { file };
  }

  /** Drops a received file that will not be used (a digest mismatch, a refused quota). */
  async discard(file: string): Promise<void> {
    await unlink(join(this.dataDir, file)).catch(() => undefined);
  }

  /** Copies a stored object's bytes into one new data file. */
  async copyData(src: ObjectRow): Promise<Received> {
    if (src.segments.length === 1) {
      const id = randomBytes(16).toString('hex');
      const tmp = join(this.tmpDir, id);
      try {
        await copyFile(join(this.dataDir, src.segments[0]!.file), tmp);
        return { ...(await this.publish(id)), size: src.size, md5: Buffer.from(src.etag, 'hex'), sha256: '', checksum: '' };
      } catch (err) {
        await rm(tmp, { force: true });
        throw err;
      }
    }
    return this.receive(this.read(src));
  }

  /** Makes `file` the object `bucket/key` (replacing any); returns the row. */
  async put(bucket: string, key: string, data: { file: string; size: number; etag: string }, headers: Record<string, string>): Promise<ObjectRow> {
    return this.commit({ bucket, key, size: data.size, etag: data.etag, headers, modified: new Date().toISOString(), segments: [{ file: data.file, size: data.size }] });
  }

  private async commit(row: ObjectRow, extra?: () => string[]): Promise<ObjectRow> {
    const dropped: string[] = [];
    this.db.transaction(() => {
      const old = this.sql('SELECT segments FROM objects WHERE bucket = ? AND key = ?').get(row.bucket, row.key) as { segments: string } | undefined;
      if (old) dropped.push(...(JSON.parse(old.segments) as Segment[]).map((s) => s.file));
      this
        .sql('INSERT OR REPLACE INTO objects (bucket, key, size, etag, headers, modified, segments) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(row.bucket, row.key, row.size, row.etag, JSON.stringify(row.headers), row.modified, JSON.stringify(row.segments));
      if (extra) dropped.push(...extra());
    })();
    const kept = new Set(row.segments.map((s) => s.file));
    await this.unlinkAll(dropped.filter((f) => !kept.has(f)));
    return row;
  }

  get(bucket: string, key: string): ObjectRow | undefined {
    const r = this.sql('SELECT * FROM objects WHERE bucket = ? AND key = ?').get(bucket, key) as RawObject | undefined;
    return r ? objectOf(r) : undefined;
  }

  async delete(bucket: string, key: string): Promise<boolean> {
    let files: string[] = [];
    this.db.transaction(() => {
      const old = this.sql('SELECT segments FROM objects WHERE bucket = ? AND key = ?').get(bucket, key) as { segments: string } | undefined;
      if (!old) return;
      files = (JSON.parse(old.segments) as Segment[]).map((s) => s.file);
      this.sql('DELETE FROM objects WHERE bucket = ? AND key = ?').run(bucket, key);
    })();
    await this.unlinkAll(files);
    return files.length > 0;
  }

  /** Objects of `bucket` with `key > after` and the prefix, in key (UTF-8 byte) order. */
  *scan(bucket: string, prefix: string, after: string): Generator<ObjectRow> {
    const start = after > prefix ? after : prefix;
    // not a cached statement: a generator left open must not hold one that others use
    const stmt = this.db.prepare(`SELECT * FROM objects WHERE bucket = ? AND key ${after > prefix ? '>' : '>='} ? ORDER BY key`);
    for (const r of stmt.iterate(bucket, start) as Iterable<RawObject>) {
      if (!r.key.startsWith(prefix)) return;
      yield objectOf(r);
    }
  }

  /** The bytes `start..end` (inclusive) of an object, across its segments. */
  read(row: ObjectRow, start = 0, end = row.size - 1): Readable {
    // one segment (every object but a multipart one): the file itself, no stream in between
    if (row.segments.length === 1) return createReadStream(join(this.dataDir, row.segments[0]!.file), { start, end, highWaterMark: WRITE_HIGH_WATER });
    const out = new PassThrough({ highWaterMark: WRITE_HIGH_WATER });
    const segments = row.segments;
    void (async () => {
      let offset = 0;
      for (const s of segments) {
        const from = Math.max(start, offset);
        const to = Math.min(end, offset + s.size - 1);
        if (from <= to) {
          await pipeline(createReadStream(join(this.dataDir, s.file), { start: from - offset, end: to - offset, highWaterMark: WRITE_HIGH_WATER }), out, { end: false });
        }
        offset += s.size;
        if (offset > end) break;
      }
      out.end();
    })().catch((err: unknown) => out.destroy(err instanceof Error ? err : new Error(String(err))));
    return out;
  }

  // ---- multipart uploads ----

  createUpload(bucket: string, key: string, headers: Record<string, string>): UploadRow {
    const row: UploadRow = { id: randomBytes(18).toString('base64url'), bucket, key, headers, initiated: new Date().toISOString() };
    this.sql('INSERT INTO uploads (id, bucket, key, headers, initiated) VALUES (?, ?, ?, ?, ?)').run(row.id, bucket, key, JSON.stringify(headers), row.initiated);
    return row;
  }

  upload(id: string): UploadRow | undefined {
    const r = this.sql('SELECT * FROM uploads WHERE id = ?').get(id) as (Omit<UploadRow, 'headers'> & { headers: string }) | undefined;
    return r ? { ...r, headers: JSON.parse(r.headers) as Record<string, string> } : undefined;
  }

  uploads(bucket: string): UploadRow[] {
    return (this.sql('SELECT * FROM uploads WHERE bucket = ? ORDER BY key, initiated').all(bucket) as (Omit<UploadRow, 'headers'> & { headers: string })[]).map((r) => ({
      ...r,
      headers: JSON.parse(r.headers) as Record<string, string>,
    }));
  }

  parts(upload: string): PartRow[] {
    return this.sql('SELECT * FROM parts WHERE upload = ? ORDER BY number').all(upload) as PartRow[];
  }

  /** Records a received part (replacing the same number); false when the upload is gone. */
  async putPart(upload: string, number: number, data: { file: string; size: number; etag: string }): Promise<boolean> {
    let old: string | undefined;
    let ok = false;
    this.db.transaction(() => {
      if (!this.sql('SELECT 1 FROM uploads WHERE id = ?').get(upload)) return;
      ok = true;
      old = (this.sql('SELECT file FROM parts WHERE upload = ? AND number = ?').get(upload, number) as { file: string } | undefined)?.file;
      this
        .sql('INSERT OR REPLACE INTO parts (upload, number, file, size, etag, modified) VALUES (?, ?, ?, ?, ?, ?)')
        .run(upload, number, data.file, data.size, data.etag, new Date().toISOString());
    })();
    if (!ok) await this.discard(data.file);
    if (old) await this.discard(old);
    return ok;
  }

  /**
   * Turns the chosen parts into the object (they become its segments, nothing is copied) and
   * forgets the upload; parts not chosen are deleted.
   */
  async completeUpload(upload: UploadRow, chosen: PartRow[], etag: string): Promise<ObjectRow> {
    const row: ObjectRow = {
      bucket: upload.bucket,
      key: upload.key,
      size: chosen.reduce((n, p) => n + p.size, 0),
      etag,
      headers: upload.headers,
      modified: new Date().toISOString(),
      segments: chosen.map((p) => ({ file: p.file, size: p.size })),
    };
    const used = new Set(chosen.map((p) => p.file));
    return this.commit(row, () => {
      const all = this.parts(upload.id).map((p) => p.file);
      this.sql('DELETE FROM parts WHERE upload = ?').run(upload.id);
      this.sql('DELETE FROM uploads WHERE id = ?').run(upload.id);
      return all.filter((f) => !used.has(f));
    });
  }

  async abortUpload(id: string): Promise<boolean> {
    let files: string[] = [];
    let found = false;
    this.db.transaction(() => {
      found = this.sql('DELETE FROM uploads WHERE id = ?').run(id).changes > 0;
      files = this.parts(id).map((p) => p.file);
      this.sql('DELETE FROM parts WHERE upload = ?').run(id);
    })();
    await this.unlinkAll(files);
    return found;
  }

  // ---- housekeeping ----

  private async unlinkAll(files: string[]): Promise<void> {
    for (const f of files) await unlink(join(this.dataDir, f)).catch(() => undefined);
  }

  /** Removes data files no object or part names (a crash between rename and commit). */
  private sweepOrphans(): void {
    const referenced = new Set<string>();
    for (const r of this.sql('SELECT segments FROM objects').iterate() as Iterable<{ segments: string }>) {
      for (const s of JSON.parse(r.segments) as Segment[]) referenced.add(s.file);
    }
    for (const r of this.sql('SELECT file FROM parts').iterate() as Iterable<{ file: string }>) referenced.add(r.file);
    for (const dir of readdirSync(this.dataDir)) {
      for (const f of readdirSync(join(this.dataDir, dir))) {
        const file = join(dir, f);
        if (!referenced.has(file)) rmSync(join(this.dataDir, file), { force: true });
      }
    }
  }
}

interface RawObject {
  bucket: string;
  key: string;
  size: number;
  etag: string;
  headers: string;
  modified: string;
  segments: string;
}

function objectOf(r: RawObject): ObjectRow {
  return { ...r, headers: JSON.parse(r.headers) as Record<string, string>, segments: JSON.parse(r.segments) as Segment[] };
}

/** Pipes `src` into `dst`; an error or early close of `src` fails `dst`, an error of `dst` only unpipes. */
function feed(src: Readable, dst: Writable): void {
  const onError = (err: Error): void => {
    dst.destroy(err);
  };
  const onClose = (): void => {
    if (!src.readableEnded) dst.destroy(Object.assign(new Error('the body ended early'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
  };
  src.on('error', onError);
  src.once('close', onClose);
  dst.once('close', () => {
    src.off('error', onError);
    src.off('close', onClose);
    src.unpipe(dst);
  });
  src.pipe(dst);
}

/** fsync(2) of a file or directory by path (any descriptor of an inode flushes all of it). */
async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** S3's ETag of a multipart object: MD5 of the parts' binary MD5s, `-` the part count. */
export function multipartEtag(partEtags: readonly string[]): string {
  const h = createHash('md5');
  for (const e of partEtags) h.update(Buffer.from(e, 'hex'));
  return `${h.digest('hex')}-${partEtags.length}`;
}
