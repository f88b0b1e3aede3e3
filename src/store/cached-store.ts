import { BatonError } from "../lib/errors.js";
import type { Clock } from "../lib/clock.js";
import { kinds, type Collections, type Kind, type Task } from "../model/objects.js";
import type { ReadTx, Store, StoreEvent, StoredObject, Watch, WriteOptions, WriteTx } from "./store.js";
import { claimConflict, nameKey, uniqueKeysOf } from "./unique-keys.js";

/** What a durable backend does: persist one transaction's events atomically, or throw. */
export interface Persistence {
  /** `compacted`: history is kept for the revisions after it; `history` holds exactly those. */
  load(): { revision: number; compacted: number; objects: { kind: Kind; object: StoredObject }[]; history: StoreEvent[] };
  /** Persists one transaction; with `compactThrough`, also drops history up to that revision. */
  commit(revision: number, events: StoreEvent[], compactThrough?: number): void;
  /** Settings in force on the live connection (for tests and `baton info`). */
  settings?(): Record<string, string | number>;
  close(): void;
}

/** Events kept (about) for watchers resuming from a revision; older asks get COMPACTED. */
export const DEFAULT_HISTORY = 10_000;

/**
 * Where to compact so that at most `limit` events stay, cutting only between revisions: a watcher
 * either gets a revision whole or is told COMPACTED, never half a transaction. Returns the last
 * revision to drop, or undefined while the history is within 1.25 × limit (trims come in steps,
 * so most commits skip them).
 */
export function compactionPoint(history: readonly StoreEvent[], next: readonly StoreEvent[], limit: number): number | undefined {
  const total = history.length + next.length;
  if (total <= limit * 1.25) return undefined;
  const i = total - limit - 1;
  const lastDropped = i < history.length ? history[i]! : next[i - history.length]!;
  // Never compact the revision being written: its watchers have not seen it yet.
  return Math.min(lastDropped.revision, (next[0]?.revision ?? Infinity) - 1);
}

/** One object's change staged by a transaction: the object after it (null: deleted) and before it. */
export interface StagedWrite {
  kind: Kind;
  object: StoredObject | null;
  /** The committed object this write replaces (absent: a create). */
  prev?: StoredObject;
}

/**
 * The unique keys (store/unique-keys.ts) a transaction claims (→ the claiming id) and releases.
 * A key released and claimed in the same transaction changes hands: it is in both.
 */
export function keyChanges(writes: readonly StagedWrite[]): { claimed: Map<string, string>; released: Set<string> } {
  const claimed = new Map<string, string>();
  const released = new Set<string>();
  for (const w of writes) {
    const before = new Set(w.prev ? uniqueKeysOf(w.kind, w.prev) : []);
    const after = new Set(w.object ? uniqueKeysOf(w.kind, w.object) : []);
    for (const k of before) if (!after.has(k)) released.add(k);
    for (const k of after) if (!before.has(k)) claimed.set(k, (w.object ?? w.prev)!.id);
  }
  return { claimed, released };
}

/**
 * The operations etcd counts against --max-txn-ops for these writes: the larger of the compares
 * (one per object, one per newly claimed key, one for a fence) and the requests (one per object,
 * one per key put or deleted). Every backend counts the same (Store.maxOpsPerTxn).
 */
export function transactionOps(writes: readonly StagedWrite[], fenced: boolean): number {
  const { claimed, released } = keyChanges(writes);
  let newClaims = 0;
  for (const k of claimed.keys()) if (!released.has(k)) newClaims++;
  let releasedOnly = 0;
  for (const k of released) if (!claimed.has(k)) releasedOnly++;
  return Math.max(writes.length + newClaims + (fenced ? 1 : 0), writes.length + claimed.size + releasedOnly);
}

/** PAYLOAD_TOO_LARGE for a transaction over the per-transaction limit. */
export function tooLarge(size: number, limit: number, outcome: string): BatonError {
  return new BatonError(
    "PAYLOAD_TOO_LARGE",
    `a store transaction of ${size} operations is over etcd's limit of ${limit} per transaction (--max-txn-ops); ${outcome}. Write in smaller transactions, or raise --max-txn-ops on every etcd member and the store's maxTxnOps with it`,
  );
}

/**
 * The committed state in memory, indexed, with the recent history for watchers: what every
 * backend shares. Subclasses decide how a write reaches the backend and call `learn` with each
 * committed transaction, in revision order; `learn` is the only way the state changes, so the
 * cache is exactly the backend's state at `revision()`.
 */
