import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Clock } from "../lib/clock.js";
import type { Logger } from "../lib/log.js";
import type { Assignment, TaskStatusUpdate } from "../dispatcher/protocol.js";
import { canTransition, isTerminal, type TaskState } from "../model/task-state.js";
import type { HealthConfig, TaskMount, TaskSpec, TrafficCounters } from "../model/objects.js";
import { envPrefix } from "../model/service-address.js";
import { describeExit, StartError, type Driver, type ExitStatus, type StartRequest, type TaskHandle, type TaskStats } from "./drivers/driver.js";
import { NODE_LABEL, SERVICE_LABEL, TASK_LABEL } from "./drivers/labels.js";
import type { LogFiles } from "./logs/log-files.js";
import type { PortAllocator } from "./ports.js";
import { TaskProbes } from "./probes/task-probes.js";
import type { TaskRecord, TaskRecordStore } from "./task-records.js";
import type { DeliveredFiles, TaskFiles } from "./task-files.js";
import type { AnonymousVolumes } from "./anonymous-volumes.js";

export interface ExecutorDeps {
  /** The driver of tasks that name no other (process). */
  driver: Driver;
  /** Every driver of this node by name (the default one included). @default only `driver` */
  drivers?: ReadonlyMap<string, Driver>;
  /** This node's id: docker labels its containers with it. */
  nodeId?: string;
  clock: Clock;
  log: Logger;
  ports: PortAllocator;
  logs: LogFiles;
  records: TaskRecordStore;
  nodeName: string;
  report(u: Omit<TaskStatusUpdate, "timestamp" | "seq">): void;
  /**
   * Service discovery variables for a starting task: <NAME>_SERVICE_HOST/_PORT of every service
   * with an address on one of its networks (`container`: addresses a container reaches), BATON_DNS.
   */
  discoveryEnv?(scope: { networks?: readonly string[]; container?: boolean }): Record<string, string>;
  /**
   * The resolver containers use (the mesh's DNS responder in the container range), once its
   * setup is over (undefined: none). Containers start after it, so they all get it.
   */
  containerDns?(): Promise<string | undefined>;
  /** Where the process driver keeps named volumes on this node: a directory per volume. */
  volumesDir?: string;
  /** Where the process driver keeps anonymous volumes: a directory per task, removed when it ends. */
  anonymousVolumes?: AnonymousVolumes;
  /**
   * Runs between the decision to stop a running task and its stop signal (the mesh takes the
   * task out of every pool and lets in-flight requests finish). Bounded by the grace period.
   */
  beforeStop?(taskId: string, graceMs: number): Promise<void>;
  /** Where tasks' secret and config files are written (absent: tasks with files are rejected). */
  files?: TaskFiles;
}

/** Why the agent stops a task: the store asked (shutdown) or its health check failed. */
export type StopReason = "shutdown" | "unhealthy";

/**
 * Where a task is in its life on this node. Exactly one phase at a time; every change of the
 * observed TaskState goes through `transition`, which refuses to go backwards.
 *
 *   waiting ──run()──► starting ──started──► running ──stop()/exit──► stopping ──exit──► ended
 *      │                  │ stop() noted, honoured        │ exit                          ▲
 *      └──stop()──────────┴─ when the start resolves ─────┴───────────────────────────────┘
 */
type Phase =
  | { name: "waiting" }
  | { name: "starting"; stopReason?: StopReason }
  | { name: "running"; handle: TaskHandle }
  | { name: "stopping"; handle: TaskHandle; reason: StopReason }
  | { name: "ended" };

