/**
 * One open connection per ComputeNode, shared by every controller that talks to the node.
 *
 * A connection is opened on first use through the node's provider in the `ProviderRegistry`
 * (its settings read from the node's spec once, and, for Docker TLS and GCE credentials,
 * the Secret they reference) and kept while the spec is unchanged. A changed spec, or
 * `forget` after the node proved unreachable, closes it so the next use opens a fresh one —
 * that is how a rotated certificate or a repaired engine is picked up.
 */
import type { NodeConnection } from '../providers/machine.js';
import type { AnyProvider, ProviderRegistry, SecretReader } from '../providers/registry.js';
import type { ComputeNode } from '../crds/types.js';
import { log } from '../runtime/log.js';

export type { SecretReader };

interface Entry {
  fingerprint: string;
  connection: Promise<NodeConnection>;
}

export class NodeConnections {
  private readonly open = new Map<string, Entry>();

  constructor(
    readonly providers: ProviderRegistry,
    private readonly secrets: SecretReader,
  ) {}

  /** The provider of `node` (a `ReconcileError('ProviderNotAvailable')` when this build has none of that name). */
  providerOf(node: ComputeNode): AnyProvider {
    return this.providers.get(node.spec.provider);
  }

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
    const provider = this.providerOf(node);
    const connect = async (): Promise<NodeConnection> => provider.connect(provider.nodeSettings(node.spec), this.secrets);
    const entry: Entry = { fingerprint, connection: connect() };
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
