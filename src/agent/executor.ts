import type { Clock } from "../lib/clock.js";
import type { Logger } from "../lib/log.js";
import type { Assignment, TaskStatusUpdate } from "../dispatcher/protocol.js";
import type { TaskState } from "../model/task-state.js";
import { isTerminal } from "../model/task-state.js";
import { describeExit, StartError, type Driver, type ExitStatus, type TaskHandle } from "./drivers/driver.js";
import type { LogFiles } from "./logs/log-files.js";
import type { PortAllocator } from "./ports.js";
import { HealthMonitor } from "./probes/health-monitor.js";
import type { TaskRecord, TaskRecords } from "./task-records.js";

export interface ExecutorDeps {
  driver: Driver;
  clock: Clock;
  log: Logger;
  ports: PortAllocator;
  logs: LogFiles;
  records: TaskRecords;
  nodeName: string;
  report(u: Omit<TaskStatusUpdate, "timestamp">): void;
}

/** Variables every task sees besides its own env: enough to find its tools and home. */
const INHERITED_ENV = ["PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "TZ", "TMPDIR", "TERM"];

/** The environment a task runs with (and its exec health checks): a few host variables, its own, Baton's. */
function taskEnv(a: Assignment, port: number | undefined, nodeName: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of INHERITED_ENV) if (process.env[k] !== undefined) env[k] = process.env[k]!;
  return Object.assign(env, a.spec.env, {
    ...(port !== undefined ? { PORT: String(port) } : {}),
    BATON_TASK_ID: a.taskId,
    BATON_TASK_SLOT: String(a.slot),
    BATON_SERVICE_NAME: a.serviceName,
    BATON_NODE_NAME: nodeName,
  });
}

/**
 * Drives one task on this node through accepted → preparing → starting → running → an end
 * state, toward its desired state. Only this class ends a task it runs.
 */
export class TaskRunner {
  private state: TaskState = "assigned";
  private handle: TaskHandle | undefined;
  private port: number | undefined;
  private cancelWait: () => void = () => undefined;
  private cancelKill: () => void = () => undefined;
  private monitor: HealthMonitor | undefined;
  private stopReason: "shutdown" | "unhealthy" | undefined;
  private unhealthyOutput = "";
  private exited: Promise<void>;
  private resolveExited!: () => void;

  constructor(
    private assignment: Assignment,
    private readonly deps: ExecutorDeps,
  ) {
    this.exited = new Promise((r) => (this.resolveExited = r));
  }

  get taskId(): string {
    return this.assignment.taskId;
  }

  get isDone(): boolean {
    return isTerminal(this.state);
  }

  /** Resolves once the task has ended and the end was reported. */
  whenDone(): Promise<void> {
    return this.exited;
  }

  update(a: Assignment): void {
    this.assignment = a;
    // The store ended it (node marked down meanwhile) or it is no longer wanted: stop it.
    if (a.desiredState !== "running" || isTerminal(a.state)) void this.stop("shutdown");
  }

  async run(): Promise<void> {
    // Stopped while waiting for a start slot: it already ended as shutdown.
    if (this.isDone || this.stopReason) return;
    const a = this.assignment;
    const { deps } = this;
    this.set("accepted", "accepted");
    try {
      this.set("preparing", "preparing");
      this.port = a.port ?? (await deps.ports.allocate());
      if (this.stopReason) return this.end("shutdown", "shut down before it started", {});
      this.set("starting", "starting");
      const env = taskEnv(a, this.port, deps.nodeName);
      const logPath = deps.logs.pathOf(a.taskId);
      this.handle = await deps.driver.start({ taskId: a.taskId, command: a.spec.command, env, ...(a.spec.workdir ? { workdir: a.spec.workdir } : {}), logPath });
      const startedAt = deps.clock.now();
      deps.records.save({ taskId: a.taskId, handle: this.handle, port: this.port, logPath, startedAt });
      this.running(env, startedAt);
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      // Before the task ran it is rejected; the orchestrator decides what comes next.
      this.end(err instanceof StartError ? "rejected" : "failed", msg, { err: msg });
    }
  }

