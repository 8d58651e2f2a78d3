/**
 * What the GCE provider reads from HTTP: the Compute API's error answers (status, API reason,
 * message, `Retry-After`) whichever way the client library surfaces them, and the `endpoint`
 * option. Pure; no client library here.
 */
import { ReconcileError } from '../../runtime/errors.js';

/** An HTTP error the Compute API answered that the caller interprets (404, 409, 412, ...). */
export class GceApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'GceApiError';
  }
}

interface ErrorBody {
  error?: { code?: number; message?: string; status?: string; errors?: { reason?: string; message?: string }[] };
}

export interface TransportError {
  name?: string;
  message?: string;
  code?: unknown;
  status?: unknown;
  response?: { status?: number; headers?: unknown; data?: unknown };
}

function header(headers: unknown, name: string): string | undefined {
  if (!headers) return undefined;
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  const v = (headers as Record<string, unknown>)[name];
  return typeof v === 'string' ? v : Array.isArray(v) && typeof v[0] === 'string' ? v[0] : undefined;
}

/** `Retry-After` as delay-seconds or an HTTP date, in ms. */
export function retryAfterMs(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Math.round(Number(value) * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function parseBody(e: TransportError): ErrorBody | undefined {
  for (const candidate of [e.response?.data, e.message]) {
    if (typeof candidate === 'object' && candidate !== null && 'error' in candidate) return candidate as ErrorBody;
    if (typeof candidate === 'string' && candidate.trim().startsWith('{')) {
      try {
        const parsed = JSON.parse(candidate) as unknown;
        if (typeof parsed === 'object' && parsed !== null && 'error' in parsed) return parsed as ErrorBody;
      } catch {
        // not JSON
      }
    }
  }
  return undefined;
}

/** The HTTP status, API reason and message of a failed call; `status` 0 when nothing answered. */
export function describeFailure(err: unknown): { status: number; reason: string; message: string; retryAfterMs?: number } {
  const e = (typeof err === 'object' && err !== null ? err : { message: String(err) }) as TransportError;
  const status = e.response?.status ?? (typeof e.status === 'number' ? e.status : undefined) ?? (typeof e.code === 'number' && e.code >= 100 ? e.code : 0);
  const body = parseBody(e);
  const reason = body?.error?.errors?.[0]?.reason ?? '';
  const text = body?.error?.message ?? (status > 0 ? String(e.message ?? '').slice(0, 300) : String(e.message ?? err));
  const ra = retryAfterMs(header(e.response?.headers, 'retry-after'));
  return { status, reason, message: text.trim() || `HTTP ${status}`, ...(ra !== undefined ? { retryAfterMs: ra } : {}) };
}

/** Parses `endpoint` (`http(s)://host[:port][/]`) into what the client wants. */
export function parseEndpoint(endpoint: string): { apiEndpoint: string; port: number; protocol: 'http' | 'https' } {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new ReconcileError('InvalidSpec', `gce endpoint ${JSON.stringify(endpoint)} is not a URL (http(s)://host:port)`, false);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || (url.pathname !== '/' && url.pathname !== '') || url.search) {
    throw new ReconcileError('InvalidSpec', `gce endpoint ${endpoint}: only http(s)://host[:port] is supported (no path)`, false);
  }
  const protocol = url.protocol === 'http:' ? 'http' : 'https';
  return { apiEndpoint: url.hostname.replace(/^\[|\]$/g, ''), port: url.port ? Number(url.port) : protocol === 'http' ? 80 : 443, protocol };
}
