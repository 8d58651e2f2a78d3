/**
 * The web console as a `stratus serve` component: the files `make build` bundled into
 * `dist/ui/` (ui/build.ts) are served at `/ui/` on the API server's address, same TLS.
 *
 * Only these static files are open to callers without credentials (as `/login` is): they
 * hold no data. Everything the console shows it reads from the Kubernetes API with the
 * token the user signs in with, so authentication, RBAC and audit are those of the API.
 * The files are read once at start; a build without them serves a page saying so.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { methodNotAllowed } from '../apiserver/errors.js';
import { log } from '../runtime/log.js';
import type { ServeComponent } from './serve.js';

export const UI_PATH = '/ui/';

const types: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

// The console loads its own script and style and talks to its own origin, nothing else.
const securityHeaders = {
  'Content-Security-Policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-cache',
};

/** `dist/ui/` beside this file's `dist/cli/`. */
export function consoleDir(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', 'ui');
}

type Route = (req: IncomingMessage, res: ServerResponse) => void;

function fileRoute(body: Buffer, type: string): Route {
  return (req, res) => {
    req.resume();
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      const status = JSON.stringify(methodNotAllowed(`${req.method ?? ''} is not allowed on the console's files: GET them`).toStatus());
      res.writeHead(405, { 'Content-Type': 'application/json', Allow: 'GET, HEAD' });
      res.end(status);
      return;
    }
    res.writeHead(200, { 'Content-Type': type, 'Content-Length': body.length, ...securityHeaders });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
}

/** The routes of the console: `/ui` (redirect), `/ui/` (index.html) and each built file. */
export function consoleRoutes(dir: string): Map<string, Route> {
  const routes = new Map<string, Route>();
  routes.set('/ui', (req, res) => {
    req.resume();
    res.writeHead(301, { Location: UI_PATH });
    res.end();
  });
  if (!existsSync(join(dir, 'index.html'))) {
    const page = Buffer.from('<!doctype html><title>stratus console</title><p>The console was not built: run <code>make build</code>.</p>\n');
    routes.set(UI_PATH, fileRoute(page, types['.html']!));
    return routes;
  }
  for (const name of readdirSync(dir)) {
    const type = types[extname(name)];
    if (!type) continue;
    const route = fileRoute(readFileSync(join(dir, name)), type);
    routes.set(`${UI_PATH}${name}`, route);
    if (name === 'index.html') routes.set(UI_PATH, route);
  }
  return routes;
}

export const serveUi: ServeComponent = async (server) => {
  const routes = consoleRoutes(consoleDir());
  for (const [path, route] of routes) server.openRoutes.set(path, route);
  log.info({ component: 'console', url: `${server.url}${UI_PATH}`, files: routes.size - 1 }, 'web console served');
  return {
    async close() {
      for (const path of routes.keys()) server.openRoutes.delete(path);
    },
  };
};
