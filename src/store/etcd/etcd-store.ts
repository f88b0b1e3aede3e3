import type { Etcd3, IKeyValue, IOperation, IWatchResponse, Watcher } from "etcd3";
import type { Clock } from "../../lib/clock.js";
import { systemClock } from "../../lib/clock.js";
import { BatonError } from "../../lib/errors.js";
import type { Logger } from "../../lib/log.js";
import { kinds, type Kind } from "../../model/objects.js";
import { claimConflict, uniqueKeysOf } from "../unique-keys.js";
import { DEFAULT_HISTORY, keyChanges, StoreCache, tooLarge, transactionOps, type StagedWrite } from "../cached-store.js";
import type { Fence, StoreEvent, StoredObject, WriteOptions, WriteTx } from "../store.js";
import { newEtcdClient, type EtcdTls } from "./etcd-client.js";

/** etcd's own default for --max-txn-ops: what a cluster Baton did not start allows. */
export const ETCD_DEFAULT_MAX_TXN_OPS = 128;

export interface EtcdStoreOptions {
  /** Client URLs of the etcd members (`http://10.0.0.5:2379`, `https://…` with `tls`). */
  endpoints: string[];
  /** CA and client certificate for `https://` endpoints (etcd's --client-cert-auth). */
  tls?: EtcdTls;
  /**
   * Every key lives under it: `<prefix><kind>/<id>`, and the unique keys (store/unique-keys.ts)
   * `<prefix>names/<kind>/<name>`, `<prefix>ports/<tcp|udp>/<port>`, `<prefix>vips/<address>`.
   * @default "/baton/"
   */
  prefix?: string;
  /**
   * Most operations one transaction may send: the etcd cluster's --max-txn-ops. A write over it
   * fails before anything is sent (PAYLOAD_TOO_LARGE); callers that write in bulk (the
   * scheduler's maxOpsPerCommit) chunk to stay within it.
   * @default 128 (etcd's default)
   */
  maxTxnOps?: number;
  clock?: Clock;
  log?: Logger;
  /** Events kept in memory for watchers resuming from a revision. @default 10000 */
  historyLimit?: number;
}

/** Objects read per range request while loading (a page stays far below gRPC's 4 MiB). */
const LOAD_PAGE = 500;
/** A broken watch stream is re-opened after this long (then doubled, capped at 5 s). */
const FEED_RETRY_MS = 100;
/**
 * Every unary etcd call gives up after this: with the cluster down or partitioned away, the API
 * answers 503 instead of hanging (a write that timed out may still have committed, and says so).
 */
const CALL_DEADLINE_MS = 5_000;
/** sync(): three tries of 1.5 s (with pauses, at most ~5.5 s in all), so a dead member costs 1.5 s, not 5. */
const SYNC_ATTEMPTS = 3;
const SYNC_DEADLINE_MS = 1_500;
/** How long a refused claim waits for the cache to learn the key's holder, to name it. */
const HOLDER_WAIT_MS = 1_000;

/**
 * gRPC pings on every etcd connection: after a partition heals, a connection that died silently
 * (no RST) is found dead and redialled in seconds instead of hanging calls until their deadline.
 * 5 s is etcd's default --grpc-keepalive-min-time: pinging more often gets the connection closed.
 */
export const ETCD_KEEPALIVE = { "grpc.keepalive_time_ms": 5_000, "grpc.keepalive_timeout_ms": 2_000, "grpc.keepalive_permit_without_calls": 1 };

type Json = Record<string, unknown>;

/**
 * The Store on an etcd cluster, shared by several managers.
 *
 * Reads are served from the same in-memory cache as the SQLite store (StoreCache), fed only by
 * one prefix watch that starts at the revision of the initial range read: the cache is exactly
 * etcd's state at `revision()`, and its revision is etcd's. A write runs its function against the
 * cache (with the overlay), then sends one etcd transaction whose compares are the versions it
 * read (an object's version is its key's mod revision; a create compares on absence), and
 * resolves once the watch has brought that revision into the cache, so a writer always reads its
 * own write. Writes from one EtcdStore are sent one at a time: each function sees every earlier
 * write of this manager, as on SQLite; a write of another manager that the cache has not seen yet
 * makes the compare fail (VERSION_CONFLICT, retryable).
 *
 * Names, published ports and VIPs stay unique across managers: each is also an etcd key
 * (store/unique-keys.ts) created on absence, moved or deleted in the same transaction as the object.
 */
