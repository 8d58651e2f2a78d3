/**
 * A real PowerDNS authoritative server (Debian pdns-server + pdns-backend-sqlite3) for one
 * test: its own config dir, SQLite database (Debian's schema), loopback DNS and API ports,
 * a random API key. Never the system service. `stop()` ends it by PID and removes the dir.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { freePort, removeDir, requireBinary, startDaemon, tempDir, waitFor } from './process.js';

const SCHEMA = '/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql';

export interface PowerDNS {
  /** API base, e.g. http://127.0.0.1:PORT */
  apiUrl: string;
  apiKey: string;
  dnsPort: number;
  /** A raw API call (for the test's own changes "behind stratus's back"). */
  api(method: string, path: string, body?: unknown): Promise<Response>;
  stop(): Promise<void>;
}

export async function startPowerDNS(): Promise<PowerDNS> {
  const bin = requireBinary('pdns_server');
  let schema: string;
  try {
    schema = readFileSync(SCHEMA, 'utf8');
  } catch {
    throw new Error(`${SCHEMA} is missing: install pdns-backend-sqlite3 (make deps-apt)`);
  }
  const dir = await tempDir('pdns');
  const db = new Database(join(dir, 'pdns.sqlite3'));
  db.exec(schema);
  db.close();
  const [dnsPort, apiPort] = [await freePort(), await freePort()];
  const apiKey = randomBytes(16).toString('hex');
  writeFileSync(
    join(dir, 'pdns.conf'),
    [
      'launch=gsqlite3',
      `gsqlite3-database=${join(dir, 'pdns.sqlite3')}`,
      'local-address=127.0.0.1',
      `local-port=${dnsPort}`,
      'api=yes',
      `api-key=${apiKey}`,
      'webserver=yes',
      'webserver-address=127.0.0.1',
      `webserver-port=${apiPort}`,
      'webserver-allow-from=127.0.0.0/8',
      `socket-dir=${dir}`,
      'guardian=no',
      'daemon=no',
      'disable-syslog=yes',
      'write-pid=no',
      'cache-ttl=0',
      'negquery-cache-ttl=0',
      'query-cache-ttl=0',
      '',
    ].join('\n'),
  );
  const daemon = startDaemon(bin, [`--config-dir=${dir}`]);
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const api = (method: string, path: string, body?: unknown): Promise<Response> =>
    fetch(`${apiUrl}${path}`, { method, headers: { 'X-API-Key': apiKey, 'Content-Type': 'application/json' }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  try {
    await waitFor(
      'pdns_server API',
      async () => {
        if (daemon.child.exitCode !== null) throw new Error(`pdns_server exited: ${daemon.output()}`);
        try {
          return (await api('GET', '/api/v1/servers/localhost')).ok;
        } catch {
          return false;
        }
      },
      20_000,
      100,
    );
  } catch (err) {
    await daemon.kill();
    await removeDir(dir);
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${daemon.output()}`);
  }
  return {
    apiUrl,
    apiKey,
    dnsPort,
    api,
    async stop() {
      await daemon.stop();
      await removeDir(dir);
    },
  };
}
