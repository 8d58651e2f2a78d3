/**
 * One Docker engine as stratus reaches it: the address (`unix:///path` or `tcp://host:port`),
 * TLS client material, a dockerode client on a private HTTP agent, per-call deadlines, and
 * the translation of transport failures into `ReconcileError`s the controller can report:
 *
 * - `NodeUnreachable` (retryable): refused, reset, timed out, no such socket.
 * - `TLSError` (not retryable until the Secret or the engine changes): the engine refused our
 *   client certificate, we could not verify the engine's certificate, or one side speaks TLS
 *   and the other does not.
 *
 * Every call carries a deadline (`AbortSignal.timeout`), so a dead or black-holed engine fails
 * in `timeoutMs` instead of stalling the caller.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import Docker from 'dockerode';
import { DEADLINE_EXCEEDED, ReconcileError } from '../../runtime/errors.js';

export interface DockerTLS {
  /** PEM contents (the Secret's `ca.pem`, `cert.pem`, `key.pem`). */
  ca: string;
  cert: string;
  key: string;
}

export interface EngineOptions {
  /** `unix:///var/run/docker.sock` or `tcp://host:port` (TLS when `tls` is given). */
  address: string;
  tls?: DockerTLS;
  /** Deadline of quick calls (ping, info, list, inspect). Default 5000 ms. */
  timeoutMs?: number;
  /** Deadline of slow calls (create, start, remove, pull, exec, archive upload). Default 60000 ms. */
  operationTimeoutMs?: number;
}

export type EngineEndpoint =
  | { kind: 'unix'; socketPath: string }
  | { kind: 'tcp'; host: string; port: number };

/** Parses a node's `docker.address`; a malformed one is a spec error, not an outage. */
export function parseAddress(address: string, tls: boolean): EngineEndpoint {
  if (address.startsWith('unix://')) {
    const socketPath = address.slice('unix://'.length);
    if (!socketPath.startsWith('/')) {
      throw new ReconcileError('InvalidAddress', `docker address ${address}: a unix socket needs an absolute path (unix:///path)`, false);
    }
    return { kind: 'unix', socketPath };
  }
  const m = /^tcp:\/\/(\[[0-9a-fA-F:]+\]|[^:/\s]+)(?::(\d+))?\/?$/.exec(address);
  if (!m) {
    throw new ReconcileError('InvalidAddress', `docker address ${JSON.stringify(address)} is neither unix:///path nor tcp://host:port`, false);
  }
  const port = m[2] === undefined ? (tls ? 2376 : 2375) : Number(m[2]);
  if (!(port >= 1 && port <= 65535)) throw new ReconcileError('InvalidAddress', `docker address ${address}: port out of range`, false);
  return { kind: 'tcp', host: (m[1] as string).replace(/^\[|\]$/g, ''), port };
}

/** Error codes that mean the TLS handshake or certificate verification failed. */
const TLS_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_REVOKED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'EPROTO',
]);

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ETIMEDOUT',
  'ENOENT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ABORT_ERR',
]);

interface DockerodeError extends Error {
  code?: string;
  statusCode?: number;
  json?: unknown;
  reason?: string;
}

function asDockerodeError(err: unknown): DockerodeError {
  return err instanceof Error ? (err as DockerodeError) : new Error(String(err));
}

/** The engine's own message for an HTTP error (`{"message": ...}`), else the error text. */
export function engineMessage(err: unknown): string {
  const e = asDockerodeError(err);
  const json = e.json;
  if (typeof json === 'object' && json !== null && 'message' in json && typeof json.message === 'string') return json.message;
  if (Buffer.isBuffer(json)) {
    const text = json.toString().trim();
    if (text) return text;
  }
  return e.message.trim();
}

/** The HTTP status of an engine error, if the engine answered at all. */
export function statusCode(err: unknown): number | undefined {
  return asDockerodeError(err).statusCode;
}

/**
 * Classifies a transport-level failure talking to `address`. Returns undefined for HTTP
 * errors the engine answered with (404, 409, ...), which callers interpret themselves.
 */
export function transportError(err: unknown, address: string, what: string, timeoutMs: number): ReconcileError | undefined {
  if (err instanceof ReconcileError) return err;
  const e = asDockerodeError(err);
  const code = e.code ?? '';
  const text = e.message;
  if (e.statusCode === 400 && /HTTP request to an HTTPS server/i.test(engineMessage(e))) {
    return new ReconcileError('TLSError', `cannot ${what}: the engine at ${address} requires TLS; give the ComputeNode a TLS Secret (ca.pem, cert.pem, key.pem)`, false);
  }
  if (e.statusCode !== undefined) return undefined;
  if (/ALERT_(BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_REQUIRED|CERTIFICATE_UNKNOWN|HANDSHAKE_FAILURE|ACCESS_DENIED)/.test(code)) {
    return new ReconcileError(
      'TLSError',
      `cannot ${what}: the engine at ${address} rejected our client certificate (${text.split('\n')[0]?.replace(/^[0-9A-F]+:error:[0-9A-F]+:/, '')}); the certificate must be issued by the CA the engine trusts (--tlscacert)`,
      false,
    );
  }
  if (TLS_CODES.has(code) || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) {
    const detail = code === 'EPROTO' || code.includes('WRONG_VERSION')
      ? 'the engine does not speak TLS on this port (use a tcp:// address without a TLS Secret, or enable --tlsverify)'
      : `the engine's server certificate could not be verified (${text}); ca.pem must be the CA that signed it and it must name the address's host`;
    return new ReconcileError('TLSError', `cannot ${what}: TLS with ${address} failed: ${detail}`, false);
  }
  if (e.name === 'AbortError' || e.name === 'TimeoutError' || code === 'ABORT_ERR') {
    return new ReconcileError('NodeUnreachable', `cannot ${what}: the engine at ${address} did not answer within ${timeoutMs} ms`);
  }
  if (UNREACHABLE_CODES.has(code) || /socket hang up/i.test(text)) {
    return new ReconcileError('NodeUnreachable', `cannot ${what}: the engine at ${address} is unreachable (${code || text})`);
  }
  return undefined;
}