/** Variables every task sees besides its own env: enough to find its tools and home. */
const INHERITED_ENV = ["PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "TZ", "TMPDIR", "TERM"];

/**
 * The environment a task runs with (and its exec probes): a few host variables, service
 * discovery, its own, Baton's. $PORT is its first service port; $PORT_<target> each one.
 */
function taskEnv(a: Assignment, port: number | undefined, ports: Record<string, number>, nodeName: string, discovery: Record<string, string> = {}, mounts: Record<string, string> = {}, files?: DeliveredFiles): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of INHERITED_ENV) if (process.env[k] !== undefined) env[k] = process.env[k]!;
  const perTarget = Object.fromEntries(Object.entries(ports).map(([t, p]) => [`PORT_${t}`, String(p)]));
  return Object.assign(env, discovery, a.spec.env, perTarget, mounts, {
    ...(port !== undefined ? { PORT: String(port) } : {}),
    BATON_TASK_ID: a.taskId,
    BATON_TASK_SLOT: String(a.slot),
    BATON_SERVICE_NAME: a.serviceName,
    BATON_NODE_NAME: nodeName,
    // Paths only: a secret's value is never in a task's environment.
    ...(files?.secretsDir ? { BATON_SECRETS_DIR: files.secretsDir } : {}),
    ...(files?.configsDir ? { BATON_CONFIGS_DIR: files.configsDir } : {}),
  });
}

/**
 * A host process cannot be given a mount: it gets the host path of each one instead, as
 * BATON_MOUNT_<TARGET> (`/data` → BATON_MOUNT_DATA) and, for a volume, BATON_VOLUME_<NAME>. A
 * named volume is a directory per node under `volumesDir`, made here, kept after the task (its
 * data outlives every task that uses it); an anonymous one (no source) a directory under the
 * task's own `anonymousDir`, removed when the task ends.
 */
export function processMountEnv(mounts: readonly TaskMount[] | undefined, volumesDir: string | undefined, anonymousDir?: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const m of mounts ?? []) {
    const targetName = envPrefix(m.target.replace(/^\/+/, ""));
    let path = m.source;
    if (m.type === "volume" && m.source) {
      if (!volumesDir) throw new StartError("this node keeps no volumes (no volumes directory)");
      path = join(volumesDir, m.source);
      mkdirSync(path, { recursive: true, mode: 0o755 });
      env[`BATON_VOLUME_${envPrefix(m.source)}`] = path;
    } else if (m.type === "volume") {
      if (!anonymousDir) throw new StartError("this node keeps no anonymous volumes (no directory for them)");
      path = join(anonymousDir, targetName);
      mkdirSync(path, { recursive: true, mode: 0o755 });
    }
    if (path) env[`BATON_MOUNT_${targetName}`] = path;
  }
  return env;
}

/**
 * A container's environment: no host variables (the image has its own PATH, HOME…), and its
 * ports are the container's own: $PORT is the first service target, $PORT_<target> each one.
 */
function containerEnv(a: Assignment, nodeName: string, discovery: Record<string, string> = {}): Record<string, string> {
  const targets = a.spec.targets ?? [];
  return {
    ...discovery,
    ...a.spec.env,
    ...Object.fromEntries(targets.map((t) => [`PORT_${t}`, String(t)])),
    ...(targets.length ? { PORT: String(targets[0]) } : {}),
    BATON_TASK_ID: a.taskId,
    BATON_TASK_SLOT: String(a.slot),
    BATON_SERVICE_NAME: a.serviceName,
    BATON_NODE_NAME: nodeName,
  };
}


/**
 * Drives one task on this node through accepted → preparing → starting → running → an end
 * state, toward its desired state. Only this class ends a task it runs.
 */
export class TaskRunner {
  private phase: Phase = { name: "waiting" };
  private observed: TaskState;
  private port: number | undefined;
  /** Service port target → the port the task listens on here. */
  private ports: Record<string, number> = {};
  private ready = false;
  private cancelWait: () => void = () => undefined;
  private cancelKill: () => void = () => undefined;
  private monitor: TaskProbes | undefined;
  private lastMessage = "";
  private lastTraffic = "";
  /** Why a probe failed (liveness, startup, health): the task's error. */
  private failure = "";
  private readonly exited: Promise<void>;
  private resolveExited!: () => void;
  /** The driver that runs this task (set when it starts or is adopted). */
  private driver: Driver;
  /** docker: the image's HEALTHCHECK, run when the service has no check of its own and did not turn it off. */
  private imageHealth: HealthConfig | undefined;

