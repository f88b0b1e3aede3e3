import { join } from "node:path";
import type { TaskRecord, TaskRecordStore } from "../../src/agent/task-records.js";

/** Task records in memory, saved at once: unit tests on the fake clock stay deterministic. */
export class MemoryTaskRecords implements TaskRecordStore {
  readonly records = new Map<string, TaskRecord>();

  constructor(private readonly dir = "/nonexistent/records") {}

  statePrefixOf(taskId: string): string {
    return join(this.dir, taskId);
  }

  async save(r: TaskRecord): Promise<void> {
    this.records.set(r.taskId, structuredClone(r));
  }

  remove(taskId: string): void {
    this.records.delete(taskId);
  }

  loadAll(): TaskRecord[] {
    return [...this.records.values()].map((r) => structuredClone(r));
  }
}