/** A dockerode client plus the deadlines and error policy every call goes through. */
export class Engine {
  private readonly caller = new AsyncLocalStorage<AbortSignal>();
  readonly address: string;
  readonly docker: Docker;
  readonly timeoutMs: number;
  readonly operationTimeoutMs: number;
  private readonly agent: { destroy(): void };

  constructor(options: EngineOptions) {
    this.address = options.address;
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.operationTimeoutMs = options.operationTimeoutMs ?? 60_000;
    const endpoint = parseAddress(options.address, options.tls !== undefined);
    if (endpoint.kind === 'unix') {
      const agent = new HttpAgent({ keepAlive: true, maxSockets: 16 });
      this.agent = agent;
      const config: Docker.DockerOptions & { agent: HttpAgent } = { socketPath: endpoint.socketPath, agent };
      this.docker = new Docker(config);
    } else if (options.tls) {
      const { ca, cert, key } = options.tls;
      const agent = new HttpsAgent({ keepAlive: true, maxSockets: 16, ca, cert, key });
      this.agent = agent;
      const config: Docker.DockerOptions & { agent: HttpsAgent } = {
        host: endpoint.host, port: endpoint.port, protocol: 'https', ca, cert, key, agent,
      };
      this.docker = new Docker(config);
    } else {
      const agent = new HttpAgent({ keepAlive: true, maxSockets: 16 });
      this.agent = agent;
      const config: Docker.DockerOptions & { agent: HttpAgent } = {
        host: endpoint.host, port: endpoint.port, protocol: 'http', agent,
      };
      this.docker = new Docker(config);
    }
  }

  /**
   * `GET path` → parsed JSON, for endpoints whose dockerode wrapper takes no abort signal
   * (`/info`, `/images/<name>/json`). HTTP errors carry `statusCode` like dockerode's.
   */
  getJSON<T>(path: string, signal: AbortSignal): Promise<T> {
    return new Promise((resolve, reject) => {
      this.docker.modem.dial(
        { path, method: 'GET', abortSignal: signal, statusCodes: { 200: true, 404: 'not found', 500: 'server error' } },
        (err, data) => (err ? reject(err) : resolve(data as T)),
      );
    });
  }

  /**
   * Runs `fn` on behalf of a caller whose `signal` (the reconcile's deadline, the controller
   * stopping) also ends every engine request `fn` makes: `quick()` and `slow()` inside it
   * fire at the earlier of their own deadline and the caller's.
   */
  forCaller<T>(signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    return signal ? this.caller.run(signal, fn) : fn();
  }

  /** Runs `fn` detached from any caller (background work that outlives the call, e.g. a pull). */
  detached<T>(fn: () => Promise<T>): Promise<T> {
    return this.caller.exit(fn);
  }

  /** A deadline for a quick call (and the caller's signal, inside `forCaller`). */
  quick(): AbortSignal {
    return this.withCaller(AbortSignal.timeout(this.timeoutMs));
  }

  /** A deadline for a slow call, plus `extraMs` (e.g. a stop grace period), and the caller's signal. */
  slow(extraMs = 0): AbortSignal {
    return this.withCaller(AbortSignal.timeout(this.operationTimeoutMs + extraMs));
  }

  private withCaller(deadline: AbortSignal): AbortSignal {
    const caller = this.caller.getStore();
    return caller ? AbortSignal.any([deadline, caller]) : deadline;
  }

  /**
   * Runs `call`; transport failures become `NodeUnreachable` / `TLSError`, other failures pass
   * through unchanged for the caller to interpret (HTTP status in `statusCode(err)`).
   */
  async call<T>(what: string, call: () => Promise<T>, deadlineMs = this.timeoutMs): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw this.callerGaveUp(what) ?? transportError(err, this.address, what, deadlineMs) ?? err;
    }
  }

  /** When the caller's signal (inside `forCaller`) ended the request: say so, not "the engine did not answer". */
  private callerGaveUp(what: string): ReconcileError | undefined {
    if (!this.caller.getStore()?.aborted) return undefined;
    return new ReconcileError(DEADLINE_EXCEEDED, `cannot ${what} on ${this.address}: the caller stopped waiting (its deadline passed or the controller is stopping)`);
  }

  /** Like `call`, but every failure becomes a `ReconcileError` (`EngineError` for HTTP errors). */
  async must<T>(what: string, call: () => Promise<T>, deadlineMs = this.timeoutMs): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw this.callerGaveUp(what) ?? transportError(err, this.address, what, deadlineMs) ?? new ReconcileError('EngineError', `cannot ${what}: ${engineMessage(err)}`);
    }
  }

  close(): void {
    this.agent.destroy();
  }
}
