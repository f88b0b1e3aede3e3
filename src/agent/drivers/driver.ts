/** What one driver offers the executor (architecture.md: prepare, start, wait, stop, inspect, re-adopt, logs). */
export interface StartRequest {
  taskId: string;
  command: string[];
  env: Record<string, string>;
  workdir?: string;
  /** Where stdout and stderr go, appended, straight from the task (not through Baton). */
  logPath: string;
}

/** Enough to find the task again after an agent restart: pid plus the process start time. */
export interface TaskHandle {
  pid: number;
  startTime: string;
}

export interface ExitStatus {
  exitCode?: number;
  signal?: string;
  /** Set when the exit status could not be observed (an adopted process). */
  message?: string;
}

/** "exit code 1", "killed by SIGKILL", or why the status is unknown. */
export function describeExit(s: ExitStatus): string {
  return s.message ?? (s.signal ? `killed by ${s.signal}` : `exit code ${s.exitCode}`);
}

/** Failure before the task ran: the task is rejected, not failed. */
export class StartError extends Error {}

export interface Driver {
  readonly name: string;
  start(req: StartRequest): Promise<TaskHandle>;
  /** Calls onExit once when the task ends; works for started and adopted tasks. Returns cancel. */
  wait(handle: TaskHandle, onExit: (s: ExitStatus) => void): () => void;
  /** Sends a signal to the task's whole process group. */
  signal(handle: TaskHandle, signal: NodeJS.Signals): void;
  /** True when the handle still names the same live process (pid reuse is detected). */
  isAlive(handle: TaskHandle): boolean;
}
