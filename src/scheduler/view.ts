import type { Node, Task } from "../model/objects.js";
import { isTerminal } from "../model/task-state.js";

/** A node plus what is already placed on it; updated after each placement in a batch. */
export interface NodeView {
  node: Node;
  reservedCpus: number;
  reservedMemoryBytes: number;
  taskCount: number;
  tasksByService: Map<string, number>;
  /** Ports tasks on this node publish in host mode. */
  hostPorts: Set<number>;
}

/**
 * Tasks that hold resources on their node: assigned and not observed ended. A task told to stop
 * keeps its reservation until it has stopped (it may run for its whole grace period), so a node
 * is never over-committed while the old task winds down.
 */
const holdsResources = (t: Task): boolean => t.nodeId !== undefined && !isTerminal(t.status.state);

export function buildNodeViews(nodes: Node[], tasks: Iterable<Task>): Map<string, NodeView> {
  const views = new Map<string, NodeView>();
  for (const node of nodes) {
    views.set(node.id, { node, reservedCpus: 0, reservedMemoryBytes: 0, taskCount: 0, tasksByService: new Map(), hostPorts: new Set() });
  }
  for (const t of tasks) {
    if (!holdsResources(t) || t.status.state === "new" || t.status.state === "pending") continue;
    const v = views.get(t.nodeId!);
    if (v) addTask(v, t);
  }
  return views;
}

export function addTask(v: NodeView, t: Pick<Task, "serviceId" | "spec">): void {
  v.reservedCpus += t.spec.reservations.cpus ?? 0;
  v.reservedMemoryBytes += t.spec.reservations.memoryBytes ?? 0;
  v.taskCount++;
  v.tasksByService.set(t.serviceId, (v.tasksByService.get(t.serviceId) ?? 0) + 1);
  for (const h of t.spec.hostPorts ?? []) v.hostPorts.add(h.published);
}
