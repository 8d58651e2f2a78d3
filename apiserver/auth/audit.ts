/**
 * The audit log: one JSON line per mutating request (create, update, patch, delete,
 * deletecollection — refused ones included) in `DATA_DIR/audit.log`, written when the
 * response is sent: time, user, groups, verb, API group, resource, subresource, namespace,
 * name, response code. Request and response bodies and headers are never recorded, so no
 * secret, token or signature reaches it. When the file passes `maxBytes` it is rotated to
 * `audit.log.1` (older ones shift up to `audit.log.<keep>`, the oldest is dropped).
 * The lines of one event-loop turn go to the file in one write (not one write per request).
 *
 * A write that fails (the disk is full) never takes the server down: the records are dropped
 * and counted, one warning says so, and the file is reopened for the next record — so
 * auditing resumes by itself when space comes back.
 */
import { createWriteStream, existsSync, openSync, renameSync, rmSync, statSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { log } from '../../runtime/log.js';
import type { RequestAttributes } from './requestinfo.js';
import type { UserInfo } from './user.js';

export interface AuditRecord {
  time: string;
  user: string;
  groups: string[];
  verb: string;
  apiGroup?: string;
  resource?: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  path: string;
  code: number;
}

export class AuditLog {
  readonly path: string;
  private stream: WriteStream;
  private size: number;
  /** Lines recorded this turn, written together at its end, and how many records they are. */
  private pending = '';
  private pendingRecords = 0;
  private flushing: NodeJS.Immediate | undefined;
  /** Records lost since the last write failure (the stream is reopened on the next write). */
  private dropped = 0;
  private broken = false;
  /** The outage was logged (once; cleared when a write succeeds again). */
  private warned = false;

  constructor(
    dir: string,
    private readonly maxBytes = 50 * 1024 * 1024,
    private readonly keep = 5,
  ) {
    this.path = join(dir, 'audit.log');
    this.size = existsSync(this.path) ? statSync(this.path).size : 0;
    this.stream = this.open();
  }

  /** Opened synchronously, so the file exists before the first write (and the next rotation). */
  private open(): WriteStream {
    const stream = createWriteStream(this.path, { fd: openSync(this.path, 'a', 0o600) });
    stream.on('error', (err) => {
      if (stream !== this.stream) return; // a rotated-away stream: its failed writes are counted by their callbacks
      if (!this.warned) log.warn({ component: 'audit', file: this.path, err: err.message }, 'cannot write the audit log: records are dropped until a write succeeds');
      this.warned = true;
      this.broken = true;
    });
    return stream;
  }

  /** Records lost to failed writes since the last one that succeeded. */
  get droppedRecords(): number {
    return this.dropped;
  }

  /** After a failed write: a fresh stream (the failed one is destroyed); false while even that fails. */
  private reopen(): boolean {
    try {
      this.stream = this.open();
      this.size = existsSync(this.path) ? statSync(this.path).size : 0;
      this.broken = false;
      return true;
    } catch {
      return false;
    }
  }

  record(user: UserInfo, a: RequestAttributes, code: number): void {
    const r: AuditRecord = {
      time: new Date().toISOString(),
      user: user.username,
      groups: user.groups,
      verb: a.verb,
      ...(a.resourceRequest
        ? {
            apiGroup: a.apiGroup,
            resource: a.resource,
            ...(a.subresource ? { subresource: a.subresource } : {}),
            ...(a.namespace ? { namespace: a.namespace } : {}),
            ...(a.name ? { name: a.name } : {}),
          }
        : {}),
      path: a.path,
      code,
    };
    const line = JSON.stringify(r) + '\n';
    if (this.size + line.length > this.maxBytes && this.size > 0) this.rotate();
    this.size += Buffer.byteLength(line);
    this.pending += line;
    this.pendingRecords++;
    this.flushing ??= setImmediate(() => this.flush());
  }

  private flush(): void {
    if (this.flushing) clearImmediate(this.flushing);
    this.flushing = undefined;
    if (this.pending === '') return;
    const chunk = this.pending;
    const records = this.pendingRecords;
    this.pending = '';
    this.pendingRecords = 0;
    if (this.broken && !this.reopen()) {
      this.dropped += records;
      return;
    }
    this.stream.write(chunk, (err) => {
      if (err) {
        this.dropped += records;
        this.broken = true;
      } else if (this.warned) {
        log.warn({ component: 'audit', file: this.path, dropped: this.dropped }, 'the audit log is writable again');
        this.dropped = 0;
        this.warned = false;
      }
    });
  }

  /** Renames while the old stream still holds its descriptor; it finishes into the renamed file. */
  private rotate(): void {
    this.flush();
    rmSync(`${this.path}.${this.keep}`, { force: true });
    for (let i = this.keep - 1; i >= 1; i--) if (existsSync(`${this.path}.${i}`)) renameSync(`${this.path}.${i}`, `${this.path}.${i + 1}`);
    renameSync(this.path, `${this.path}.1`);
    const old = this.stream;
    this.stream = this.open();
    this.size = 0;
    old.end();
  }

  close(): Promise<void> {
    this.flush();
    if (this.stream.destroyed) return Promise.resolve();
    return new Promise((resolve) => this.stream.end(() => resolve()));
  }
}
