/**
 * Kubeconfigs for a user: the cluster entry (server URL, CA or TLS setting) copied from the
 * kubeconfig the command was given, and a bearer token. `stratus user create
 * --kubeconfig-out` and `stratus login` write them; `kubectl --kubeconfig FILE` uses them as
 * they are. Written with mode 0600 through a temporary file and a rename, so a reader never
 * sees half a file; an existing file is updated (the user's context becomes current, other
 * entries stay).
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';

interface NamedEntry {
  name: string;
  [k: string]: unknown;
}

interface KubeconfigFile {
  apiVersion?: string;
  kind?: string;
  clusters?: NamedEntry[];
  users?: NamedEntry[];
  contexts?: NamedEntry[];
  'current-context'?: string;
  preferences?: Record<string, unknown>;
}

function readConfig(path: string): KubeconfigFile {
  const parsed = parseYaml(readFileSync(path, 'utf8')) as unknown;
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error(`${path} is not a kubeconfig`);
  return parsed as KubeconfigFile;
}

/** The current context's cluster entry of the kubeconfig at `path`. */
export function currentCluster(path: string): Record<string, unknown> {
  const config = readConfig(path);
  const ctx = config.contexts?.find((c) => c.name === config['current-context']);
  const clusterName = (ctx?.context as { cluster?: string } | undefined)?.cluster;
  const cluster = config.clusters?.find((c) => c.name === clusterName);
  if (!cluster || typeof cluster.cluster !== 'object' || cluster.cluster === null) throw new Error(`${path} has no current cluster`);
  return { ...(cluster.cluster as Record<string, unknown>) };
}

function upsert(list: NamedEntry[] | undefined, entry: NamedEntry): NamedEntry[] {
  return [...(list ?? []).filter((e) => e.name !== entry.name), entry];
}

export interface UserKubeconfig {
  /** Where to write. */
  path: string;
  /** The cluster entry (see `currentCluster`). */
  cluster: Record<string, unknown>;
  username: string;
  /** Bearer token, `ID-SECRET`. */
  token: string;
  namespace: string;
}

/** Writes (or updates) a kubeconfig whose current context is `username` on the cluster `stratus`. */
export function writeUserKubeconfig(k: UserKubeconfig): void {
  const config: KubeconfigFile = existsSync(k.path) ? readConfig(k.path) : { apiVersion: 'v1', kind: 'Config', preferences: {} };
  const context = `${k.username}@stratus`;
  config.apiVersion ??= 'v1';
  config.kind ??= 'Config';
  config.clusters = upsert(config.clusters, { name: 'stratus', cluster: k.cluster });
  config.users = upsert(config.users, { name: k.username, user: { token: k.token } });
  config.contexts = upsert(config.contexts, { name: context, context: { cluster: 'stratus', user: k.username, namespace: k.namespace } });
  config['current-context'] = context;
  const tmp = `${k.path}.tmp-${process.pid}`;
  writeFileSync(tmp, stringifyYaml(config), { mode: 0o600 });
  renameSync(tmp, k.path);
}
