import type { Node, Service, Task } from "./objects.js";
import { globalNodes } from "./eligibility.js";
import { slotKey } from "./slots.js";

export interface ServiceStatus {
  /** Tasks observed running (and healthy, when the service has a health check). */
  running: number;
  desired: number;
  /** Every slot has exactly one task of the current spec version running (and healthy). */
  converged: boolean;
}

/**
 * A task counts as up when it runs, passes its health check if it has one, and — when its
 * service has service ports — is ready (in the mesh's pools): `service create` returns when the
 * service answers through its published ports, not a moment before.
 */
export const isTaskUp = (t: Task): boolean =>
  t.desiredState === "running" &&
  t.status.state === "running" &&
  (!t.spec.health || t.status.health === "healthy") &&
  (!t.spec.targets?.length || t.status.ready === true);

/**
 * The task runs the service's current spec: its spec version, or an earlier version with the
 * same task spec (after a rollback, tasks that never left the old spec are current again) —
 * except after `--force`, whose point is to replace every task even with the spec unchanged.
 */
export const isCurrentSpec = (t: Task, s: Service): boolean =>
  t.specVersion === s.specVersion || (!s.updateStatus?.force && JSON.stringify(t.spec) === JSON.stringify(s.spec.task));

/** The definition of converged from the core issue, shared by the API, the CLI and tests. */
export function serviceStatus(s: Service, tasks: Task[], nodes: Node[]): ServiceStatus {
  const wanted = tasks.filter((t) => t.desiredState === "running");
  const up = wanted.filter((t) => isTaskUp(t) && isCurrentSpec(t, s));
  // Global: one per eligible node, counted from the nodes, so a service whose tasks the
  // orchestrator has not created yet is not "0/0, converged".
  const desired = s.spec.mode.kind === "replicated" ? s.spec.mode.replicas : globalNodes(nodes, s.spec.task, tasks).length;
  const slotsUp = new Set(up.map(slotKey));
  const converged = slotsUp.size === desired && wanted.length === desired && up.length === desired;
  return { running: up.length, desired, converged };
}
