import { AnonymousVolumes } from "./anonymous-volumes.js";
import { removeDeletedVolumes } from "./volume-cleanup.js";
import { TaskFiles } from "./task-files.js";
import { existsSync, mkdirSync, readFileSync, writeFileSync, readdirSync } from "node:fs";
import { cpus, hostname, totalmem, platform, arch } from "node:os";
import { join } from "node:path";
import type { Clock } from "../lib/clock.js";
import { newId } from "../lib/ids.js";
import type { Logger } from "../lib/log.js";
import type { AgentSession, Assignment, AssignmentChange, NetworkAttachment, TaskStatsReport, TaskStatusUpdate } from "../dispatcher/protocol.js";
import type { TrafficCounters } from "../model/objects.js";
import { isTerminal } from "../model/task-state.js";
import pLimit from "p-limit";
import { BATON_VERSION } from "../lib/version.js";
import type { Driver } from "./drivers/driver.js";
import { TaskRunner, type ExecutorDeps } from "./executor.js";
import { LogFiles } from "./logs/log-files.js";
import { PortAllocator } from "./ports.js";
import { TaskRecords, type TaskRecord, type TaskRecordStore } from "./task-records.js";

/**
 * Task starts in flight at once. A spawn blocks the event loop for a moment; 1,000 at once would
 * starve heartbeats and the API. 8 keeps a 30-replica create as fast as unbounded.
 */
const START_CONCURRENCY = 8;
/**
 * Container starts in flight at once. A container start is a wait on the engine, not work on
 * the event loop: the engine, not the agent, should decide how many overlap (bench/docker.mjs
 * measures a 30-replica create against 30 at once straight through the Engine API).
 */
const CONTAINER_START_CONCURRENCY = 32;
/** Stats samples in flight at once: each holds an engine request (or a /proc scan) for about a second. */
const STATS_CONCURRENCY = 16;
/** How often log files are checked against their cap. */
const LOG_ROTATE_CHECK_MS = 2000;
/** How often the mesh's per-task traffic counters are reported (when they moved). */
const TRAFFIC_REPORT_MS = 1000;
/** Retry delay of a status report that did not go through. */
const REPORT_RETRY_MS = 500;

export interface AgentDeps {
  session: AgentSession;
  /** The driver of tasks that name no other: process. */
  driver: Driver;
  /** Every driver this node may offer, by name (docker is offered only when its engine answers). @default only `driver` */
  drivers?: ReadonlyMap<string, Driver>;
  clock: Clock;
  log: Logger;
  dataDir: string;
  role?: "manager" | "worker";
  /** The node's address as other nodes reach its tasks (the advertise address); loopback when alone. */
  address?: string;
  beforeStop?: ExecutorDeps["beforeStop"];
  discoveryEnv?: ExecutorDeps["discoveryEnv"];
  containerDns?: ExecutorDeps["containerDns"];
  /** Where task records are kept. @default files in DIR/tasks */
  records?: TaskRecordStore;
  /** The tmpfs task secret files go to (a directory per data dir under it). @default /dev/shm; tests name one that is not a tmpfs, so files stay in their temporary data dir */
  filesTmpfs?: string;
  /** The mesh's per-task traffic on this node, reported every second for the tasks it moved for. */
  trafficByTask?: () => ReadonlyMap<string, TrafficCounters>;
}

type Report = Omit<TaskStatusUpdate, "timestamp">;

/**
 * Runs the tasks assigned to this node, re-adopts the ones that survived a restart, and reports
 * every state change through its session (batched per turn of the event loop).
 */
export class Agent {
  readonly nodeId: string;
  readonly logs: LogFiles;
  private readonly records: TaskRecordStore;
  private readonly runners = new Map<string, TaskRunner>();
  /** Records found at start, waiting for the first full assignment set to be adopted. */
  private readonly adoptable = new Map<string, TaskRecord>();
  private readonly executorDeps: ExecutorDeps;
  /** Unsent reports, one per task: only the newest matters (its details merged over older ones). */
  private outbox = new Map<string, Report & { timestamp: number }>();
  private flushQueued = false;
  private flushing: Promise<void> | undefined;
  private lastSeq = 0;
  private stopHeartbeat: () => void = () => undefined;
  private stopRotate: () => void = () => undefined;
  private stopTraffic: () => void = () => undefined;
  private unsubscribe: () => void = () => undefined;
  private unsubscribeVolumes: () => void = () => undefined;
  private unsubscribeAttachable: () => void = () => undefined;
  /** Volume clean-ups run one after another. */
  private volumeCleanup: Promise<unknown> = Promise.resolve();
  private readonly knownTasks = new Map<string, Assignment>();
  private readonly startLimit = pLimit(START_CONCURRENCY);
  private readonly containerStartLimit = pLimit(CONTAINER_START_CONCURRENCY);
  private readonly drivers: ReadonlyMap<string, Driver>;

