import type { Clock } from "../lib/clock.js";
import type { Logger } from "../lib/log.js";
import { KeyedQueue } from "../lib/queue.js";
import type { Task } from "../model/objects.js";
import { isTerminal } from "../model/task-state.js";
import type { Store, StoreEvent, Watch } from "../store/store.js";
import { isPlanEmpty, planService, type Plan, type ServiceSnapshot } from "./plan.js";
import { chunkPlan } from "./plan-chunks.js";

export interface OrchestratorDeps {
  store: Store;
  clock: Clock;
  log: Logger;
}

/**
 * The thin loop around planService: a store event only says "look at service X"; sync reads the
 * latest state, plans, and writes the plan (in one transaction, or in chunks of whole slots where
 * the store limits a transaction's size). Level-triggered, restartable.
 */
export class Orchestrator {
  private readonly queue: KeyedQueue;
  private watch: Watch | undefined;

  constructor(private readonly deps: OrchestratorDeps) {
    this.queue = new KeyedQueue((id) => this.sync(id), { clock: deps.clock, log: deps.log, concurrency: 1 });
  }

  start(): void {
    const { store } = this.deps;
    // A full pass replaces whatever events were missed while stopped.
    const rev = store.view((tx) => {
      for (const s of tx.list("services")) this.queue.add(s.id);
      for (const t of tx.list("tasks")) this.queue.add(t.serviceId);
      return tx.revision;
    });
    this.watch = store.watch(rev, (events) => this.onEvents(events));
  }

  stop(): void {
    this.watch?.cancel();
    this.queue.stop();
  }

  /** Resolves when no sync is queued or running (tests). */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  private onEvents(events: StoreEvent[]): void {
    const changedNodes = new Set<string>();
    for (const e of events) {
      if (e.kind === "services") this.queue.add(e.object.id);
      else if (e.kind === "tasks") {
        // Only an ended or deleted task can change a plan; accepted → running cannot — except in
        // a move, whose old task is stopped once the replacement is up (running, ready).
        const t = e.object as Task;
        if (e.op === "delete" || isTerminal(t.status.state) || t.moveOf || t.moveRequest) this.queue.add(t.serviceId);
      } else changedNodes.add(e.object.id);
    }
    if (changedNodes.size === 0) return;
    // Global services follow the node set; replicated ones care about the tasks on a changed
    // node (drain moves them away).
    const ids = this.deps.store.view((tx) => {
      const out = new Set(tx.list("services").filter((s) => s.spec.mode.kind === "global").map((s) => s.id));
      for (const n of changedNodes) for (const t of tx.tasksOfNode(n)) out.add(t.serviceId);
      return out;
    });
    for (const id of ids) this.queue.add(id);
  }

  async sync(serviceId: string): Promise<void> {
    const { store, clock, log } = this.deps;
    const snap: ServiceSnapshot = store.view((tx) => {
      const service = tx.get("services", serviceId);
      return {
        serviceId,
        service,
        tasks: tx.tasksOfService(serviceId),
        nodes: tx.list("nodes"),
      };
    });
    const plan = planService(snap, clock.now());
    if (!isPlanEmpty(plan)) {
      // Usually one transaction; on etcd a plan over its per-transaction limit (300 replicas
      // created, scaled to 0, a service removed) is written in chunks of whole slots, each a
      // consistent state: if one fails, the sync is retried and plans what is left.
      const chunks = chunkPlan(plan, snap.tasks, store.maxOpsPerTxn);
      for (const chunk of chunks) await store.update((tx) => applyPlan(tx, chunk));
      log.debug({ serviceId, created: plan.create.length, updated: plan.update.length, deleted: plan.delete.length, transactions: chunks.length }, "service reconciled");
    }
    if (plan.requeueAfterMs !== undefined) this.queue.addAfter(serviceId, plan.requeueAfterMs);
  }
}

function applyPlan(tx: Parameters<Parameters<Store["update"]>[0]>[0], plan: Plan): void {
  for (const t of plan.update) tx.update("tasks", t);
  for (const id of plan.delete) tx.delete("tasks", id);
  for (const t of plan.create) tx.create("tasks", t);
}
