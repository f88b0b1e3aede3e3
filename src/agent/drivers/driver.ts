import type { NetworkAttachment } from "../../dispatcher/protocol.js";
import type { HealthConfig, NodeLimitSupport, Resources, TaskMount } from "../../model/objects.js";

/**
 * What one driver offers the executor (architecture.md: prepare, start, wait, stop, inspect,
 * re-adopt, logs). The process driver and the docker driver implement it; the optional members
 * are what only some drivers can do (the executor and agent fall back when they are absent).
 */
export interface StartRequest {
  taskId: string;
  command: string[];
  env: Record<string, string>;
  workdir?: string;
  /** Where stdout and stderr go, appended (the process writes it itself; docker's logs are streamed into it). */
  logPath: string;
  /** Path prefix for the files the driver keeps beside the task record (exit status, pid). */
  statePrefix: string;
  /** docker: the image, with its tag. */
  image?: string;
  /** docker: replaces the image's ENTRYPOINT. */
  entrypoint?: string[];
  /** docker: user[:group] in the container. */
  user?: string;
  /** docker: the container's name (`web.1.<task id>`, as Swarm names them). */
  name?: string;
  /** docker: labels that find the task again (baton.task.id, baton.service.name, baton.node.id). */
  labels?: Record<string, string>;
  /** docker: container port (service target) → the host port the agent allocated for it. */
  ports?: Record<string, number>;
  /** docker: publish the ports as UDP instead of TCP. */
  udp?: boolean;
  /** docker: the task's secret and config files, each bind-mounted read-only (host file → container path). */
  fileMounts?: { source: string; target: string }[];
  /** What the task may use at most (TaskSpec.limits); a driver that cannot enforce one refuses the start. */
  limits?: Resources;
  /** docker: volumes, bind and tmpfs mounts (the process driver gets paths through env instead). */
  mounts?: TaskMount[];
  /** docker: the Baton networks to attach the container to (none: the engine's default bridge). */
  networks?: { id: string; name: string; internal: boolean }[];
  /** docker: names the container answers to on its networks (dnsrr: the service name). */
  aliases?: string[];
  /** docker: the resolvers the container uses (the mesh's responder in the container range). */
  dns?: string[];
}

/**
 * Enough to find the task again after an agent restart. Records written before the shim existed
 * have no `groupId`: there the task itself leads its group.
 */
export interface TaskHandle {
  /** The task's own pid (what `service ps` shows); a container's init process on the host. */
  pid: number;
  /** Leader of the task's session and process group (the shim): what signals and liveness use. */
  groupId?: number;
  /** Start time of the group leader, so a reused pid is never taken for the task. */
  startTime: string;
  /** Where the shim writes the task's exit status. */
  statePrefix?: string;
  /** The driver that runs it; absent: process (records written before there were two). */
  driver?: string;
  /** docker: the container id. */
  containerId?: string;
  /** docker: the task's log file, which the driver streams the container's logs into. */
  logPath?: string;
  /** The task's cgroup directories (a task with limits), removed when it ends. */
  cgroups?: string[];
  /** docker: the container's addresses on its networks (DNS answers are scoped by them). */
  addresses?: string[];
  /** docker: the engine networks Baton attached it to, removed once no container uses them. */
  networks?: string[];
}

/** What `prepare` learnt about the task's image. */
export interface Prepared {
  /** docker: the image's own HEALTHCHECK, as a Baton health check run inside the container. */
  imageHealth?: HealthConfig;
}

export interface ExitStatus {
  exitCode?: number;
  signal?: string;
  /** The kernel's OOM killer ended it (over its memory limit). */
  oomKilled?: boolean;
  /** Set when the exit status could not be observed. */
  message?: string;
}

/** "OOM killed", "exit code 1", "killed by SIGKILL", or why the status is unknown. */
export function describeExit(s: ExitStatus): string {
  if (s.oomKilled) return "OOM killed";
  return s.message ?? (s.signal ? `killed by ${s.signal}` : `exit code ${s.exitCode}`);
}

/** Failure before the task ran: the task is rejected, not failed. */
export class StartError extends Error {}

/** A task this node's driver runs, found by its own means (labels, environment). */
export interface OwnedTask {
  taskId: string;
  handle: TaskHandle;
}

/** What a driver knows about a running task right now. */
export interface TaskInspection {
  running: boolean;
  pid: number;
  exitCode?: number;
  oomKilled?: boolean;
  /** The image's own HEALTHCHECK as the engine runs it, when it has one. */
  health?: "starting" | "healthy" | "unhealthy";
}

/** Resource use of one task (the autoscaler reads these). */
export interface TaskStats {
  /** CPU use as a fraction of one core (1.5 = one and a half cores busy). */
  cpus: number;
  memoryBytes: number;
}

export interface ExecResult {
  ok: boolean;
  output: string;
}

export interface Driver {
  readonly name: string;
  /** Which limits this driver enforces on this node (the node advertises it); absent: none. */
  readonly limits?: NodeLimitSupport;
  /** Whether the driver can run tasks on this node (docker: the engine answers a ping). @default true */
  isAvailable?(): Promise<boolean>;
  /**
   * Removes this node's named volumes that Baton made and whose name is not in `keep` (docker: the
   * engine volumes labelled as Baton's; one still mounted is left). Answers the names removed.
   */
  pruneVolumes?(keep: ReadonlySet<string>): Promise<string[]>;
  /** The cluster's attachable networks (docker: each one's engine network is kept on this node while it exists). */
  setAttachableNetworks?(networks: readonly NetworkAttachment[]): Promise<void>;
  /**
   * Gets what a start needs before it (docker: the image, pulled when missing). A StartError
   * rejects the task. Called in `preparing`; `start` does not repeat it.
   */
  prepare?(req: StartRequest): Promise<Prepared>;
  /** Creates and starts the task (a StartError rejects it). */
  start(req: StartRequest): Promise<TaskHandle>;
  /** Calls onExit once when the task ends; works for started and adopted tasks. Returns cancel. */
  wait(handle: TaskHandle, onExit: (s: ExitStatus) => void): () => void;
  /** Sends a signal to the task (a process: its whole process group; docker: the container's init). */
  signal(handle: TaskHandle, signal: NodeJS.Signals): void;
  /** Runs a command inside the task (exec probes). Absent: exec probes run on the host. */
  exec?(handle: TaskHandle, command: string[], timeoutMs: number): Promise<ExecResult>;
  inspect?(handle: TaskHandle): Promise<TaskInspection | undefined>;
  stats?(handle: TaskHandle): Promise<TaskStats | undefined>;
  /** Every task the driver runs for `nodeId` (docker: containers by label): re-adoption and strays. */
  listOwned?(nodeId: string): Promise<OwnedTask[]>;
  /** Removes a task for good, running or not (a stray). */
  remove?(handle: TaskHandle): Promise<void>;
  /** True when the handle still names the same live task (pid reuse is detected). */
  isAlive?(handle: TaskHandle): boolean;
  /** The exit status a task recorded when it ended, if it ended while nobody watched. */
  recordedExit?(handle: TaskHandle): ExitStatus | undefined;
  /** Kills, by group, every process that carries one of these task ids (strays of a crash). Returns the pids. */
  killStrays?(taskIds: ReadonlySet<string>): number[];
  /** Removes what the driver kept for an ended task (state files; docker: the container). */
  cleanup(handle: TaskHandle): void;
}
