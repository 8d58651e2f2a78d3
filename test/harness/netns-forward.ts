/**
 * Makes a TCP service of the host namespace's loopback (e.g. `stratus serve` on
 * 127.0.0.1:P) reachable on the loopback of a test network namespace, so a process run in
 * that namespace (a controller that must reach guests on the namespace's networks) can
 * still talk to it. No address is added to the host namespace: the two hops meet on a unix
 * socket in a temp dir, which every namespace sees.
 *
 *   host 127.0.0.1:P  ←  this process (unix socket server)  ←  forwarder in NS (127.0.0.1:Q)
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { removeDir, requireBinary, startDaemon, tempDir, waitFor, type Daemon } from './process.js';

export interface NetnsForward {
  /** The port on the namespace's 127.0.0.1. */
  port: number;
  stop(): Promise<void>;
}

// Runs inside the namespace: listens on 127.0.0.1:0, prints the port, pipes to the unix socket.
const INNER = `
const net = require('node:net');
const path = process.argv[1];
const srv = net.createServer((c) => { const u = net.connect(path); c.pipe(u); u.pipe(c); c.on('error', () => u.destroy()); u.on('error', () => c.destroy()); });
srv.listen(0, '127.0.0.1', () => process.stdout.write('port ' + srv.address().port + '\\n'));
`;

export async function forwardIntoNetns(netns: string, targetPort: number): Promise<NetnsForward> {
  const dir = await tempDir('fwd');
  const sock = join(dir, 'fwd.sock');
  const open = new Set<Socket>();
  const server: Server = createServer((c) => {
    const t = connect(targetPort, '127.0.0.1');
    open.add(c).add(t);
    c.pipe(t);
    t.pipe(c);
    const end = (): void => {
      c.destroy();
      t.destroy();
      open.delete(c);
      open.delete(t);
    };
    c.on('error', end).on('close', end);
    t.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(sock, resolve));
  let inner: Daemon | undefined;
  const stop = async (): Promise<void> => {
    await inner?.stop(2000);
    for (const s of open) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await removeDir(dir);
  };
  try {
    inner = startDaemon(requireBinary('ip'), ['netns', 'exec', netns, process.execPath, '-e', INNER, sock]);
    const d = inner;
    const port = await waitFor('forwarder in the namespace', () => {
      if (d.child.exitCode !== null) throw new Error(`forwarder exited: ${d.output()}`);
      const m = /port (\d+)/.exec(d.output());
      return m ? Number(m[1]) : undefined;
    }, 10_000, 50);
    return { port, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
