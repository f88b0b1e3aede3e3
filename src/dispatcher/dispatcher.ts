import type { Clock } from "../lib/clock.js";
import { BatonError } from "../lib/errors.js";
import type { Logger } from "../lib/log.js";
import type { FileReference, Node, Task } from "../model/objects.js";
import { canTransition, isAgentState, isTerminal } from "../model/task-state.js";
import type { ReadTx, Store, StoreEvent, Watch, WriteTx } from "../store/store.js";
import { EndpointsFeed } from "./endpoints.js";
import type { AgentSession, Assignment, AssignmentChange, EndpointsChange, NetworkAttachment, NodeDescription, TaskFile, TaskStatusUpdate } from "./protocol.js";

/**
 * A node changing role (`baton node promote|demote`) starts its Baton again in place: its tasks
 * run on, but it is silent while it does (a promoted node also adds its etcd member). It is not
 * called down, and its tasks not replaced, unless that takes longer than this.
 */
export const ROLE_CHANGE_GRACE_MS = 60_000;

export interface DispatcherDeps {
  store: Store;
  /**
   * Where the leader's decisions (marking nodes down, orphaning their tasks) are written: with
   * several managers, the store fenced on the leadership's term. @default store
   */
  decisions?: Store;
  clock: Clock;
  log: Logger;
  /** @default 500 */
  heartbeatPeriodMs?: number;
  /**
   * Silence after which a node is down and its tasks are replaced. @default 3 periods (1.5 s):
   * with placement and a start, a lost node's replicas run elsewhere within 3 s.
   */
  heartbeatGraceMs?: number;
  /** Opens secrets for the assignments that need them; absent: secrets are not delivered. */
  openSecret?: OpenSecret;
}

/** Opens a secret's sealed data (the manager's SecretBox, src/secrets/data-key.ts). */
export type OpenSecret = (id: string, sealed: string) => Buffer;

/**
 * The files a task needs, with their contents, while it should run (a task being stopped needs
 * none). A reference whose object is gone (the service moved on to another secret and this old
 * task still runs) is left out: the task already has its files.
 */
function filesOf(tx: ReadTx, t: Task, openSecret: OpenSecret | undefined, log: Logger): TaskFile[] | undefined {
  if (t.desiredState !== "running" || isTerminal(t.status.state)) return undefined;
  const files: TaskFile[] = [];
  const owner = (r: FileReference) => ({ ...(r.uid !== undefined ? { uid: r.uid } : {}), ...(r.gid !== undefined ? { gid: r.gid } : {}) });
  for (const r of t.spec.secrets ?? []) {
    const s = tx.get("secrets", r.id);
    if (!s || !openSecret) {
      log.warn({ taskId: t.id, secretId: r.id }, s ? "no secrets data key: a secret cannot be delivered" : "a task's secret is gone: not delivered");
      continue;
    }
    try {
      files.push({ kind: "secret", name: r.name, target: r.target, mode: r.mode, ...owner(r), data: openSecret(s.id, s.sealed).toString("base64") });
    } catch (err) {
      log.error({ taskId: t.id, secretId: r.id, err }, "a task's secret cannot be opened: not delivered");
    }
  }
  for (const r of t.spec.configs ?? []) {
    const c = tx.get("configs", r.id);
    if (!c) {
      log.warn({ taskId: t.id, configId: r.id }, "a task's config is gone: not delivered");
      continue;
    }
    files.push({ kind: "config", name: r.name, target: r.target, mode: r.mode, ...owner(r), data: c.data });
  }
  return files.length ? files : undefined;
}

/** The task's networks as its node needs them (a network removed meanwhile is left out). */
const attachmentsOf = (tx: ReadTx, t: Task): NetworkAttachment[] =>
  (t.spec.networks ?? []).flatMap((id) => {
    const n = tx.get("networks", id);
    return n ? [{ id: n.id, name: n.name, internal: n.internal }] : [];
  });

