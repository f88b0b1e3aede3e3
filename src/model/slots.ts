import type { Task } from "./objects.js";

/**
 * A task's slot key: "3" for replicated slot 3, "node:<id>" for a global service's task on that
 * node. Every place that groups tasks by slot (orchestrator, status, `service ps`) uses this.
 */
export function slotKey(t: Pick<Task, "slot" | "nodeId">): string {
  return t.slot > 0 ? String(t.slot) : `node:${t.nodeId ?? ""}`;
}

/** Sort key for listing tasks by service, then slot (numeric), then node. */
export function slotSortKey(t: Pick<Task, "serviceName" | "slot" | "nodeId">): string {
  return `${t.serviceName}/${t.slot > 0 ? String(t.slot).padStart(6, "0") : `node:${t.nodeId ?? ""}`}`;
}
