import type { Node, Service, Task } from "../model/objects.js";

export interface ServiceStatus {
  /** Tasks observed running (and healthy, when the service has a health check). */
  running: number;
  desired: number;
  /** Every slot has exactly one task of the current spec version running (and healthy). */
  converged: boolean;
}

/** A task counts as up when it runs and, if it has a health check, passes it. */
export const isTaskUp = (t: Task): boolean =>
  t.desiredState === "running" && t.status.state === "running" && (!t.spec.health || t.status.health === "healthy");

/** The definition of converged from the core issue, shared by the API, the CLI and tests. */
export function serviceStatus(s: Service, tasks: Task[], nodes: Node[]): ServiceStatus {
  const wanted = tasks.filter((t) => t.desiredState === "running");
  const up = wanted.filter((t) => isTaskUp(t) && t.specVersion === s.specVersion);
  let desired: number;
  if (s.spec.mode.kind === "replicated") desired = s.spec.mode.replicas;
  else {
    const slots = new Set(wanted.map((t) => t.nodeId));
    desired = nodes.filter((n) => slots.has(n.id)).length;
  }
  const slotsUp = new Set(up.map((t) => (t.slot > 0 ? String(t.slot) : t.nodeId)));
  const converged = slotsUp.size === desired && wanted.length === desired && up.length === desired;
  return { running: up.length, desired, converged };
}