const toAssignment = (tx: ReadTx, t: Task, files?: TaskFile[]): Assignment => ({
  taskId: t.id,
  serviceId: t.serviceId,
  serviceName: t.serviceName,
  slot: t.slot,
  nodeId: t.nodeId!,
  desiredState: t.desiredState,
  state: t.status.state,
  spec: t.spec,
  ...(t.status.port !== undefined ? { port: t.status.port } : {}),
  ...(files ? { files } : {}),
  ...(t.spec.networks?.length ? { networks: attachmentsOf(tx, t) } : {}),
  ...(tx.get("services", t.serviceId)?.spec.endpoint.mode === "dnsrr" ? { dnsrr: true } : {}),
});

/** Tasks an agent must hear about: on its node, past the scheduler. */
const isAssignedTo = (t: Task, nodeId: string): boolean => t.nodeId === nodeId && t.status.state !== "new" && t.status.state !== "pending";

/**
 * Holds one session per agent: registration, heartbeats (kept in memory; only up/down
 * transitions are written), assignment streams, and batched status writes. A node silent past
 * the grace period is marked down and its unfinished tasks orphaned, so the orchestrator
 * replaces them elsewhere.
 */
export class Dispatcher {
  private readonly lastSeen = new Map<string, number>();
  private readonly streams = new Map<string, Set<(c: AssignmentChange) => void>>();
  private watch: Watch | undefined;
  private cancelTick: (() => void) | undefined;
  readonly heartbeatPeriodMs: number;
  readonly heartbeatGraceMs: number;
  private readonly endpoints: EndpointsFeed;
  private readonly volumeStreams = new Set<(names: string[]) => void>();
  private readonly attachableStreams = new Set<(networks: NetworkAttachment[]) => void>();
  /** The set last sent on a change (only onEvents sets it: every stream has seen it). */
  private lastAttachable: string | undefined;
  private pendingStatus: { updates: TaskStatusUpdate[]; nodeId: string | undefined; resolve: () => void; reject: (err: unknown) => void }[] = [];
  private flushScheduled = false;

  constructor(private readonly deps: DispatcherDeps) {
    this.heartbeatPeriodMs = deps.heartbeatPeriodMs ?? 500;
    this.heartbeatGraceMs = deps.heartbeatGraceMs ?? this.heartbeatPeriodMs * 3;
    this.endpoints = new EndpointsFeed((fn) => deps.store.view(fn));
  }

  /** Sessions: what every manager serves (registrations, status, assignment and endpoint streams). */
  start(): void {
    // The set as of the revision the watch starts after: later events are compared with it.
    this.lastAttachable = JSON.stringify(this.attachable());
    this.watch = this.deps.store.watch(this.deps.store.revision(), (events) => this.onEvents(events));
  }

  /**
   * Node liveness decisions: the leader's only. `extraGraceMs`: more time for every node before
   * the first verdict (a new term of several managers: see Manager.lead).
   */
  startLiveness(extraGraceMs = 0): void {
    this.stopLiveness();
    // After a (re)start or a new term every known node gets the full grace period to come back.
    const now = this.deps.clock.now();
    this.deps.store.view((tx) => {
      for (const n of tx.list("nodes")) if (n.status.state === "ready") this.lastSeen.set(n.id, Math.max(this.lastSeen.get(n.id) ?? 0, now + extraGraceMs));
    });
    this.scheduleTick();
  }

  stopLiveness(): void {
    this.cancelTick?.();
    this.cancelTick = undefined;
  }

  stop(): void {
    this.watch?.cancel();
    this.stopLiveness();
    this.streams.clear();
  }

  /** Nodes heard within the grace period here (a follower publishes them for the leader). */
  liveNodes(): string[] {
    const now = this.deps.clock.now();
    return [...this.lastSeen].filter(([, at]) => now - at <= this.heartbeatGraceMs).map(([id]) => id);
  }

