/**
 * The audit log: one JSON line per mutating request (create, update, patch, delete,
 * deletecollection — refused ones included) in `DATA_DIR/audit.log`, written when the
 * response is sent: time, user, groups, verb, API group, resource, subresource, namespace,
 * name, response code. Request and response bodies and headers are never recorded, so no
 * secret, token or signature reaches it. When the file passes `maxBytes` it is rotated to
 * `audit.log.1` (older ones shift up to `audit.log.<keep>`, the oldest is dropped).
 * The lines of one event-loop turn go to the file in one write (not one write per request).
 */
import { createWriteStream, existsSync, openSync, renameSync, rmSync, statSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
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
  /** Lines recorded this turn, written together at its end. */
  private pending = '';
  private flushing: NodeJS.Immediate | undefined;

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
    return createWriteStream(this.path, { fd: openSync(this.path, 'a', 0o600) });
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
    this.flushing ??= setImmediate(() => this.flush());
  }

  private flush(): void {
    if (this.flushing) clearImmediate(this.flushing);
    this.flushing = undefined;
    if (this.pending === '') return;
    this.stream.write(this.pending);
    this.pending = '';
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
    return new Promise((resolve) => this.stream.end(() => resolve()));
  }
}
