import type { StoreEvent } from "../../src/store/store.js";
import type { Node, RestartPolicy, Task } from "../../src/model/objects.js";
import { canTransition, isTerminal, type DesiredState, type TaskState } from "../../src/model/task-state.js";
import { failedConstraint } from "../../src/model/eligibility.js";
import { slotKey } from "../../src/model/slots.js";

/** What the recorder saw of one task over its whole life, deleted or not. */
export interface TaskLife {
  id: string;
  serviceId: string;
  slot: string;
  /** The slot's epoch when the task was created (see `EventRecorder.bumpEpoch`). */
  epoch: string;
  createdRevision: number;
  policy: RestartPolicy;
  states: TaskState[];
  /** Set when it ended failed/complete/rejected while wanted running: it ended by itself. */
  endedByItself?: TaskState;
  /** The revision at which it ended by itself. */
  endedRevision?: number;
}

/** A task that holds its reservations on its node: placed, and not ended yet. */
export const holdsResources = (t: Task): boolean =>
  t.nodeId !== undefined && t.status.state !== "new" && t.status.state !== "pending" && !isTerminal(t.status.state);

/**
 * Which tasks count against a node. "observed": every placed task that has not ended, which is
 * what the node really runs. "wanted": only those still wanted running, which is what the
 * scheduler's view counts today (a task being stopped frees its reservation at once).
 */
export type Accounting = "observed" | "wanted";

/** Per ready node: reservations of tasks that hold resources there, when above its resources. */
export function overCommitted(nodes: Node[], tasks: Task[], accounting: Accounting = "observed"): string[] {
  const out: string[] = [];
  for (const n of nodes) {
    if (n.status.state !== "ready") continue;
    const on = tasks.filter((t) => t.nodeId === n.id && holdsResources(t) && (accounting === "observed" || t.desiredState === "running"));
    const cpus = on.reduce((s, t) => s + (t.spec.reservations.cpus ?? 0), 0);
    const mem = on.reduce((s, t) => s + (t.spec.reservations.memoryBytes ?? 0), 0);
    if (cpus > n.resources.cpus + 1e-9 || mem > n.resources.memoryBytes) {
      const list = on.map((t) => `${t.serviceName}.${t.slot || "g"}[${t.status.state}/${t.desiredState}]`).join(", ");
      out.push(`node ${n.id} holds cpus ${cpus}/${n.resources.cpus}, memory ${mem}/${n.resources.memoryBytes}: ${list}`);
    }
  }
  return out;
}

/** Why `t` cannot be placed on `n` right now, or undefined when it could be. */
export function whyNotPlaceable(t: Task, n: Node, tasks: Task[]): string | undefined {
  if (n.status.state !== "ready") return "not ready";
  if (n.availability !== "active") return `availability ${n.availability}`;
  if (!n.drivers.includes(t.spec.driver)) return "driver";
  if (failedConstraint(n, t.spec)) return "constraint";
  const on = tasks.filter((o) => o.nodeId === n.id && o.id !== t.id && holdsResources(o));
  const cpus = on.reduce((s, o) => s + (o.spec.reservations.cpus ?? 0), 0) + (t.spec.reservations.cpus ?? 0);
  const mem = on.reduce((s, o) => s + (o.spec.reservations.memoryBytes ?? 0), 0) + (t.spec.reservations.memoryBytes ?? 0);
  if (cpus > n.resources.cpus + 1e-9 || mem > n.resources.memoryBytes) return "resources";
  return undefined;
}

/**
 * Watches every store event and checks, at every revision, the invariants that must hold at
 * all times: observed states never go backwards and terminal states are final; a pending task
 * has a reason; no ready node holds more reservations than its resources.
 */
export class EventRecorder {
  readonly lives = new Map<string, TaskLife>();
  readonly violations: string[] = [];
  private readonly epochs = new Map<string, number>();
  private readonly desired = new Map<string, DesiredState>();

  constructor(private readonly accounting: Accounting = "observed") {}

  /** A slot starts over (scaled away, its node left the service): restart counts restart. */
  bumpEpoch(key: string): void {
    this.epochs.set(key, (this.epochs.get(key) ?? 0) + 1);
  }

  epochKey(t: Pick<Task, "serviceId" | "slot" | "nodeId">): string {
    return t.slot > 0 ? `${t.serviceId}/${t.slot}` : `node:${t.nodeId ?? ""}`;
  }

  /** `now` is the store as it is when the events arrive (the watch delivers after the commit). */
  onEvents(events: StoreEvent[], now: { nodes: Node[]; tasks: Task[] }): void {
    for (const e of events) {
      if (e.kind !== "tasks") continue;
      const t = e.object as Task;
      if (e.op === "delete") continue;
      if (t.status.state === "pending" && t.status.message.trim() === "") this.violations.push(`task ${t.serviceName}.${t.slot} pending without a reason (rev ${e.revision})`);
      let life = this.lives.get(t.id);
      if (!life) {
        const key = this.epochKey(t);
        life = { id: t.id, serviceId: t.serviceId, slot: slotKey(t), epoch: `${key}#${this.epochs.get(key) ?? 0}`, createdRevision: e.revision, policy: t.spec.restartPolicy, states: [t.status.state] };
        this.lives.set(t.id, life);
      } else {
        const prev = life.states[life.states.length - 1]!;
        if (prev !== t.status.state) {
          if (!canTransition(prev, t.status.state)) this.violations.push(`task ${t.serviceName}.${t.slot} went ${prev} → ${t.status.state} (rev ${e.revision})`);
          life.states.push(t.status.state);
          const wanted = this.desired.get(t.id) ?? "running";
          const own = t.status.state === "failed" || t.status.state === "complete" || t.status.state === "rejected";
          if (own && wanted === "running" && t.desiredState === "running") {
            life.endedByItself = t.status.state;
            life.endedRevision = e.revision;
          }
        }
      }
      this.desired.set(t.id, t.desiredState);
    }
    const { nodes, tasks } = now;
    for (const v of overCommitted(nodes, tasks, this.accounting)) this.violations.push(`over-commit at rev ${events[events.length - 1]?.revision}: ${v}`);
  }
}
