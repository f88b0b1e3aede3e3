import { mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { open, rename } from "node:fs/promises";
import { join } from "node:path";
import type { HealthConfig } from "../model/objects.js";
import type { TaskHandle } from "./drivers/driver.js";

/**
 * What the agent keeps on disk per task it starts, to re-adopt it after a restart. Written
 * before the spawn (`starting`, no handle: a crash after the spawn leaves a process that is found
 * by its BATON_TASK_ID and stopped) and again once the task runs (with its handle).
 */
export interface TaskRecord {
  taskId: string;
  handle?: TaskHandle;
  port?: number;
  /** Service port target → the task's port here. */
  ports?: Record<string, number>;
  logPath: string;
  /** Where the driver keeps the task's exit status and pid files. */
  statePrefix: string;
  startedAt?: number;
  /** docker: the image's HEALTHCHECK this task runs (read at prepare), so an adopted task keeps it. */
  imageHealth?: HealthConfig;
}

/** Where task records live: files in the agent's data dir (TaskRecords); memory in unit tests. */
export interface TaskRecordStore {
  statePrefixOf(taskId: string): string;
  save(r: TaskRecord): Promise<void>;
  remove(taskId: string): void;
  loadAll(): TaskRecord[];
}

export class TaskRecords implements TaskRecordStore {
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  /** Where the driver keeps per-task files next to the record. */
  statePrefixOf(taskId: string): string {
    return join(this.dir, taskId);
  }

  /**
   * Durable when it resolves: written to a temp file, fsynced, renamed over the record, and the
   * directory fsynced, so a crash leaves the old record or the new one, never half of one. The
   * fsyncs run off the event loop (fs.promises): at 8 starts in flight they overlap instead of
   * blocking the manager for a few ms each.
   */
  async save(r: TaskRecord): Promise<void> {
    const path = join(this.dir, `${r.taskId}.json`);
    const file = await open(`${path}.tmp`, "w");
    try {
      await file.writeFile(JSON.stringify(r));
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(`${path}.tmp`, path);
    const dir = await open(this.dir, "r");
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }

  remove(taskId: string): void {
    rmSync(join(this.dir, `${taskId}.json`), { force: true });
  }

  loadAll(): TaskRecord[] {
    const out: TaskRecord[] = [];
    for (const f of readdirSync(this.dir)) {
      if (!f.endsWith(".json")) continue;
      try {
        const r = JSON.parse(readFileSync(join(this.dir, f), "utf8")) as TaskRecord;
        // Records from before the shim: the task led its own group, nothing else was kept.
        out.push({ ...r, statePrefix: r.statePrefix ?? this.statePrefixOf(r.taskId) });
      } catch {
        rmSync(join(this.dir, f), { force: true });
      }
    }
    return out;
  }
}
