import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TaskHandle } from "./drivers/driver.js";

/** What the agent keeps on disk per running task, to re-adopt it after a restart. */
export interface TaskRecord {
  taskId: string;
  handle: TaskHandle;
  port?: number;
  logPath: string;
  startedAt: number;
}

export class TaskRecords {
  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  /** Written atomically (write + rename) so a crash never leaves half a record. */
  save(r: TaskRecord): void {
    const path = join(this.dir, `${r.taskId}.json`);
    writeFileSync(`${path}.tmp`, JSON.stringify(r));
    renameSync(`${path}.tmp`, path);
  }

  remove(taskId: string): void {
    rmSync(join(this.dir, `${taskId}.json`), { force: true });
  }

  loadAll(): TaskRecord[] {
    const out: TaskRecord[] = [];
    for (const f of readdirSync(this.dir)) {
      if (!f.endsWith(".json")) continue;
      try {
        out.push(JSON.parse(readFileSync(join(this.dir, f), "utf8")) as TaskRecord);
      } catch {
        rmSync(join(this.dir, f), { force: true });
      }
    }
    return out;
  }
}
