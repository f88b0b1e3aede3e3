import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, closeSync, constants, existsSync, openSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { delimiter, isAbsolute, join, resolve } from "node:path";
import type { Clock } from "../../../lib/clock.js";
import type { NodeLimitSupport, Resources } from "../../../model/objects.js";
import { Cgroups, type TaskCgroup } from "../../cgroups/cgroups.js";
import type { Driver, ExitStatus, StartRequest, TaskHandle, TaskStats } from "../driver.js";
import { StartError } from "../driver.js";
import { isLiveProcess, processGroupUsage, readProcStat } from "./proc-stat.js";
import { decodeShellStatus, SHIM_SCRIPT } from "./shim.js";

/** CPU use is a rate: ticks counted over this window. */
const STATS_WINDOW_MS = 1000;
/** USER_HZ, the unit of utime/stime in /proc/<pid>/stat: 100 on Linux whatever the kernel's HZ. */
const CLOCK_TICKS_PER_SECOND = 100;

/** How often an adopted (not our child) process is checked for exit. */
const ADOPTED_POLL_MS = 250;
/** The shim writes the task's pid within a few ms of the spawn; this bounds a wedged start. */
const PID_WAIT_MS = 5000;
const PID_POLL_MS = 2;
/**
 * A cgroup is removable once the kernel has taken its last process out, a few ms after the kill;
 * 20 tries 100 ms apart outlast a process stuck in uninterruptible I/O for a moment.
 */
const CGROUP_REMOVE_RETRY_MS = 100;
const CGROUP_REMOVE_TRIES = 20;

export interface ProcessDriverOptions {
  /** Per-task cgroups for limits. @default Cgroups.none(): a task with limits is refused */
  cgroups?: Cgroups;
}

const hasLimits = (l: Resources | undefined): l is Resources => l !== undefined && (l.cpus !== undefined || l.memoryBytes !== undefined);

const exitPathOf = (prefix: string): string => `${prefix}.exit`;
const pidPathOf = (prefix: string): string => `${prefix}.pid`;
const groupOf = (h: TaskHandle): number => h.groupId ?? h.pid;

/**
 * Runs a command on the host in its own session and process group (setsid: a Ctrl-C in Baton's
 * terminal never reaches it) under a one-`sh` shim that records its exit status (shim.ts), with
 * stdout/stderr appended straight to the task's log file, so the task outlives Baton and its
 * end is known even if Baton was down when it came. A task with limits runs in a cgroup of its
 * own (cgroups.ts), joined by the shim before the command is exec'd, removed when it ends.
 */
export class ProcessDriver implements Driver {
  readonly name = "process";
  readonly limits: NodeLimitSupport;
  private readonly cgroups: Cgroups;
  private readonly children = new Map<number, ChildProcess>();
  private readonly exits = new Map<number, ExitStatus>();

  constructor(
    private readonly clock: Clock,
    opts: ProcessDriverOptions = {},
  ) {
    this.cgroups = opts.cgroups ?? Cgroups.none();
    this.limits = this.cgroups.nodeSupport;
  }

  async start(req: StartRequest): Promise<TaskHandle> {
    const cwd = req.workdir ?? process.cwd();
    checkStartable(req.command[0]!, req.env.PATH ?? "", cwd);
    const cgroup = hasLimits(req.limits) ? this.makeCgroup(req.taskId, req.limits) : undefined;
    const exitPath = exitPathOf(req.statePrefix);
    const pidPath = pidPathOf(req.statePrefix);
    rmSync(exitPath, { force: true });
    rmSync(pidPath, { force: true });
    const joins = cgroup?.procs ?? [];
    let child: ChildProcess;
    let groupId: number;
    try {
      const fd = openSync(req.logPath, "a");
      try {
        child = spawn("/bin/sh", ["-c", SHIM_SCRIPT, "baton-shim", exitPath, pidPath, String(joins.length), ...joins, ...req.command], { cwd, env: req.env, detached: true, stdio: ["ignore", fd, fd] });
      } finally {
        closeSync(fd);
      }
      groupId = await new Promise<number>((resolvePid, reject) => {
        child.once("error", (err: NodeJS.ErrnoException) => reject(new StartError(`cannot start: ${err.message}`)));
        child.once("spawn", () => resolvePid(child.pid!));
      });
    } catch (err) {
      if (cgroup) this.removeCgroups(cgroup.dirs);
      throw err;
    }
    child.unref();
    this.children.set(groupId, child);
    child.once("exit", (code, signal) => this.exits.set(groupId, code !== null ? { exitCode: code } : { signal: signal ?? "unknown" }));
    const startTime = readProcStat(groupId)?.startTime ?? "";
    const pid = await this.waitForTaskPid(pidPath, groupId);
    return { pid, groupId, startTime, statePrefix: req.statePrefix, ...(cgroup ? { cgroups: cgroup.dirs } : {}) };
  }