  /** Nodes another manager heard lately (its sessions): they count as heard now. */
  noteSeen(nodeIds: Iterable<string>): void {
    const now = this.deps.clock.now();
    for (const id of nodeIds) this.lastSeen.set(id, Math.max(this.lastSeen.get(id) ?? 0, now));
  }

  /**
   * Nodes whose sessions were on a manager just lost: they count as heard `allowanceMs` from now,
   * the time their agents need to find another manager and be published by it. Their grace
   * period starts after that.
   */
  allowReconnect(nodeIds: Iterable<string>, allowanceMs: number): void {
    const until = this.deps.clock.now() + allowanceMs;
    for (const id of nodeIds) this.lastSeen.set(id, Math.max(this.lastSeen.get(id) ?? 0, until));
  }

  /** An in-process session, as `baton up` uses; remote transports wrap the same calls. */
  localSession(): AgentSession {
    let nodeId: string | undefined;
    const unsubs: (() => void)[] = [];
    return {
      register: async (desc) => {
        nodeId = desc.nodeId;
        await this.register(desc);
        return { heartbeatPeriodMs: this.heartbeatPeriodMs };
      },
      heartbeat: async () => {
        if (!nodeId) throw new BatonError("BAD_REQUEST", "heartbeat before register");
        await this.heartbeat(nodeId);
      },
      assignments: (onChange) => {
        if (!nodeId) throw new BatonError("BAD_REQUEST", "assignments before register");
        const off = this.subscribe(nodeId, onChange);
        unsubs.push(off);
        return off;
      },
      reportStatus: (updates) => {
        if (!nodeId) return Promise.reject(new BatonError("BAD_REQUEST", "status before register"));
        return this.reportStatus(updates, nodeId);
      },
      endpoints: (onChange) => {
        const off = this.subscribeEndpoints(onChange);
        unsubs.push(off);
        return off;
      },
      volumes: (onChange) => {
        const off = this.subscribeVolumes(onChange);
        unsubs.push(off);
        return off;
      },
      attachableNetworks: (onChange) => {
        const off = this.subscribeAttachable(onChange);
        unsubs.push(off);
        return off;
      },
      close: () => {
        for (const u of unsubs) u();
      },
    };
  }

  async register(desc: NodeDescription): Promise<void> {
    const now = this.deps.clock.now();
    this.lastSeen.set(desc.nodeId, now);
    await this.deps.store.update((tx) => {
      const cur = tx.get("nodes", desc.nodeId);
      const status: Node["status"] = { state: "ready", message: "", heartbeatAt: now, ...(desc.address ? { address: desc.address } : {}) };
      const fields = { hostname: desc.hostname, role: desc.role, resources: desc.resources, drivers: desc.drivers, ...(desc.limits ? { limits: desc.limits } : {}), platform: desc.platform, agentVersion: desc.agentVersion, status };
      if (cur) {
        const next: Node = { ...cur, ...fields };
        // The node took the role it was promoted or demoted to.
        if (next.desiredRole === next.role) delete next.desiredRole;
        // An agent that no longer reports limits (downgraded) enforces none.
        if (!desc.limits) delete next.limits;
        tx.update("nodes", next);
      } else tx.create("nodes", { id: desc.nodeId, availability: "active", labels: {}, ...fields });
    });
    this.deps.log.info({ nodeId: desc.nodeId, hostname: desc.hostname }, "node registered");
  }

  async heartbeat(nodeId: string): Promise<void> {
    this.lastSeen.set(nodeId, this.deps.clock.now());
    const node = this.deps.store.view((tx) => tx.get("nodes", nodeId));
    if (node && node.status.state !== "ready") {
      await this.deps.store.update((tx) => {
        const n = tx.get("nodes", nodeId);
        if (n) tx.update("nodes", { ...n, status: { ...n.status, state: "ready", message: "", heartbeatAt: this.deps.clock.now() } });
      });
    }
  }

