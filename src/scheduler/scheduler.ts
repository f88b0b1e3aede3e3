import { isDeepStrictEqual } from "node:util";
import type { Clock } from "../lib/clock.js";
import type { Logger } from "../lib/log.js";
import type { Task } from "../model/objects.js";
import { isTerminal } from "../model/task-state.js";
import type { Store, StoreEvent, Watch } from "../store/store.js";
import { Pipeline, type Placement } from "./pipeline.js";
import { buildNodeViews } from "./view.js";

export interface SchedulerDeps {
  store: Store;
  clock: Clock;
  log: Logger;
  pipeline?: Pipeline;
  /**
   * Most task writes in one store transaction: a pass's decisions are committed in chunks of this
   * size. A chunk bounds the transaction's memory and the time the event loop is held, and etcd
   * caps a transaction's operations (128 by default): the store's maxOpsPerTxn caps this.
   * @default 1000
   */
  maxOpsPerCommit?: number;
}

/** 1000: on SQLite (one fsync per commit) 150,000 assignments take ~150 fsyncs, well under a second's worth here. */
const DEFAULT_OPS_PER_COMMIT = 1000;

export interface Decision {
  taskId: string;
  version: number;
  nodeId?: string;
  reason?: string;
}

const needsPlacement = (t: Task): boolean =>
  t.desiredState === "running" && (t.status.state === "new" || t.status.state === "pending");

/**
 * Plans placements for every unassigned task against one incremental view of node usage.
 * Tasks of one service are placed together (in slot order) so spread sees each placement; a run of
 * them with the same spec is placed as one group (Pipeline.placeAlike). Pure: the caller commits
 * the decisions.
 */
export function planPlacements(tasks: Task[], nodes: Parameters<typeof buildNodeViews>[0], allTasks: Iterable<Task>, pipeline: Pipeline): Decision[] {
  const views = buildNodeViews(nodes, allTasks);
  const candidates = [...views.values()].sort((a, b) => (a.node.id < b.node.id ? -1 : 1));
  const ordered = [...tasks].sort((a, b) => (a.serviceId < b.serviceId ? -1 : a.serviceId > b.serviceId ? 1 : a.slot - b.slot));
  const out: Decision[] = [];
  // A start-first move waits for its replacement: say that nothing is lost meanwhile.
  const decide = (t: Task, p: Placement): number =>
    out.push("nodeId" in p ? { taskId: t.id, version: t.version, nodeId: p.nodeId } : { taskId: t.id, version: t.version, reason: t.moveOf ? `${p.reason} (the task it replaces keeps running meanwhile)` : p.reason });
  for (let i = 0; i < ordered.length; ) {
    const t = ordered[i]!;
    if (t.nodeId) {
      // A global task names its node already; only that node is a candidate.
      const own = views.get(t.nodeId);
      decide(t, pipeline.place(t, own ? [own] : []));
      i++;
      continue;
    }
    let end = i + 1;
    while (end < ordered.length && isAlike(ordered[end]!, t)) end++;
    const placements = pipeline.placeAlike(t, end - i, candidates);
    for (let k = i; k < end; k++) decide(ordered[k]!, placements[k - i]!);
    i = end;
  }
  return out;
}

/** Alike for placement: filters and scorers see only the service and the spec. */
const isAlike = (a: Task, b: Task): boolean =>
  !a.nodeId && a.serviceId === b.serviceId && a.moveOf?.nodeId === b.moveOf?.nodeId && (a.spec === b.spec || isDeepStrictEqual(a.spec, b.spec));

/**
 * Moves tasks new → pending → assigned. Runs as one batch per turn of the event loop, so a
 * service's 30 new tasks are placed in one pass and committed in one transaction (in chunks of
 * `maxOpsPerCommit` when a pass decides more).
 */
/** A failed pass is retried after this, while the scheduler runs. */
const FAILED_PASS_RETRY_MS = 500;

