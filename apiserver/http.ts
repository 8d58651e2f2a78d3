/**
 * The HTTP front of the API server: one handler for every request. It parses the URL, routes
 * resource paths to `http/resource.ts` (which hands each verb to its own file under `http/`)
 * and everything else to `http/nonresource.ts`, turns every failure into a `Status`, and
 * logs and measures each request. Only a bug yields a 500, and no request can take the
 * process down. Authentication, when configured, runs first and records the caller with
 * `setRequestUser`; handlers pass it on to the registry (`withUser` in `http/params.ts`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { log } from '../runtime/log.js';
import { ApiError, badRequest, internalError, methodNotAllowed } from './errors.js';
import { apiErrorFrom } from './storeerrors.js';
import { drain } from './http/body.js';
import type { HttpDeps } from './http/deps.js';
import { Exchange } from './http/exchange.js';
import { serveNonResource } from './http/nonresource.js';
import { parseResourcePath } from './http/paths.js';
import { serveResource } from './http/resource.js';

export type { HttpDeps } from './http/deps.js';
export { maxBodyBytes } from './http/body.js';

export function createRequestHandler(deps: HttpDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const open = deps.openRoutes?.get((req.url ?? '/').split('?')[0] ?? '/');
    if (open) {
      open(req, res);
      return;
    }
    let ex: Exchange;
    try {
      ex = new Exchange(req, res);
    } catch (err) {
      const status = err instanceof ApiError ? err.toStatus() : internalError(String(err)).toStatus();
      res.writeHead(status.code, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(status));
      return;
    }
    let isWatch = false;
    deps.metrics.inflight.inc();
    const done = (): void => {
      deps.metrics.inflight.dec();
      const seconds = (performance.now() - ex.start) / 1000;
      deps.metrics.observe(ex.labels, seconds);
      const line = {
        component: 'apiserver',
        verb: ex.labels.verb,
        uri: req.url,
        code: Number(ex.labels.code),
        ms: Math.round(seconds * 1000),
        userAgent: req.headers['user-agent'],
      };
      // Writes and failures at info, reads at debug: controllers read all the time.
      const code = Number(ex.labels.code);
      if (code >= 500) log.error(line, 'request');
      else if (code >= 400 || !['get', 'list', 'watch', 'head'].includes(ex.labels.verb)) log.info(line, 'request');
      else log.debug(line, 'request');
    };
    route(deps, ex)
      .then((watch) => {
        isWatch = watch;
      })
      .catch((err: unknown) => {
        const mapped = apiErrorFrom(err, { resource: { group: ex.labels.group, plural: ex.labels.resource } });
        if (mapped instanceof ApiError) {
          ex.sendStatus(mapped);
        } else {
          log.error({ component: 'apiserver', err: err instanceof Error ? err.stack : String(err), uri: req.url }, 'internal error');
          ex.sendStatus(internalError(err instanceof Error ? err.message : String(err)));
        }
      })
      .finally(() => {
        if (!isWatch) done();
        else {
          // A watch is logged when it starts (it may run for hours), like kube's audit stage RequestReceived.
          log.info({ component: 'apiserver', verb: ex.labels.verb, uri: req.url, code: 200, userAgent: req.headers['user-agent'] }, 'request');
          deps.metrics.inflight.dec();
          deps.metrics.watchers.inc();
          res.once('close', () => {
            deps.metrics.watchers.dec();
            ex.labels.code = '200';
            deps.metrics.observe(ex.labels, (performance.now() - ex.start) / 1000);
          });
        }
      });
  };
}

/** Handles one request; resolves true when it became a long-running watch. */
async function route(deps: HttpDeps, ex: Exchange): Promise<boolean> {
  let segs: string[];
  try {
    segs = ex.url.pathname.split('/').filter((s) => s !== '').map((s) => decodeURIComponent(s));
  } catch {
    throw badRequest('malformed path');
  }
  const method = ex.req.method ?? 'GET';
  const rp = parseResourcePath(segs);
  if (!rp || !rp.plural) {
    ex.labels.verb = method.toLowerCase();
    if (method !== 'GET' && method !== 'HEAD') {
      await drain(ex.req);
      throw methodNotAllowed();
    }
    await serveNonResource(deps, ex, segs, rp);
    return false;
  }
  return serveResource(deps, ex, rp, method);
}