  constructor(private readonly deps: AgentDeps) {
    mkdirSync(deps.dataDir, { recursive: true });
    this.nodeId = loadNodeId(deps.dataDir);
    this.drivers = new Map([[deps.driver.name, deps.driver], ...(deps.drivers ?? [])]);
    this.logs = new LogFiles(join(deps.dataDir, "logs"));
    this.records = deps.records ?? new TaskRecords(join(deps.dataDir, "tasks"));
    this.executorDeps = {
      driver: deps.driver,
      drivers: this.drivers,
      nodeId: this.nodeId,
      clock: deps.clock,
      log: deps.log,
      ports: new PortAllocator(),
      logs: this.logs,
      records: this.records,
      nodeName: hostname(),
      report: (u) => this.enqueue(u),
      ...(deps.beforeStop ? { beforeStop: deps.beforeStop } : {}),
      ...(deps.discoveryEnv ? { discoveryEnv: deps.discoveryEnv } : {}),
      files: TaskFiles.open(deps.dataDir, deps.log, deps.filesTmpfs),
      ...(deps.containerDns ? { containerDns: deps.containerDns } : {}),
      volumesDir: join(deps.dataDir, "volumes"),
      anonymousVolumes: new AnonymousVolumes(join(deps.dataDir, "anonymous-volumes")),
    };
  }

  async start(): Promise<void> {
    const { session, log } = this.deps;
    const records = this.records.loadAll();
    const offered = await this.availableDrivers();
    await this.removeStrays(records, offered);
    // Secret files of tasks that ended while the agent was away (only recorded tasks still run).
    this.executorDeps.files?.removeAllBut(new Set(records.map((r) => r.taskId)));
    this.executorDeps.anonymousVolumes?.removeAllBut(new Set(records.map((r) => r.taskId)));
    for (const r of records) this.adoptable.set(r.taskId, r);
    const { heartbeatPeriodMs } = await session.register({
      nodeId: this.nodeId,
      hostname: hostname(),
      role: this.deps.role ?? "manager",
      resources: { cpus: cpus().length, memoryBytes: totalmem() },
      drivers: offered.map((d) => d.name),
      ...(this.deps.driver.limits ? { limits: this.deps.driver.limits } : {}),
      platform: { os: platform(), arch: arch() },
      agentVersion: BATON_VERSION,
      ...(this.deps.address ? { address: this.deps.address } : {}),
    });
    this.unsubscribe = session.assignments((c) => this.onAssignments(c));
    this.unsubscribeVolumes = session.volumes?.((names) => this.onVolumes(names, offered)) ?? (() => undefined);
    this.unsubscribeAttachable = session.attachableNetworks?.((nets) => this.onAttachable(nets, offered)) ?? (() => undefined);
    this.beat(heartbeatPeriodMs);
    this.rotateLogs();
    this.reportTraffic();
    log.info({ nodeId: this.nodeId, adopted: this.runners.size }, "agent started");
  }

  /** The cluster's volume names changed: this node's data of the removed ones goes (volume-cleanup.ts). */
  private onVolumes(names: string[], drivers: Driver[]): void {
    this.volumeCleanup = this.volumeCleanup
      .then(() => removeDeletedVolumes({ names, inUse: this.volumesInUse(), volumesDir: this.executorDeps.volumesDir, drivers, log: this.deps.log }))
      .catch((err: unknown) => this.deps.log.warn({ err }, "volume clean-up failed"));
  }

  /** The attachable networks changed: drivers that attach standalone containers keep theirs (docker). */
  private onAttachable(networks: NetworkAttachment[], drivers: Driver[]): void {
    for (const d of drivers) void d.setAttachableNetworks?.(networks).catch((err: unknown) => this.deps.log.warn({ err, driver: d.name }, "attachable networks not set up"));
  }