export class Scheduler {
  private watch: Watch | undefined;
  private scheduled = false;
  private running: Promise<void> | undefined;
  private rerun = false;
  private readonly pipeline: Pipeline;

  constructor(private readonly deps: SchedulerDeps) {
    this.pipeline = deps.pipeline ?? new Pipeline();
  }

  start(): void {
    const rev = this.deps.store.revision();
    this.watch = this.deps.store.watch(rev, (events) => this.onEvents(events));
    this.trigger();
  }

  stop(): void {
    this.watch?.cancel();
    this.watch = undefined;
  }

  /** Resolves once no pass is running or due (tests). */
  async idle(): Promise<void> {
    while (this.scheduled || this.running) {
      await (this.running ?? new Promise((r) => setImmediate(r)));
    }
  }

  private onEvents(events: StoreEvent[]): void {
    for (const e of events) {
      // Node changes may make pending tasks placeable; a task ending frees resources.
      if (e.kind === "nodes" || (e.kind === "tasks" && (needsPlacement(e.object as Task) || isTerminal((e.object as Task).status.state)))) {
        this.trigger();
        return;
      }
    }
  }

  private trigger(): void {
    if (!this.watch) return;
    if (this.running) {
      this.rerun = true;
      return;
    }
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.running = this.pass()
        .catch((err: unknown) => {
          this.deps.log.error({ err }, "scheduling pass failed; retrying");
          // A failed commit (etcd unreachable for a moment) leaves pending tasks that no event
          // may ever mention again: try again soon instead of waiting for one.
          this.deps.clock.setTimer(FAILED_PASS_RETRY_MS, () => this.trigger());
        })
        .finally(() => {
          this.running = undefined;
          if (this.rerun) {
            this.rerun = false;
            this.trigger();
          }
        });
    });
  }

  async pass(): Promise<void> {
    const { store, clock, log } = this.deps;
    const { decisions, tasks } = store.view((tx) => {
      const all = tx.list("tasks");
      const todo = all.filter(needsPlacement);
      if (todo.length === 0) return { decisions: [] as Decision[], tasks: new Map<string, Task>() };
      return { decisions: planPlacements(todo, tx.list("nodes"), all, this.pipeline), tasks: new Map(todo.map((t) => [t.id, t])) };
    });
    if (decisions.length === 0) return;
    const now = clock.now();
    let lost = 0;
    const chunk = Math.max(1, Math.min(this.deps.maxOpsPerCommit ?? DEFAULT_OPS_PER_COMMIT, store.maxOpsPerTxn ?? Infinity));
    for (let from = 0; from < decisions.length; from += chunk) {
      // Each chunk re-reads its tasks: what moved on since the plan (or an earlier chunk) is skipped.
      await store.update((tx) => {
        for (let i = from; i < Math.min(decisions.length, from + chunk); i++) {
          const d = decisions[i]!;
          const cur = tx.get("tasks", d.taskId);
          // Lost race (the orchestrator moved the task on): skip it, the next pass sees it again.
          if (!cur || cur.version !== d.version || !needsPlacement(cur)) {
            lost++;
            continue;
          }
          if (d.nodeId) {
            if (!tx.get("nodes", d.nodeId)) { lost++; continue; }
            tx.update("tasks", { ...cur, nodeId: d.nodeId, status: { ...cur.status, state: "assigned", timestamp: now, message: "scheduler assigned task to node" } });
          } else if (cur.status.state !== "pending" || cur.status.message !== d.reason) {
            tx.update("tasks", { ...cur, status: { ...cur.status, state: "pending", timestamp: cur.status.state === "pending" ? cur.status.timestamp : now, message: d.reason! } });
          }
        }
      });
    }
    const pending = decisions.filter((d) => d.reason);
    if (pending.length) log.warn({ pending: pending.length, reason: pending[0]!.reason }, "tasks unschedulable");
    log.debug({ placed: decisions.length - pending.length - lost, lost, considered: tasks.size }, "scheduling pass");
    if (lost) this.trigger();
  }
}
