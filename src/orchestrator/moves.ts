import type { MoveReason, Service, Task } from "../model/objects.js";
import { isTaskUp } from "../model/service-status.js";
import { isTerminal } from "../model/task-state.js";
import { decideRestart } from "./restart.js";
import { shutdownTask } from "./task-factory.js";

/**
 * Moving a replicated task off its node (drain, rebalance). One code path for both: the task
 * being moved (`from`) and its replacement (`to`, whose `moveOf` names `from`) form a move pair
 * in their slot. Start-first: `to` is placed elsewhere and `from` is stopped only once `to` is
 * up, so the slot never has fewer tasks up than before. Everything the pair needs is on the two
 * tasks, so a restarted manager picks a move up where it was.
 */
export interface MovePair {
  from: Task;
  to: Task;
}

/** The slot's move pair among its tasks wanted running, if any. */
export function findMovePair(current: readonly Task[]): MovePair | undefined {
  for (const to of current) {
    if (!to.moveOf) continue;
    const from = current.find((t) => t.id === to.moveOf!.taskId);
    if (from) return { from, to };
  }
  return undefined;
}

/**
 * Why this task should leave its node, or undefined: its node is drained (replicated tasks
 * only; a global task's slot simply ends there), or `service rebalance` marked it.
 */
export function moveReason(t: Task, drained: ReadonlySet<string>): MoveReason | undefined {
  if (t.slot === 0 || !t.nodeId || isTerminal(t.status.state)) return undefined;
  if (drained.has(t.nodeId)) return "drain";
  return t.moveRequest ? "rebalance" : undefined;
}

/**
 * Start-first unless a drain of a stop-first service: drain follows the service's update order
 * (as an update would replace the task), rebalance is always start-first — it is optional work
 * and must cost no capacity.
 */
export const isStartFirstMove = (reason: MoveReason, svc: Service): boolean => reason === "rebalance" || svc.spec.update.order === "start-first";

/**
 * One step of a move pair, written into `update`. Returns true when the slot's head (the
 * replacement) was dealt with here and the usual head logic must skip it this time.
 * - `to` is up: `from` goes; the move is done.
 * - `from` ended by itself meanwhile: its restart policy decides, as if no move had begun — a
 *   restart is the replacement already under way (it takes the counters); no restart blocks the
 *   slot and the replacement goes. Ended by Baton or its node (shutdown, orphaned): `to` carries on.
 * - The move is no longer wanted (the node is active again) and `to` is not up: `to` goes.
 * - Otherwise `to` is on its way (pending, starting, not ready yet, or restarted by its policy).
 */
export function planMoveStep(pair: MovePair, head: Task, drained: ReadonlySet<string>, now: number, update: Task[]): boolean {
  const { from, to } = pair;
  if (isTerminal(from.status.state)) {
    const d = decideRestart(from, now);
    if (!d.restart) {
      update.push({ ...from, restartBlocked: d.reason }, shutdownTask(to, now));
      return to === head;
    }
    update.push(shutdownTask(from, now));
    const ownEnd = from.status.state !== "shutdown" && from.status.state !== "orphaned";
    if (ownEnd && !isTerminal(to.status.state)) {
      update.push({ ...to, restart: d.next });
      return to === head;
    }
    return false;
  }
  if (isTaskUp(to)) {
    update.push(shutdownTask(from, now));
    return false;
  }
  if (!moveReason(from, drained)) {
    update.push(shutdownTask(to, now));
    return to === head;
  }
  return false;
}
