/**
 * Missing images against a fake engine on a unix socket: the fake holds `POST /images/create`
 * open until the test lets the pull finish, which no real engine here can do (no registry).
 */
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { ReconcileError } from '../../../runtime/errors.js';
import type { MachineSpec } from '../../../providers/machine.js';
import { connectDocker, type DockerNodeConnection } from '../../../providers/docker/index.js';
import { removeDir, tempDir, waitFor } from '../../harness/process.js';

const spec: MachineSpec = {
  uid: '7d0e8f7a-0000-4000-8000-000000000001', namespace: 'default', name: 'slow', hostname: 'slow',
  image: 'stratus/slow:1', cpus: 1, memoryMiB: 64, disks: [], networks: [], sshAuthorizedKeys: [], env: {},
  ports: [], labels: {}, powerState: 'Running', providerSpec: {},
};

describe('pulling a missing image', () => {
  let dir: string;
  let server: Server;
  let node: DockerNodeConnection;
  let imagePresent = false;
  let pullRequests = 0;
  let pending: ServerResponse | undefined;
  let created: Array<{ name: string | null; body: Record<string, unknown> }> = [];

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://engine');
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const json = (status: number, value: unknown): void => {
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(value));
      };
      if (req.method === 'GET' && url.pathname === `/images/${encodeURIComponent(spec.image!)}/json`) {
        return imagePresent ? json(200, { Id: 'sha256:1' }) : json(404, { message: `No such image: ${spec.image}` });
      }
      if (req.method === 'POST' && url.pathname === '/images/create') {
        pullRequests++;
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.write(JSON.stringify({ status: `Pulling from ${url.searchParams.get('fromImage')}` }) + '\n');
        pending = res; // held open until the test finishes the pull
        return;
      }
      if (req.method === 'GET' && url.pathname === '/containers/json') return json(200, []);
      if (req.method === 'POST' && url.pathname === '/containers/create') {
        created.push({ name: url.searchParams.get('name'), body: JSON.parse(body) as Record<string, unknown> });
        return json(201, { Id: 'c0ffee', Warnings: [] });
      }
      if (req.method === 'POST' && url.pathname === '/containers/c0ffee/start') {
        res.writeHead(204);
        return res.end();
      }
      json(500, { message: `fake engine: unexpected ${req.method} ${url.pathname}` });
    });
  }

  function finishPull(result: 'ok' | 'fail'): void {
    assert.ok(pending, 'a pull is in flight');
    if (result === 'ok') imagePresent = true;
    pending.end(JSON.stringify(result === 'ok' ? { status: 'Downloaded newer image' } : { error: 'manifest for stratus/slow:1 not found' }) + '\n');
    pending = undefined;
  }

  before(async () => {
    dir = await tempDir('fake-docker');
    const socket = join(dir, 'docker.sock');
    server = createServer(handle);
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    node = connectDocker({ address: `unix://${socket}`, pullWaitMs: 100 });
  });

  beforeEach(() => {
    imagePresent = false;
    pullRequests = 0;
    created = [];
  });

  after(async () => {
    await node.close();
    pending?.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await removeDir(dir);
  });

  async function reason(p: Promise<unknown>): Promise<ReconcileError> {
    const err = await p.then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof ReconcileError, `expected a ReconcileError, got ${String(err)}`);
    return err;
  }

  it('a slow pull answers ImagePulling (retryable) without a second pull, then create goes on', async () => {
    const first = await reason(node.machines().create(spec));
    assert.equal(first.reason, 'ImagePulling');
    assert.equal(first.retryable, true);
    const second = await reason(node.machines().create(spec));
    assert.equal(second.reason, 'ImagePulling');
    assert.equal(pullRequests, 1, 'one pull per image at a time');
    assert.equal(created.length, 0);

    finishPull('ok');
    await waitFor('the create to go through', async () => {
      await node.machines().create(spec).catch((e: unknown) => {
        if (!(e instanceof ReconcileError && e.reason === 'ImagePulling')) throw e;
      });
      return created.length === 1;
    });
    assert.equal(created[0]?.name, 'stratus-slow-7d0e8f7a');
    assert.equal(created[0]?.body.Image, 'stratus/slow:1');
    assert.equal(pullRequests, 1);
  });

  it('a pull that fails is ImageNotFound (not retryable) with the registry’s reason', async () => {
    assert.equal((await reason(node.machines().create(spec))).reason, 'ImagePulling');
    finishPull('fail');
    const err = await waitFor('the pull failure to be reported', async () => {
      const e = await reason(node.machines().create(spec));
      return e.reason === 'ImagePulling' ? undefined : e;
    });
    assert.equal(err.reason, 'ImageNotFound');
    assert.equal(err.retryable, false);
    assert.match(err.message, /manifest for stratus\/slow:1 not found/);
    assert.equal(created.length, 0);
  });
});
