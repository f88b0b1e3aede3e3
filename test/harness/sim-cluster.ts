import { Manager } from "../../src/manager/manager.js";
import { createMemoryStore } from "../../src/store/memory/memory-store.js";
import type { CachedStore } from "../../src/store/cached-store.js";
import type { StoreEvent } from "../../src/store/store.js";
import { silentLogger } from "../../src/lib/log.js";
import type { AgentSession, Assignment, AssignmentChange } from "../../src/dispatcher/protocol.js";
import type { Node, NodeAvailability, Service, Task } from "../../src/model/objects.js";
import { isTerminal, taskStates, type TaskState } from "../../src/model/task-state.js";
import type { ServiceSpecInput } from "../../src/input/schemas.js";
import { FakeClock, settle } from "./fake-clock.js";
import { aService } from "./builders.js";

/** How a fake agent's tasks behave. Every delay runs on the cluster's FakeClock. */
export interface AgentBehaviour {
  /** From assigned to running (accepted, starting, running reported one by one). @default 0 */
  startDelayMs?: number;
  /** From being told to stop to reporting shutdown (a stop grace period). @default 0 */
  stopDelayMs?: number;
  /**
   * From running to ready (and healthy) for a task the agent watches (service ports, health
   * check, probes); an unwatched task is ready as it starts running, as the real agent says. @default 0
   */
  readyDelayMs?: number;
  resources?: Node["resources"];
  labels?: Record<string, string>;
}

const DEFAULT_RESOURCES: Node["resources"] = { cpus: 2, memoryBytes: 2 * 1024 ** 3 };

interface LocalTask {
  assignment: Assignment;
  phase: "starting" | "running" | "stopping";
  cancel?: () => void;
}

/**
 * An agent that runs nothing but obeys its assignments: an assigned task goes accepted →
 * starting → running, a task told to shut down (or be removed) reports shutdown. Lost, it
 * neither heartbeats nor hears nor reports anything, like a partitioned host.
 */
export class FakeAgent {
  private alive = false;
  private local = new Map<string, LocalTask>();
  private stopHeartbeat: (() => void) | undefined;
  private unsubscribe: (() => void) | undefined;
  private heartbeatPeriodMs = 1000;

  constructor(
    readonly nodeId: string,
    private session: AgentSession,
    private readonly clock: FakeClock,
    readonly behaviour: AgentBehaviour,
  ) {}

  get isAlive(): boolean {
    return this.alive;
  }

  /** Registers (again), heartbeats on the clock, and follows the assignment stream. */
  async join(): Promise<void> {
    const { heartbeatPeriodMs } = await this.session.register({
      nodeId: this.nodeId,
      hostname: this.nodeId,
      role: "worker",
      resources: this.behaviour.resources ?? DEFAULT_RESOURCES,
      drivers: ["process"],
      platform: { os: "linux", arch: "x64" },
      agentVersion: "sim",
    });
    this.heartbeatPeriodMs = heartbeatPeriodMs;
    this.alive = true;
    this.local.clear();
    this.scheduleHeartbeat();
    this.unsubscribe = this.session.assignments((c) => this.onChange(c));
  }

  /** The manager restarted: register with the new one and follow its assignments. */
  async reconnect(session: AgentSession): Promise<void> {
    this.lose();
    this.session = session;
    await this.join();
  }

  /** Stops heartbeats, assignments and reports; what it was doing is forgotten. */
  lose(): void {
    this.alive = false;
    this.stopHeartbeat?.();
    this.unsubscribe?.();
    for (const l of this.local.values()) l.cancel?.();
    this.local.clear();
  }

  /** Tasks this agent runs right now (observed running by it). */
  runningTaskIds(): string[] {
    return [...this.local.values()].filter((l) => l.phase === "running").map((l) => l.assignment.taskId);
  }

  /** The task exits by itself: exit 0 → complete, otherwise failed. */
  async exit(taskId: string, exitCode: number): Promise<void> {
    const l = this.local.get(taskId);
    if (!this.alive || !l || l.phase !== "running") return;
    this.local.delete(taskId);
    await this.report(taskId, exitCode === 0 ? "complete" : "failed", { exitCode, message: `exit ${exitCode}` });
  }

  private scheduleHeartbeat(): void {
    this.stopHeartbeat = this.clock.setTimer(this.heartbeatPeriodMs, () => {
      if (!this.alive) return;
      this.session.heartbeat().catch(() => undefined);
      this.scheduleHeartbeat();
    });
  }

  private onChange(c: AssignmentChange): void {
    if (!this.alive) return;
    if (c.type === "full") {
      const keep = new Set(c.assignments.map((a) => a.taskId));
      for (const [id, l] of this.local) if (!keep.has(id)) this.forget(id, l);
      for (const a of c.assignments) this.onAssignment(a);
    } else {
      for (const id of c.removes) {
        const l = this.local.get(id);
        if (l) this.forget(id, l);
      }
      for (const a of c.upserts) this.onAssignment(a);
    }
  }

