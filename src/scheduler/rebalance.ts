import type { Node, Service, Task } from "../model/objects.js";
import { isTaskUp } from "../model/service-status.js";
import { isTerminal } from "../model/task-state.js";
import { Pipeline } from "./pipeline.js";
import { buildNodeViews } from "./view.js";

/** One task to move, and the node the scheduler is expected to place its replacement on. */
export interface PlannedMove {
  taskId: string;
  slot: number;
  fromNodeId: string;
  toNodeId: string;
}

export type RebalancePlan =
  | { kind: "moves"; moves: PlannedMove[] }
  /** Moves of this service are still under way (a rebalance or a drain): nothing new is planned. */
  | { kind: "in-flight"; moving: number }
  | { kind: "balanced"; perNode: Record<string, number> };

/** Placed, wanted running and not ended: what counts on a node. */
const isPlacedLive = (t: Task): boolean => t.desiredState === "running" && t.nodeId !== undefined && !isTerminal(t.status.state) && t.status.state !== "new" && t.status.state !== "pending";

/**
 * Which tasks of a replicated service to move so its tasks spread evenly over the nodes that
 * can take them. Greedy: take an up task from the node with the most tasks of the service, ask
 * the scheduler's own pipeline (every filter — ready, active, constraints, resources, max per
 * node, spread preferences — and the move filter, which keeps the source out) where its
 * replacement would go, and keep the move only when it narrows the gap (target + 1 < source).
 * With 3 tasks on A and B empty: A→B once (2/1); a second move would give 1/2, no better.
 * Pure: the caller marks the tasks (`moveRequest`); the orchestrator moves them start-first.
 */
export function planRebalance(svc: Service, tasks: readonly Task[], nodes: Node[], pipeline: Pipeline = new Pipeline()): RebalancePlan {
  const own = tasks.filter((t) => t.serviceId === svc.id && t.desiredState === "running");
  // A replacement keeps its `moveOf` after the move: only one whose old task still runs is moving.
  const ids = new Set(own.map((t) => t.id));
  const movingIds = new Set<string>();
  for (const t of own) {
    if (t.moveOf && ids.has(t.moveOf.taskId)) movingIds.add(t.moveOf.taskId);
    if (t.moveRequest && !isTerminal(t.status.state)) movingIds.add(t.id);
  }
  const moving = movingIds.size;
  if (moving > 0) return { kind: "in-flight", moving };

  const views = buildNodeViews(nodes, tasks);
  const candidates = [...views.values()].sort((a, b) => (a.node.id < b.node.id ? -1 : 1));
  const count = new Map<string, number>();
  for (const t of own) if (isPlacedLive(t)) count.set(t.nodeId!, (count.get(t.nodeId!) ?? 0) + 1);
  const of = (nodeId: string): number => count.get(nodeId) ?? 0;
  // Highest slot first on each node, so the plan is deterministic.
  const movable = own.filter((t) => isPlacedLive(t) && isTaskUp(t)).sort((a, b) => b.slot - a.slot);
  const chosen = new Set<string>();
  const moves: PlannedMove[] = [];
  for (;;) {
    const left = movable.filter((t) => !chosen.has(t.id));
    if (left.length === 0) break;
    const source = left.reduce((best, t) => (of(t.nodeId!) > of(best.nodeId!) || (of(t.nodeId!) === of(best.nodeId!) && t.nodeId! < best.nodeId!) ? t : best));
    const from = source.nodeId!;
    const p = pipeline.place({ serviceId: svc.id, spec: svc.spec.task, moveOf: { taskId: source.id, nodeId: from, reason: "rebalance" } }, candidates);
    if (!("nodeId" in p) || of(p.nodeId) + 1 >= of(from)) break;
    chosen.add(source.id);
    moves.push({ taskId: source.id, slot: source.slot, fromNodeId: from, toNodeId: p.nodeId });
    count.set(from, of(from) - 1);
    count.set(p.nodeId, of(p.nodeId) + 1);
  }
  if (moves.length) return { kind: "moves", moves };
  return { kind: "balanced", perNode: Object.fromEntries([...count.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))) };
}
