import type { RestartState, Task } from "../model/objects.js";

/** A task that ran at least this long resets the backoff streak. */
export const BACKOFF_RESET_MS = 10_000;
/** Backoff cap: a crash loop costs at most one start per 10 s. */
export const BACKOFF_CAP_MS = 10_000;
const BACKOFF_BASE_MS = 100;

/**
 * Default restart delay for the n-th consecutive short run: the first restart is immediate, then
 * 200 ms, 400 ms, … doubling up to 10 s. A crash is healed at once, a crash loop is throttled.
 */
export function backoffMs(streak: number): number {
  if (streak <= 1) return 0;
  return Math.min(BACKOFF_BASE_MS * 2 ** (streak - 1), BACKOFF_CAP_MS);
}

export type RestartDecision =
  | { restart: false; reason: string }
  | { restart: true; dueAt: number; next: RestartState };

/**
 * What the restart policy says about a slot whose current task has ended while it was wanted
 * running. Shutdown and orphaned tasks were ended by Baton or their node, not by themselves: they
 * are always replaced and do not count against max attempts.
 */
export function decideRestart(task: Task, now: number): RestartDecision {
  const policy = task.spec.restartPolicy;
  const state = task.status.state;
  const notItsFault = state === "shutdown" || state === "orphaned";
  const endedAt = task.status.timestamp;
  if (notItsFault) {
    return { restart: true, dueAt: endedAt, next: { ...task.restart, streak: 0 } };
  }
  if (policy.condition === "none") return { restart: false, reason: "restart condition is none" };
  if (policy.condition === "on-failure" && state === "complete") {
    return { restart: false, reason: "task completed; restart condition is on-failure" };
  }
  const recent = policy.windowMs > 0 ? task.restart.recent.filter((t) => t > now - policy.windowMs) : task.restart.recent;
  const counted = policy.windowMs > 0 ? recent.length : task.restart.attempts;
  if (policy.maxAttempts > 0 && counted >= policy.maxAttempts) {
    return { restart: false, reason: `restart max attempts (${policy.maxAttempts}) reached` };
  }
  const ranMs = task.status.startedAt !== undefined ? endedAt - task.status.startedAt : 0;
  const streak = ranMs >= BACKOFF_RESET_MS ? 1 : task.restart.streak + 1;
  const delay = policy.delayMs ?? backoffMs(streak);
  // Keep only what max attempts can need, so a long-lived slot's task stays small.
  const keep = Math.max(policy.maxAttempts, 1);
  return {
    restart: true,
    dueAt: endedAt + delay,
    next: { attempts: task.restart.attempts + 1, recent: [...recent, Math.max(now, endedAt + delay)].slice(-keep), streak },
  };
}
