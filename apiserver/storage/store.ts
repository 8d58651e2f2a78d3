/**
 * The revisioned key-value store the standalone API server keeps every object in.
 *
 * Semantics follow etcd (and so Kubernetes' storage layer):
 * - One global, strictly increasing revision. Every successful write (create, update,
 *   delete) takes exactly the next revision; a key's `modRevision` is the revision of its
 *   last write and `createRevision` the revision of its creation.
 * - Reads are consistent: a `list` answers as of one revision, which it returns.
 * - `update` and `delete` are compare-and-swap on `modRevision`.
 * - Watches deliver every change after the start revision exactly once, in revision order.
 * - After `compact(R)`, history before R is gone: list/watch from a revision < R fails with
 *   `TooOldError` (the API server answers 410 Gone).
 *
 * Values are opaque strings (the API server stores JSON). Keys are `/`-separated strings.
 */

export interface KeyValue {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
}

export interface ListOptions {
  /** At most this many items; 0 or undefined means all. */
  limit?: number;
  /** Only keys strictly greater than this one (for continue tokens). */
  startAfter?: string;
  /** Read as of this revision (0/undefined: the current one). Older than compaction → TooOldError. */
  revision?: number;
}

export interface ListResult {
  items: KeyValue[];
  /** The revision the list was read at; pass it back to read further pages consistently. */
  revision: number;
  /** True when keys remain after the last returned item. */
  more: boolean;
  /** How many keys remain after this page, when the backend knows it cheaply. */
  remaining?: number;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface WatchEvent {
  type: WatchEventType;
  key: string;
  /** The new value; for DELETED, the last value before deletion. */
  value: string;
  /** The value before this change (undefined for ADDED). */
  prevValue?: string;
  /** The revision of this change (the object's new modRevision; for DELETED the deletion's). */
  revision: number;
  /** For ADDED/MODIFIED, the key's createRevision. */
  createRevision: number;
}

export interface WatchHandle {
  /** Stops delivery; resolves when no more events will be delivered. */
  close(): Promise<void>;
}

export interface WatchCallbacks {
  onEvent(event: WatchEvent): void;
  /**
   * Called at most once; the watch is over after it. `TooOldError` when the start revision was
   * compacted away (or history was lost); any other error when the backend cannot continue.
   */
  onError(error: Error): void;
}

export interface Store {
  get(key: string): Promise<KeyValue | undefined>;
  list(prefix: string, options?: ListOptions): Promise<ListResult>;
  /** Counts keys under a prefix at the current revision. */
  count(prefix: string): Promise<number>;
  /** Fails with `KeyExistsError` if the key exists. */
  create(key: string, value: string): Promise<KeyValue>;
  /** Fails with `NotFoundError` if absent, `ConflictError` if its modRevision differs. */
  update(key: string, value: string, expectedModRevision: number): Promise<KeyValue>;
  /**
   * Deletes and returns the deleted key-value with `modRevision` set to the deletion's revision.
   * Fails with `NotFoundError` if absent, `ConflictError` if `expectedModRevision` is given and
   * differs.
   */
  delete(key: string, expectedModRevision?: number): Promise<KeyValue>;
  /** Changes under `prefix` with revision > `afterRevision`, in order, each exactly once. */
  watch(prefix: string, afterRevision: number, callbacks: WatchCallbacks): WatchHandle;
  currentRevision(): Promise<number>;
  /** The oldest revision still readable (history before it is compacted). */
  compactedRevision(): Promise<number>;
  /** Drops history older than `revision`. */
  compact(revision: number): Promise<void>;
  close(): Promise<void>;
}

export class StoreError extends Error {
  constructor(message: string, readonly key?: string) {
    super(message);
    this.name = new.target.name;
  }
}
export class KeyExistsError extends StoreError {}
export class NotFoundError extends StoreError {}
export class ConflictError extends StoreError {
  constructor(message: string, key: string, readonly actualModRevision: number) {
    super(message, key);
  }
}
/** The backend cannot be reached or failed (not the client's fault; retry later — HTTP 503/500). */
export class UnavailableError extends StoreError {}
/** The requested revision has been compacted away: the client must relist (HTTP 410). */
export class TooOldError extends StoreError {
  constructor(message: string, readonly compactedRevision: number) {
    super(message);
  }
}
