/**
 * The limit for the API benchmark: a bare Node `http` server, in its own process, that
 * answers each benchmarked request with the bytes stratus returned for it — no routing
 * beyond a map lookup, no storage, no JSON work. Whatever stratus does on top of reading
 * the request and writing those bytes is what the comparison shows.
 *
 * `node dist/bench/bare-server.js ROUTES.json` prints `listening PORT` and serves until
 * SIGTERM. ROUTES.json: `[{method, paths: [...], body, contentType}]` (body as UTF-8 text).
 */
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';

export interface BareRoute {
  method: string;
  paths: string[];
  body: string;
  contentType: string;
}

if (process.argv[1]?.endsWith('bare-server.js')) {
  const routes = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as BareRoute[];
  const answers = new Map<string, { body: Buffer; contentType: string }>();
  for (const r of routes) {
    const answer = { body: Buffer.from(r.body), contentType: r.contentType };
    for (const p of r.paths) answers.set(`${r.method} ${p}`, answer);
  }
  const server = createServer((req, res) => {
    // read the request body as stratus must before answering
    req.resume();
    req.on('end', () => {
      const a = answers.get(`${req.method} ${req.url}`);
      if (!a) {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('no such benchmark route');
        return;
      }
      res.writeHead(200, { 'content-type': a.contentType, 'content-length': a.body.length });
      res.end(a.body);
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
  });
  process.once('SIGTERM', () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}
