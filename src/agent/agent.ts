import { existsSync, mkdirSync, readFileSync, writeFileSync, readdirSync } from "node:fs";
import { cpus, hostname, totalmem, platform, arch } from "node:os";
import { join } from "node:path";
import type { Clock } from "../lib/clock.js";
import { newId } from "../lib/ids.js";
import type { Logger } from "../lib/log.js";
import type { AgentSession, Assignment, AssignmentChange, TaskStatusUpdate } from "../dispatcher/protocol.js";
import { isTerminal } from "../model/task-state.js";
import pLimit from "p-limit";
import { BATON_VERSION } from "../lib/version.js";
import type { Driver } from "./drivers/driver.js";
import { TaskRunner, type ExecutorDeps } from "./executor.js";
import { LogFiles } from "./logs/log-files.js";
import { PortAllocator } from "./ports.js";
import { TaskRecords, type TaskRecord } from "./task-records.js";

/**
 * Task starts in flight at once. A spawn blocks the event loop for a moment; 1,000 at once would
 * starve heartbeats and the API. 8 keeps a 30-replica create as fast as unbounded.
 */
const START_CONCURRENCY = 8;
/** How often log files are checked against their cap. */
const LOG_ROTATE_CHECK_MS = 2000;

export interface AgentDeps {
  session: AgentSession;
  driver: Driver;
  clock: Clock;
  log: Logger;
  dataDir: string;
  role?: "manager" | "worker";
}

/**
 * Runs the tasks assigned to this node, re-adopts the ones that survived a restart, and reports
 * every state change through its session (batched per turn of the event loop).
 */
export class Agent {
  readonly nodeId: string;
  readonly logs: LogFiles;
  private readonly records: TaskRecords;
  private readonly runners = new Map<string, TaskRunner>();
  private readonly adoptable = new Map<string, TaskRecord>();
  private readonly executorDeps: ExecutorDeps;
  private outbox: Omit<TaskStatusUpdate, "timestamp">[] = [];
  private flushQueued = false;
  private stopHeartbeat: () => void = () => undefined;
  private stopRotate: () => void = () => undefined;
  private unsubscribe: () => void = () => undefined;
  private readonly knownTasks = new Map<string, Assignment>();
  private readonly startLimit = pLimit(START_CONCURRENCY);

  constructor(private readonly deps: AgentDeps) {
    mkdirSync(deps.dataDir, { recursive: true });
    this.nodeId = loadNodeId(deps.dataDir);
    this.logs = new LogFiles(join(deps.dataDir, "logs"));
    this.records = new TaskRecords(join(deps.dataDir, "tasks"));
    this.executorDeps = {
      driver: deps.driver,
      clock: deps.clock,
      log: deps.log,
      ports: new PortAllocator(),
      logs: this.logs,
      records: this.records,
      nodeName: hostname(),
      report: (u) => this.enqueue(u),
    };
  }

  async start(): Promise<void> {
    const { session, driver, log } = this.deps;
    // Re-adoption: a recorded task whose pid and start time still match is taken over as is.
    for (const r of this.records.loadAll()) {
      if (driver.isAlive(r.handle)) this.adoptable.set(r.taskId, r);
      else {
        this.records.remove(r.taskId);
        this.enqueue({ taskId: r.taskId, state: "failed", message: "task exited while the agent was down", err: "task exited while the agent was down" });
      }
    }
    const { heartbeatPeriodMs } = await session.register({
      nodeId: this.nodeId,
      hostname: hostname(),
      role: this.deps.role ?? "manager",
      resources: { cpus: cpus().length, memoryBytes: totalmem() },
      drivers: [driver.name],
      platform: { os: platform(), arch: arch() },
      agentVersion: BATON_VERSION,
    });
    this.unsubscribe = session.assignments((c) => this.onAssignments(c));
    this.beat(heartbeatPeriodMs);
    this.rotateLogs();
    log.info({ nodeId: this.nodeId, adopted: this.runners.size }, "agent started");
  }

  /** Leaves every task running (an upgrade or restart of Baton restarts no workload). */
  detach(): number {
    this.stopHeartbeat();
    this.stopRotate();
    this.unsubscribe();
    let alive = 0;
    for (const r of this.runners.values()) {
      if (!r.isDone) alive++;
      r.detach();
    }
    return alive;
  }

  /** Stops every task gracefully (`baton down`), waits for them, reports their end. */
  async stopAll(): Promise<number> {
    const live = [...this.runners.values()].filter((r) => !r.isDone);
    await Promise.all(live.map((r) => r.stop("shutdown")));
    await this.flush();
    return live.length;
  }

  runningTaskIds(): string[] {
    return [...this.runners.values()].filter((r) => !r.isDone).map((r) => r.taskId);
  }

  private beat(periodMs: number): void {
    const tick = (): void => {
      this.deps.session.heartbeat().catch((err: unknown) => this.deps.log.warn({ err }, "heartbeat failed"));
      this.stopHeartbeat = this.deps.clock.setTimer(periodMs, tick);
    };
    this.stopHeartbeat = this.deps.clock.setTimer(periodMs, tick);
  }

