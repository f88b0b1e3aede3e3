/**
 * The task state machine. Observed states only move forward; `transition` is the one place that
 * enforces it (swarmkit agent/exec/controller.go does the same).
 */
export const taskStates = [
  "new",
  "pending",
  "assigned",
  "accepted",
  "preparing",
  "starting",
  "running",
  "complete",
  "failed",
  "shutdown",
  "rejected",
  "orphaned",
] as const;
export type TaskState = (typeof taskStates)[number];

export const desiredStates = ["running", "shutdown", "remove"] as const;
export type DesiredState = (typeof desiredStates)[number];

const rank = new Map<TaskState, number>(taskStates.map((s, i) => [s, i]));

export const isTerminal = (s: TaskState): boolean => rank.get(s)! >= rank.get("complete")!;

/** States owned by the agent: from accepted on. */
export const isAgentState = (s: TaskState): boolean => rank.get(s)! >= rank.get("accepted")!;

/** True when moving from `from` to `to` is allowed: forward only, terminal states are final. */
export function canTransition(from: TaskState, to: TaskState): boolean {
  if (isTerminal(from)) return false;
  return rank.get(to)! > rank.get(from)!;
}
