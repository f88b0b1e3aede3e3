import type { Clock } from "../lib/clock.js";
import type { Logger } from "../lib/log.js";
import { KeyedQueue } from "../lib/queue.js";
import type { Task } from "../model/objects.js";
import { chunkPlan } from "../orchestrator/plan-chunks.js";
import type { Store, StoreEvent, Watch } from "../store/store.js";
import { planUpdate } from "./plan.js";
import { withRollback } from "./transitions.js";

export interface UpdaterDeps {
  store: Store;
  clock: Clock;
  log: Logger;
}

const updating = (state: string | undefined): boolean => state === "updating" || state === "rollback_started";

/**
 * The thin loop around planUpdate, shaped like the orchestrator's: an event says "look at
 * service X"; sync reads, plans one step, writes it in one transaction (the service's version
 * checked), and requeues for the monitor period or the delay. Restartable: all progress is in
 * the store.
 */
export class Updater {
  private readonly queue: KeyedQueue;
  private watch: Watch | undefined;

  constructor(private readonly deps: UpdaterDeps) {
    this.queue = new KeyedQueue((id) => this.sync(id), { clock: deps.clock, log: deps.log, concurrency: 1 });
  }

  start(): void {
    const rev = this.deps.store.view((tx) => {
      for (const s of tx.list("services")) if (updating(s.updateStatus?.state)) this.queue.add(s.id);
      return tx.revision;
    });
    this.watch = this.deps.store.watch(rev, (events) => this.onEvents(events));
  }

  stop(): void {
    this.watch?.cancel();
    this.queue.stop();
  }

  idle(): Promise<void> {
    return this.queue.idle();
  }

  private onEvents(events: StoreEvent[]): void {
    const ids = new Set<string>();
    for (const e of events) {
      if (e.kind === "services" && e.op !== "delete") ids.add(e.object.id);
      else if (e.kind === "tasks") ids.add((e.object as Task).serviceId);
    }
    if (ids.size === 0) return;
    const active = this.deps.store.view((tx) => [...ids].filter((id) => updating(tx.get("services", id)?.updateStatus?.state)));
    for (const id of active) this.queue.add(id);
  }

  async sync(serviceId: string): Promise<void> {
    const { store, clock, log } = this.deps;
    const snap = store.view((tx) => {
      const service = tx.get("services", serviceId);
      return service ? { service, tasks: tx.tasksOfService(serviceId) } : undefined;
    });
    if (!snap) return;
    const now = clock.now();
    const plan = planUpdate(snap, now);
    const before = snap.service.updateStatus;
    const statusChanged = JSON.stringify(plan.status) !== JSON.stringify(before);
    if (plan.create.length || plan.update.length || plan.rollback || (plan.status && statusChanged)) {
      // A step that starts every slot at once (parallelism 0, blue-green, canary) may be over the
      // store's per-transaction limit (etcd): its task writes go first in chunks of whole slots,
      // the service's status last with the remainder. A prefix is a step with fewer slots started,
      // which the next sync (level-triggered, from the tasks) continues.
      const tasks = plan.rollback ? [] : chunkPlan({ create: plan.create, update: plan.update, delete: [] }, snap.tasks, reserveForService(store.maxOpsPerTxn));
      for (const chunk of tasks.slice(0, -1)) {
        await store.update((tx) => {
          for (const t of chunk.update) tx.update("tasks", t);
          for (const t of chunk.create) tx.create("tasks", t);
        });
      }
      const last = tasks[tasks.length - 1];
      await store.update((tx) => {
        // Written against the version read: a concurrent `service update` wins, and we replan.
        const base = plan.rollback ? withRollback(snap.service, now, plan.rollback) : { ...snap.service, ...(plan.status ? { updateStatus: plan.status } : {}) };
        tx.update("services", base);
        for (const t of last?.update ?? []) tx.update("tasks", t);
        for (const t of last?.create ?? []) tx.create("tasks", t);
      });
      const st = plan.rollback ? "rollback_started" : plan.status?.state;
      if (st !== before?.state) log.info({ serviceId, state: st, message: plan.rollback ?? plan.status?.message }, "update state");
    }
    if (plan.requeueAfterMs !== undefined) this.queue.addAfter(serviceId, plan.requeueAfterMs);
  }
}

/** Task writes that fit in a transaction beside the service's status write (one operation; one more kept spare). */
function reserveForService(maxOps: number | undefined): number | undefined {
  return maxOps === undefined ? undefined : Math.max(1, maxOps - 2);
}
