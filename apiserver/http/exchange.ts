/**
 * One request and its response: the parsed URL, the metric labels and `Warning`s gathered
 * while serving, and the only functions that write a response (an object in the negotiated
 * encoding, plain text, or a `Status`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { stringify as stringifyYaml } from 'yaml';
import { badRequest, type ApiError } from '../errors.js';
import type { RequestLabels } from '../metrics.js';
import type { Output } from './negotiate.js';

export class Exchange {
  readonly start = performance.now();
  readonly labels: RequestLabels = { verb: '', group: '', version: '', resource: '', subresource: '', scope: '', code: '0' };
  readonly warnings: string[] = [];
  readonly url: URL;
  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
  ) {
    const raw = req.url ?? '/';
    try {
      this.url = new URL(raw.startsWith('/') ? raw : `/${raw}`, 'http://localhost');
    } catch {
      throw badRequest('malformed request URL');
    }
  }

  /** A query parameter's first value. */
  query(name: string): string | undefined {
    const v = this.url.searchParams.get(name);
    return v === null ? undefined : v;
  }

  send(code: number, body: unknown, output: Output = { kind: 'json' }, contentType?: string): void {
    this.labels.code = String(code);
    if (this.res.headersSent) return;
    if (this.warnings.length > 0) this.res.setHeader('Warning', this.warnings.map((w) => `299 - ${JSON.stringify(w)}`));
    let text: string;
    let type: string;
    if (output.kind === 'yaml') {
      text = stringifyYaml(body);
      type = 'application/yaml';
    } else {
      text = JSON.stringify(body);
      type = contentType ?? 'application/json';
    }
    this.sendBody(code, text, type);
  }

  /** An already encoded body. */
  sendBody(code: number, text: string | Buffer, type: string): void {
    this.labels.code = String(code);
    if (this.res.headersSent) return;
    this.res.writeHead(code, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-cache, private' });
    this.res.end(text);
  }

  sendText(code: number, text: string, type = 'text/plain; charset=utf-8'): void {
    this.labels.code = String(code);
    this.res.writeHead(code, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(text) });
    this.res.end(text);
  }

  sendStatus(err: ApiError): void {
    if (this.res.headersSent) return;
    if (err.code === 413) this.res.setHeader('Connection', 'close');
    if (err.details?.retryAfterSeconds !== undefined) this.res.setHeader('Retry-After', String(err.details.retryAfterSeconds));
    this.send(err.code, err.toStatus());
  }
}