export abstract class StoreCache implements Store {
  private rev = 0;
  private readonly data = new Map<Kind, Map<string, StoredObject>>(kinds.map((k) => [k, new Map()]));
  private readonly byService = new Map<string, Set<string>>();
  private readonly byNode = new Map<string, Set<string>>();
  /** Unique key (store/unique-keys.ts: names, published ports, VIPs) → the holder. */
  private readonly claims = new Map<string, { kind: Kind; id: string }>();
  private history: StoreEvent[] = [];
  /** History is whole for every revision after this one. */
  private compacted = 0;
  private readonly watchers = new Set<(events: StoreEvent[]) => void>();

  /**
   * @param backendChecksNames the backend refuses a taken unique key (a name, a published port,
   *   a VIP) itself at commit (etcd); otherwise the committed state here is the only truth and a
   *   taken key fails while staging.
   */
  constructor(
    protected readonly historyLimit = DEFAULT_HISTORY,
    private readonly backendChecksNames = false,
  ) {}

  abstract update<T>(fn: (tx: WriteTx) => T, opts?: WriteOptions): Promise<T>;
  abstract close(): void;
  /** Store.maxOpsPerTxn: absent unless the backend (or a test emulating etcd) has a limit. */
  abstract readonly maxOpsPerTxn: number | undefined;

  revision(): number {
    return this.rev;
  }

  /** The last revision whose history is gone: watches must start at or after it. */
  compactedRevision(): number {
    return this.compacted;
  }

  view<T>(fn: (tx: ReadTx) => T): T {
    return fn(this.reader());
  }

  /** Replaces the whole state (a load); history starts after `compacted`. */
  protected reset(loaded: { revision: number; compacted: number; objects: { kind: Kind; object: StoredObject }[]; history: StoreEvent[] }): void {
    for (const m of [...this.data.values(), this.claims, this.byService, this.byNode]) m.clear();
    this.rev = loaded.revision;
    this.compacted = loaded.compacted;
    for (const { kind, object } of loaded.objects) this.apply(kind, object, false);
    this.history = loaded.history;
  }

  /**
   * Runs `fn` against a copy-on-write overlay of the committed state. Objects it writes get
   * `revision` as their version and `now` as their timestamps. Returns what fn returned and the
   * staged writes; nothing is committed.
   */
  protected stage<T>(fn: (tx: WriteTx) => T, revision: number, now: number): { result: T; writes: StagedWrite[] } {
    const overlay = new Map<string, StagedWrite>();
    const key = (k: Kind, id: string): string => `${k}/${id}`;
    const base = this.reader();
    const current = <K extends Kind>(kind: K, id: string): Collections[K] | undefined => {
      const o = overlay.get(key(kind, id));
      if (o) return (o.object ?? undefined) as Collections[K] | undefined;
      return base.get(kind, id);
    };
    // Unique keys the overlay claimed (→ holder) or released (→ null), over the committed index:
    // a lookup stays O(1) in transactions of many writes.
    const overlayClaims = new Map<string, { kind: Kind; id: string } | null>();
    const claimedBy = (k: string): StoredObject | undefined => {
      const claimed = overlayClaims.get(k);
      if (claimed !== undefined) return claimed === null ? undefined : current(claimed.kind, claimed.id);
      const committed = this.claims.get(k);
      if (!committed) return undefined;
      // Changed or deleted in this transaction: the committed index no longer holds.
      const live = current(committed.kind, committed.id);
      return live && uniqueKeysOf(committed.kind, live).includes(k) ? live : undefined;
    };
    const named = <K extends Kind>(kind: K, name: string): Collections[K] | undefined => claimedBy(nameKey(kind, name)) as Collections[K] | undefined;
    /** Moves the unique keys of the overlay from `before` to `after` (one object's write). */
    const reclaim = (kind: Kind, id: string, before: StoredObject | undefined, after: StoredObject | null): void => {
      const was = new Set(before ? uniqueKeysOf(kind, before) : []);
      const will = after ? uniqueKeysOf(kind, after) : [];
      for (const k of will) {
        if (was.has(k)) continue;
        const holder = claimedBy(k);
        // A backend that checks keys itself (etcd: an etcd key per unique key) decides on
        // committed holders: this cache may be behind a release another manager made.
        const decidedHere = !this.backendChecksNames || overlayClaims.has(k);
        if (holder && holder.id !== id && decidedHere) throw claimConflict(k, after!, holder);
      }
      const keep = new Set(will);
      for (const k of was) if (!keep.has(k)) overlayClaims.set(k, null);
      for (const k of will) overlayClaims.set(k, { kind, id });
    };
    const merged = <T2 extends StoredObject>(kind: Kind, items: T2[]): T2[] => {
      if (overlay.size === 0) return items;
      const out = items.filter((i) => !overlay.has(key(kind, i.id)));
      for (const o of overlay.values()) if (o.kind === kind && o.object) out.push(o.object as T2);
      return out;
    };
    const tx: WriteTx = {
      revision: this.rev,
      get: current,
      list: (kind) => merged(kind, base.list(kind)),
      tasksOfService: (id) => merged("tasks", base.tasksOfService(id)).filter((t) => (t as Task).serviceId === id) as Task[],
      tasksOfNode: (id) => merged("tasks", base.tasksOfNode(id)).filter((t) => (t as Task).nodeId === id) as Task[],
      serviceByName: (name) => named("services", name),
      byName: named,
      claimedBy,
      create: (kind, obj) => {
        if (current(kind, obj.id)) throw new BatonError("VERSION_CONFLICT", `${kind}/${obj.id} already exists`, [], { retryable: true });
        const created = { ...obj, version: revision, createdAt: now, updatedAt: now } as unknown as Collections[typeof kind];
        reclaim(kind, obj.id, undefined, created);
        // Re-created after a delete in this transaction: it still replaces the committed object.
        const prev = overlay.get(key(kind, obj.id))?.prev;
        overlay.set(key(kind, obj.id), { kind, object: created, ...(prev ? { prev } : {}) });
        return created;
      },
      update: (kind, obj) => {
        const cur = current(kind, obj.id);
        if (!cur) throw new BatonError("NOT_FOUND", `${kind}/${obj.id} not found`, [], { retryable: true });
        if (cur.version !== obj.version) throw new BatonError("VERSION_CONFLICT", `${kind}/${obj.id} changed (have version ${obj.version}, stored ${cur.version})`, [], { retryable: true });
        const next = { ...obj, version: revision, updatedAt: now };
        reclaim(kind, obj.id, cur, next);
        const prevEntry = overlay.get(key(kind, obj.id));
        const prev = prevEntry?.prev ?? base.get(kind, obj.id);
        overlay.set(key(kind, obj.id), { kind, object: next, ...(prev ? { prev } : {}) });
        return next;
      },
      delete: (kind, id) => {
        const cur = current(kind, id);
        if (!cur) return;
        reclaim(kind, id, cur, null);
        const prevEntry = overlay.get(key(kind, id));
        const prev = prevEntry ? prevEntry.prev : cur;
        overlay.set(key(kind, id), { kind, object: null, ...(prev ? { prev } : {}) });
      },
    };
    const result = fn(tx);
    return { result, writes: [...overlay.values()].filter((w) => w.object || w.prev) };
  }