  /** Takes over a task started before this agent restarted. */
  adopt(r: TaskRecord): void {
    this.handle = r.handle;
    this.port = r.port;
    if (r.port !== undefined) this.deps.ports.reserve(r.port);
    this.state = "starting";
    this.running(taskEnv(this.assignment, r.port, this.deps.nodeName), r.startedAt, "adopted after agent restart");
  }

  private running(env: Record<string, string>, startedAt: number, message = "started"): void {
    const { deps } = this;
    const health = this.assignment.spec.health;
    this.set("running", message, { pid: this.handle!.pid, ...(this.port !== undefined ? { port: this.port } : {}), ...(health ? { health: "starting" as const } : {}) });
    this.cancelWait = deps.driver.wait(this.handle!, (s) => this.onExit(s));
    if (health) {
      this.monitor = new HealthMonitor(health, { ...(this.port !== undefined ? { port: this.port } : {}), env, ...(this.assignment.spec.workdir ? { workdir: this.assignment.spec.workdir } : {}) }, startedAt, deps.clock, (h, last) => {
        if (this.isDone) return;
        this.set("running", h === "healthy" ? "healthy" : h, { health: h });
        if (h === "unhealthy") {
          this.unhealthyOutput = last.output;
          void this.stop("unhealthy");
        }
      });
      this.monitor.start();
    }
    if (this.assignment.desiredState !== "running" || this.stopReason) void this.stop(this.stopReason ?? "shutdown");
  }

  /** Stop signal, then SIGKILL after the grace period. Resolves when the task has ended. */
  stop(reason: "shutdown" | "unhealthy"): Promise<void> {
    if (this.isDone) return this.exited;
    if (this.stopReason) return this.exited;
    this.stopReason = reason;
    this.monitor?.stop();
    if (!this.handle) {
      // Not started yet: run() ends it at its next step; an assigned task ends now.
      if (this.state === "assigned") this.end("shutdown", "shut down before it started", {});
      return this.exited;
    }
    const spec = this.assignment.spec;
    this.deps.driver.signal(this.handle, spec.stopSignal as NodeJS.Signals);
    this.cancelKill = this.deps.clock.setTimer(spec.stopGracePeriodMs, () => {
      if (this.handle && !this.isDone) this.deps.driver.signal(this.handle, "SIGKILL");
    });
    return this.exited;
  }

  /** Forgets the task without touching it (agent detach: the task keeps running). */
  detach(): void {
    this.monitor?.stop();
    this.cancelWait();
    this.cancelKill();
  }

  private onExit(s: ExitStatus): void {
    this.cancelKill();
    this.monitor?.stop();
    const what = describeExit(s);
    const details = { ...(s.exitCode !== undefined ? { exitCode: s.exitCode } : {}), ...(s.signal ? { signal: s.signal } : {}) };
    if (this.stopReason === "unhealthy") {
      this.end("failed", "task unhealthy", { err: `unhealthy: ${this.unhealthyOutput}`, ...details });
    } else if (this.stopReason === "shutdown") {
      this.end("shutdown", `shut down (${what})`, details);
    } else if (s.exitCode === 0) {
      this.end("complete", "finished", details);
    } else {
      this.end("failed", what, { err: what, ...details });
    }
  }

  private end(state: TaskState, message: string, extra: Partial<TaskStatusUpdate>): void {
    if (this.isDone) return;
    this.set(state, message, extra);
    this.deps.ports.release(this.port);
    this.deps.records.remove(this.taskId);
    this.resolveExited();
  }

  private set(state: TaskState, message: string, extra: Partial<TaskStatusUpdate> = {}): void {
    this.state = state;
    this.deps.log.debug({ taskId: this.taskId, state }, "task state");
    this.deps.report({ taskId: this.taskId, state, message, ...extra });
  }
}