  /** Every service's endpoints (the mesh's input): the full set first, then changes. */
  subscribeEndpoints(onChange: (c: EndpointsChange) => void): () => void {
    return this.endpoints.subscribe(onChange);
  }

  /** Every volume name: the whole set now, then after each batch of changes that creates or deletes one. */
  subscribeVolumes(onChange: (names: string[]) => void): () => void {
    this.volumeStreams.add(onChange);
    onChange(this.volumeNames());
    return () => void this.volumeStreams.delete(onChange);
  }

  /** The attachable networks: the whole set now, then after each batch of network changes. */
  subscribeAttachable(onChange: (networks: NetworkAttachment[]) => void): () => void {
    this.attachableStreams.add(onChange);
    onChange(this.attachable());
    return () => void this.attachableStreams.delete(onChange);
  }

  private attachable(): NetworkAttachment[] {
    return this.deps.store
      .view((tx) => tx.list("networks").filter((n) => n.attachable))
      .map((n) => ({ id: n.id, name: n.name, internal: n.internal }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  private volumeNames(): string[] {
    return this.deps.store.view((tx) => tx.list("volumes").map((v) => v.name)).sort();
  }

  /** The node said it leaves: it is down at once (no grace to wait out) and its tasks are replaced. */
  async leave(nodeId: string): Promise<void> {
    this.lastSeen.delete(nodeId);
    // The node's own request, served by whichever manager holds its session: not fenced.
    await this.markDown([nodeId], () => "left the cluster", this.deps.store);
    this.deps.log.info({ nodeId }, "node left the cluster");
  }

  subscribe(nodeId: string, onChange: (c: AssignmentChange) => void): () => void {
    let set = this.streams.get(nodeId);
    if (!set) this.streams.set(nodeId, (set = new Set()));
    set.add(onChange);
    const full = this.deps.store.view((tx) => tx.tasksOfNode(nodeId).filter((t) => isAssignedTo(t, nodeId)).map((t) => this.assignmentOf(tx, t)));
    onChange({ type: "full", assignments: full });
    return () => set.delete(onChange);
  }

  /**
   * Batches the reports of one turn of the event loop into one store transaction. Each caller's
   * promise settles with the write that carried its updates.
   */
  reportStatus(updates: TaskStatusUpdate[], nodeId?: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pendingStatus.push({ updates, nodeId, resolve, reject });
      if (this.flushScheduled) return;
      this.flushScheduled = true;
      queueMicrotask(() => void this.flushStatus());
    });
  }

  private async flushStatus(): Promise<void> {
    this.flushScheduled = false;
    const batch = this.pendingStatus;
    this.pendingStatus = [];
    try {
      // Times are the manager's: hosts' clocks differ, and restart backoff, liveness and update
      // monitoring must not depend on an agent's. A report applies only to the reporting node's tasks.
      const now = this.deps.clock.now();
      const all = batch.flatMap(({ updates, nodeId }) => updates.map((u) => ({ u, nodeId })));
      // A report writes at most its task: where a transaction's size is limited (etcd), a big
      // batch (an agent reconnecting with hundreds of tasks) goes in chunks. Each report stands on
      // its own, and one applied twice (a caller retrying after a failed chunk) is ignored by its seq.
      const chunk = Math.max(1, this.deps.store.maxOpsPerTxn ?? all.length);
      for (let from = 0; from < all.length; from += chunk) {
        await this.deps.store.update((tx) => {
          for (const { u, nodeId } of all.slice(from, from + chunk)) applyStatus(tx, { ...u, timestamp: now }, nodeId);
        });
      }
      for (const b of batch) b.resolve();
    } catch (err) {
      for (const b of batch) b.reject(err);
    }
  }

  /** A task as its node gets it: with the files it needs, and only its node ever gets those. */
  private assignmentOf(tx: ReadTx, t: Task): Assignment {
    return toAssignment(tx, t, t.spec.secrets || t.spec.configs ? filesOf(tx, t, this.deps.openSecret, this.deps.log) : undefined);
  }

  private onEvents(events: StoreEvent[]): void {
    this.endpoints.onEvents(events);
    if (this.volumeStreams.size && events.some((e) => e.kind === "volumes" && e.op !== "update")) {
      const names = this.volumeNames();
      for (const s of this.volumeStreams) s(names);
    }
    if (this.attachableStreams.size && events.some((e) => e.kind === "networks")) {
      const nets = this.attachable();
      // Sent when the set itself changed, not at every network change.
      const key = JSON.stringify(nets);
      if (key !== this.lastAttachable) for (const s of this.attachableStreams) s(nets);
      this.lastAttachable = key;
    }
    if (this.streams.size === 0) return;
    const perNode = new Map<string, { upserts: Assignment[]; removes: string[] }>();
    const bucket = (nodeId: string): { upserts: Assignment[]; removes: string[] } => {
      let b = perNode.get(nodeId);
      if (!b) perNode.set(nodeId, (b = { upserts: [], removes: [] }));
      return b;
    };
    // One read view for the whole batch (an assignment reads the task's networks, service and files).
    this.deps.store.view((tx) => {
      for (const e of events) {
        if (e.kind !== "tasks") continue;
        const t = e.object as Task;
        if (!t.nodeId || !this.streams.has(t.nodeId)) continue;
        if (e.op === "delete") bucket(t.nodeId).removes.push(t.id);
        else if (isAssignedTo(t, t.nodeId)) bucket(t.nodeId).upserts.push(this.assignmentOf(tx, t));
      }
    });
    for (const [nodeId, change] of perNode) {
      for (const fn of this.streams.get(nodeId) ?? []) fn({ type: "update", ...change });
    }
  }

  private scheduleTick(): void {
    const due = this.deps.clock.now() + this.heartbeatPeriodMs;
    this.cancelTick = this.deps.clock.setTimer(this.heartbeatPeriodMs, () => {
      // A tick that fires late means this manager was stalled (a busy event loop, a paused VM):
      // heartbeats could not be received meanwhile, so nobody's silence counts. Everyone gets a
      // fresh grace period instead of being marked down for the manager's own stall.
      const lag = this.deps.clock.now() - due;
      if (lag > this.heartbeatPeriodMs) {
        const now = this.deps.clock.now();
        for (const [id, at] of this.lastSeen) this.lastSeen.set(id, Math.max(at, now));
        this.deps.log.warn({ lagMs: lag }, "dispatcher stalled; node heartbeat deadlines reset");
      }
      this.checkLiveness()
        .catch((err: unknown) => this.deps.log.error({ err }, "node liveness check failed"))
        .finally(() => {
          if (this.cancelTick) this.scheduleTick();
        });
    });
  }

  /** Marks silent nodes down and orphans their unfinished tasks. */
  async checkLiveness(): Promise<void> {
    const now = this.deps.clock.now();
    // A registration another manager wrote counts as heard (a node that just became a manager
    // registers with its own dispatcher first); capped at now, as that manager's clock may run ahead.
    const heard = (n: Node): number => Math.max(this.lastSeen.get(n.id) ?? 0, Math.min(now, n.status.heartbeatAt));
    const { late, unfinished } = this.deps.store.view((tx) => {
      const nodes = tx.list("nodes");
      return {
        late: nodes.filter((n) => n.status.state === "ready" && now - heard(n) > (n.desiredRole ? Math.max(this.heartbeatGraceMs, ROLE_CHANGE_GRACE_MS) : this.heartbeatGraceMs)),
        // A down node with tasks left to orphan: a chunked markDown that failed midway.
        unfinished: nodes.filter((n) => n.status.state === "down" && tx.tasksOfNode(n.id).some(isOrphanable)),
      };
    });
    if (unfinished.length) await this.markDown(unfinished.map((n) => n.id), () => "");
    if (late.length === 0) return;
    const silentFor = new Map(late.map((n) => [n.id, now - heard(n)]));
    await this.markDown(late.map((n) => n.id), (id) => `no heartbeat for ${Math.round((silentFor.get(id) ?? 0) / 1000)} s`);
    for (const n of late) this.deps.log.warn({ nodeId: n.id, hostname: n.hostname }, "node down: missed heartbeats");
  }

  /** Marks nodes down and orphans their unfinished tasks, so the orchestrator replaces them elsewhere. */
  private async markDown(nodeIds: string[], message: (nodeId: string) => string, store = this.deps.decisions ?? this.deps.store): Promise<void> {
    const now = this.deps.clock.now();
    // The nodes first, with as many of their tasks as fit: nothing more is placed on a down node,
    // so the replacements of tasks orphaned in a later chunk go elsewhere. Where a transaction's
    // size is limited (etcd: hundreds of tasks on one node), the rest follow in chunks; if one
    // fails, the next liveness check finds the down node with tasks left and finishes.
    const budget = Math.max(1, store.maxOpsPerTxn ?? Infinity);
    let first = true;
    for (let done = false; !done; first = false) {
      done = await store.update((tx) => {
        let room = budget;
        if (first) {
          for (const id of nodeIds) {
            const n = tx.get("nodes", id);
            if (!n || n.status.state === "down") continue;
            tx.update("nodes", { ...n, status: { ...n.status, state: "down", message: message(id) } });
            room--;
          }
        }
        for (const id of nodeIds) {
          for (const t of tx.tasksOfNode(id)) {
            if (!isOrphanable(t)) continue;
            if (room <= 0) return false;
            tx.update("tasks", { ...t, status: { ...t.status, state: "orphaned", timestamp: now, message: "node down" } });
            room--;
          }
        }
        return true;
      });
    }
  }
}

/** A task a down node's agent may still hold: the orchestrator replaces it once orphaned. */
const isOrphanable = (t: Task): boolean => !isTerminal(t.status.state) && (isAgentState(t.status.state) || t.status.state === "assigned");

/**
 * Applies one agent report (of a task assigned to `fromNode`, when given). Reports of a task apply in sequence order only (a late report never
 * overwrites a newer one); a state never goes backwards; within a state only details change.
 */
export function applyStatus(tx: WriteTx, u: TaskStatusUpdate, fromNode?: string): void {
  const t = tx.get("tasks", u.taskId);
  if (!t) return;
  if (fromNode !== undefined && t.nodeId !== fromNode) return;
  if (t.status.seq !== undefined && u.seq <= t.status.seq) return;
  const sameState = t.status.state === u.state;
  if (!sameState && !canTransition(t.status.state, u.state)) return;
  if (sameState && isTerminal(u.state)) return;
  const status: Task["status"] = { ...t.status, state: u.state, timestamp: sameState ? t.status.timestamp : u.timestamp, message: u.message, seq: u.seq };
  if (u.err !== undefined) status.err = u.err;
  if (u.exitCode !== undefined) status.exitCode = u.exitCode;
  if (u.signal !== undefined) status.signal = u.signal;
  if (u.pid !== undefined) status.pid = u.pid;
  if (u.containerId !== undefined) status.containerId = u.containerId;
  if (u.port !== undefined) status.port = u.port;
  if (u.health !== undefined) status.health = u.health;
  if (u.ports !== undefined) status.ports = u.ports;
  if (u.ready !== undefined) status.ready = u.ready;
  if (u.traffic !== undefined) status.traffic = u.traffic;
  if (u.state === "running" && status.startedAt === undefined) status.startedAt = u.timestamp;
  tx.update("tasks", { ...t, status });
}
