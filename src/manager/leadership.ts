import { EtcdLeaseInvalidError, type Etcd3, type IKeyValue, type Lease, type Watcher } from "etcd3";
import type { Clock } from "../lib/clock.js";
import type { Logger } from "../lib/log.js";
import type { Fence } from "../store/store.js";
import { ETCD_KEEPALIVE } from "../store/etcd/etcd-store.js";
import { newEtcdClient, type EtcdConnection } from "../store/etcd/etcd-client.js";
import { DeadLeaderDetector, probeListener, type ProbeResult } from "./leader-probe.js";

/** A manager as the others see it in etcd: its node id and the address of its TLS listener. */
export interface ManagerRecord {
  nodeId: string;
  addr: string;
  /** Nodes whose agent sessions this manager holds and heard within the heartbeat grace. */
  sessions: string[];
}

/** What every manager learns each tick: who leads, and which managers hold a live lease. */
export interface ManagersView {
  leader: { nodeId: string; addr: string } | undefined;
  /** Managers whose lease is alive (their key exists), by node id. */
  reachable: Map<string, ManagerRecord>;
}

export interface LeadershipOptions {
  /** The etcd the store uses (with its TLS when it has one). */
  connection: EtcdConnection;
  self: { nodeId: string; addr: string };
  /** Keys: `<prefix>leader`, `<prefix>managers/<nodeId>`. Outside the store's prefix, so the store's feed never carries them. @default "/baton-ha/" */
  prefix?: string;
  clock: Clock;
  log: Logger;
  /**
   * Lease time to live asked for. etcd counts it in whole seconds and raises anything under its
   * minimum (1.5 × its election timeout, rounded up: 2 s with etcd's default timings, 1 s with the
   * managed etcd's, src/ha/etcd-args.ts); the watchdog counts with what etcd granted. @default 1000
   */
  ttlMs?: number;
  /** Keepalive and view refresh period: a quarter of the shortest TTL, so one lost keepalive is not a lost term. @default 250 */
  tickMs?: number;
  /**
   * The leader stops its controllers when its last confirmed keepalive is older than
   * TTL − safetyMarginMs: before the lease can expire and another manager can lead. @default 400
   */
  safetyMarginMs?: number;
  /** Became leader: start the controllers, their writes fenced by `fence`. */
  onElected(fence: Fence): void;
  /** Stopped leading (lease lost, contact lost, or closing): stop the controllers now. */
  onDeposed(reason: string): void;
  /** Nodes with a live agent session on this manager, published in its manager key. */
  liveSessions?: () => string[];
  /** Every tick, what etcd says (the leader merges other managers' sessions into node liveness). */
  onView?: (view: ManagersView) => void;
  /**
   * How a follower probes the leader's listener (`addr`). @default a TCP connect (probeListener)
   * within 500 ms
   */
  probeLeader?: (addr: string) => Promise<ProbeResult>;
  /** Period of the follower's probe of the leader's listener; 0 turns the probe off. @default 100 */
  leaderProbeMs?: number;
}

/** Keepalive tries per tick, each on the next etcd member the client picks. */
const KEEPALIVE_ATTEMPTS = 3;

type State = { kind: "follower" } | { kind: "leader"; fence: Fence; cancelWatchdog: () => void };

/**
 * Leader election among managers that share one etcd, like etcd's own concurrency package:
 * each manager keeps one lease alive (keepalive every tick) and holds its manager key on it;
 * the leader key is created only if absent (a compare on create revision 0) and on the lease, so
 * it vanishes when the leader dies. The leader key's create revision names the term: every
 * controller write compares it (the fence), so a deposed leader cannot change anything even
 * before it notices.
 *
 * States: follower → leader (won the create) → follower (watchdog: no confirmed keepalive for
 * ttl − margin; the leader key gone or another term's; close()).
 */
