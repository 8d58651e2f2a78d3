/**
 * The browser's Kubernetes client: the same API kubectl talks to, as the signed-in user
 * (`Authorization: Bearer` from sessionStorage). No private endpoint: lists, watches, reviews
 * and writes are the ordinary Kubernetes paths, so RBAC, admission and audit judge every call.
 */

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: { kind: string; name: string; uid: string; apiVersion: string }[];
  managedFields?: unknown;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
  [key: string]: unknown;
}

export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}

/** A refusal or failure from the API server, carrying its `Status` message and code. */
export class ApiFailure extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly reason = '',
  ) {
    super(message);
  }
}

const TOKEN_KEY = 'stratus.token';

export function savedToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function saveToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** Called when the server answers 401: the token expired or was revoked. */
let onUnauthorized: () => void = () => undefined;
export function whenUnauthorized(f: () => void): void {
  onUnauthorized = f;
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const token = savedToken();
  return { Accept: 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}), ...extra };
}

async function failure(res: Response): Promise<ApiFailure> {
  if (res.status === 401) onUnauthorized();
  const text = await res.text();
  try {
    const status = JSON.parse(text) as { message?: string; reason?: string };
    return new ApiFailure(res.status, status.message ?? `${res.status} ${res.statusText}`, status.reason ?? '');
  } catch {
    return new ApiFailure(res.status, text || `${res.status} ${res.statusText}`);
  }
}

/** One request; the parsed JSON body, or an `ApiFailure` with the server's own words. */
export async function request<T>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
  const res = await fetch(path, {
    method,
    headers: headers(body === undefined ? {} : { 'Content-Type': contentType }),
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  if (!res.ok) throw await failure(res);
  return (await res.json()) as T;
}

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: KubeObject;
}

/**
 * List + watch with reconnect, as an informer does: list, then watch from the list's
 * resourceVersion; when the watch ends or fails (server restart, 410 Gone) list again after
 * a short pause. `onItems` gets the whole current set after every change. Returns a stop
 * function.
 */
export function listWatch(path: string, onItems: (items: KubeObject[]) => void, onError: (err: ApiFailure | null) => void): () => void {
  let stopped = false;
  let abort = new AbortController();
  const items = new Map<string, KubeObject>();
  const key = (o: KubeObject): string => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
  const publish = (): void => onItems([...items.values()]);
  const sep = path.includes('?') ? '&' : '?';

  const run = async (): Promise<void> => {
    while (!stopped) {
      try {
        const list = await request<{ items: KubeObject[]; metadata: { resourceVersion: string } }>('GET', path);
        items.clear();
        for (const o of list.items) items.set(key(o), o);
        publish();
        onError(null);
        abort = new AbortController();
        const res = await fetch(`${path}${sep}watch=1&allowWatchBookmarks=true&resourceVersion=${encodeURIComponent(list.metadata.resourceVersion)}`, {
          headers: headers(),
          signal: abort.signal,
        });
        if (!res.ok) throw await failure(res);
        const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let nl: number;
          while ((nl = buffer.indexOf('\n')) >= 0) {
            const line = buffer.slice(0, nl).trim();
            buffer = buffer.slice(nl + 1);
            if (line === '') continue;
            const ev = JSON.parse(line) as WatchEvent;
            if (ev.type === 'ERROR') throw new ApiFailure(Number((ev.object as { code?: number }).code ?? 500), String((ev.object as { message?: string }).message ?? 'watch error'));
            if (ev.type === 'BOOKMARK') continue;
            if (ev.type === 'DELETED') items.delete(key(ev.object));
            else items.set(key(ev.object), ev.object);
            publish();
          }
        }
      } catch (err) {
        if (stopped) return;
        if (err instanceof ApiFailure && (err.code === 401 || err.code === 403)) {
          onError(err);
          return; // retrying will not change the answer
        }
        if (!(err instanceof ApiFailure && err.code === 410)) onError(err instanceof ApiFailure ? err : new ApiFailure(0, `connection lost (${String(err)}); reconnecting`));
      }
      if (!stopped) await new Promise((r) => setTimeout(r, 500));
    }
  };
  void run();
  return () => {
    stopped = true;
    abort.abort();
  };
}
