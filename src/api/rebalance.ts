import { BatonError } from "../lib/errors.js";
import type { Service } from "../model/objects.js";
import { taskName } from "../model/objects.js";
import { planRebalance } from "../scheduler/rebalance.js";
import type { WriteTx } from "../store/store.js";

export interface NodeRef {
  id: string;
  hostname: string;
}

/** What `POST /services/{id}/rebalance` answers (and a node update with `rebalance: true`, per service). */
export interface RebalanceResult {
  serviceId: string;
  name: string;
  /** Tasks asked to move now; `to` is where the scheduler is expected to place the replacement. */
  moves: { taskId: string; task: string; from: NodeRef; to: NodeRef }[];
  /** Moves already under way (nothing new is planned until they are done). */
  moving: number;
  message: string;
}

/**
 * Plans a rebalance of one replicated service and marks the tasks to move (`moveRequest`) in
 * the caller's transaction; the orchestrator moves them start-first. Idempotent: while moves
 * are under way, nothing new is marked.
 */
export function rebalanceService(tx: WriteTx, svc: Service, now: number, maxMoves = Infinity): RebalanceResult {
  if (svc.spec.mode.kind !== "replicated") {
    throw new BatonError("VALIDATION_FAILED", `service "${svc.spec.name}" is global (one task per eligible node); only replicated services can be rebalanced`, [{ path: ["mode"], problem: "cannot rebalance a global service" }]);
  }
  const nodes = tx.list("nodes");
  const hostname = (id: string): string => nodes.find((n) => n.id === id)?.hostname ?? id;
  const ref = (id: string): NodeRef => ({ id, hostname: hostname(id) });
  const base = { serviceId: svc.id, name: svc.spec.name };
  const p = planRebalance(svc, tx.list("tasks"), nodes);
  if (p.kind === "in-flight") {
    return { ...base, moves: [], moving: p.moving, message: `${svc.spec.name}: ${p.moving} move${p.moving === 1 ? "" : "s"} still under way; nothing new to move` };
  }
  if (p.kind === "balanced") {
    const spread = Object.entries(p.perNode).map(([id, n]) => `${hostname(id)} ${n}`).join(", ");
    return { ...base, moves: [], moving: 0, message: `${svc.spec.name} is balanced: nothing to move (${spread || "no tasks placed"})` };
  }
  // Each move is one task write: where a transaction's size is limited (etcd), the first
  // `maxMoves` are marked now and the rest by a rebalance once these are done.
  const later = Math.max(0, p.moves.length - Math.max(0, maxMoves));
  if (later === p.moves.length) {
    return { ...base, moves: [], moving: 0, message: `${svc.spec.name}: ${later} task${later === 1 ? "" : "s"} to move, over what one store transaction holds now; rebalance it on its own` };
  }
  const moves = p.moves.slice(0, p.moves.length - later).map((m) => {
    const t = tx.get("tasks", m.taskId)!;
    tx.update("tasks", { ...t, moveRequest: { reason: "rebalance", requestedAt: now } });
    return { taskId: t.id, task: taskName(t), from: ref(m.fromNodeId), to: ref(m.toNodeId) };
  });
  const list = moves.map((m) => `${m.task} ${m.from.hostname} → ${m.to.hostname}`).join(", ");
  const rest = later ? `; ${later} more to move: rebalance again once these are done (the store's per-transaction limit)` : "";
  return { ...base, moves, moving: moves.length, message: `moving ${moves.length} task${moves.length === 1 ? "" : "s"} of ${svc.spec.name}: ${list}${rest}` };
}