export class Leadership {
  private readonly client: Etcd3;
  private readonly prefix: string;
  private readonly ttlMs: number;
  private readonly tickMs: number;
  private readonly marginMs: number;
  /** `ttlMs`: the TTL etcd granted (it raises a request under its minimum), learned from each keepalive. */
  private lease: { handle: Lease; id: string; lastOkSentAt: number; ttlMs: number } | undefined;
  private state: State = { kind: "follower" };
  private published: string | undefined;
  private view: ManagersView = { leader: undefined, reachable: new Map() };
  private cancelTick = (): void => undefined;
  private watcher: Watcher | undefined;
  private closed = false;
  private ticking: Promise<void> = Promise.resolve();
  private observing: Promise<void> | undefined;
  /** The lease holding the leader key, as last read: what a follower revokes when the leader is dead. */
  private leaderLease: string | undefined;
  private readonly detector = new DeadLeaderDetector();
  private cancelProbe = (): void => undefined;

  constructor(private readonly opts: LeadershipOptions) {
    this.prefix = opts.prefix ?? "/baton-ha/";
    this.ttlMs = opts.ttlMs ?? 1000;
    this.tickMs = opts.tickMs ?? 250;
    this.marginMs = opts.safetyMarginMs ?? 400;
    this.client = newEtcdClient(opts.connection, {
      grpcOptions: ETCD_KEEPALIVE,
      // A call stuck on a partition must not outlive a tick by much.
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + Math.max(1000, this.tickMs * 2) }),
    }, { log: opts.log });
  }

  get leaderKey(): string {
    return `${this.prefix}leader`;
  }

  isLeader(): boolean {
    return this.state.kind === "leader";
  }

  /** The current term's fence, while leading. */
  fence(): Fence | undefined {
    return this.state.kind === "leader" ? this.state.fence : undefined;
  }

  /** The last view read from etcd (leader, reachable managers). */
  managers(): ManagersView {
    return this.view;
  }

  start(): void {
    this.schedule(0);
    this.scheduleProbe();
    // A deleted leader key (the leader's lease expired or was revoked) starts a campaign at once
    // instead of at the next tick.
    void this.client
      .watch()
      .key(this.leaderKey)
      .create()
      .then((w) => {
        if (this.closed) return void w.cancel().catch(() => undefined);
        this.watcher = w;
        w.on("delete", () => this.schedule(0));
        // A new leader: followers refresh their view (node ls, the probe's target) now, not at the next tick.
        w.on("put", () => this.schedule(0));
        w.on("error", () => undefined);
      })
      .catch((err: unknown) => this.opts.log.warn({ err }, "leader key watch not opened; the tick still campaigns"));
  }

  /** Steps down (revoking the lease, so another manager leads at once) and closes the client. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.cancelTick();
    this.cancelProbe();
    this.depose("this manager is stopping");
    await this.ticking;
    await this.observing;
    const lease = this.lease;
    this.lease = undefined;
    await Promise.race([lease?.handle.revoke().catch(() => undefined), new Promise((r) => setTimeout(r, 1000).unref())]);
    await this.watcher?.cancel().catch(() => undefined);
    this.client.close();
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    this.cancelTick();
    this.cancelTick = this.opts.clock.setTimer(ms, () => {
      this.ticking = this.ticking.then(() => this.tick()).catch((err: unknown) => this.opts.log.warn({ err }, "leadership tick failed"));
      void this.ticking.then(() => this.schedule(this.tickMs));
    });
  }

  /**
   * The keepalive runs every tick on its own; reading the view, campaigning and publishing run
   * beside it, one at a time: a call stuck on a dead etcd member must not delay the keepalive
   * that keeps the leader leading.
   */
  private async tick(): Promise<void> {
    if (this.closed) return;
    if (!(await this.keepLease()) || this.observing) return;
    this.observing = this.observe()
      .catch((err: unknown) => this.opts.log.warn({ err }, "leadership view not refreshed"))
      .finally(() => (this.observing = undefined));
  }

  private async observe(): Promise<void> {
    const { leader, managers } = await this.read();
    if (this.closed) return;
    this.view = { leader: leader ? (JSON.parse(leader.value.toString()) as { nodeId: string; addr: string }) : undefined, reachable: managers };
    this.leaderLease = leader && leader.lease !== "0" ? String(leader.lease) : undefined;
    if (this.state.kind === "leader" && Number(leader?.create_revision ?? 0) !== this.state.fence.revision) {
      this.depose(leader ? "another manager leads" : "the leader key is gone");
    }
    if (!leader) await this.campaign();
    else if (this.state.kind === "follower" && this.lease && String(leader.lease) === this.lease.id) {
      // Our own key: a campaign whose answer was lost (a timeout) did commit, or the watchdog
      // stopped us while the lease lived on. It is ours to lead: the same term, the same fence.
      this.becomeLeader({ key: this.leaderKey, revision: Number(leader.create_revision) });
    }
    await this.publish(managers.get(this.opts.self.nodeId));
    this.opts.onView?.(this.view);
  }

  /** Keeps (or grants) the lease; false when there is none this tick. */
  private async keepLease(): Promise<boolean> {
    const now = this.opts.clock.now();
    if (!this.lease) {
      try {
        const handle = this.client.lease(Math.max(1, Math.ceil(this.ttlMs / 1000)), { autoKeepAlive: false });
        handle.on("lost", () => undefined);
        const id = await withTimeout(handle.grant(), Math.max(1000, this.tickMs * 2));
        this.lease = { handle, id, lastOkSentAt: now, ttlMs: this.ttlMs };
        this.published = undefined;
        return true;
      } catch (err) {
        this.opts.log.debug({ err }, "no lease from etcd");
        return false;
      }
    }
    const lease = this.lease;
    let last: unknown;
    // A keepalive is safe to repeat, and the client picks the next etcd member for each call: a
    // dead or cut-off member costs one short attempt, not the lease.
    for (let attempt = 0; attempt < KEEPALIVE_ATTEMPTS; attempt++) {
      const sentAt = this.opts.clock.now();
      try {
        const res = await withTimeout(lease.handle.keepaliveOnce(), Math.max(300, this.tickMs));
        if (Number(res.TTL) <= 0) throw new Error("lease expired");
        lease.lastOkSentAt = sentAt;
        // etcd raises a TTL under its minimum (1.5 × its election timeout, rounded up to whole
        // seconds): the watchdog counts with what etcd granted, never with less than was asked.
        lease.ttlMs = Math.max(this.ttlMs, Number(res.TTL) * 1000);
        this.armWatchdog();
        return true;
      } catch (err) {
        last = err;
        if (isExpired(err)) break;
      }
    }
    const expired = isExpired(last);
    if (expired) {
      // Gone for sure: everything held on it is deleted. A new lease next tick.
      if (this.lease === lease) this.lease = undefined;
      this.depose("lease expired");
    }
    // Silence alone does not drop the lease: etcd may have kept it alive (keepalives that arrived
    // but whose answers were lost; a new raft leader extends every lease). Only etcd's answer says
    // it expired. A lease dropped here while alive would leave the leader key on it: nobody, not
    // even this manager, could lead until it expired (measured: a 2.6 s gap after the leader's
    // etcd member was killed). The watchdog has stopped the controllers meanwhile.
    this.opts.log.debug({ err: last }, "lease keepalive failed");
    return false;
  }

  /**
   * The leader stops leading `ttl − margin` after its last confirmed keepalive was *sent*: etcd
   * restarted the TTL when it received that keepalive, after the send, so the lease lives at least
   * until sentAt + ttl and nobody else can lead before the controllers have stopped.
   */
  private armWatchdog(): void {
    if (this.state.kind !== "leader" || !this.lease) return;
    this.state.cancelWatchdog();
    const ttlMs = this.lease.ttlMs;
    const due = this.lease.lastOkSentAt + ttlMs - this.marginMs - this.opts.clock.now();
    this.state.cancelWatchdog = this.opts.clock.setTimer(due, () => this.depose(`no keepalive confirmed by etcd for ${ttlMs - this.marginMs} ms`));
  }

  private async read(): Promise<{ leader: IKeyValue | undefined; managers: Map<string, ManagerRecord> }> {
    const res = await this.client.getAll().prefix(this.prefix).exec();
    let leader: IKeyValue | undefined;
    const managers = new Map<string, ManagerRecord>();
    for (const kv of res.kvs) {
      const key = kv.key.toString();
      if (key === this.leaderKey) leader = kv;
      else if (key.startsWith(`${this.prefix}managers/`)) {
        const rec = JSON.parse(kv.value.toString()) as ManagerRecord;
        managers.set(rec.nodeId, rec);
      }
    }
    return { leader, managers };
  }

  private async campaign(): Promise<void> {
    const lease = this.lease;
    if (!lease || this.state.kind === "leader") return;
    const value = JSON.stringify({ nodeId: this.opts.self.nodeId, addr: this.opts.self.addr });
    const res = await this.client.if(this.leaderKey, "Create", "==", 0).then(this.client.put(this.leaderKey).value(value).lease(lease.id)).commit();
    if (!res.succeeded || this.closed || this.lease !== lease) return;
    // The key was created by this transaction: its create revision is the transaction's revision.
    this.becomeLeader({ key: this.leaderKey, revision: Number(res.header.revision) });
  }

  private becomeLeader(fence: Fence): void {
    this.state = { kind: "leader", fence, cancelWatchdog: () => undefined };
    this.armWatchdog();
    this.view = { ...this.view, leader: { nodeId: this.opts.self.nodeId, addr: this.opts.self.addr } };
    this.opts.log.info({ term: fence.revision }, "this manager is the leader");
    this.opts.onElected(fence);
  }

  /** Writes this manager's key (on the lease) when it is missing or its sessions changed. */
  private async publish(current: ManagerRecord | undefined): Promise<void> {
    const lease = this.lease;
    if (!lease) return;
    const rec: ManagerRecord = { nodeId: this.opts.self.nodeId, addr: this.opts.self.addr, sessions: (this.opts.liveSessions?.() ?? []).sort() };
    const value = JSON.stringify(rec);
    if (current && value === this.published && JSON.stringify(current) === value) return;
    await this.client.put(`${this.prefix}managers/${rec.nodeId}`).value(value).lease(lease.id).exec();
    this.published = value;
    this.view.reachable.set(rec.nodeId, rec);
  }

  /**
   * A follower probes the leader's listener every `leaderProbeMs`. A kill -9 leaves the leader's
   * lease alive in etcd for its whole TTL (2 s with etcd's default timings), but its port refuses
   * connections at once: after a few refusals (DeadLeaderDetector: only once the listener was seen
   * accepting in this term, and only for ECONNREFUSED, never a timeout), the follower revokes the
   * dead leader's lease — any etcd client may revoke a lease by id — and the leader key goes with
   * it. Safety does not rest on this: a live leader revoked by mistake loses its fence (its writes
   * are refused NOT_LEADER) and campaigns again like everyone.
   */
  private scheduleProbe(): void {
    const period = this.opts.leaderProbeMs ?? 100;
    if (this.closed || period <= 0) return;
    this.cancelProbe = this.opts.clock.setTimer(period, () => {
      void this.probeLeader()
        .catch((err: unknown) => this.opts.log.debug({ err }, "leader probe failed"))
        .finally(() => this.scheduleProbe());
    });
  }

  private async probeLeader(): Promise<void> {
    const leader = this.view.leader;
    const leaseId = this.leaderLease;
    if (this.state.kind === "leader" || !leader || !leaseId || leader.nodeId === this.opts.self.nodeId) return;
    const result = await (this.opts.probeLeader ?? ((addr) => probeListener(addr, 500)))(leader.addr);
    if (this.closed || this.leaderLease !== leaseId || !this.detector.observe(leaseId, result)) return;
    this.opts.log.warn({ leader: leader.nodeId, addr: leader.addr, lease: leaseId }, "the leader's listener refuses connections: its process is gone; revoking its lease");
    await this.client.leaseClient.leaseRevoke({ ID: leaseId }).catch((err: unknown) => this.opts.log.debug({ err }, "lease revoke failed (already gone?)"));
    this.schedule(0);
  }

  private depose(reason: string): void {
    if (this.state.kind !== "leader") return;
    const { fence } = this.state;
    this.state.cancelWatchdog();
    this.state = { kind: "follower" };
    this.opts.log.warn({ term: fence.revision, reason }, "this manager stopped leading");
    this.opts.onDeposed(reason);
  }
}

/** etcd said the lease is gone: its keepalive answer had TTL 0, or it does not know the lease (both are EtcdLeaseInvalidError in etcd3, whose `name` is plain "Error"). */
function isExpired(err: unknown): boolean {
  return err instanceof EtcdLeaseInvalidError || (err instanceof Error && err.message === "lease expired");
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer from etcd within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