  /**
   * Applies one committed transaction (revision > revision()) to memory and tells watchers.
   * `compactThrough`: drop history up to there (default: the trim the history limit asks for).
   */
  protected learn(revision: number, events: StoreEvent[], compactThrough = this.compactionFor(events)): void {
    this.rev = revision;
    for (const e of events) this.apply(e.kind, e.object, e.op === "delete");
    // A loop, not push(...events): spread arguments overflow the stack past ~120k events, after
    // the state was applied and before the watchers heard of it.
    for (const e of events) this.history.push(e);
    if (compactThrough !== undefined) {
      this.history = this.history.filter((e) => e.revision > compactThrough);
      this.compacted = compactThrough;
    }
    for (const w of this.watchers) w(events);
  }

  /** Where to trim the history before adding `events` (undefined: not yet). */
  protected compactionFor(events: readonly StoreEvent[]): number | undefined {
    const point = compactionPoint(this.history, events, this.historyLimit);
    return point !== undefined && point > this.compacted ? point : undefined;
  }

  watch(fromRevision: number, onEvents: (events: StoreEvent[]) => void): Watch {
    // Every revision after `compacted` is kept whole; anything older may be partly gone.
    if (fromRevision < this.compacted) {
      throw new BatonError("COMPACTED", `revision ${fromRevision} is compacted (history starts after ${this.compacted}); relist and watch from ${this.rev}`);
    }
    // Deliver asynchronously so a watcher never runs inside the writer's call stack.
    let pending: StoreEvent[] = this.history.filter((e) => e.revision > fromRevision);
    let scheduled = false;
    let cancelled = false;
    const flush = (): void => {
      scheduled = false;
      if (cancelled || pending.length === 0) return;
      const batch = pending;
      pending = [];
      onEvents(batch);
    };
    const listener = (events: StoreEvent[]): void => {
      for (const e of events) pending.push(e);
      if (!scheduled) {
        scheduled = true;
        queueMicrotask(flush);
      }
    };
    this.watchers.add(listener);
    if (pending.length) {
      scheduled = true;
      queueMicrotask(flush);
    }
    return {
      cancel: () => {
        cancelled = true;
        this.watchers.delete(listener);
      },
    };
  }

  protected stopWatchers(): void {
    this.watchers.clear();
  }

