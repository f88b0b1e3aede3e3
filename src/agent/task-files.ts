import { createHash } from "node:crypto";
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Logger } from "../lib/log.js";
import type { TaskFile } from "../dispatcher/protocol.js";

/** Where a task's files are: the directories a process task is told, the binds a container gets. */
export interface DeliveredFiles {
  secretsDir?: string;
  configsDir?: string;
  /** docker: host file → path in the container, read-only. */
  binds: { source: string; target: string }[];
}

/** docker's defaults: secrets under /run/secrets, configs at the root of the container. */
const CONTAINER_DIR = { secret: "/run/secrets", config: "" } as const;

/**
 * The secret and config files of this node's tasks: one directory per task under a root that is
 * a tmpfs where the host has one (/dev/shm), so a secret never reaches a disk; removed when the
 * task ends, and at agent start for tasks that ended meanwhile.
 *
 *   <root>/<task id>/secrets/<target>     (0700 dirs; files with the reference's mode)
 *   <root>/<task id>/configs/<target>
 *   <root>/<task id>/abs/<n>              absolute targets (docker only), bind-mounted one by one
 */
export class TaskFiles {
  private constructor(
    readonly root: string,
    /** The root is on a tmpfs (memory only). */
    readonly inMemory: boolean,
    private readonly log: Logger,
  ) {}

  /**
   * /dev/shm/baton-<hash of the data dir> when /dev/shm is a writable tmpfs (one root per data
   * dir: two agents on one host never share); else `<data dir>/files`, with a warning.
   */
  static open(dataDir: string, log: Logger, shm = "/dev/shm"): TaskFiles {
    if (isTmpfs(shm)) {
      const root = tmpfsRootOf(dataDir, shm);
      try {
        mkdirSync(root, { recursive: true, mode: 0o700 });
        chmodSync(root, 0o700);
        return new TaskFiles(root, true, log);
      } catch (err) {
        log.warn({ err, root }, "cannot use the tmpfs for task secrets");
      }
    }
    const root = join(dataDir, "files");
    mkdirSync(root, { recursive: true, mode: 0o700 });
    log.warn({ root }, "no writable tmpfs (/dev/shm): task secrets are written under the data dir, on disk");
    return new TaskFiles(root, false, log);
  }

  /** Writes a task's files (replacing any earlier ones of it). Throws when one cannot be written. */
  write(taskId: string, files: TaskFile[]): DeliveredFiles {
    const dir = this.dirOf(taskId);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const { delivered, paths } = this.layout(taskId, files);
    files.forEach((f, i) => {
      const path = paths[i]!;
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      const data = Buffer.from(f.data, "base64");
      // Created owner-only, then given its mode: never readable by others, even briefly.
      writeFileSync(path, data, { mode: 0o600, flag: "wx" });
      data.fill(0);
      if ((f.uid !== undefined || f.gid !== undefined) && process.getuid?.() === 0) chownSync(path, Number(f.uid ?? 0), Number(f.gid ?? 0));
      chmodSync(path, f.mode);
    });
    return delivered;
  }

  /**
   * Where `write` put a task's files, without touching them: for a task adopted after an agent
   * restart, whose exec probes need the same BATON_SECRETS_DIR as the task.
   */
  locate(taskId: string, files: TaskFile[]): DeliveredFiles {
    return this.layout(taskId, files).delivered;
  }

  private layout(taskId: string, files: TaskFile[]): { delivered: DeliveredFiles; paths: string[] } {
    const dir = this.dirOf(taskId);
    const delivered: DeliveredFiles = { binds: [] };
    const paths = files.map((f, i) => {
      const absolute = f.target.startsWith("/");
      const sub = f.kind === "secret" ? "secrets" : "configs";
      const path = absolute ? join(dir, "abs", String(i)) : join(dir, sub, f.target);
      if (!absolute) {
        if (f.kind === "secret") delivered.secretsDir = join(dir, "secrets");
        else delivered.configsDir = join(dir, "configs");
      }
      delivered.binds.push({ source: path, target: absolute ? f.target : `${CONTAINER_DIR[f.kind]}/${f.target}` });
      return path;
    });
    return { delivered, paths };
  }

  remove(taskId: string): void {
    try {
      rmSync(this.dirOf(taskId), { recursive: true, force: true });
    } catch (err) {
      this.log.warn({ err, taskId }, "cannot remove a task's secret files");
    }
  }

  /** At agent start: the files of every task this node no longer runs go. */
  removeAllBut(running: Set<string>): void {
    if (!existsSync(this.root)) return;
    for (const id of readdirSync(this.root)) if (!running.has(id)) this.remove(id);
  }

  /** After every task stopped (`baton down`): the root goes too when nothing is left in it. */
  removeRootIfEmpty(): void {
    try {
      if (existsSync(this.root) && readdirSync(this.root).length === 0) rmdirSync(this.root);
    } catch (err) {
      this.log.warn({ err, root: this.root }, "cannot remove the task files directory");
    }
  }

  private dirOf(taskId: string): string {
    // Task ids are the store's (hex); anything else never names a path here.
    if (!/^[A-Za-z0-9_-]+$/.test(taskId)) throw new Error(`invalid task id ${JSON.stringify(taskId)}`);
    return join(this.root, taskId);
  }
}

/** The root of the task files of the agent whose data dir this is, on the tmpfs `shm`. */
export function tmpfsRootOf(dataDir: string, shm = "/dev/shm"): string {
  return join(shm, `baton-${createHash("sha256").update(dataDir).digest("hex").slice(0, 12)}`);
}

/** The mount at `path` is a tmpfs (from /proc/mounts; false where there is none). */
function isTmpfs(path: string): boolean {
  try {
    return readFileSync("/proc/mounts", "utf8")
      .split("\n")
      .some((l) => {
        const [, mnt, type] = l.split(" ");
        return mnt === path && type === "tmpfs";
      });
  } catch {
    return false;
  }
}
