/**
 * One open connection per ComputeNode, shared by every controller that talks to the node.
 *
 * A connection is opened on first use from the node's spec (and, for Docker TLS and GCE
 * credentials, the Secret it references) and kept while the spec is unchanged. A changed
 * spec, or `forget` after the node proved unreachable, closes it so the next use opens a
 * fresh one — that is how a rotated certificate or a repaired engine is picked up.
 */
import type { NodeConnection } from '../providers/machine.js';
import type { ComputeNode } from '../crds/types.js';
import { log } from '../runtime/log.js';

export type NodeProvider = ComputeNode['spec']['provider'];

/** Reads a Secret's data as UTF-8 strings; throws a clear error when it does not exist. */
export type SecretReader = (namespace: string, name: string) => Promise<Record<string, string>>;

export type ConnectionFactory = (node: ComputeNode, secrets: SecretReader) => Promise<NodeConnection>;

interface Entry {
  fingerprint: string;
  connection: Promise<NodeConnection>;
}

export class NodeConnections {
  private readonly open = new Map<string, Entry>();

  constructor(
    private readonly factories: Partial<Record<NodeProvider, ConnectionFactory>>,
    private readonly secrets: SecretReader,
  ) {}

  /** The node's connection, opened now if needed. Rejects when the provider is not available. */
  async get(node: ComputeNode): Promise<NodeConnection> {
    const name = node.metadata?.name ?? '';
    const fingerprint = JSON.stringify(node.spec);
    const existing = this.open.get(name);
    if (existing && existing.fingerprint === fingerprint) {
      try {
        return await existing.connection;
      } catch (err) {
        if (this.open.get(name) === existing) this.open.delete(name);
        throw err;
      }
    }
    if (existing) await this.forget(name);
    const factory = this.factories[node.spec.provider];
    if (!factory) throw new Error(`no provider "${node.spec.provider}" is available in this controller`);
    const entry: Entry = { fingerprint, connection: factory(node, this.secrets) };
    this.open.set(name, entry);
    try {
      return await entry.connection;
    } catch (err) {
      if (this.open.get(name) === entry) this.open.delete(name);
      throw err;
    }
  }

  /** Closes and drops the node's connection (the next `get` opens a new one). */
  async forget(name: string): Promise<void> {
    const entry = this.open.get(name);
    if (!entry) return;
    this.open.delete(name);
    try {
      await (await entry.connection).close();
    } catch (err) {
      log.debug({ node: name, err: err instanceof Error ? err.message : String(err) }, 'closing node connection failed');
    }
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.open.keys()].map((n) => this.forget(n)));
  }
}
