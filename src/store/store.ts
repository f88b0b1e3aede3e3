import type { Collections, Kind } from "../model/objects.js";

export type StoredObject = Collections[Kind];
export type NewObject<K extends Kind> = Omit<Collections[K], "version" | "createdAt" | "updatedAt">;

export interface ReadTx {
  /** Revision this view reads at. */
  readonly revision: number;
  get<K extends Kind>(kind: K, id: string): Collections[K] | undefined;
  list<K extends Kind>(kind: K): Collections[K][];
  tasksOfService(serviceId: string): Collections["tasks"][];
  tasksOfNode(nodeId: string): Collections["tasks"][];
  serviceByName(name: string): Collections["services"] | undefined;
  /** The object of `kind` with this unique name (store/names.ts), if any. */
  byName<K extends Kind>(kind: K, name: string): Collections[K] | undefined;
  /** The object holding a unique key (store/unique-keys.ts: `ports/tcp/8080`, `vips/…`), if any. */
  claimedBy(key: string): StoredObject | undefined;
}

export interface WriteTx extends ReadTx {
  /**
   * Fails when another object holds one of its unique keys (store/unique-keys.ts): NAME_IN_USE
   * for a name, VALIDATION_FAILED naming `publish[i].published` for a published port.
   */
  create<K extends Kind>(kind: K, obj: NewObject<K>): Collections[K];
  /** Fails with VERSION_CONFLICT unless obj.version is the stored version; unique keys as create. */
  update<K extends Kind>(kind: K, obj: Collections[K]): Collections[K];
  delete(kind: Kind, id: string): void;
}

export type ChangeOp = "create" | "update" | "delete";

export interface StoreEvent {
  revision: number;
  kind: Kind;
  op: ChangeOp;
  /** The object after the change; for a delete, the last stored object. */
  object: StoredObject;
}

/**
 * A leadership term (manager/leadership.ts): a fenced write commits only while `key` still
 * exists with this create revision, so a deposed leader that still believes it leads cannot
 * change anything. The single-writer backends (SQLite, memory) have one manager and ignore it.
 */
export interface Fence {
  key: string;
  revision: number;
}

export interface WriteOptions {
  fence?: Fence;
}

export interface Watch {
  cancel(): void;
}

/**
 * The one store interface (architecture.md): typed collections, transactions with optimistic
 * versions, and watch from a revision. Reads are synchronous over the committed state; a write
 * resolves only after it is durable.
 */
export interface Store {
  /**
   * Most operations one transaction may hold, or absent for no limit (SQLite). An operation is one
   * object write, plus one per unique key (store/names.ts) it claims or releases: a task write is
   * one, a service create two or more. etcd refuses a bigger transaction (--max-txn-ops), so
   * writers whose size grows with the number of objects write in chunks of at most this
   * (orchestrator, scheduler, node liveness, node removal), each chunk a consistent state.
   */
  readonly maxOpsPerTxn?: number;
  revision(): number;
  view<T>(fn: (tx: ReadTx) => T): T;
  update<T>(fn: (tx: WriteTx) => T, opts?: WriteOptions): Promise<T>;
  /**
   * Resolves once the read cache holds every write committed before the call (a quorum read of
   * the backend's revision, then a wait): reads after it are linearizable. Absent on the
   * single-writer backends, whose cache is always current.
   */
  sync?(): Promise<void>;
  /**
   * Delivers every event after `fromRevision`, then live events, in order, in batches of one
   * transaction's events. Throws COMPACTED when `fromRevision` is older than the kept history.
   */
  watch(fromRevision: number, onEvents: (events: StoreEvent[]) => void): Watch;
  close(): void;
}
