/**
 * Registry credentials for pulls, from a `kubernetes.io/dockerconfigjson` Secret (the
 * `.dockerconfigjson` key `kubectl create secret docker-registry` writes: `{"auths": {"host":
 * {"username", "password" | "auth"}}}`), matched to an image reference's registry the way
 * Docker matches `~/.docker/config.json`.
 */
import { ReconcileError } from '../../runtime/errors.js';

export interface RegistryCredential {
  /** Registry host[:port] (`docker.io` for Docker Hub). */
  registry: string;
  username: string;
  password: string;
}

const DOCKER_HUB = 'docker.io';

/** `https://host:port/v1/`, `host:port`, `index.docker.io` … → `host:port` (`docker.io` for the Hub). */
function normalizeRegistry(key: string): string {
  const host = key.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '').toLowerCase();
  return host === 'index.docker.io' || host === 'registry-1.docker.io' ? DOCKER_HUB : host;
}

/** The registry an image reference pulls from (Docker's rule: a first component with `.` or `:`, or `localhost`). */
export function registryOf(image: string): string {
  const slash = image.indexOf('/');
  if (slash < 0) return DOCKER_HUB;
  const first = image.slice(0, slash);
  return first.includes('.') || first.includes(':') || first === 'localhost' ? normalizeRegistry(first) : DOCKER_HUB;
}

/** Parses a `.dockerconfigjson`; `source` names the Secret in errors. Never puts a password in a message. */
export function parseDockerConfig(json: string, source: string): RegistryCredential[] {
  let config: unknown;
  try {
    config = JSON.parse(json);
  } catch (err) {
    throw new ReconcileError('InvalidRegistryAuth', `${source}: .dockerconfigjson is not JSON (${(err as Error).message.replace(/"[^"]*"/g, '…')})`, false);
  }
  const auths = (config as { auths?: unknown }).auths;
  if (typeof auths !== 'object' || auths === null || Array.isArray(auths)) {
    throw new ReconcileError('InvalidRegistryAuth', `${source}: .dockerconfigjson has no "auths" object`, false);
  }
  const out: RegistryCredential[] = [];
  for (const [key, entry] of Object.entries(auths as Record<string, unknown>)) {
    const e = (entry ?? {}) as { username?: unknown; password?: unknown; auth?: unknown };
    let username = typeof e.username === 'string' ? e.username : '';
    let password = typeof e.password === 'string' ? e.password : '';
    if ((!username || !password) && typeof e.auth === 'string') {
      const decoded = Buffer.from(e.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon > 0) {
        username = decoded.slice(0, colon);
        password = decoded.slice(colon + 1);
      }
    }
    if (!username || !password) throw new ReconcileError('InvalidRegistryAuth', `${source}: the entry for ${key} has neither username+password nor auth`, false);
    out.push({ registry: normalizeRegistry(key), username, password });
  }
  return out;
}

/** The credential for `image`'s registry, if any. */
export function credentialFor(image: string, credentials: readonly RegistryCredential[]): RegistryCredential | undefined {
  const registry = registryOf(image);
  return credentials.find((c) => c.registry === registry);
}
