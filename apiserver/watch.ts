/**
 * Serving one watch request: newline-delimited JSON events over a chunked response, headers
 * flushed at once. Changes come from the resource's watch cache; selectors turn objects that
 * move in or out of the selection into ADDED/DELETED. Bookmarks (when allowed) double as the
 * heartbeat; otherwise a bare newline keeps idle connections alive (clients skip blank lines).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { TooOldError } from './storage/store.js';
import { ApiError, badRequest, gone } from './errors.js';
import { groupVersion, type KubeObject } from './resources.js';
import type { ObjectFilter, Registry, Target } from './registry.js';
import type { CachedEvent, Subscription, WatchCache } from './watchcache.js';

export interface WatchParams {
  target: Target;
  filter: ObjectFilter;
  labelSelector?: string;
  fieldSelector?: string;
  resourceVersion?: string;
  resourceVersionMatch?: string;
  sendInitialEvents?: boolean;
  allowWatchBookmarks: boolean;
  timeoutSeconds?: number;
  contentType: string;
  /** The wire form of an object (the addressed version, or a Table row). */
  present(obj: KubeObject, type: string): unknown;
  heartbeatMs: number;
  /**
   * Set when `present` is the plain object in the addressed version: events are then
   * serialized once per (type, version) for every watcher of the resource (memoized on the
   * cached event) instead of once per watcher.
   */
  sharedEncoding?: boolean;
}

/** Open watches, so shutdown can end them cleanly. */
export type WatchRegistry = Set<() => void>;

export async function serveWatch(
  req: IncomingMessage,
  res: ServerResponse,
  registry: Registry,
  cache: WatchCache,
  p: WatchParams,
  open: WatchRegistry,
): Promise<void> {
  const rvParam = p.resourceVersion ?? '';
  if (rvParam !== '' && !/^\d+$/.test(rvParam)) throw badRequest(`invalid resourceVersion "${rvParam}"`);
  if (p.sendInitialEvents && !p.allowWatchBookmarks) {
    throw new ApiError(422, 'Invalid', 'sendInitialEvents requires allowWatchBookmarks=true', {
      causes: [{ reason: 'FieldValueForbidden', field: 'allowWatchBookmarks', message: 'Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true' }],
    });
  }
  await cache.start();
  const initial = p.sendInitialEvents ?? (rvParam === '' || rvParam === '0');
  let fromRevision: number;
  let initialItems: KubeObject[] = [];
  if (initial) {
    const list = await registry.list(p.target, {
      ...(p.labelSelector ? { labelSelector: p.labelSelector } : {}),
      ...(p.fieldSelector ? { fieldSelector: p.fieldSelector } : {}),
    });
    initialItems = list.items;
    fromRevision = Number(list.resourceVersion);
  } else if (rvParam === '' || rvParam === '0') {
    fromRevision = cache.latestRevision;
  } else {
    fromRevision = Number(rvParam);
  }

  res.writeHead(200, { 'Content-Type': p.contentType, 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' });
  res.flushHeaders();
  res.socket?.setNoDelay(true);

  let ended = false;
  let sub: Subscription | undefined;
  let lastRevision = fromRevision;
  const timers: NodeJS.Timeout[] = [];
  const finish = (): void => {
    if (ended) return;
    ended = true;
    for (const t of timers) clearTimeout(t);
    sub?.close();
    open.delete(finish);
    res.end();
  };
  open.add(finish);
  req.on('close', finish);
  res.on('close', finish);

  const write = (type: string, object: unknown): void => {
    if (ended) return;
    res.write(JSON.stringify({ type, object }) + '\n');
  };
  const gv = groupVersion(p.target.resource.group, p.target.version.name);
  const bookmark = (annotations?: Record<string, string>): void => {
    write('BOOKMARK', {
      kind: p.target.resource.kind,
      apiVersion: gv,
      metadata: { resourceVersion: String(lastRevision), ...(annotations ? { annotations } : {}) },
    });
  };
  const fail = (err: ApiError): void => {
    write('ERROR', err.toStatus());
    finish();
  };

  for (const item of initialItems) write('ADDED', p.present(item, 'ADDED'));
  if (p.sendInitialEvents) bookmark({ 'k8s.io/initial-events-end': 'true' });

  const onEvent = (ev: CachedEvent): void => {
    if (ended) return;
    lastRevision = Math.max(lastRevision, ev.revision);
    const nowMatches = p.filter.matches(ev.object);
    // Without selectors an object cannot move in or out (its namespace never changes).
    const wasMatching = ev.type === 'ADDED' ? false : p.filter.selective ? (ev.prevObject ? p.filter.matches(ev.prevObject) : false) : nowMatches;
    let type: string | undefined;
    if (ev.type === 'DELETED') type = nowMatches || wasMatching ? 'DELETED' : undefined;
    else if (ev.type === 'ADDED') type = nowMatches ? 'ADDED' : undefined;
    else if (nowMatches) type = wasMatching ? 'MODIFIED' : 'ADDED';
    else if (wasMatching) type = 'DELETED';
    if (!type) return;
    if (p.sharedEncoding) {
      if (ended) return;
      const key = `${type} ${gv}`;
      ev.encoded ??= new Map();
      let line = ev.encoded.get(key);
      if (line === undefined) {
        line = `{"type":"${type}","object":${JSON.stringify(registry.decode(p.target, ev.object))}}\n`;
        ev.encoded.set(key, line);
      }
      res.write(line);
      return;
    }
    write(type, p.present(registry.decode(p.target, ev.object), type));
  };
  const live = cache.covers(fromRevision);
  try {
    sub = await cache.subscribe(fromRevision, {
      onEvent,
      onEnd: (err) => {
        if (err instanceof TooOldError) fail(gone(`too old resource version: ${fromRevision} (${err.compactedRevision})`));
        else finish();
      },
    });
  } catch (err) {
    if (err instanceof TooOldError) {
      fail(gone(`too old resource version: ${fromRevision} (${err.compactedRevision})`));
      return;
    }
    throw err;
  }
  if (ended) {
    sub.close();
    return;
  }

  const beat = (): void => {
    if (ended) return;
    if (p.allowWatchBookmarks) {
      if (live) lastRevision = Math.max(lastRevision, cache.latestRevision);
      bookmark();
    } else {
      res.write('\n');
    }
    timers[0] = setTimeout(beat, p.heartbeatMs);
  };
  timers[0] = setTimeout(beat, p.heartbeatMs);
  const timeout = p.timeoutSeconds !== undefined && p.timeoutSeconds > 0 ? p.timeoutSeconds : 1800 + Math.floor(Math.random() * 1800);
  timers[1] = setTimeout(finish, timeout * 1000);
}
