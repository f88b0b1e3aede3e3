import type { Clock } from "../../src/lib/clock.js";
import type { NodeLimitSupport } from "../../src/model/objects.js";
import type { Driver, ExitStatus, StartRequest, TaskHandle } from "../../src/agent/drivers/driver.js";

interface FakeProcess {
  taskId: string;
  handle: TaskHandle;
  alive: boolean;
  signals: string[];
  onExit?: (s: ExitStatus) => void;
  recorded?: ExitStatus;
}

/**
 * A driver whose processes live only in memory: starts take `startDelayMs` on the clock, a stop
 * signal ends the process after `exitDelayMs`, and tests can end a process as they like.
 */
export class FakeDriver implements Driver {
  readonly name = "process";
  /** What the node advertises; tests set it. */
  limits: NodeLimitSupport | undefined;
  readonly processes = new Map<number, FakeProcess>();
  readonly strayKills: string[][] = [];
  /** Every start request, in order. */
  readonly starts: StartRequest[] = [];
  startDelayMs = 0;
  exitDelayMs = 0;
  private nextPid = 1000;

  constructor(private readonly clock: Clock) {}

  async start(req: StartRequest): Promise<TaskHandle> {
    this.starts.push(req);
    if (this.startDelayMs > 0) await this.clock.sleep(this.startDelayMs);
    const pid = this.nextPid++;
    const handle: TaskHandle = { pid, groupId: pid, startTime: "1", statePrefix: req.statePrefix };
    this.processes.set(pid, { taskId: req.taskId, handle, alive: true, signals: [] });
    return handle;
  }

  wait(handle: TaskHandle, onExit: (s: ExitStatus) => void): () => void {
    const p = this.processes.get(handle.pid);
    if (!p || !p.alive) {
      const status = p?.recorded ?? { message: "exit status unknown" };
      queueMicrotask(() => onExit(status));
      return () => undefined;
    }
    p.onExit = onExit;
    return () => void (p.onExit = undefined);
  }

  signal(handle: TaskHandle, signal: NodeJS.Signals): void {
    const p = this.processes.get(handle.pid);
    if (!p || !p.alive) return;
    p.signals.push(signal);
    if (signal === "SIGKILL") return this.exit(handle.pid, { signal: "SIGKILL" });
    this.clock.setTimer(this.exitDelayMs, () => this.exit(handle.pid, { signal }));
  }

  isAlive(handle: TaskHandle): boolean {
    return this.processes.get(handle.pid)?.alive === true;
  }

  recordedExit(handle: TaskHandle): ExitStatus | undefined {
    return this.processes.get(handle.pid)?.recorded;
  }

  killStrays(taskIds: ReadonlySet<string>): number[] {
    this.strayKills.push([...taskIds]);
    return [];
  }

  cleanup(): void {}

  /** Ends a process as if it exited by itself (or was killed), recording its status as the shim does. */
  exit(pid: number, status: ExitStatus): void {
    const p = this.processes.get(pid);
    if (!p || !p.alive) return;
    p.alive = false;
    p.recorded = status;
    p.onExit?.(status);
  }

  /** A process that ended while nobody watched (the agent was down). */
  endUnwatched(pid: number, status: ExitStatus): void {
    const p = this.processes.get(pid)!;
    p.onExit = undefined;
    this.exit(pid, status);
  }

  byTask(taskId: string): FakeProcess | undefined {
    return [...this.processes.values()].find((p) => p.taskId === taskId);
  }
}
