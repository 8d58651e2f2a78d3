/**
 * SSHKeyReconciler: checks an SSHKey's public key and reports its type and OpenSSH
 * fingerprint (`SHA256:...`, as `ssh-keygen -lf` prints it). Brume's `keyname` must be
 * unique within a namespace: a second key claiming a taken `keyName` is `Ready=False`
 * (`DuplicateKeyName`), the oldest keeps it.
 */
import { createHash } from 'node:crypto';
import type { SSHKey } from '../crds/types.js';
import { objectKey, splitKey, type ResourceClient } from '../runtime/client.js';
import type { Informer } from '../runtime/informer.js';
import type { Reconciler, ReconcileResult } from '../runtime/controller.js';
import { reportStatus } from '../runtime/status.js';
import type { ConditionInput } from '../runtime/conditions.js';

const KEY_TYPES = new Set([
  'ssh-ed25519',
  'ssh-rsa',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
]);

export interface ParsedKey {
  keyType: string;
  fingerprint: string;
}

/** Parses an OpenSSH public key line; throws with a message naming what is wrong. */
export function parsePublicKey(line: string): ParsedKey {
  const parts = line.trim().split(/\s+/);
  const [keyType, body] = parts;
  if (!keyType || !KEY_TYPES.has(keyType)) throw new Error(`unsupported key type "${(keyType ?? '').slice(0, 40)}"`);
  if (!body || !/^[A-Za-z0-9+/]+={0,2}$/.test(body)) throw new Error('the key body is not base64');
  const blob = Buffer.from(body, 'base64');
  // The blob starts with the key type as an SSH string: uint32 length + bytes.
  if (blob.length < 4) throw new Error('the key body is truncated');
  const n = blob.readUInt32BE(0);
  if (blob.length < 4 + n || blob.subarray(4, 4 + n).toString('latin1') !== keyType) {
    throw new Error(`the key body does not hold a ${keyType} key`);
  }
  const fingerprint = 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
  return { keyType, fingerprint };
}

export interface SSHKeyReconcilerDeps {
  sshKeys: ResourceClient<SSHKey>;
  sshKeyCache: Informer<SSHKey>;
}

export class SSHKeyReconciler implements Reconciler {
  constructor(private readonly d: SSHKeyReconcilerDeps) {}

  /** Keys of every SSHKey in `namespace` sharing `keyName` (to re-check after a change). */
  sameKeyName(key: SSHKey): string[] {
    if (!key.spec.keyName) return [];
    return this.d.sshKeyCache
      .list()
      .filter((k) => k.metadata?.namespace === key.metadata?.namespace && k.spec.keyName === key.spec.keyName)
      .map((k) => objectKey(k));
  }

  async reconcile(key: string): Promise<ReconcileResult | void> {
    const obj = this.d.sshKeyCache.get(key);
    if (!obj || obj.metadata?.deletionTimestamp) return;
    let parsed: ParsedKey | undefined;
    let ready: ConditionInput;
    try {
      parsed = parsePublicKey(obj.spec.publicKey);
      const owner = this.keyNameOwner(obj);
      ready =
        owner && owner !== key
          ? { type: 'Ready', status: 'False', reason: 'DuplicateKeyName', message: `keyName "${obj.spec.keyName}" is already used by SSHKey "${splitKey(owner).name}"` }
          : { type: 'Ready', status: 'True', reason: 'Valid', message: '' };
    } catch (err) {
      ready = { type: 'Ready', status: 'False', reason: 'InvalidKey', message: err instanceof Error ? err.message : String(err) };
    }
    const synced: ConditionInput = { type: 'Synced', status: 'True', reason: 'ReconcileSuccess', message: '' };
    await reportStatus(this.d.sshKeys, obj, [ready, synced], (st: NonNullable<SSHKey['status']>) => {
      if (parsed) {
        st.fingerprint = parsed.fingerprint;
        st.keyType = parsed.keyType;
      } else {
        delete st.fingerprint;
        delete st.keyType;
      }
    });
  }

  /** The oldest SSHKey (by creation, then name) claiming this key's `keyName`. */
  private keyNameOwner(obj: SSHKey): string | undefined {
    const claimants = this.d.sshKeyCache
      .list()
      .filter((k) => !k.metadata?.deletionTimestamp && k.metadata?.namespace === obj.metadata?.namespace && obj.spec.keyName && k.spec.keyName === obj.spec.keyName)
      .sort((a, b) => (a.metadata?.creationTimestamp ?? '').localeCompare(b.metadata?.creationTimestamp ?? '') || (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
    return claimants[0] ? objectKey(claimants[0]) : undefined;
  }
}