  /** Volumes the tasks of this node mount: assigned ones, and any not yet ended. */
  private volumesInUse(): Set<string> {
    const out = new Set<string>();
    for (const a of this.knownTasks.values()) for (const m of a.spec.mounts ?? []) if (m.type === "volume" && m.source) out.add(m.source);
    for (const r of this.runners.values()) if (!r.isDone) for (const v of r.volumes) out.add(v);
    return out;
  }

  /** The drivers that answer now (docker: its engine answers a ping); the node advertises these. */
  private async availableDrivers(): Promise<Driver[]> {
    const answers = await Promise.all([...this.drivers.values()].map(async (d) => ((await d.isAvailable?.().catch(() => false)) ?? true ? d : undefined)));
    const offered = answers.filter((d): d is Driver => d !== undefined);
    const missing = [...this.drivers.keys()].filter((n) => !offered.some((d) => d.name === n));
    if (missing.length) this.deps.log.info({ drivers: missing }, "drivers not offered: not available on this node");
    return offered;
  }

  /**
   * Whatever a crash left behind. A start the agent never saw through may have left a process
   * (found by its task id) or a container. A container of this node that no record holds by its
   * id is a stray too (its record is gone, or it was never Baton's to keep): it is removed.
   */
  private async removeStrays(records: TaskRecord[], drivers: Driver[]): Promise<void> {
    const { log } = this.deps;
    const unfinished = new Set(records.filter((r) => !r.handle).map((r) => r.taskId));
    for (const d of drivers) {
      if (d.killStrays) {
        const pids = d.killStrays(unfinished);
        if (pids.length) log.warn({ pids }, "stopped processes of starts interrupted by an agent crash");
      }
      if (d.listOwned && d.remove) {
        const kept = new Set(records.flatMap((r) => (r.handle?.containerId ? [r.handle.containerId] : [])));
        const strays = (await d.listOwned(this.nodeId).catch((err: unknown) => (log.warn({ err, driver: d.name }, "cannot list the driver's tasks"), []))).filter((o) => !kept.has(o.handle.containerId ?? ""));
        await Promise.all(strays.map((o) => d.remove!(o.handle).catch((err: unknown) => log.warn({ err, taskId: o.taskId }, "cannot remove a stray task"))));
        if (strays.length) log.warn({ driver: d.name, tasks: strays.map((o) => o.taskId) }, "removed tasks this node no longer knows");
      }
    }
  }

  /** Leaves every task running (an upgrade or restart of Baton restarts no workload). */
  detach(): number {
    this.stopHeartbeat();
    this.stopRotate();
    this.stopTraffic();
    this.unsubscribe();
    this.unsubscribeVolumes();
    this.unsubscribeAttachable();
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
    if (this.runningTaskIds().length === 0) this.executorDeps.files?.removeRootIfEmpty();
    return live.length;
  }

  /** The networks of the container at `address` on this node (DNS answers are scoped by them). */
  networksOfAddress(address: string): readonly string[] | undefined {
    for (const r of this.runners.values()) {
      const n = r.networksAt(address);
      if (n) return n;
    }
    return undefined;
  }

  /** Resource use of these tasks, sampled by their drivers (a sample takes about a second), 16 at a time. */
  async taskStats(taskIds: string[]): Promise<TaskStatsReport[]> {
    const limit = pLimit(STATS_CONCURRENCY);
    return Promise.all(
      taskIds.map((taskId) => limit(async (): Promise<TaskStatsReport> => {
        const runner = this.runners.get(taskId);
        if (!runner || runner.isDone) return { taskId, error: "not running on this node" };
        try {
          const s = await runner.stats();
          return s ? { taskId, cpus: s.cpus, memoryBytes: s.memoryBytes } : { taskId, error: "its driver reports no stats" };
        } catch (err) {
          return { taskId, error: err instanceof Error ? err.message : String(err) };
        }
      })),
    );
  }

  runningTaskIds(): string[] {
    return [...this.runners.values()].filter((r) => !r.isDone).map((r) => r.taskId);
  }