  constructor(
    private assignment: Assignment,
    private readonly deps: ExecutorDeps,
  ) {
    this.exited = new Promise((r) => (this.resolveExited = r));
    this.observed = isTerminal(assignment.state) ? "assigned" : assignment.state;
    this.driver = deps.driver;
  }

  private driverNamed(name: string): Driver | undefined {
    return this.deps.drivers?.get(name) ?? (name === this.deps.driver.name ? this.deps.driver : undefined);
  }

  get taskId(): string {
    return this.assignment.taskId;
  }

  get isDone(): boolean {
    return this.phase.name === "ended";
  }

  /** The named volumes the task mounts: kept on this node while it has not ended. */
  get volumes(): string[] {
    return (this.assignment.spec.mounts ?? []).flatMap((m) => (m.type === "volume" && m.source ? [m.source] : []));
  }

  /** The networks of a live task at `address` (a container's address on its networks); undefined otherwise. */
  networksAt(address: string): readonly string[] | undefined {
    const p = this.phase;
    if ((p.name !== "running" && p.name !== "stopping") || !p.handle.addresses?.includes(address)) return undefined;
    return this.assignment.spec.networks ?? [];
  }

  /** The phase name, for tests and debugging. */
  get phaseName(): Phase["name"] {
    return this.phase.name;
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
    if (this.phase.name !== "waiting") return;
    const phase: Extract<Phase, { name: "starting" }> = { name: "starting" };
    this.phase = phase;
    const a = this.assignment;
    const { deps } = this;
    const statePrefix = deps.records.statePrefixOf(a.taskId);
    const logPath = deps.logs.pathOf(a.taskId);
    let recorded = false;
    try {
      this.transition("accepted", "accepted");
      this.transition("preparing", "preparing");
      const driver = this.driverNamed(a.spec.driver);
      if (!driver) throw new StartError(`no ${a.spec.driver} driver on this node`);
      this.driver = driver;
      const isContainer = a.spec.driver === "docker";
      await this.allocatePorts(isContainer);
      if (phase.stopReason) return this.end("shutdown", "shut down before it started", {});
      const delivered = this.writeFiles();
      const dns = isContainer ? await deps.containerDns?.() : undefined;
      const discovery = deps.discoveryEnv?.({ ...(a.spec.networks ? { networks: a.spec.networks } : {}), container: isContainer });
      const env = isContainer ? containerEnv(a, deps.nodeName, discovery) : taskEnv(a, this.port, this.ports, deps.nodeName, discovery, processMountEnv(a.spec.mounts, deps.volumesDir, deps.anonymousVolumes?.dirOf(a.taskId)), delivered);
      const limits = a.spec.limits;
      const req: StartRequest = {
        taskId: a.taskId,
        command: a.spec.command,
        env,
        ...(a.spec.workdir ? { workdir: a.spec.workdir } : {}),
        logPath,
        statePrefix,
        ...(limits ? { limits } : {}),
        ...(isContainer
          ? {
              image: a.spec.image!,
              ...(a.spec.entrypoint ? { entrypoint: a.spec.entrypoint } : {}),
              ...(a.spec.user ? { user: a.spec.user } : {}),
              name: `${a.serviceName}.${a.slot > 0 ? a.slot : deps.nodeId ?? "0"}.${a.taskId}`,
              labels: { [TASK_LABEL]: a.taskId, [SERVICE_LABEL]: a.serviceName, ...(deps.nodeId ? { [NODE_LABEL]: deps.nodeId } : {}) },
              ports: this.ports,
              ...(a.spec.udpOnly ? { udp: true } : {}),
              ...(delivered?.binds.length ? { fileMounts: delivered.binds } : {}),
              ...(a.spec.mounts?.length ? { mounts: a.spec.mounts } : {}),
              ...(a.networks?.length ? { networks: a.networks } : {}),
              ...(a.dnsrr ? { aliases: [a.serviceName] } : {}),
              ...(dns ? { dns: [dns] } : {}),
            }
          : {}),
      };
      // docker: the image is found or pulled here; a missing one rejects the task.
      const prepared = await driver.prepare?.(req);
      if (!a.spec.health && !a.spec.noHealthcheck) this.imageHealth = prepared?.imageHealth;
      const imageHealth = this.imageHealth ? { imageHealth: this.imageHealth } : {};
      if (phase.stopReason) return this.end("shutdown", "shut down before it started", {});
      this.transition("starting", "starting");
      const portFields = { ...(this.port !== undefined ? { port: this.port } : {}), ports: this.ports };
      // Durable before the spawn: after a crash from here on, the process is found and stopped.
      await deps.records.save({ taskId: a.taskId, ...portFields, logPath, statePrefix, ...imageHealth });
      recorded = true;
      // Stopped while the record was being written: nothing was spawned yet.
      if (phase.stopReason) return this.end("shutdown", "shut down before it started", {});
      const handle = await driver.start(req);
      const startedAt = deps.clock.now();
      await deps.records.save({ taskId: a.taskId, handle, ...portFields, logPath, statePrefix, startedAt, ...imageHealth });
      this.watchExit(handle);
      // A stop that came while the start was in flight is honoured now, before any "running".
      if (phase.stopReason) return this.beginStop(handle, phase.stopReason);
      this.enterRunning(handle, env, startedAt, "started");
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      if (!recorded) deps.records.remove(a.taskId);
      // Before the task ran it is rejected; the orchestrator decides what comes next.
      this.end(err instanceof StartError ? "rejected" : "failed", msg, { err: msg });
    }
  }

