import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import {
  JsonStreamParser,
  OvsdbClient,
  OvsdbConnectionError,
  OvsdbError,
  OvsdbProtocolError,
  type MonitorEvent,
} from '../../../providers/ovs/ovsdb.js';
import { removeDir, tempDir, waitFor } from '../../harness/process.js';

/** A scripted OVSDB server in-process: `onMessage` decides what each connection gets back. */
interface FakeServer {
  endpoint: string;
  connections: Socket[];
  received: Record<string, unknown>[];
  close(): Promise<void>;
}

type Handler = (msg: Record<string, unknown>, conn: Socket) => void;

const dirs: string[] = [];
const servers: Server[] = [];
after(async () => {
  for (const s of servers) s.close();
  for (const d of dirs) await removeDir(d);
});

async function fakeServer(onMessage: Handler, tcp = false): Promise<FakeServer> {
  const connections: Socket[] = [];
  const received: Record<string, unknown>[] = [];
  const server = createServer((conn) => {
    connections.push(conn);
    const parser = new JsonStreamParser();
    conn.on('data', (b) => {
      for (const m of parser.push(b)) {
        received.push(m as Record<string, unknown>);
        onMessage(m as Record<string, unknown>, conn);
      }
    });
    conn.on('error', () => undefined);
  });
  servers.push(server);
  let endpoint: string;
  if (tcp) {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const addr = server.address();
    endpoint = `tcp:127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  } else {
    const dir = await tempDir('ovsdb-fake');
    dirs.push(dir);
    const path = join(dir, 'db.sock');
    await new Promise<void>((r) => server.listen(path, r));
    endpoint = `unix:${path}`;
  }
  return {
    endpoint,
    connections,
    received,
    close: () =>
      new Promise<void>((r) => {
        for (const c of connections) c.destroy();
        server.close(() => r());
      }),
  };
}

const reply = (conn: Socket, id: unknown, result: unknown): boolean => conn.write(JSON.stringify({ id, result, error: null }));

test('replies sent one byte at a time, and two replies in one write out of order, resolve the right requests', async () => {
  let held: Record<string, unknown> | undefined;
  const srv = await fakeServer((msg, conn) => {
    if (msg.method === 'list_dbs') {
      const bytes = Buffer.from(JSON.stringify({ id: msg.id, result: ['Open_vSwitch', '{"tricky"}'], error: null }));
      for (let i = 0; i < bytes.length; i++) conn.write(bytes.subarray(i, i + 1));
      return;
    }
    if (!held) {
      held = msg;
      return;
    }
    // Answer the second request first, both in a single write.
    conn.write(
      JSON.stringify({ id: msg.id, result: [{ rows: [{ n: 'second }{' }] }], error: null }) +
        JSON.stringify({ id: held.id, result: [{ rows: [{ n: 'first' }] }], error: null }),
    );
  });
  const c = new OvsdbClient(srv.endpoint);
  try {
    assert.deepEqual(await c.listDbs(), ['Open_vSwitch', '{"tricky"}']);
    const [a, b] = await Promise.all([
      c.transact('Open_vSwitch', [{ op: 'select', table: 'Bridge', where: [] }]),
      c.transact('Open_vSwitch', [{ op: 'select', table: 'Port', where: [] }]),
    ]);
    assert.deepEqual(a, [{ rows: [{ n: 'first' }] }]);
    assert.deepEqual(b, [{ rows: [{ n: 'second }{' }] }]);
    assert.deepEqual(srv.received[1]?.params, ['Open_vSwitch', { op: 'select', table: 'Bridge', where: [] }]);
  } finally {
    await c.close();
    await srv.close();
  }
});

test('a transaction with an error element throws OvsdbError; an RPC error throws OvsdbProtocolError', async () => {
  const srv = await fakeServer((msg, conn) => {
    if (msg.method === 'transact') {
      reply(conn, msg.id, [{ uuid: ['uuid', 'x'] }, { error: 'constraint violation', details: '5000 is not in the valid range 0 to 4095 (inclusive)' }]);
    } else {
      conn.write(JSON.stringify({ id: msg.id, error: 'unknown method' }));
    }
  });
  const c = new OvsdbClient(srv.endpoint);
  try {
    await assert.rejects(
      c.transact('Open_vSwitch', [
        { op: 'insert', table: 'Interface', row: { name: 'p' } },
        { op: 'insert', table: 'Port', row: { name: 'p', tag: 5000 } },
      ]),
      (err: unknown) => err instanceof OvsdbError && err.opIndex === 1 && /insert Port.*constraint violation: 5000/.test(err.message),
    );
    await assert.rejects(c.request('nosuch', []), (err: unknown) => err instanceof OvsdbProtocolError && /nosuch failed: unknown method/.test(err.message));
  } finally {
    await c.close();
    await srv.close();
  }
});

test("the server's echo is answered with its id and params", async () => {
  let echoReply: Record<string, unknown> | undefined;
  const srv = await fakeServer((msg, conn) => {
    if (msg.method === 'list_dbs') {
      conn.write(JSON.stringify({ id: 'echo', method: 'echo', params: ['keepalive', 1] }));
      return;
    }
    if (msg.id === 'echo') echoReply = msg;
  });
  const c = new OvsdbClient(srv.endpoint);
  try {
    void c.listDbs().catch(() => undefined);
    const got = await waitFor('the echo reply', () => echoReply);
    assert.deepEqual(got, { id: 'echo', result: ['keepalive', 1], error: null });
  } finally {
    await c.close();
    await srv.close();
  }
});

test('a dropped connection rejects requests in flight; the next request dials again', async () => {
  let calls = 0;
  const srv = await fakeServer((msg, conn) => {
    calls++;
    if (calls === 1) conn.destroy();
    else reply(conn, msg.id, ['Open_vSwitch']);
  });
  const c = new OvsdbClient(srv.endpoint);
  try {
    await assert.rejects(c.listDbs(), (err: unknown) => err instanceof OvsdbConnectionError && /lost during list_dbs/.test(err.message));
    assert.deepEqual(await c.listDbs(), ['Open_vSwitch']);
    assert.equal(srv.connections.length, 2);
  } finally {
    await c.close();
    await srv.close();
  }
});

test('an unreachable endpoint fails fast with a connection error naming it', async () => {
  const dir = await tempDir('ovsdb-none');
  dirs.push(dir);
  const c = new OvsdbClient(`unix:${join(dir, 'absent.sock')}`);
  await assert.rejects(c.listDbs(), (err: unknown) => err instanceof OvsdbConnectionError && err.message.includes('absent.sock'));
  await c.close();
  await assert.rejects(c.listDbs(), /closed/);
});

test('monitor_cond delivers the snapshot, update2 notifications, and a resync snapshot after a reconnect', async () => {
  let connection = 0;
  const srv = await fakeServer((msg, conn) => {
    if (msg.method === 'monitor_cancel') reply(conn, msg.id, {});
    if (msg.method !== 'monitor_cond') return;
    connection++;
    const [, id] = msg.params as [string, string];
    reply(conn, msg.id, { Port: { u1: { initial: { name: 'p1', tag: connection === 1 ? 10 : 30 } } } });
    if (connection === 1) {
      conn.write(JSON.stringify({ id: null, method: 'update2', params: [id, { Port: { u1: { modify: { tag: 20 } } } }] }));
      conn.write(JSON.stringify({ id: null, method: 'update2', params: ['someone-else', { Port: {} }] }));
      setImmediate(() => conn.destroy());
    }
  });
  const c = new OvsdbClient(srv.endpoint, { minBackoffMs: 5, maxBackoffMs: 20 });
  const events: MonitorEvent[] = [];
  try {
    const m = await c.monitor('Open_vSwitch', { Port: { columns: ['name', 'tag'] } }, (e) => events.push(e));
    await waitFor('the resync snapshot', () => events.length >= 3);
    assert.deepEqual(events, [
      { kind: 'initial', resync: false, updates: { Port: { u1: { initial: { name: 'p1', tag: 10 } } } } },
      { kind: 'update', resync: false, updates: { Port: { u1: { modify: { tag: 20 } } } } },
      { kind: 'initial', resync: true, updates: { Port: { u1: { initial: { name: 'p1', tag: 30 } } } } },
    ]);
    const requests = srv.received.filter((r) => r.method === 'monitor_cond');
    assert.equal(requests.length, 2);
    assert.deepEqual(requests[0]?.params, ['Open_vSwitch', m.id, { Port: { columns: ['name', 'tag'] } }]);
    assert.deepEqual(requests[1]?.params, requests[0]?.params);
    await m.cancel();
    assert.deepEqual(srv.received.find((r) => r.method === 'monitor_cancel')?.params, [m.id]);
  } finally {
    await c.close();
    await srv.close();
  }
});

test('over TCP, an unanswered inactivity probe drops the connection', async () => {
  const srv = await fakeServer((msg, conn) => {
    if (msg.method === 'list_dbs') reply(conn, msg.id, []);
    // echo requests from the client are never answered
  }, true);
  assert.match(srv.endpoint, /^tcp:127\.0\.0\.1:\d+$/);
  const c = new OvsdbClient(srv.endpoint, { probeIntervalMs: 40 });
  try {
    assert.deepEqual(await c.listDbs(), []);
    const first = srv.connections[0];
    assert.ok(first);
    await waitFor('the client to drop the silent connection', () => first.destroyed || first.readableEnded);
    assert.ok(srv.received.some((r) => r.method === 'echo'), 'the client sent an echo before giving up');
    assert.equal(c.connected, false);
  } finally {
    await c.close();
    await srv.close();
  }
});

test('close() rejects requests still waiting for a reply', async () => {
  const srv = await fakeServer(() => undefined);
  const c = new OvsdbClient(srv.endpoint);
  try {
    const pending = c.listDbs();
    await waitFor('the request to reach the server', () => srv.received.length === 1);
    await c.close();
    await assert.rejects(pending, OvsdbConnectionError);
  } finally {
    await srv.close();
  }
});