  private reader(): ReadTx {
    const revision = this.rev;
    const data = this.data;
    const claimedBy = (key: string): StoredObject | undefined => {
      const holder = this.claims.get(key);
      return holder ? data.get(holder.kind)!.get(holder.id) : undefined;
    };
    const byName = <K extends Kind>(kind: K, name: string): Collections[K] | undefined => claimedBy(nameKey(kind, name)) as Collections[K] | undefined;
    const pick = (ids: Set<string> | undefined): Task[] => {
      const tasks = data.get("tasks")!;
      return ids ? [...ids].map((id) => tasks.get(id) as Task) : [];
    };
    return {
      revision,
      get: (kind, id) => data.get(kind)!.get(id) as never,
      list: (kind) => [...data.get(kind)!.values()] as never,
      tasksOfService: (id) => pick(this.byService.get(id)),
      tasksOfNode: (id) => pick(this.byNode.get(id)),
      serviceByName: (name) => byName("services", name),
      byName,
      claimedBy,
    };
  }

  private apply(kind: Kind, object: StoredObject, deleted: boolean): void {
    const coll = this.data.get(kind)!;
    const prev = coll.get(object.id);
    if (kind === "tasks") {
      const p = prev as Task | undefined;
      const t = object as Task;
      if (p) {
        this.byService.get(p.serviceId)?.delete(p.id);
        if (p.nodeId) this.byNode.get(p.nodeId)?.delete(p.id);
      }
      if (!deleted) {
        index(this.byService, t.serviceId, t.id);
        if (t.nodeId) index(this.byNode, t.nodeId, t.id);
      }
    }
    // Only the holder releases a key: a committed state never has two holders, but be exact.
    if (prev) for (const k of uniqueKeysOf(kind, prev)) if (this.claims.get(k)?.id === object.id) this.claims.delete(k);
    if (!deleted) for (const k of uniqueKeysOf(kind, object)) this.claims.set(k, { kind, id: object.id });
    if (deleted) coll.delete(object.id);
    else coll.set(object.id, object);
  }
}

/** The events a transaction's staged writes make, all at `revision`. */
export function eventsOf(writes: readonly StagedWrite[], revision: number): StoreEvent[] {
  const events: StoreEvent[] = [];
  for (const w of writes) {
    if (w.object) events.push({ revision, kind: w.kind, op: w.prev ? "update" : "create", object: w.object });
    else if (w.prev) events.push({ revision, kind: w.kind, op: "delete", object: w.prev });
  }
  return events;
}

/**
 * The only writer of its backend (SQLite, memory): a write runs its function against the
 * overlay, persists the resulting events in one backend transaction, and only then applies them
 * to memory and tells watchers. Node runs one transaction at a time, so no two writes
 * interleave, and the next revision is simply this one plus one.
 */
export class CachedStore extends StoreCache {
  private closed = false;

  /**
   * @param maxTxnOps refuse transactions over this many operations, counted as etcd does
   *   (transactionOps): tests run code that must fit etcd's limit on the memory store.
   */
  constructor(
    private readonly backend: Persistence,
    private readonly clock: Clock,
    historyLimit = DEFAULT_HISTORY,
    private readonly maxTxnOps?: number,
  ) {
    super(historyLimit);
    this.reset(backend.load());
  }

  get maxOpsPerTxn(): number | undefined {
    // As on etcd: room is left for the compare a fenced write adds.
    return this.maxTxnOps === undefined ? undefined : this.maxTxnOps - 1;
  }

  /** The backend's settings in force (SQLite: journal mode, synchronous level). */
  backendSettings(): Record<string, string | number> {
    return this.backend.settings?.() ?? {};
  }

  async update<T>(fn: (tx: WriteTx) => T, opts: WriteOptions = {}): Promise<T> {
    if (this.closed) throw new BatonError("UNAVAILABLE", "store is closed", [], { retryable: true });
    const revision = this.revision() + 1;
    const { result, writes } = this.stage(fn, revision, this.clock.now());
    const events = eventsOf(writes, revision);
    if (events.length === 0) return result;
    if (this.maxTxnOps !== undefined) {
      const size = transactionOps(writes, opts.fence !== undefined);
      if (size > this.maxTxnOps) throw tooLarge(size, this.maxTxnOps, "nothing was written");
    }
    const compactThrough = this.compactionFor(events);
    this.backend.commit(revision, events, compactThrough);
    this.learn(revision, events, compactThrough);
    return result;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopWatchers();
    this.backend.close();
  }
}

function index(m: Map<string, Set<string>>, k: string, id: string): void {
  let s = m.get(k);
  if (!s) m.set(k, (s = new Set()));
  s.add(id);
}
