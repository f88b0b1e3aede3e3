import { newId } from "../lib/ids.js";
import type { RestartState, Service, Task, TaskMove } from "../model/objects.js";
import type { NewObject } from "../store/store.js";

/** A slot's new task of the service's current spec; `moveOf` when it replaces a task that moves. */
export function newTask(svc: Service, key: string, now: number, restart: RestartState, moveOf?: TaskMove): NewObject<"tasks"> {
  const global = key.startsWith("node:");
  return {
    id: newId(),
    serviceId: svc.id,
    serviceName: svc.spec.name,
    specVersion: svc.specVersion,
    slot: global ? 0 : Number(key),
    ...(global ? { nodeId: key.slice(5) } : {}),
    desiredState: "running",
    status: { state: "new", timestamp: now, message: "created" },
    spec: svc.spec.task,
    restart,
    ...(moveOf ? { moveOf } : {}),
  };
}

/**
 * Tasks no agent holds yet (new, pending) are ended here; the agent ends the others.
 */
export function shutdownTask(t: Task, now: number, desired: "shutdown" | "remove" = "shutdown"): Task {
  if (t.status.state === "new" || t.status.state === "pending") {
    return { ...t, desiredState: desired, status: { ...t.status, state: "shutdown", timestamp: now, message: "shut down before it was assigned" } };
  }
  return { ...t, desiredState: desired };
}
