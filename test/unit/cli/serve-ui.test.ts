/**
 * The console's routes (cli/serve-ui.ts) without a server: each built file at its path with
 * its type and the Content-Security-Policy, `/ui/` as index.html, `/ui` redirected, methods
 * other than GET/HEAD refused in the Status shape, and a build without the console saying so.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { consoleRoutes } from '../../../cli/serve-ui.js';
import { removeDir, tempDir } from '../../harness/process.js';

interface Answer {
  status: number;
  headers: Record<string, unknown>;
  body: string;
}

function call(route: ((req: IncomingMessage, res: ServerResponse) => void) | undefined, method: string): Promise<Answer> {
  assert.ok(route, 'the route exists');
  return new Promise((resolve) => {
    const req = Object.assign(new PassThrough(), { method }) as unknown as IncomingMessage;
    const answer: Answer = { status: 0, headers: {}, body: '' };
    const res = {
      writeHead(status: number, headers: Record<string, unknown> = {}) {
        answer.status = status;
        answer.headers = headers;
        return res;
      },
      end(body?: string | Buffer) {
        answer.body = body === undefined ? '' : body.toString();
        resolve(answer);
      },
    } as unknown as ServerResponse;
    route(req, res);
    (req as unknown as PassThrough).end();
  });
}

describe('console routes', () => {
  it('serves each built file with its type and the CSP, /ui/ as index.html, and redirects /ui', async () => {
    const dir = await tempDir('uiroutes');
    try {
      writeFileSync(join(dir, 'index.html'), '<!doctype html><p>console</p>');
      writeFileSync(join(dir, 'console.js'), 'export {};');
      writeFileSync(join(dir, 'notes.bin'), 'not served');
      const routes = consoleRoutes(dir);
      assert.deepEqual([...routes.keys()].sort(), ['/ui', '/ui/', '/ui/console.js', '/ui/index.html']);
      const index = await call(routes.get('/ui/'), 'GET');
      assert.equal(index.status, 200);
      assert.equal(index.body, '<!doctype html><p>console</p>');
      assert.equal(index.headers['Content-Type'], 'text/html; charset=utf-8');
      assert.match(String(index.headers['Content-Security-Policy']), /default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'/);
      const js = await call(routes.get('/ui/console.js'), 'HEAD');
      assert.equal(js.status, 200);
      assert.equal(js.body, '', 'HEAD has no body');
      assert.equal(js.headers['Content-Type'], 'text/javascript; charset=utf-8');
      const redirect = await call(routes.get('/ui'), 'GET');
      assert.deepEqual([redirect.status, redirect.headers.Location], [301, '/ui/']);
      const post = await call(routes.get('/ui/'), 'POST');
      assert.equal(post.status, 405);
      assert.equal((JSON.parse(post.body) as { kind: string; reason: string }).reason, 'MethodNotAllowed');
    } finally {
      await removeDir(dir);
    }
  });

  it('says to run make build when the console was not built', async () => {
    const dir = await tempDir('uiroutes');
    try {
      const routes = consoleRoutes(dir);
      const page = await call(routes.get('/ui/'), 'GET');
      assert.equal(page.status, 200);
      assert.match(page.body, /The console was not built: run <code>make build<\/code>/);
    } finally {
      await removeDir(dir);
    }
  });
});