  private forget(id: string, l: LocalTask): void {
    l.cancel?.();
    this.local.delete(id);
  }

  private onAssignment(a: Assignment): void {
    const l = this.local.get(a.taskId);
    if (isTerminal(a.state)) {
      if (l) this.forget(a.taskId, l);
      return;
    }
    if (a.desiredState !== "running") {
      if (l?.phase === "stopping") return;
      l?.cancel?.();
      const entry: LocalTask = { assignment: a, phase: "stopping" };
      this.local.set(a.taskId, entry);
      entry.cancel = this.after(this.behaviour.stopDelayMs ?? 0, () => {
        this.local.delete(a.taskId);
        return this.report(a.taskId, "shutdown", { message: "stopped" });
      });
      return;
    }
    if (l) {
      l.assignment = a;
      return;
    }
    const entry: LocalTask = { assignment: a, phase: "starting" };
    this.local.set(a.taskId, entry);
    // Report every state after the one the manager has, one report each.
    const from = taskStates.indexOf(a.state);
    const steps = (["accepted", "starting", "running"] as const).filter((s) => taskStates.indexOf(s) > from);
    const watched = !!(a.spec.targets?.length || a.spec.health || a.spec.probes);
    entry.cancel = this.after(this.behaviour.startDelayMs ?? 0, async () => {
      for (const s of steps) {
        if (this.local.get(a.taskId) !== entry) return;
        await this.report(a.taskId, s, { message: s, ...(s === "running" ? { ready: !watched, ...(a.spec.health ? { health: "starting" as const } : {}) } : {}) });
      }
      if (this.local.get(a.taskId) !== entry) return;
      entry.phase = "running";
      if (watched && steps.includes("running")) {
        entry.cancel = this.after(this.behaviour.readyDelayMs ?? 0, async () => {
          if (this.local.get(a.taskId) === entry) await this.report(a.taskId, "running", { message: "ready", ready: true, ...(a.spec.health ? { health: "healthy" as const } : {}) });
        });
      }
    });
  }

  private after(ms: number, fn: () => Promise<void>): () => void {
    let cancelled = false;
    const run = (): void => {
      if (!cancelled && this.alive) fn().catch(() => undefined);
    };
    if (ms <= 0) {
      queueMicrotask(run);
      return () => void (cancelled = true);
    }
    const cancel = this.clock.setTimer(ms, run);
    return () => {
      cancelled = true;
      cancel();
    };
  }

  /** Report sequence numbers: increasing, like a real agent's. */
  private seq = 0;

  private report(taskId: string, state: TaskState, extra: { message: string; exitCode?: number; ready?: boolean; health?: "starting" | "healthy" }): Promise<void> {
    if (!this.alive) return Promise.resolve();
    return this.session.reportStatus([{ taskId, state, timestamp: this.clock.now(), seq: (this.seq = Math.max(this.seq + 1, this.clock.now() * 1000)), ...extra }]);
  }
}

export interface SimOptions {
  heartbeatPeriodMs?: number;
  /** Called with every batch of store events, in order (before the test looks). */
  onEvents?: (events: StoreEvent[], cluster: SimCluster) => void;
}

/**
 * A whole cluster in one process on a FakeClock: memory store, the real Manager (dispatcher,
 * orchestrator, scheduler) and fake agents on in-process sessions.
 */
export class SimCluster {
  readonly clock = new FakeClock();
  readonly store: CachedStore;
  manager: Manager;
  readonly agents = new Map<string, FakeAgent>();
  readonly heartbeatPeriodMs: number;
  private serviceSeq = 0;
  private readonly cancelWatch: () => void;

  constructor(opts: SimOptions = {}) {
    this.heartbeatPeriodMs = opts.heartbeatPeriodMs ?? 1000;
    this.store = createMemoryStore({ clock: this.clock });
    this.manager = new Manager({ store: this.store, clock: this.clock, log: silentLogger(), heartbeatPeriodMs: this.heartbeatPeriodMs });
    const onEvents = opts.onEvents;
    const w = onEvents ? this.store.watch(0, (events) => onEvents(events, this)) : undefined;
    this.cancelWatch = () => w?.cancel();
    this.manager.start();
  }

  /** The dispatcher's default grace: 3 periods + 2 s. */
  get heartbeatGraceMs(): number {
    return this.heartbeatPeriodMs * 3 + 2000;
  }