  wait(handle: TaskHandle, onExit: (s: ExitStatus) => void): () => void {
    const group = groupOf(handle);
    let done = false;
    const finish = (shimStatus: ExitStatus): void => {
      if (done) return;
      done = true;
      this.children.delete(group);
      this.exits.delete(group);
      // The task is gone; whatever it left in its group goes too.
      this.signal(handle, "SIGKILL");
      const status = this.recordedExit(handle) ?? shimStatus;
      onExit(this.wasOomKilled(handle, status) ? { ...status, oomKilled: true } : status);
    };
    const child = this.children.get(group);
    if (child) {
      const known = this.exits.get(group);
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
    // Adopted after an agent restart: not our child, so poll /proc; the shim's file has the status.
    let cancel = (): void => undefined;
    const poll = (): void => {
      if (done) return;
      if (!this.isAlive(handle)) finish({ message: "process exited; exit status unknown (it ended while the agent was down and left no record)" });
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
      process.kill(-groupOf(handle), signal);
    } catch {
      // Group already gone; try the task alone in case it left its group.
      try {
        if (isLiveProcess(handle.pid)) process.kill(handle.pid, signal);
      } catch {
        /* gone */
      }
    }
  }

  /**
   * CPU over a one-second window and resident memory now, of the task's whole process group
   * (the shim, the task and its children), from /proc: the same for tasks with or without a cgroup.
   */
  async stats(handle: TaskHandle): Promise<TaskStats | undefined> {
    if (!this.isAlive(handle)) return undefined;
    const group = groupOf(handle);
    const before = processGroupUsage(group);
    const t0 = this.clock.now();
    await this.clock.sleep(STATS_WINDOW_MS);
    const after = processGroupUsage(group);
    const seconds = Math.max(1, this.clock.now() - t0) / 1000;
    return { cpus: Math.max(0, after.ticks - before.ticks) / CLOCK_TICKS_PER_SECOND / seconds, memoryBytes: after.rssBytes };
  }

  isAlive(handle: TaskHandle): boolean {
    return isLiveProcess(groupOf(handle), handle.startTime);
  }

  recordedExit(handle: TaskHandle): ExitStatus | undefined {
    if (!handle.statePrefix) return undefined;
    try {
      const text = readFileSync(exitPathOf(handle.statePrefix), "utf8").trim();
      return /^\d+$/.test(text) ? decodeShellStatus(Number(text)) : undefined;
    } catch {
      return undefined;
    }
  }

  killStrays(taskIds: ReadonlySet<string>): number[] {
    const killed: number[] = [];
    if (taskIds.size === 0) return killed;
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      const pid = Number(entry);
      if (pid === process.pid) continue;
      let env: string;
      try {
        env = readFileSync(`/proc/${pid}/environ`, "latin1");
      } catch {
        continue;
      }
      const m = /(?:^|\0)BATON_TASK_ID=([^\0]*)/.exec(env);
      if (!m || !taskIds.has(m[1]!)) continue;
      for (const target of [-pid, pid]) {
        try {
          process.kill(target, "SIGKILL");
        } catch {
          /* not a group leader, or gone */
        }
      }
      killed.push(pid);
    }
    // Their cgroups were made before the spawn and never recorded: found by task id.
    for (const id of taskIds) this.removeCgroups(this.cgroups.dirsOf(id));
    return killed;
  }

  cleanup(handle: TaskHandle): void {
    if (handle.cgroups?.length) this.removeCgroups(handle.cgroups);
    if (!handle.statePrefix) return;
    rmSync(exitPathOf(handle.statePrefix), { force: true });
    rmSync(pidPathOf(handle.statePrefix), { force: true });
  }

  /** An abnormal end of a task with a memory limit: did the kernel's OOM killer do it? */
  private wasOomKilled(handle: TaskHandle, s: ExitStatus): boolean {
    if (!handle.cgroups?.length || s.exitCode === 0) return false;
    return this.cgroups.oomKilled(handle.cgroups, s.signal === "SIGKILL" || s.exitCode === 137);
  }

  /** Removes cgroups now or, while their last processes are still being taken out, a little later. */
  private removeCgroups(dirs: readonly string[], triesLeft = CGROUP_REMOVE_TRIES): void {
    const left = this.cgroups.remove(dirs);
    if (left.length && triesLeft > 1) this.clock.setTimer(CGROUP_REMOVE_RETRY_MS, () => this.removeCgroups(left, triesLeft - 1));
  }

  /** The task's cgroup with its limits, before anything is spawned: a refusal rejects the task. */
  private makeCgroup(taskId: string, limits: Resources): TaskCgroup {
    const missing = this.cgroups.unenforceable(limits);
    if (missing.length) throw new StartError(`this node cannot enforce ${missing.join(" and ")} limits (cgroup ${this.limits.cgroup})`);
    try {
      return this.cgroups.create(taskId, limits);
    } catch (err) {
      throw new StartError(`cannot set up the task's cgroup: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** The inner sh writes its pid, then execs the task: that pid is the task's. */
  private async waitForTaskPid(pidPath: string, groupId: number): Promise<number> {
    const deadline = this.clock.now() + PID_WAIT_MS;
    for (;;) {
      try {
        const text = readFileSync(pidPath, "utf8");
        if (text.endsWith("\n")) return Number(text);
      } catch {
        /* not yet */
      }
      // The shim ended before the task got going (exec failed, or it was killed).
      if (this.exits.has(groupId) || this.clock.now() > deadline) return groupId;
      await new Promise((r) => setTimeout(r, PID_POLL_MS));
    }
  }
}

/**
 * What spawn would have said had the task been spawned directly: a missing working directory or
 * executable rejects the task (StartError) instead of starting a shim that fails at once.
 */
function checkStartable(command: string, pathEnv: string, cwd: string): void {
  if (!existsSync(cwd) || !statSync(cwd).isDirectory()) throw new StartError(`working directory not found: ${cwd}`);
  const candidates = command.includes("/") ? [isAbsolute(command) ? command : resolve(cwd, command)] : pathEnv.split(delimiter).filter(Boolean).map((d) => join(resolve(cwd, d), command));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      if (statSync(c).isFile()) return;
    } catch {
      /* next */
    }
  }
  throw new StartError(`executable not found: ${command} (cwd ${cwd})`);
}
