import type { Node, RestartState, Service, Task } from "../model/objects.js";
import { newTask, shutdownTask } from "./task-factory.js";
import { isTerminal } from "../model/task-state.js";
import type { NewObject } from "../store/store.js";
import { decideRestart } from "./restart.js";
import { globalNodes } from "../model/eligibility.js";
import { slotKey } from "../model/slots.js";
import { isCurrentSpec } from "../model/service-status.js";
import { findMovePair, isStartFirstMove, moveReason, planMoveStep } from "./moves.js";

/** Everything a plan looks at: one service (or its id when deleted), its tasks, the nodes. */
export interface ServiceSnapshot {
  serviceId: string;
  service: Service | undefined;
  tasks: Task[];
  nodes: Node[];
}

/** The writes one sync makes. Updates carry the version they were read at (optimistic). */
export interface Plan {
  create: NewObject<"tasks">[];
  update: Task[];
  delete: string[];
  /** Look again after this long (a restart delay is running). */
  requeueAfterMs?: number;
}

const emptyPlan = (): Plan => ({ create: [], update: [], delete: [] });
const freshRestart = (): RestartState => ({ attempts: 0, recent: [], streak: 0 });

/**
 * Reconciles one service: replicated slots 1..N or one task per eligible node (global), the
 * restart policy, and the bounded history per slot. Pure: no I/O, no timers, `now` passed in.
 */
export function planService(s: ServiceSnapshot, now: number): Plan {
  const plan = emptyPlan();
  const svc = s.service;
  if (!svc) return planRemoved(s.tasks);

  const slots = groupBySlot(s.tasks);
  // While an update runs (or is paused) the updater owns old/new pairs; after it, a pair is a lost race.
  const updateOpen = ["updating", "paused", "rollback_started", "rollback_paused"].includes(svc.updateStatus?.state ?? "");
  const drained = new Set(s.nodes.filter((n) => n.availability === "drain").map((n) => n.id));
  const wanted = wantedSlots(svc, s.nodes, s.tasks);
  const requeue = (ms: number): void => {
    plan.requeueAfterMs = Math.min(plan.requeueAfterMs ?? Infinity, Math.max(ms, 1));
  };

  for (const [key, tasks] of slots) {
    const current = tasks.filter((t) => t.desiredState === "running");
    current.sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? -1 : 1));
    // A move pair's old task never heads its slot, even when both were created in the same ms.
    const pair = findMovePair(current);
    const ordered = pair ? [...current.filter((t) => t !== pair.from), pair.from] : current;
    const head = ordered[0];
    // Invariant: at most one task per slot is wanted running; extra ones (a lost race) go —
    // except a move pair (the old task runs until its replacement is up), and a task of the
    // current spec beside one of another: that is a start-first update (or a canary, blue-green),
    // and the updater stops the other one once the current one is ready (a move pair caught by an
    // update holds two such tasks). Either may be the newer: after a rollback the older task is
    // the current one, and stopping it here would leave the failed version serving alone.
    const isPairMember = (t: Task): boolean => t === pair?.from || t === pair?.to;
    const isUpdatePair = (extra: Task): boolean =>
      updateOpen && (current.length === 2 || isPairMember(extra)) && isCurrentSpec(head!, svc) !== isCurrentSpec(extra, svc);
    for (const extra of ordered.slice(1)) if (!isPairMember(extra) && !isUpdatePair(extra)) plan.update.push(shutdownTask(extra, now));
    if (!wanted.has(key)) {
      if (head) plan.update.push(shutdownTask(head, now));
      if (pair) for (const t of [pair.from, pair.to]) if (t !== head) plan.update.push(shutdownTask(t, now));
      continue;
    }
    wanted.delete(key);
    if (!head) {
      plan.create.push(newTask(svc, key, now, freshRestart()));
      continue;
    }
    if (pair && planMoveStep(pair, head, drained, now, plan.update)) continue;
    const reason = pair ? undefined : moveReason(head, drained);
    if (reason && !isStartFirstMove(reason, svc)) {
      // Stop-first drain: the replacement is placed elsewhere (by the scheduler) as the drained
      // task is stopped; it is Baton's doing, not a restart.
      plan.update.push(shutdownTask(head, now));
      plan.create.push(newTask(svc, key, now, { ...head.restart, streak: 0 }));
      continue;
    }
    if (reason) {
      plan.create.push(newTask(svc, key, now, { ...head.restart, streak: 0 }, { taskId: head.id, nodeId: head.nodeId!, reason }));
      continue;
    }
    if (!isTerminal(head.status.state) || head.restartBlocked) continue;
    const d = decideRestart(head, now);
    if (!d.restart) {
      plan.update.push({ ...head, restartBlocked: d.reason });
    } else if (d.dueAt > now) {
      requeue(d.dueAt - now);
    } else {
      plan.update.push({ ...head, desiredState: "shutdown" });
      // A move's replacement that ended before it was up is replaced as the same move: the old
      // task keeps running until a replacement is up.
      const stillMoving = pair?.to === head && !isTerminal(pair.from.status.state) ? head.moveOf : undefined;
      plan.create.push(newTask(svc, key, now, d.next, stillMoving));
    }
  }
  for (const key of wanted) plan.create.push(newTask(svc, key, now, freshRestart()));

  reapHistory(slots, svc.spec.taskHistoryLimit, plan);
  return plan;
}

function wantedSlots(svc: Service, nodes: Node[], tasks: Task[]): Set<string> {
  const out = new Set<string>();
  if (svc.spec.mode.kind === "replicated") {
    for (let i = 1; i <= svc.spec.mode.replicas; i++) out.add(String(i));
  } else {
    for (const n of globalNodes(nodes, svc.spec.task, tasks)) out.add(slotKey({ slot: 0, nodeId: n.id }));
  }
  return out;
}

function groupBySlot(tasks: Task[]): Map<string, Task[]> {
  const m = new Map<string, Task[]>();
  for (const t of tasks) {
    const k = slotKey(t);
    const l = m.get(k);
    if (l) l.push(t);
    else m.set(k, [t]);
  }
  return m;
}

function planRemoved(tasks: Task[]): Plan {
  const plan = emptyPlan();
  for (const t of tasks) {
    if (isTerminal(t.status.state) || t.status.state === "new" || t.status.state === "pending") plan.delete.push(t.id);
    else if (t.desiredState !== "remove") plan.update.push({ ...t, desiredState: "remove" });
  }
  return plan;
}

/** Keep the newest `limit` ended tasks per slot (besides the current one); delete the rest. */
function reapHistory(slots: Map<string, Task[]>, limit: number, plan: Plan): void {
  const touched = new Set(plan.update.map((t) => t.id));
  for (const tasks of slots.values()) {
    const history = tasks
      .filter((t) => t.desiredState !== "running" && isTerminal(t.status.state) && !touched.has(t.id))
      .sort((a, b) => b.createdAt - a.createdAt);
    for (const t of history.slice(limit)) plan.delete.push(t.id);
  }
}

export const isPlanEmpty = (p: Plan): boolean => p.create.length === 0 && p.update.length === 0 && p.delete.length === 0;
