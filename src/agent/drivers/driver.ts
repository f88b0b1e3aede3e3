import type { NodeLimitSupport, Resources } from "../../model/objects.js";

/** What one driver offers the executor (architecture.md: prepare, start, wait, stop, inspect, re-adopt, logs). */
export interface StartRequest {
  taskId: string;
  command: string[];
  env: Record<string, string>;
  workdir?: string;
  /** Where stdout and stderr go, appended, straight from the task (not through Baton). */
  logPath: string;
  /** Path prefix for the files the driver keeps beside the task record (exit status, pid). */
  statePrefix: string;
  /** What the task may use at most; a driver that cannot enforce one refuses the start. */
  limits?: Resources;
}

/**
 * Enough to find the task again after an agent restart. Records written before the shim existed
 * have no `groupId`: there the task itself leads its group.
 */
export interface TaskHandle {
  /** The task's own pid (what `service ps` shows). */
  pid: number;
  /** Leader of the task's session and process group (the shim): what signals and liveness use. */
  groupId?: number;
  /** Start time of the group leader, so a reused pid is never taken for the task. */
  startTime: string;
  /** Where the shim writes the task's exit status. */
  statePrefix?: string;
  /** The task's cgroup directories (a task with limits), removed when it ends. */
  cgroups?: string[];
}

export interface ExitStatus {
  exitCode?: number;
  signal?: string;
  /** Set when the exit status could not be observed. */
  message?: string;
  /** The kernel killed the task (or a process of it) for going over its memory limit. */
  oomKilled?: boolean;
}

/** "OOM killed", "exit code 1", "killed by SIGKILL", or why the status is unknown. */
export function describeExit(s: ExitStatus): string {
  if (s.oomKilled) return "OOM killed";
  return s.message ?? (s.signal ? `killed by ${s.signal}` : `exit code ${s.exitCode}`);
}

/** Failure before the task ran: the task is rejected, not failed. */
export class StartError extends Error {}

export interface Driver {
  readonly name: string;
  /** Which limits this driver enforces on this node (the node advertises it); absent: none. */
  readonly limits?: NodeLimitSupport;
  start(req: StartRequest): Promise<TaskHandle>;
  /** Calls onExit once when the task ends; works for started and adopted tasks. Returns cancel. */
  wait(handle: TaskHandle, onExit: (s: ExitStatus) => void): () => void;
  /** Sends a signal to the task's whole process group. */
  signal(handle: TaskHandle, signal: NodeJS.Signals): void;
  /** True when the handle still names the same live task (pid reuse is detected). */
  isAlive(handle: TaskHandle): boolean;
  /** The exit status a task recorded when it ended, if it ended while nobody watched. */
  recordedExit(handle: TaskHandle): ExitStatus | undefined;
  /** Kills, by group, every process that carries one of these task ids (strays of a crash). Returns the pids. */
  killStrays(taskIds: ReadonlySet<string>): number[];
  /** Removes what the driver kept for an ended task. */
  cleanup(handle: TaskHandle): void;
}