  /** Reports not yet accepted by the manager (bounded by the number of tasks). */
  pendingReports(): number {
    return this.outbox.size;
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

  private reportTraffic(): void {
    const source = this.deps.trafficByTask;
    if (!source) return;
    this.stopTraffic = this.deps.clock.setTimer(TRAFFIC_REPORT_MS, () => {
      for (const [taskId, c] of source()) this.runners.get(taskId)?.reportTraffic(c);
      this.reportTraffic();
    });
  }

  private onAssignments(change: AssignmentChange): void {
    if (change.type === "full") {
      const ids = new Set(change.assignments.map((a) => a.taskId));
      for (const a of change.assignments) this.apply(a);
      for (const id of [...this.runners.keys()]) if (!ids.has(id)) this.forget(id);
      // Recorded here but unknown to the store (deleted meanwhile): adopt it only to stop it.
      for (const r of [...this.adoptable.values()]) this.adopt(r, undefined);
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
    if (record) return this.adopt(record, a);
    if (isTerminal(a.state)) return;
    if (a.state === "assigned") {
      const runner = this.track(a);
      const limit = a.spec.driver === "docker" ? this.containerStartLimit : this.startLimit;
      if (a.desiredState === "running") void limit(() => startOnNextTurn(runner));
      else void runner.stop("shutdown");
      return;
    }
    // The store thinks this node runs it, but there is no record of it here: lost to the agent's
    // restart, not by its own doing — orphaned, so neither its restart policy nor an update's
    // failure count holds it against the task.
    this.enqueue({ taskId: a.taskId, state: "orphaned", message: "task not found on node after agent restart", err: "task lost: not running after agent restart" });
  }

  /**
   * The one adoption path: a task recorded before a restart is taken over as it is — running,
   * ended meanwhile (reported with its recorded exit status), or never fully started (reported
   * failed). Unknown to the store, or ended by it meanwhile, it is stopped.
   */
  private adopt(record: TaskRecord, a: Assignment | undefined): void {
    this.adoptable.delete(record.taskId);
    const assignment = a ?? unknownTask(record.taskId, this.nodeId);
    const runner = this.track(assignment);
    runner.adopt(record);
    runner.update(assignment);
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

  /**
   * Strictly increasing across reports and across agent restarts: wall-clock microseconds, bumped
   * past the last one handed out (a restart starts beyond every earlier report's number unless
   * the host clock went back by more than the restart took).
   */
  private nextSeq(): number {
    this.lastSeq = Math.max(this.lastSeq + 1, this.deps.clock.now() * 1000);
    return this.lastSeq;
  }

  private enqueue(u: Omit<Report, "seq">): void {
    const prev = this.outbox.get(u.taskId);
    this.outbox.set(u.taskId, { ...prev, ...u, seq: this.nextSeq(), timestamp: this.deps.clock.now() });
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => void this.flush());
  }

  private async flush(): Promise<void> {
    this.flushQueued = false;
    // One report in flight at a time, so reports reach the manager in order.
    if (this.flushing) return this.flushing.then(() => this.flush());
    if (this.outbox.size === 0) return;
    const batch = this.outbox;
    this.outbox = new Map();
    this.flushing = this.deps.session.reportStatus([...batch.values()]).then(
      () => undefined,
      (err: unknown) => {
        // Keep them for the next flush; a newer report of the same task made meanwhile wins.
        this.deps.log.warn({ err, updates: batch.size }, "status report failed; will retry");
        for (const [id, u] of batch) {
          const newer = this.outbox.get(id);
          this.outbox.set(id, newer ? { ...u, ...newer } : u);
        }
        this.deps.clock.setTimer(REPORT_RETRY_MS, () => void this.flush());
      },
    );
    try {
      await this.flushing;
    } finally {
      this.flushing = undefined;
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

/** Stands in for the assignment of a recorded task the store no longer has: it is to be stopped. */
function unknownTask(taskId: string, nodeId: string): Assignment {
  return {
    taskId,
    serviceId: "",
    serviceName: "",
    slot: 0,
    nodeId,
    desiredState: "shutdown",
    state: "running",
    spec: {
      driver: "process",
      command: ["true"],
      env: {},
      stopSignal: "SIGTERM",
      stopGracePeriodMs: 10_000,
      restartPolicy: { condition: "none", maxAttempts: 0, windowMs: 0 },
      placement: { constraints: [] },
      reservations: {},
      logMaxBytes: 10 * 1024 * 1024,
    },
  };
}

/** The node's id, kept in the agent's data dir (made at first start): a restarted agent is the same node. */
export function loadNodeId(dataDir: string): string {
  mkdirSync(dataDir, { recursive: true });
  const p = join(dataDir, "node-id");
  if (existsSync(p)) return readFileSync(p, "utf8").trim();
  const id = newId();
  writeFileSync(p, id + "\n");
  return id;
}
