import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";

/**
 * The anonymous volumes of this node's process tasks (a volume mount without a source): one
 * directory per task under `root`, a sub-directory per target. Like the engine's anonymous
 * volumes they live as long as the task: removed when it ends, and at agent start for tasks
 * that ended while the agent was away.
 */
export class AnonymousVolumes {
  constructor(readonly root: string) {}

  /** The task's own directory (its mounts are made under it on start). */
  dirOf(taskId: string): string {
    if (!/^[A-Za-z0-9_.-]+$/.test(taskId) || taskId.startsWith(".")) throw new Error(`invalid task id ${JSON.stringify(taskId)}`);
    return join(this.root, taskId);
  }

  remove(taskId: string): void {
    rmSync(this.dirOf(taskId), { recursive: true, force: true });
  }

  /** Every task's directory but those of `running` (the recorded tasks, still alive). */
  removeAllBut(running: Set<string>): void {
    let names: string[];
    try {
      names = readdirSync(this.root);
    } catch {
      return;
    }
    for (const name of names) if (!running.has(name)) rmSync(join(this.root, name), { recursive: true, force: true });
  }
}
