/**
 * A real single-member etcd for tests, in a private temp dir on free loopback ports.
 * `restart()` keeps the data dir and the ports, so clients reconnect to the same endpoint.
 */
import { join } from 'node:path';
import { requireBinary, tempDir, removeDir, freePort, startDaemon, waitFor, type Daemon } from './process.js';

export interface EtcdInstance {
  /** `http://127.0.0.1:<port>` */
  endpoint: string;
  dataDir: string;
  /** The PID of the running etcd (changes after `restart`). */
  readonly pid: number;
  /** SIGTERM, wait, and remove the data dir. */
  stop(): Promise<void>;
  /** SIGKILL now; the data dir stays (use `restart` to come back, `stop` to clean up). */
  kill(): Promise<void>;
  /** Stops (gracefully) if running and starts again on the same data dir and ports. */
  restart(): Promise<void>;
}

export async function startEtcd(): Promise<EtcdInstance> {
  const bin = requireBinary('etcd');
  const root = await tempDir('etcd');
  const dataDir = join(root, 'data');
  const clientPort = await freePort();
  const peerPort = await freePort();
  const endpoint = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const args = [
    '--name', 'test',
    '--data-dir', dataDir,
    '--listen-client-urls', endpoint,
    '--advertise-client-urls', endpoint,
    '--listen-peer-urls', peer,
    '--initial-advertise-peer-urls', peer,
    '--initial-cluster', `test=${peer}`,
    '--auto-compaction-retention', '0',
    '--log-level', 'warn',
  ];

  let daemon: Daemon | undefined;
  const launch = async (): Promise<void> => {
    const d = startDaemon(bin, args);
    daemon = d;
    let exited = false;
    void d.exited.then(() => {
      exited = true;
    });
    try {
      await waitFor(
        `etcd on ${endpoint}`,
        async () => {
          if (exited) throw new Error(`etcd exited:\n${d.output()}`);
          const res = await fetch(`${endpoint}/health`);
          const body = (await res.json()) as { health?: string };
          return res.ok && body.health === 'true';
        },
        20_000,
      );
    } catch (err) {
      await d.kill();
      throw new Error(`${(err as Error).message}\n--- etcd output ---\n${d.output()}`);
    }
  };

  try {
    await launch();
  } catch (err) {
    await removeDir(root);
    throw err;
  }

  return {
    endpoint,
    dataDir,
    get pid() {
      return daemon?.pid ?? -1;
    },
    async stop() {
      await daemon?.stop();
      await removeDir(root);
    },
    async kill() {
      await daemon?.kill();
    },
    async restart() {
      await daemon?.stop();
      await launch();
    },
  };
}
