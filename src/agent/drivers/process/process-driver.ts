import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import type { Clock } from "../../../lib/clock.js";
import type { Driver, ExitStatus, StartRequest, TaskHandle } from "../driver.js";
import { StartError } from "../driver.js";
import { isLiveProcess, readProcStat } from "./proc-stat.js";

/** How often an adopted (not our child) process is checked for exit. */
const ADOPTED_POLL_MS = 250;

/**
 * Runs a command on the host in its own session and process group (setsid: a Ctrl-C in Baton's
 * terminal never reaches it), with stdout/stderr appended straight to the task's log file so
 * the task outlives Baton.
 */
export class ProcessDriver implements Driver {
  readonly name = "process";
  private readonly children = new Map<number, ChildProcess>();
  private readonly exits = new Map<number, ExitStatus>();

  constructor(private readonly clock: Clock) {}

  start(req: StartRequest): Promise<TaskHandle> {
    const fd = openSync(req.logPath, "a");
    try {
      const child = spawn(req.command[0]!, req.command.slice(1), {
        cwd: req.workdir,
        env: req.env,
        detached: true,
        stdio: ["ignore", fd, fd],
      });
      return new Promise<TaskHandle>((resolve, reject) => {
        child.once("error", (err: NodeJS.ErrnoException) => {
          reject(new StartError(err.code === "ENOENT" ? `executable not found: ${req.command[0]} (cwd ${req.workdir ?? process.cwd()})` : `cannot start: ${err.message}`));
        });
        child.once("spawn", () => {
          const pid = child.pid!;
          child.unref();
          this.children.set(pid, child);
          child.once("exit", (code, signal) => {
            this.exits.set(pid, code !== null ? { exitCode: code } : { signal: signal ?? "unknown" });
          });
          const stat = readProcStat(pid);
          resolve({ pid, startTime: stat?.startTime ?? "" });
        });
      });
    } finally {
      closeSync(fd);
    }
  }

  wait(handle: TaskHandle, onExit: (s: ExitStatus) => void): () => void {
    let done = false;
    const finish = (s: ExitStatus): void => {
      if (done) return;
      done = true;
      this.children.delete(handle.pid);
      this.exits.delete(handle.pid);
      // The main process is gone; whatever it left in its group goes too.
      this.signal(handle, "SIGKILL");
      onExit(s);
    };
    const child = this.children.get(handle.pid);
    if (child) {
      const known = this.exits.get(handle.pid);
      if (known) {
        queueMicrotask(() => finish(known));
        return () => void (done = true);
      }
      const onChildExit = (code: number | null, signal: NodeJS.Signals | null): void =>
        finish(code !== null ? { exitCode: code } : { signal: signal ?? "unknown" });
      child.once("exit", onChildExit);
      return () => {
        done = true;
        child.off("exit", onChildExit);
      };
    }
    // Adopted after an agent restart: not our child, so poll /proc.
    let cancel = (): void => undefined;
    const poll = (): void => {
      if (done) return;
      if (!this.isAlive(handle)) finish({ message: "process exited; exit status unknown (adopted after an agent restart)" });
      else cancel = this.clock.setTimer(ADOPTED_POLL_MS, poll);
    };
    poll();
    return () => {
      done = true;
      cancel();
    };
  }

  signal(handle: TaskHandle, signal: NodeJS.Signals): void {
    try {
      process.kill(-handle.pid, signal);
    } catch {
      // Group already gone; try the pid alone in case it left its group.
      try {
        if (this.isAlive(handle)) process.kill(handle.pid, signal);
      } catch {
        /* gone */
      }
    }
  }

  isAlive(handle: TaskHandle): boolean {
    return isLiveProcess(handle.pid, handle.startTime);
  }
}
