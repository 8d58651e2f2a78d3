/**
 * Real etcd for tests, in private temp dirs on free loopback ports: one member
 * (`startEtcd`) or a cluster (`startEtcdCluster`). `restart()` keeps the data dir and the
 * ports, so clients reconnect to the same endpoint.
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

export interface EtcdCluster {
  /** Client URLs of every member. */
  endpoints: string[];
  members: EtcdInstance[];
  /** Stops every member and removes their data dirs. */
  stop(): Promise<void>;
}

/** A cluster of `size` members on loopback; resolves once every member is healthy. */
export async function startEtcdCluster(size = 3): Promise<EtcdCluster> {
  const bin = requireBinary('etcd');
  const root = await tempDir('etcd-cluster');
  const specs: Array<{ name: string; client: string; peer: string; dataDir: string }> = [];
  for (let i = 0; i < size; i++) {
    specs.push({
      name: `m${i}`,
      client: `http://127.0.0.1:${await freePort()}`,
      peer: `http://127.0.0.1:${await freePort()}`,
      dataDir: join(root, `m${i}`),
    });
  }
  const initialCluster = specs.map((m) => `${m.name}=${m.peer}`).join(',');
  const members: EtcdInstance[] = [];
  const daemons: Array<Daemon | undefined> = [];
  const argsOf = (m: (typeof specs)[number]): string[] => [
    '--name', m.name,
    '--data-dir', m.dataDir,
    '--listen-client-urls', m.client,
    '--advertise-client-urls', m.client,
    '--listen-peer-urls', m.peer,
    '--initial-advertise-peer-urls', m.peer,
    '--initial-cluster', initialCluster,
    '--initial-cluster-state', 'new',
    '--initial-cluster-token', root,
    // quick leader elections so member failures in tests resolve fast
    '--heartbeat-interval', '50',
    '--election-timeout', '500',
    '--auto-compaction-retention', '0',
    '--log-level', 'warn',
  ];
  const healthy = (i: number): Promise<unknown> => {
    const m = specs[i]!;
    return waitFor(
      `etcd member ${m.name} on ${m.client}`,
      async () => {
        const d = daemons[i];
        if (d && (d.child.exitCode !== null || d.child.signalCode !== null)) throw new Error(`etcd ${m.name} exited:\n${d.output()}`);
        const res = await fetch(`${m.client}/health`);
        const body = (await res.json()) as { health?: string };
        return res.ok && body.health === 'true';
      },
      30_000,
    );
  };
  const stopAll = async (): Promise<void> => {
    await Promise.all(daemons.map((d) => d?.stop()));
    await removeDir(root);
  };
  try {
    specs.forEach((m, i) => (daemons[i] = startDaemon(bin, argsOf(m))));
    // Members only report healthy once a quorum is up, so all start before any is awaited.
    await Promise.all(specs.map((_, i) => healthy(i)));
  } catch (err) {
    await stopAll();
    throw err;
  }
  specs.forEach((m, i) => {
    members.push({
      endpoint: m.client,
      dataDir: m.dataDir,
      get pid() {
        return daemons[i]?.pid ?? -1;
      },
      async stop() {
        await daemons[i]?.stop();
      },
      async kill() {
        await daemons[i]?.kill();
      },
      async restart() {
        await daemons[i]?.stop();
        daemons[i] = startDaemon(bin, argsOf(m));
        await healthy(i);
      },
    });
  });
  return { endpoints: specs.map((m) => m.client), members, stop: stopAll };
}