  /**
   * Takes over a task this node started before the agent restarted. A record without a handle
   * is a start the agent never saw through (its stray process was stopped at agent start); a
   * task that ended meanwhile is reported with the exit status its shim recorded.
   */
  adopt(r: TaskRecord): void {
    if (this.phase.name !== "waiting") return;
    this.port = r.port;
    if (!r.handle) {
      // Cut short by the agent's own death, not the task's doing: orphaned, like a task of a node
      // that went down (no restart attempt used, no update failure counted).
      const msg = "the agent stopped while starting this task; its process was stopped";
      this.phase = { name: "starting" };
      return this.end("orphaned", msg, { err: msg });
    }
    this.ports = r.ports ?? {};
    for (const p of [r.port, ...Object.values(this.ports)]) if (p !== undefined) this.deps.ports.reserve(p);
    const driver = this.driverNamed(r.handle.driver ?? "process");
    if (!driver) {
      const msg = `adopted after agent restart, but this node has no ${r.handle.driver} driver now`;
      this.phase = { name: "starting" };
      return this.end("failed", msg, { err: msg });
    }
    this.driver = driver;
    this.imageHealth = r.imageHealth;
    this.watchExit(r.handle);
    // The files were written at the first start; the probes need their directories all the same.
    const delivered = this.assignment.files?.length ? this.deps.files?.locate(this.taskId, this.assignment.files) : undefined;
    const a = this.assignment;
    const isContainer = r.handle.driver === "docker";
    const discovery = this.deps.discoveryEnv?.({ ...(a.spec.networks ? { networks: a.spec.networks } : {}), container: isContainer });
    const env = isContainer ? containerEnv(a, this.deps.nodeName, discovery) : taskEnv(a, r.port, this.ports, this.deps.nodeName, discovery, processMountEnv(a.spec.mounts, this.deps.volumesDir, this.deps.anonymousVolumes?.dirOf(a.taskId)), delivered);
    this.enterRunning(r.handle, env, r.startedAt ?? this.deps.clock.now(), "adopted after agent restart");
  }

  /** Drain (beforeStop), stop signal, then SIGKILL after the grace period. Resolves when the task has ended. */
  stop(reason: StopReason): Promise<void> {
    const p = this.phase;
    switch (p.name) {
      case "waiting":
        this.end("shutdown", "shut down before it started", {});
        break;
      case "starting":
        p.stopReason ??= reason;
        break;
      case "running":
        this.beginStop(p.handle, reason);
        break;
      case "stopping":
      case "ended":
        break;
    }
    return this.exited;
  }

  /** Its resource use now, from its driver; undefined when it does not run or the driver cannot tell. */
  async stats(): Promise<TaskStats | undefined> {
    if (this.phase.name !== "running" || !this.driver.stats) return undefined;
    return this.driver.stats(this.phase.handle);
  }