export class EtcdStore extends StoreCache {
  private readonly client: Etcd3;
  private readonly prefix: string;
  private readonly maxTxnOps: number;
  private readonly clock: Clock;
  private feed: Watcher | undefined;
  private feedRetryMs = FEED_RETRY_MS;
  private cancelFeedRetry = (): void => undefined;
  private writes: Promise<unknown> = Promise.resolve();
  private readonly waiters: { revision: number; resolve: () => void; reject: (err: unknown) => void }[] = [];
  private closed = false;

  private constructor(private readonly opts: EtcdStoreOptions) {
    super(opts.historyLimit ?? DEFAULT_HISTORY, true);
    this.prefix = opts.prefix ?? "/baton/";
    this.maxTxnOps = opts.maxTxnOps ?? ETCD_DEFAULT_MAX_TXN_OPS;
    this.clock = opts.clock ?? systemClock;
    // No client-side retries (newEtcdClient): a transaction whose answer was lost may have
    // committed, and a retry would then fail its compares and report a conflict for a write that happened.
    this.client = newEtcdClient(
      { endpoints: opts.endpoints, ...(opts.tls ? { tls: opts.tls } : {}) },
      { grpcOptions: ETCD_KEEPALIVE, defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + CALL_DEADLINE_MS }) },
      opts.log ? { log: opts.log } : {},
    );
  }

  /** Loads every object (one range read at one revision), then follows etcd from there. */
  static async open(opts: EtcdStoreOptions): Promise<EtcdStore> {
    const store = new EtcdStore(opts);
    try {
      const loaded = await store.load();
      // No history before the load: a watch from an older revision relists (COMPACTED).
      store.reset({ revision: loaded.revision, compacted: loaded.revision, objects: loaded.objects, history: [] });
      await store.startFeed();
    } catch (err) {
      store.close();
      throw unavailable(`cannot open the etcd store at ${opts.endpoints.join(",")}`, err);
    }
    return store;
  }

  /**
   * The most object writes one transaction may have (the scheduler chunks its commits to this):
   * etcd's limit, less the one compare a fenced controller write adds.
   */
  get maxOpsPerTxn(): number {
    return this.maxTxnOps - 1;
  }

  /** Resolves once the cache has reached `revision` (another manager's write, for example). */
  waitForRevision(revision: number): Promise<void> {
    if (this.revision() >= revision) return Promise.resolve();
    if (this.closed) return Promise.reject(closedError());
    return new Promise((resolve, reject) => this.waiters.push({ revision, resolve, reject }));
  }

  /**
   * A linearizable read barrier: a quorum read learns etcd's current revision, then the cache
   * catches up to it, so a read after it sees every write acknowledged before the call (by any
   * manager). UNAVAILABLE when etcd does not answer within the call deadline.
   */
  async sync(): Promise<void> {
    let last: unknown;
    // Both calls are safe to repeat (a read; a barrier put of an empty value), so a call stuck on
    // a dead member is retried on a short deadline instead of failing the read after 5 s.
    for (let attempt = 0; attempt < SYNC_ATTEMPTS; attempt++) {
      // A pause before a retry: a connection being redialled (etcd just came back) gets its chance.
      if (attempt > 0) await this.clock.sleep(300 * attempt);
      if (this.closed) throw closedError();
      const deadline = (): { deadline: number } => ({ deadline: Date.now() + SYNC_DEADLINE_MS });
      try {
        // A range read is linearizable (through the raft leader) unless asked to be serializable.
        const res = await this.client.get(this.syncKey()).options(deadline()).exec();
        if (this.revision() >= Number(res.header.revision)) return;
        // Behind: wait for the feed. etcd's revision also counts keys outside our prefix, which our
        // feed never carries, so the wait ends on a write of our own (a barrier key under the
        // prefix): once the feed brings it, the cache holds everything committed before it.
        const put = await this.client.put(this.syncKey()).value("").options(deadline()).exec();
        await this.waitForRevision(Number(put.header.revision));
        return;
      } catch (err) {
        if (err instanceof BatonError) throw err;
        last = err;
      }
    }
    throw unavailable("the store is unavailable: etcd did not answer a quorum read (reads with ?stale=true are served from this manager's cache)", last);
  }

  update<T>(fn: (tx: WriteTx) => T, opts: WriteOptions = {}): Promise<T> {
    // One write at a time: the next function runs against a cache that holds this one.
    const run = this.writes.then(() => this.write(fn, opts.fence));
    this.writes = run.catch(() => undefined);
    return run;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.cancelFeedRetry();
    this.stopWatchers();
    for (const w of this.waiters.splice(0)) w.reject(closedError());
    const feed = this.feed;
    this.feed = undefined;
    feed?.removeAllListeners();
    feed?.on("error", () => undefined);
    // The client re-opens the watch stream (on a timer) while it has a watcher: detach it first.
    const detached = feed ? Promise.race([feed.cancel(), new Promise((r) => setTimeout(r, 1000).unref())]) : Promise.resolve();
    void detached.catch(() => undefined).finally(() => this.client.close());
  }

  private async write<T>(fn: (tx: WriteTx) => T, fence: Fence | undefined): Promise<T> {
    if (this.closed) throw closedError();
    // The version written objects get is etcd's revision, known only once committed: stage with
    // the next local revision, then stamp the real one on the objects fn got back.
    const { result, writes } = this.stage(fn, this.revision() + 1, this.clock.now());
    if (writes.length === 0) return result;
    const txn = this.transaction(writes, fence);
    let revision: number;
    try {
      const [first, ...rest] = txn.compares;
      let builder = this.client.if(first![0], first![1], "==", first![2]);
      for (const [key, column, value] of rest) builder = builder.and(key, column, "==", value);
      const res = await builder
        .then(...txn.ops)
        .else(...txn.names.map((n) => this.client.get(n)), ...(fence ? [this.client.get(fence.key)] : []))
        .commit();
      if (!res.succeeded) {
        const found = res.responses.map((r) => r.response_range?.kvs ?? []);
        if (fence) {
          const leader = found.pop()?.[0];
          if (Number(leader?.create_revision ?? 0) !== fence.revision) throw deposed(fence, leader);
        }
        throw await this.conflict(writes, txn.names, found);
      }
      revision = Number(res.header.revision);
    } catch (err) {
      if (err instanceof BatonError) throw err;
      if (/too many operations/.test((err as Error).message)) throw tooLarge(txn.ops.length, this.maxTxnOps, "the etcd cluster refused it");
      throw unavailable("etcd did not confirm the write (it may or may not have been applied)", err);
    }
    for (const w of writes) if (w.object) (w.object as { version: number }).version = revision;
    await this.waitForRevision(revision);
    return result;
  }

  /** One etcd transaction for the staged writes: compares, operations, and the name keys claimed. */
  private transaction(writes: StagedWrite[], fence: Fence | undefined): { compares: [string, "Create" | "Mod", number][]; ops: IOperation[]; names: string[] } {
    const size = transactionOps(writes, fence !== undefined);
    if (size > this.maxTxnOps) throw tooLarge(size, this.maxTxnOps, "nothing was written");
    const compares: [string, "Create" | "Mod", number][] = [];
    const ops: IOperation[] = [];
    for (const w of writes) {
      const key = this.key(w.kind, (w.object ?? w.prev)!.id);
      // The committed object this write replaces (the cache is etcd at revision()): its version.
      compares.push(w.prev ? [key, "Mod", w.prev.version] : [key, "Create", 0]);
      ops.push(w.object ? this.client.put(key).value(JSON.stringify(withoutVersion(w.object))) : this.client.delete().key(key));
    }
    // Unique keys (`<kind>/<name>`) claimed (→ id) and released by this transaction.
    const { claimed, released } = keyChanges(writes);
    for (const name of released) if (!claimed.has(name)) ops.push(this.client.delete().key(this.uniqueKey(name)));
    const names: string[] = [];
    for (const [name, id] of claimed) {
      // A name released in the same transaction changes hands directly (one op per key).
      if (!released.has(name)) {
        compares.push([this.uniqueKey(name), "Create", 0]);
        names.push(this.uniqueKey(name));
      }
      ops.push(this.client.put(this.uniqueKey(name)).value(id));
    }
    // The fence is one more compare: the leader key still has the term's create revision.
    if (fence) compares.push([fence.key, "Create", fence.revision]);
    return { compares, ops, names };
  }

  /**
   * A failed compare: a unique key it claimed exists (claimConflict: NAME_IN_USE, a published
   * port's field error…), else VERSION_CONFLICT. The holder is named once this cache has it: its
   * key's value is its id, and its write reaches the cache within a moment (waited for, briefly).
   */
  private async conflict(writes: StagedWrite[], keys: string[], found: IKeyValue[][]): Promise<BatonError> {
    const taken = keys.flatMap((k, i) => (found[i]?.[0] ? [{ key: k.slice(this.uniqueKey("").length), kv: found[i]![0]! }] : []));
    const first = taken[0];
    if (first) {
      const id = first.kv.value.toString();
      await Promise.race([this.waitForRevision(Number(first.kv.mod_revision)).catch(() => undefined), this.clock.sleep(HOLDER_WAIT_MS)]);
      const holder = this.view((tx) => kinds.map((k) => tx.get(k, id)).find((o) => o !== undefined));
      const claimant = writes.find((w) => w.object && uniqueKeysOf(w.kind, w.object).includes(first.key))?.object;
      if (claimant) return claimConflict(first.key, claimant, holder);
    }
    const what = writes.map((w) => `${w.kind}/${(w.object ?? w.prev)!.id}`);
    return new BatonError("VERSION_CONFLICT", `${what.length === 1 ? what[0] : `one of ${what.length} objects`} changed in etcd since it was read (another manager wrote it)`, [], { retryable: true });
  }

  private async load(): Promise<{ revision: number; objects: { kind: Kind; object: StoredObject }[] }> {
    const objects: { kind: Kind; object: StoredObject }[] = [];
    const end = prefixEnd(this.prefix);
    let revision: number | undefined;
    let start = this.prefix;
    for (;;) {
      const page = this.client.getAll().inRange({ start, end }).limit(LOAD_PAGE);
      // Every page reads at the first page's revision: one consistent snapshot.
      const res = await (revision === undefined ? page : page.revision(revision)).exec();
      revision ??= Number(res.header.revision);
      for (const kv of res.kvs) {
        const parsed = this.parse(kv);
        if (parsed) objects.push(parsed);
      }
      if (!res.more || res.kvs.length === 0) break;
      start = res.kvs[res.kvs.length - 1]!.key.toString() + "\0";
    }
    return { revision, objects };
  }

  /** Follows etcd from the cache's revision; a broken stream is re-opened from there. */
  private async startFeed(): Promise<void> {
    const from = this.revision() + 1;
    const feed = await this.client.watch().prefix(this.prefix).startRevision(String(from)).create();
    if (this.closed) {
      void feed.cancel().catch(() => undefined);
      return;
    }
    this.feed = feed;
    this.feedRetryMs = FEED_RETRY_MS;
    feed.on("data", (res: IWatchResponse) => this.onWatch(res));
    // The client would resume by itself, but from the revision of its reconnect answer, which can
    // skip events that were in flight: resume from what the cache holds instead.
    feed.on("disconnected", () => this.restartFeed(feed, false));
    // Cancelled by etcd: compacted past our revision (or another reason): relist.
    feed.on("error", () => this.restartFeed(feed, true));
  }

  private restartFeed(feed: Watcher, relist: boolean): void {
    if (this.closed || this.feed !== feed) return;
    this.feed = undefined;
    feed.removeAllListeners();
    feed.on("error", () => undefined);
    void feed.cancel().catch(() => undefined);
    this.scheduleFeed(relist);
  }

  /** Re-opens the feed (after a relist when asked) after a growing delay, until it works. */
  private scheduleFeed(relist: boolean): void {
    const delay = this.feedRetryMs;
    this.feedRetryMs = Math.min(this.feedRetryMs * 2, 5_000);
    this.cancelFeedRetry = this.clock.setTimer(delay, () => {
      void (async () => {
        if (relist) await this.relist();
        await this.startFeed();
      })().catch((err: unknown) => {
        if (this.closed) return;
        this.opts.log?.warn({ err, retryInMs: this.feedRetryMs }, "etcd watch could not be re-opened");
        this.scheduleFeed(relist);
      });
    });
  }

  /**
   * The history the watch needed is compacted in etcd: read everything again and tell watchers
   * the difference as one transaction at the new revision. History before it is gone (a watch from
   * an older revision gets COMPACTED); controllers are level-triggered, so the net change is enough.
   */
  private async relist(): Promise<void> {
    const loaded = await this.load();
    if (loaded.revision <= this.revision()) return;
    const events: StoreEvent[] = [];
    const seen = new Set<string>();
    for (const { kind, object } of loaded.objects) {
      seen.add(`${kind}/${object.id}`);
      const cur = this.view((tx) => tx.get(kind, object.id));
      if (!cur) events.push({ revision: loaded.revision, kind, op: "create", object });
      else if (cur.version !== object.version) events.push({ revision: loaded.revision, kind, op: "update", object });
    }
    for (const kind of kinds) {
      for (const object of this.view((tx) => tx.list(kind))) {
        if (!seen.has(`${kind}/${object.id}`)) events.push({ revision: loaded.revision, kind, op: "delete", object });
      }
    }
    this.opts.log?.warn({ revision: loaded.revision, changes: events.length }, "etcd history compacted past this manager's cache: relisted");
    this.learnRevision(loaded.revision, events, loaded.revision);
  }

  private onWatch(res: IWatchResponse): void {
    // A response holds whole revisions (etcd never splits one), in order.
    let batch: StoreEvent[] = [];
    let batchRevision = 0;
    const flush = (): void => {
      if (batchRevision > this.revision()) this.learnRevision(batchRevision, batch);
      batch = [];
    };
    for (const ev of res.events) {
      const revision = Number(ev.kv.mod_revision);
      if (revision !== batchRevision) {
        flush();
        batchRevision = revision;
      }
      if (ev.type === "Put") {
        const parsed = this.parse(ev.kv);
        if (parsed) batch.push({ revision, kind: parsed.kind, op: ev.kv.create_revision === ev.kv.mod_revision ? "create" : "update", object: parsed.object });
      } else {
        const ref = this.parseKey(ev.kv.key.toString());
        // The cache is exact: the deleted object is in it, with its last version.
        const last = ref && this.view((tx) => tx.get(ref.kind, ref.id));
        if (ref && last) batch.push({ revision, kind: ref.kind, op: "delete", object: last });
      }
    }
    flush();
  }

  private learnRevision(revision: number, events: StoreEvent[], compactThrough?: number): void {
    if (compactThrough === undefined) this.learn(revision, events);
    else this.learn(revision, events, compactThrough);
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      if (this.waiters[i]!.revision <= revision) this.waiters.splice(i, 1)[0]!.resolve();
    }
  }

  private key(kind: Kind, id: string): string {
    return `${this.prefix}${kind}/${id}`;
  }

  /** Written by sync() when the cache is behind; not an object (parseKey skips it). */
  private syncKey(): string {
    return `${this.prefix}sync`;
  }

  /** A unique key's etcd key (`names/<kind>/<name>`, `ports/tcp/8080`, `vips/…`: store/unique-keys.ts). */
  private uniqueKey(key: string): string {
    return `${this.prefix}${key}`;
  }

  private parseKey(key: string): { kind: Kind; id: string } | undefined {
    if (!key.startsWith(this.prefix)) return undefined;
    const rest = key.slice(this.prefix.length);
    const slash = rest.indexOf("/");
    const kind = rest.slice(0, slash) as Kind;
    return slash > 0 && kinds.includes(kind) ? { kind, id: rest.slice(slash + 1) } : undefined;
  }

  private parse(kv: IKeyValue): { kind: Kind; object: StoredObject } | undefined {
    const ref = this.parseKey(kv.key.toString());
    if (!ref) return undefined;
    const object = { ...(JSON.parse(kv.value.toString()) as Json), version: Number(kv.mod_revision) } as unknown as StoredObject;
    return { kind: ref.kind, object };
  }
}

/** The object as stored: its version is the key's mod revision, not a field. */
function withoutVersion(o: StoredObject): Json {
  const rest: Json = { ...(o as unknown as Json) };
  delete rest.version;
  return rest;
}

/** The first key after every key that starts with `prefix`. */
function prefixEnd(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}

function unavailable(message: string, cause: unknown): BatonError {
  return new BatonError("UNAVAILABLE", `${message}: ${(cause as Error).message ?? String(cause)}`, [], { cause, retryable: true });
}

function deposed(fence: Fence, leader: IKeyValue | undefined): BatonError {
  const now = leader ? `another term leads now (${fence.key} created at revision ${String(leader.create_revision)})` : `${fence.key} is gone (the lease expired)`;
  return new BatonError("NOT_LEADER", `this manager's leadership (term of revision ${fence.revision}) ended: ${now}; nothing was written`);
}

function closedError(): BatonError {
  return new BatonError("UNAVAILABLE", "store is closed", [], { retryable: true });
}
