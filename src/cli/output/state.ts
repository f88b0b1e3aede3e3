import { humanDuration } from "../../lib/duration.js";
import type { Task } from "../../model/objects.js";

const cap = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

/** "Running 4 seconds ago", "Pending 2 seconds ago" */
export function currentState(t: Task, now: number): string {
  const health = t.status.state === "running" && t.status.health && t.status.health !== "healthy" ? ` (${t.status.health})` : "";
  return `${cap(t.status.state)}${health} ${humanDuration(now - t.status.timestamp)} ago`;
}

/** The ERROR column: why it failed, or why it is pending. */
export function taskError(t: Task): string {
  if (t.status.state === "pending") return JSON.stringify(t.status.message);
  const e = t.status.err ?? (t.status.state === "rejected" ? t.status.message : "");
  const blocked = t.restartBlocked ? ` (${t.restartBlocked})` : "";
  return e ? JSON.stringify(e) + blocked : blocked.trim();
}

export const desiredState = (t: Task): string => cap(t.desiredState);