  /** Forgets the task without touching it (agent detach: the task keeps running). */
  detach(): void {
    this.monitor?.stop();
    this.cancelWait();
    this.cancelKill();
  }

  private watchExit(handle: TaskHandle): void {
    this.cancelWait = this.driver.wait(handle, (s) => this.onExit(handle, s));
  }

  /**
   * One port per service port target ($PORT is the first): a host-mode published port is used as
   * it is (the task binds it itself), every other one is allocated. No targets: one $PORT.
   */
  /** The task's secret and config files, written before it starts; a task whose files cannot be written is rejected. */
  /** An anonymous volume lives as long as its task (docker removes the container's with it). */
  private removeAnonymousVolumes(): void {
    try {
      this.deps.anonymousVolumes?.remove(this.taskId);
    } catch (err) {
      this.deps.log.warn({ taskId: this.taskId, err: (err as Error).message }, "cannot remove the task's anonymous volumes");
    }
  }

  private writeFiles(): DeliveredFiles | undefined {
    const files = this.assignment.files;
    if (!files?.length) return undefined;
    if (!this.deps.files) throw new StartError("this node cannot deliver secret or config files");
    try {
      return this.deps.files.write(this.taskId, files);
    } catch (err) {
      // The message names the file's target, never its contents.
      throw new StartError(`cannot write the task's secret and config files: ${(err as Error).message}`);
    }
  }

  private async allocatePorts(isContainer: boolean): Promise<void> {
    const { spec } = this.assignment;
    const targets = spec.targets ?? [];
    if (this.assignment.port !== undefined && targets.length === 0) {
      this.port = this.assignment.port;
      return;
    }
    // A container without service ports listens on nothing Baton hands out.
    if (targets.length === 0 && isContainer) return;
    if (targets.length === 0) {
      this.port = await this.deps.ports.allocate();
      return;
    }
    for (const t of targets) {
      // Host mode publishes target T as port P on the node: the task listens on P itself.
      const fixed = spec.hostPorts?.find((h) => h.target === t)?.published;
      this.ports[String(t)] = fixed ?? (await this.deps.ports.allocate());
    }
    this.port = this.ports[String(targets[0])];
  }

  private enterRunning(handle: TaskHandle, env: Record<string, string>, startedAt: number, message: string): void {
    if (this.phase.name === "ended") return;
    this.phase = { name: "running", handle };
    const spec = this.runSpec();
    // Nothing to probe: ready as soon as it runs, in the same report.
    const watched = !!(spec.health || spec.probes || spec.targets?.length);
    this.ready = !watched;
    this.transition("running", message, {
      pid: handle.pid,
      ...(handle.containerId ? { containerId: handle.containerId } : {}),
      ...(this.port !== undefined ? { port: this.port } : {}),
      ...(Object.keys(this.ports).length ? { ports: this.ports } : {}),
      ...(spec.health ? { health: "starting" as const } : {}),
      ready: this.ready,
    });
    const { driver } = this;
    // Exec probes run where the task runs: inside its container when the driver can.
    const exec = driver.exec ? (command: string[], timeoutMs: number) => driver.exec!(handle, command, timeoutMs) : undefined;
    const target = { ...(this.port !== undefined ? { port: this.port } : {}), env, ...(spec.workdir ? { workdir: spec.workdir } : {}), ...(exec ? { exec } : {}) };
    this.monitor = new TaskProbes(spec, target, startedAt, this.deps.clock, {
      health: (h) => {
        if (this.phase.name === "running") this.transition("running", h === "healthy" ? "healthy" : h, { health: h });
      },
      ready: (ready, why) => {
        if (this.phase.name !== "running") return;
        this.ready = ready;
        this.transition("running", why, { ready });
      },
      failed: (why) => {
        if (this.phase.name !== "running") return;
        this.failure = why;
        void this.stop("unhealthy");
      },
    });
    if (watched) this.monitor.start();
    if (this.assignment.desiredState !== "running" || isTerminal(this.assignment.state)) void this.stop("shutdown");
  }