  async addNode(nodeId: string, behaviour: AgentBehaviour = {}): Promise<FakeAgent> {
    const agent = new FakeAgent(nodeId, this.manager.dispatcher.localSession(), this.clock, behaviour);
    this.agents.set(nodeId, agent);
    await agent.join();
    if (behaviour.labels) {
      await this.store.update((tx) => {
        const n = tx.get("nodes", nodeId)!;
        tx.update("nodes", { ...n, labels: behaviour.labels! });
      });
    }
    await this.quiesce();
    return agent;
  }

  /**
   * The manager process restarts: controllers and dispatcher stop, a new Manager starts on the
   * same store (all state is there), and every live agent registers with it again.
   */
  async restartManager(): Promise<void> {
    this.manager.stop();
    this.manager = new Manager({ store: this.store, clock: this.clock, log: silentLogger(), heartbeatPeriodMs: this.heartbeatPeriodMs });
    this.manager.start();
    for (const a of this.agents.values()) if (a.isAlive) await a.reconnect(this.manager.dispatcher.localSession());
    await this.quiesce();
  }

  /** The node's agent goes silent; time passes until the dispatcher marks it down. */
  async loseNode(nodeId: string): Promise<void> {
    const agent = this.agents.get(nodeId);
    if (!agent?.isAlive) return;
    agent.lose();
    await this.advance(this.heartbeatGraceMs + 2 * this.heartbeatPeriodMs);
  }

  /** A lost node's agent comes back: registers again and follows its assignments. */
  async returnNode(nodeId: string): Promise<void> {
    const agent = this.agents.get(nodeId);
    if (!agent || agent.isAlive) return;
    await agent.join();
    await this.quiesce();
  }

  async setAvailability(nodeId: string, availability: NodeAvailability): Promise<void> {
    await this.store.update((tx) => {
      const n = tx.get("nodes", nodeId);
      if (n) tx.update("nodes", { ...n, availability });
    });
    await this.quiesce();
  }

  async createService(input: Partial<ServiceSpecInput>): Promise<Service> {
    const svc = aService({ name: `svc${++this.serviceSeq}`, ...input });
    const created = await this.store.update((tx) => tx.create("services", { id: svc.id, spec: svc.spec, specVersion: 1 }));
    await this.quiesce();
    return created;
  }

  async scale(serviceId: string, replicas: number): Promise<void> {
    await this.store.update((tx) => {
      const s = tx.get("services", serviceId);
      if (s && s.spec.mode.kind === "replicated") tx.update("services", { ...s, spec: { ...s.spec, mode: { kind: "replicated", replicas } } });
    });
    await this.quiesce();
  }

  async removeService(serviceId: string): Promise<void> {
    await this.store.update((tx) => tx.delete("services", serviceId));
    await this.quiesce();
  }

  /** A task its agent runs exits by itself (exit 0: complete; otherwise failed). */
  async exitTask(taskId: string, exitCode: number): Promise<void> {
    const t = this.store.view((tx) => tx.get("tasks", taskId));
    const agent = t?.nodeId ? this.agents.get(t.nodeId) : undefined;
    await agent?.exit(taskId, exitCode);
    await this.quiesce();
  }

  /** Tasks some live agent is running, in a stable order (for picking one by index). */
  runningTasks(): Task[] {
    const ids = new Set([...this.agents.values()].filter((a) => a.isAlive).flatMap((a) => a.runningTaskIds()));
    return this.tasks()
      .filter((t) => ids.has(t.id) && t.desiredState === "running" && t.status.state === "running")
      .sort((a, b) => (a.serviceName < b.serviceName ? -1 : a.serviceName > b.serviceName ? 1 : a.slot - b.slot || (a.nodeId! < b.nodeId! ? -1 : 1)));
  }

  async advance(ms: number): Promise<void> {
    await this.clock.advance(ms);
    await this.quiesce();
  }

  /** Lets every controller and agent finish what the last change started (no time passes). */
  async quiesce(): Promise<void> {
    let stable = 0;
    for (let i = 0; i < 200 && stable < 3; i++) {
      const rev = this.store.revision();
      await settle();
      await this.manager.orchestrator?.idle();
      await this.manager.scheduler?.idle();
      stable = this.store.revision() === rev ? stable + 1 : 0;
    }
  }

  /** Lets time pass in heartbeat-sized steps until no restart delay or stop is outstanding. */
  async converge(totalMs = 30_000): Promise<void> {
    for (let t = 0; t < totalMs; t += this.heartbeatPeriodMs) await this.advance(this.heartbeatPeriodMs);
  }

  services(): Service[] {
    return this.store.view((tx) => tx.list("services"));
  }

  nodes(): Node[] {
    return this.store.view((tx) => tx.list("nodes"));
  }

  tasks(): Task[] {
    return this.store.view((tx) => tx.list("tasks"));
  }

  stop(): void {
    for (const a of this.agents.values()) a.lose();
    this.manager.stop();
    this.cancelWatch();
    this.store.close();
  }
}
