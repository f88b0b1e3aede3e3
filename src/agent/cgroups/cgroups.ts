import { accessSync, constants, existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { NodeLimitSupport, Resources } from "../../model/objects.js";

/** What this host lets the agent enforce, found once at agent start (`detectCgroups`). */
export interface CgroupSupport {
  version: 1 | 2 | "none";
  memory: boolean;
  cpu: boolean;
}

/** Where a task's cgroups are: one directory on v2, one per controller on v1. */
export interface TaskCgroup {
  dirs: string[];
  /** The `cgroup.procs` files the task writes its pid to before it execs its command. */
  procs: string[];
}

/**
 * The CFS period for CPU quotas: the kernel's default, as docker uses it. A 0.5 CPU limit is a
 * 50 ms quota in every 100 ms.
 */
export const CPU_PERIOD_US = 100_000;
/** Where cgroup file systems are mounted on every distribution we know. */
export const DEFAULT_CGROUP_ROOT = "/sys/fs/cgroup";
/** Baton's cgroups sit under this name, beside docker's own `docker/` (docs/limits.md). */
export const DEFAULT_CGROUP_PARENT = "baton";

export interface CgroupOptions {
  /** @default "/sys/fs/cgroup" (a temp dir in unit tests) */
  root?: string;
  /** @default "baton" */
  parent?: string;
}

/** The layout found on the host: which directory holds Baton's cgroups for each controller. */
interface Layout {
  version: 1 | 2;
  /** Directory under which each task's cgroup is made, per controller (v2: the same for both). */
  memory?: string;
  cpu?: string;
}

const NONE: CgroupSupport = { version: "none", memory: false, cpu: false };

const writable = (file: string): boolean => {
  try {
    accessSync(file, constants.W_OK);
    return true;
  } catch {
    return false;
  }
};

const tryWrite = (file: string, text: string): boolean => {
  try {
    writeFileSync(file, text);
    return true;
  } catch {
    return false;
  }
};

const tryMkdir = (dir: string): boolean => {
  try {
    mkdirSync(dir, { recursive: true });
    return true;
  } catch {
    return false;
  }
};

/**
 * cgroup v2 (unified): `<root>/cgroup.controllers` exists. Baton's parent is made at the top of
 * the hierarchy (the root cgroup is exempt from "no processes in an inner cgroup"), and the
 * memory and cpu controllers are enabled for its children through both `cgroup.subtree_control`
 * files. A controller counts when its enabling write went through.
 */
function detectV2(root: string, parent: string): Layout {
  const available = readFileSync(join(root, "cgroup.controllers"), "utf8").split(/\s+/);
  const dir = join(root, parent);
  const layout: Layout = { version: 2 };
  if (!tryMkdir(dir)) return layout;
  for (const c of ["memory", "cpu"] as const) {
    if (!available.includes(c)) continue;
    const enabled = [join(root, "cgroup.subtree_control"), join(dir, "cgroup.subtree_control")].every((f) => tryWrite(f, `+${c}`));
    if (enabled) layout[c] = dir;
  }
  return layout;
}

/**
 * cgroup v1 (legacy or hybrid): one hierarchy per controller, `<root>/memory` and `<root>/cpu`
 * (the latter often a link to `cpu,cpuacct`). A controller counts when Baton's parent can be made
 * in its hierarchy and the limit file there is writable.
 */
function detectV1(root: string, parent: string): Layout {
  const layout: Layout = { version: 1 };
  const controllers = { memory: "memory.limit_in_bytes", cpu: "cpu.cfs_quota_us" } as const;
  for (const c of ["memory", "cpu"] as const) {
    const mount = join(root, c);
    if (!existsSync(join(mount, controllers[c]))) continue;
    const dir = join(mount, parent);
    if (tryMkdir(dir) && writable(join(dir, controllers[c]))) layout[c] = dir;
  }
  return layout;
}

function detectLayout(root: string, parent: string): Layout | undefined {
  try {
    if (existsSync(join(root, "cgroup.controllers"))) return detectV2(root, parent);
    if (existsSync(join(root, "memory")) || existsSync(join(root, "cpu"))) return detectV1(root, parent);
  } catch {
    /* unreadable: no cgroups for us */
  }
  return undefined;
}

/** The kernel's v1 "unlimited" is a huge number; anything it answers is fine, we only write. */
function writeLimitsV1(layout: Layout, taskId: string, limits: Resources): TaskCgroup {
  const out: TaskCgroup = { dirs: [], procs: [] };
  if (limits.memoryBytes !== undefined) {
    const dir = join(layout.memory!, taskId);
    mkdirSync(dir, { recursive: true });
    out.dirs.push(dir);
    writeFileSync(join(dir, "memory.limit_in_bytes"), String(limits.memoryBytes));
    // Memory+swap at the same value: the task cannot swap its way past its limit (docker
    // defaults to twice the limit; a limit that swaps instead of failing hides the problem).
    const memsw = join(dir, "memory.memsw.limit_in_bytes");
    if (existsSync(memsw)) tryWrite(memsw, String(limits.memoryBytes));
    out.procs.push(join(dir, "cgroup.procs"));
  }
  if (limits.cpus !== undefined) {
    const dir = join(layout.cpu!, taskId);
    mkdirSync(dir, { recursive: true });
    out.dirs.push(dir);
    writeFileSync(join(dir, "cpu.cfs_period_us"), String(CPU_PERIOD_US));
    writeFileSync(join(dir, "cpu.cfs_quota_us"), String(cpuQuotaUs(limits.cpus)));
    out.procs.push(join(dir, "cgroup.procs"));
  }
  return out;
}

function writeLimitsV2(layout: Layout, taskId: string, limits: Resources): TaskCgroup {
  const dir = join((layout.memory ?? layout.cpu)!, taskId);
  mkdirSync(dir, { recursive: true });
  if (limits.memoryBytes !== undefined) {
    writeFileSync(join(dir, "memory.max"), String(limits.memoryBytes));
    // As on v1: no swap past the limit.
    const swap = join(dir, "memory.swap.max");
    if (existsSync(swap)) tryWrite(swap, "0");
  }
  if (limits.cpus !== undefined) writeFileSync(join(dir, "cpu.max"), `${cpuQuotaUs(limits.cpus)} ${CPU_PERIOD_US}`);
  return { dirs: [dir], procs: [join(dir, "cgroup.procs")] };
}

/** 0.5 CPU → 50000 µs per 100000 µs period; the kernel refuses quotas under 1 ms. */
export function cpuQuotaUs(cpus: number): number {
  return Math.max(1000, Math.round(cpus * CPU_PERIOD_US));
}

/** `key value` lines (memory.events, memory.oom_control, cpu.stat) → the value of `key`. */
export function readCounter(file: string, key: string): number | undefined {
  try {
    const m = new RegExp(`^${key} (\\d+)$`, "m").exec(readFileSync(file, "utf8"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Per-task cgroups for the process driver. The driver makes a task's cgroup with its limits
 * before the spawn; the task's shim joins it before exec'ing the command (shim.ts), so no
 * instruction of the command runs unlimited. Made only for tasks with limits.
 */
export class Cgroups {
  readonly support: CgroupSupport;

  private constructor(private readonly layout: Layout | undefined) {
    const memory = layout?.memory !== undefined;
    const cpu = layout?.cpu !== undefined;
    this.support = layout && (memory || cpu) ? { version: layout.version, memory, cpu } : NONE;
  }

  /** Finds what is writable under `root` (making Baton's parent cgroups on the way). */
  static detect(opts: CgroupOptions = {}): Cgroups {
    return new Cgroups(detectLayout(opts.root ?? DEFAULT_CGROUP_ROOT, opts.parent ?? DEFAULT_CGROUP_PARENT));
  }

  /** No cgroups at all (hosts without them, and tests that do not need them). */
  static none(): Cgroups {
    return new Cgroups(undefined);
  }

  /** What the node advertises (NodeDescription.limits). */
  get nodeSupport(): NodeLimitSupport {
    const { version, memory, cpu } = this.support;
    return { memory, cpu, cgroup: version === "none" ? "none" : `v${version}` };
  }

  /** The limits among these that this host cannot enforce: "memory", "cpu". */
  unenforceable(limits: Resources): ("memory" | "cpu")[] {
    const out: ("memory" | "cpu")[] = [];
    if (limits.memoryBytes !== undefined && !this.support.memory) out.push("memory");
    if (limits.cpus !== undefined && !this.support.cpu) out.push("cpu");
    return out;
  }

  /** Makes the task's cgroup(s) and writes its limits. Throws when a write is refused. */
  create(taskId: string, limits: Resources): TaskCgroup {
    if (!this.layout || this.unenforceable(limits).length) throw new Error(`cannot enforce ${this.unenforceable(limits).join(" and ")} limits on this node`);
    try {
      return this.layout.version === 2 ? writeLimitsV2(this.layout, taskId, limits) : writeLimitsV1(this.layout, taskId, limits);
    } catch (err) {
      this.remove(this.dirsOf(taskId));
      throw err;
    }
  }

  /** Every directory a task of this id may have (for strays, whose cgroup was never recorded). */
  dirsOf(taskId: string): string[] {
    if (!this.layout) return [];
    return [...new Set([this.layout.memory, this.layout.cpu].filter((d): d is string => d !== undefined).map((d) => join(d, taskId)))];
  }

  /**
   * True when the kernel's OOM killer killed a process of the task: `oom_kill` in memory.events
   * (v2) or memory.oom_control (v1, kernel 4.13+). Older v1 kernels have no such counter; there
   * a task that hit its limit (`memory.failcnt`) and died by SIGKILL is taken as OOM-killed.
   */
  oomKilled(dirs: readonly string[], killedBySigkill: boolean): boolean {
    for (const dir of dirs) {
      const kills = readCounter(join(dir, "memory.events"), "oom_kill") ?? readCounter(join(dir, "memory.oom_control"), "oom_kill");
      if (kills !== undefined) {
        if (kills > 0) return true;
        continue;
      }
      if (killedBySigkill && Number(readTrimmed(join(dir, "memory.failcnt")) ?? 0) > 0) return true;
    }
    return false;
  }

  /**
   * Removes the task's cgroups. A cgroup with a process left in it cannot be removed: those are
   * killed (the task has ended; anything it left goes with it) and the removal is retried by the
   * caller. Returns the directories still there.
   */
  remove(dirs: readonly string[]): string[] {
    const left: string[] = [];
    for (const dir of dirs) {
      if (!existsSync(dir)) continue;
      try {
        rmdirSync(dir);
      } catch {
        killAll(dir);
        left.push(dir);
      }
    }
    return left;
  }
}

function readTrimmed(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8").trim();
  } catch {
    return undefined;
  }
}

/** SIGKILL to every process in a cgroup (v2: cgroup.kill when the kernel has it). */
function killAll(dir: string): void {
  if (existsSync(join(dir, "cgroup.kill")) && tryWrite(join(dir, "cgroup.kill"), "1")) return;
  for (const pid of (readTrimmed(join(dir, "cgroup.procs")) ?? "").split("\n").filter(Boolean).map(Number)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
}