  /** The task's spec as it runs here: the image's HEALTHCHECK stands in for a health check the service does not set. */
  private runSpec(): TaskSpec {
    const { spec } = this.assignment;
    return this.imageHealth && !spec.health ? { ...spec, health: this.imageHealth } : spec;
  }

  private beginStop(handle: TaskHandle, reason: StopReason): void {
    this.phase = { name: "stopping", handle, reason };
    this.monitor?.stop();
    // Out of every pool first: the mesh sends it nothing new while it drains, then it is signalled.
    if (this.ready) {
      this.ready = false;
      this.transition("running", "draining", { ready: false });
    }
    const spec = this.assignment.spec;
    const signal = (): void => {
      if (this.phase.name !== "stopping") return;
      this.driver.signal(handle, spec.stopSignal as NodeJS.Signals);
      this.cancelKill = this.deps.clock.setTimer(spec.stopGracePeriodMs, () => {
        if (this.phase.name === "stopping") this.driver.signal(handle, "SIGKILL");
      });
    };
    if (!this.deps.beforeStop || reason === "unhealthy") return signal();
    this.deps.beforeStop(this.taskId, spec.stopGracePeriodMs).then(signal, (err: unknown) => {
      this.deps.log.warn({ taskId: this.taskId, err }, "draining before stop failed; stopping anyway");
      signal();
    });
  }

  private onExit(handle: TaskHandle, s: ExitStatus): void {
    this.cancelKill();
    this.monitor?.stop();
    const what = describeExit(s);
    // An OOM kill is a SIGKILL from the kernel; docker reports it as exit code 137 too.
    const details = s.oomKilled
      ? { exitCode: 137, signal: "SIGKILL" }
      : { ...(s.exitCode !== undefined ? { exitCode: s.exitCode } : {}), ...(s.signal ? { signal: s.signal } : {}) };
    const p = this.phase;
    if (p.name === "stopping" && p.reason === "unhealthy") {
      this.end("failed", this.failure.startsWith("unhealthy") ? "task unhealthy" : this.failure.replace(/:.*/, ""), { err: this.failure, ...details }, handle);
    } else if (p.name === "stopping") {
      this.end("shutdown", `shut down (${what})`, details, handle);
    } else if (s.exitCode === 0 && !s.oomKilled) {
      this.end("complete", "finished", details, handle);
    } else {
      this.end("failed", what, { err: what, ...details }, handle);
    }
  }

  private end(state: TaskState, message: string, extra: Partial<TaskStatusUpdate>, handle?: TaskHandle): void {
    if (this.phase.name === "ended") return;
    this.phase = { name: "ended" };
    this.cancelKill();
    this.monitor?.stop();
    this.transition(state, message, extra);
    this.deps.ports.release(this.port);
    this.deps.records.remove(this.taskId);
    this.deps.files?.remove(this.taskId);
    this.removeAnonymousVolumes();
    if (handle) this.driver.cleanup(handle);
    this.resolveExited();
  }

  /**
   * The only way the observed state changes: forward only (model/task-state.ts). Reporting the
   * current state again carries new details (health, pid) without a transition.
   */
  private transition(to: TaskState, message: string, extra: Partial<TaskStatusUpdate> = {}): void {
    if (to !== this.observed) {
      if (!canTransition(this.observed, to)) {
        this.deps.log.error({ taskId: this.taskId, from: this.observed, to }, "refused backward task state change");
        return;
      }
      this.observed = to;
      this.deps.log.debug({ taskId: this.taskId, state: to }, "task state");
    }
    this.lastMessage = message;
    this.deps.report({ taskId: this.taskId, state: to, message, ...extra });
  }

  /** The mesh's counters for this task, reported when they moved (a canary watches them). */
  reportTraffic(c: TrafficCounters): void {
    if (this.phase.name !== "running" && this.phase.name !== "stopping") return;
    const key = `${c.requests}/${c.errors}`;
    if (key === this.lastTraffic) return;
    this.lastTraffic = key;
    this.deps.report({ taskId: this.taskId, state: this.observed, message: this.lastMessage, traffic: { ...c } });
  }
}