  private rotateLogs(): void {
    this.stopRotate = this.deps.clock.setTimer(LOG_ROTATE_CHECK_MS, () => {
      for (const r of this.runners.values()) {
        const a = this.knownTasks.get(r.taskId);
        if (a && !r.isDone) this.logs.rotateIfNeeded(r.taskId, a.spec.logMaxBytes);
      }
      this.rotateLogs();
    });
  }

  private onAssignments(change: AssignmentChange): void {
    if (change.type === "full") {
      const ids = new Set(change.assignments.map((a) => a.taskId));
      for (const a of change.assignments) this.apply(a);
      for (const id of [...this.runners.keys()]) if (!ids.has(id)) this.forget(id);
      for (const [id, r] of this.adoptable) {
        // Recorded but unknown to the store (deleted meanwhile): stop it.
        this.adoptable.delete(id);
        const runner = new TaskRunner({ taskId: id, serviceId: "", serviceName: "", slot: 0, nodeId: this.nodeId, desiredState: "shutdown", state: "running", spec: orphanSpec }, this.executorDeps);
        runner.adopt(r);
        void runner.stop("shutdown");
      }
      this.collectLogGarbage(ids);
    } else {
      for (const a of change.upserts) this.apply(a);
      for (const id of change.removes) this.forget(id);
    }
  }

  private apply(a: Assignment): void {
    this.knownTasks.set(a.taskId, a);
    const existing = this.runners.get(a.taskId);
    if (existing) return existing.update(a);
    const record = this.adoptable.get(a.taskId);
    if (record) {
      this.adoptable.delete(a.taskId);
      // update() ends it when the store gave up on it meanwhile (node marked down) or it is unwanted.
      const runner = this.track(a);
      runner.adopt(record);
      runner.update(a);
      return;
    }
    if (isTerminal(a.state)) return;
    if (a.state === "assigned") {
      const runner = this.track(a);
      if (a.desiredState === "running") void this.startLimit(() => startOnNextTurn(runner));
      else void runner.stop("shutdown");
      return;
    }
    // The store thinks we run it, but we have no trace of it: it is lost.
    this.enqueue({ taskId: a.taskId, state: "failed", message: "task not found on node after agent restart", err: "task lost: not running after agent restart" });
  }

  private track(a: Assignment): TaskRunner {
    const runner = new TaskRunner(a, this.executorDeps);
    this.runners.set(a.taskId, runner);
    void runner.whenDone().then(() => {
      if (this.runners.get(a.taskId) === runner && !this.knownTasks.has(a.taskId)) this.runners.delete(a.taskId);
    });
    return runner;
  }

  /** The task was deleted from the store: stop it if it still runs, then drop its logs. */
  private forget(taskId: string): void {
    this.knownTasks.delete(taskId);
    const r = this.runners.get(taskId);
    this.runners.delete(taskId);
    if (r && !r.isDone) void r.stop("shutdown").then(() => this.logs.remove(taskId));
    else this.logs.remove(taskId);
  }

  private collectLogGarbage(known: Set<string>): void {
    for (const f of readdirSync(this.logs.dir)) {
      const id = f.replace(/\.log(\.1)?$/, "");
      if (!known.has(id) && !this.runners.has(id)) this.logs.remove(id);
    }
  }

  private enqueue(u: Omit<TaskStatusUpdate, "timestamp">): void {
    this.outbox.push(u);
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => void this.flush());
  }

  private async flush(): Promise<void> {
    this.flushQueued = false;
    if (this.outbox.length === 0) return;
    const now = this.deps.clock.now();
    const batch = this.outbox.map((u) => ({ ...u, timestamp: now }));
    this.outbox = [];
    try {
      await this.deps.session.reportStatus(batch);
    } catch (err) {
      // Keep the reports; they go with the next flush (states only move forward, so resending is safe).
      this.deps.log.warn({ err, updates: batch.length }, "status report failed; will retry");
      this.outbox.unshift(...batch);
      this.deps.clock.setTimer(500, () => void this.flush());
    }
  }
}

/**
 * A start is all synchronous work and nextTick callbacks (bind, spawn, the spawn event): without
 * yielding, 1,000 starts run as one unbroken stretch and starve timers and the API.
 */
async function startOnNextTurn(runner: TaskRunner): Promise<void> {
  await new Promise<void>((r) => setImmediate(r));
  await runner.run();
}

const orphanSpec: Assignment["spec"] = {
  driver: "process",
  command: ["true"],
  env: {},
  stopSignal: "SIGTERM",
  stopGracePeriodMs: 10_000,
  restartPolicy: { condition: "none", maxAttempts: 0, windowMs: 0 },
  placement: { constraints: [] },
  reservations: {},
  logMaxBytes: 10 * 1024 * 1024,
};

function loadNodeId(dataDir: string): string {
  const p = join(dataDir, "node-id");
  if (existsSync(p)) return readFileSync(p, "utf8").trim();
  const id = newId();
  writeFileSync(p, id + "\n");
  return id;
}
