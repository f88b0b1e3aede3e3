import type { Service, Task, TrafficCounters, UpdateConfig, UpdateStatus } from "../model/objects.js";
import { slotKey } from "../model/slots.js";
import { isCurrentSpec } from "../model/service-status.js";
import { newTask, shutdownTask } from "../orchestrator/task-factory.js";
import type { NewObject } from "../store/store.js";

/** Everything the updater looks at: one service and its tasks. */
export interface UpdateSnapshot {
  service: Service;
  tasks: Task[];
}

/** The writes one step makes; `status` replaces the service's update status. */
export interface UpdatePlan {
  create: NewObject<"tasks">[];
  update: Task[];
  status?: UpdateStatus;
  /** Roll back to the previous spec (failure action rollback). */
  rollback?: string;
  requeueAfterMs?: number;
}

/** A new task that failed by its own doing, or never became ready. */
const isFailed = (t: Task): boolean => !!t.updateFailure || ((t.status.state === "failed" || t.status.state === "rejected") && t.desiredState !== "remove");

const isActive = (st: UpdateStatus | undefined): st is UpdateStatus => st?.state === "updating" || st?.state === "rollback_started";

/** A task takes traffic and counts as up: running, wanted, ready. */
const isUp = (t: Task): boolean => t.desiredState === "running" && t.status.state === "running" && t.status.ready !== false && (!t.spec.health || t.status.health === "healthy");

/** How long a new task may take to become ready before it counts as a failure. */
function readyDeadlineMs(t: Task, cfg: UpdateConfig): number {
  const s = t.spec.probes?.startup;
  return cfg.readyTimeoutMs + (s ? s.initialDelayMs + s.periodMs * s.failureThreshold : 0);
}

/**
 * One step of a rolling update (or rollback), pure: which slots get a new task next (by slot
 * order, `parallelism` at a time, `delay` after each one is done), which old tasks go (start-first:
 * once the new one is ready; stop-first: together with the new one's creation, the mesh drains the
 * old one first), which new tasks failed, and whether the failure action fires. A slot is updated
 * once its new task has been up for the monitor period. Restartable: the store says which slots
 * carry the new version, so no slot is updated twice.
 */
export function planUpdate(s: UpdateSnapshot, now: number): UpdatePlan {
  const plan: UpdatePlan = { create: [], update: [] };
  const svc = s.service;
  const st = svc.updateStatus;
  if (!isActive(st)) return plan;
  const rollingBack = st.state === "rollback_started";
  const cfg = rollingBack ? svc.spec.rollback : svc.spec.update;
  const requeue = (ms: number): void => {
    plan.requeueAfterMs = Math.min(plan.requeueAfterMs ?? Infinity, Math.max(ms, 1));
  };
  const isNew = (t: Task): boolean => isCurrentSpec(t, svc);
  const ofThisUpdate = (t: Task): boolean => isNew(t) && t.createdAt >= st.startedAt;

  // Slots in scope: replicated 1..N; global: every node slot with a task wanted running.
  const bySlot = new Map<string, Task[]>();
  for (const t of s.tasks) {
    const k = slotKey(t);
    bySlot.set(k, [...(bySlot.get(k) ?? []), t]);
  }
  const slots = svc.spec.mode.kind === "replicated"
    ? Array.from({ length: svc.spec.mode.replicas }, (_, i) => String(i + 1))
    : [...bySlot.entries()].filter(([, ts]) => ts.some((t) => t.desiredState === "running")).map(([k]) => k).sort();

  const blueGreen = st.blueGreen === true && !rollingBack;
  const switched = st.switchedAt !== undefined;
  const canaryCfg = !rollingBack && cfg.strategy === "canary" ? cfg.canary : undefined;
  const canary = canaryCfg ? (st.canary ?? { step: -1, since: st.startedAt, base: { requests: 0, errors: 0 } }) : undefined;
  const promoted = !!canaryCfg && canary!.step >= canaryCfg.steps.length;
  // Blue-green before the switch and a canary before its promotion keep every old task.
  const holdOld = (blueGreen && !switched) || (!!canaryCfg && !promoted);
  const updated = new Set(st.updated.filter((k) => slots.includes(k)));
  let allUp = true;
  let nextStartAt = st.nextStartAt;
  const dirty: string[] = [];
  const passed = new Set<string>();
  // docker's max failure ratio: failed new tasks over the slots being updated.
  // Failures count per slot: a new task that crash-loops in one slot is one failed slot.
  const failedSlots = (tasks: Task[]): number => new Set(tasks.filter((t) => ofThisUpdate(t) && isFailed(t)).map(slotKey)).size;
  const failedBefore = Math.max(st.failures, failedSlots(s.tasks));
  const tolerated = cfg.failureAction === "continue" || failedBefore / Math.max(slots.length, 1) <= cfg.maxFailureRatio;
  let inProgress = 0;
  for (const key of slots) {
    if (updated.has(key)) continue;
    const tasks = bySlot.get(key) ?? [];
    const wanted = tasks.filter((t) => t.desiredState === "running");
    const fresh = wanted.find(isNew);
    const old = wanted.filter((t) => !isNew(t));
    // A slot whose new task failed is passed over (the restart policy has it) when the failures
    // are tolerated: failure action continue, or within the max failure ratio.
    if (tolerated && tasks.some((t) => ofThisUpdate(t) && isFailed(t))) {
      passed.add(key);
      continue;
    }
    if (!fresh) {
      // A new task of this update ended and the orchestrator restarts it (its failure is counted
      // below): in progress, never started twice. Otherwise the slot is untouched (dirty).
      if (tasks.some(ofThisUpdate)) {
        inProgress++;
        allUp = false;
      } else dirty.push(key);
      continue;
    }
    inProgress++;
    if (!isUp(fresh)) allUp = false;
    if (isUp(fresh)) {
      // Blue-green: the old tasks serve until the switch; a canary's until its promotion.
      if (holdOld) continue;
      for (const o of old) plan.update.push(shutdownTask(o, now));
      const upSince = blueGreen ? st.switchedAt! : canaryCfg ? canary!.since : fresh.status.startedAt ?? now;
      if (old.length === 0 && now - upSince >= cfg.monitorMs) {
        updated.add(key);
        inProgress--;
        // docker's --update-delay: the next slot waits this long after one is done.
        nextStartAt = Math.max(nextStartAt, now + cfg.delayMs);
      } else requeue(upSince + cfg.monitorMs - now);
    } else if (fresh.status.state === "running" && !fresh.updateFailure) {
      const since = fresh.status.startedAt ?? fresh.status.timestamp;
      const deadline = readyDeadlineMs(fresh, cfg);
      if (now - since >= deadline) {
        // Never became ready: it fails the update (its slot gets another try from the orchestrator).
        const why = `not ready within ${Math.round(deadline / 100) / 10}s`;
        plan.update.push({ ...shutdownTask(fresh, now), updateFailure: why });
      } else requeue(since + deadline - now);
    }
  }

  // Failures of this update: new tasks that ended by their own fault, or never became ready.
  const changed = new Map(plan.update.map((t) => [t.id, t]));
  const merged = s.tasks.map((t) => changed.get(t.id) ?? t);
  const failedNew = merged.filter((t) => ofThisUpdate(t) && isFailed(t));
  const failures = Math.max(st.failures, failedSlots(merged));
  const lastError = [...failedNew].sort((a, b) => b.status.timestamp - a.status.timestamp)[0];
  const why = lastError ? `${lastError.updateFailure ?? lastError.status.err ?? lastError.status.message}` : "";
  const status: UpdateStatus = { ...st, updated: [...updated], failures, nextStartAt };
  plan.status = status;

  // The failure action: roll back (when there is something to go back to), or pause here.
  const failWith = (summary: string): UpdatePlan => {
    if (cfg.failureAction === "rollback" && !rollingBack && svc.previousSpec) {
      plan.rollback = `update rolled back: ${summary}`;
      return plan;
    }
    plan.status = { ...(plan.status ?? status), state: rollingBack ? "rollback_paused" : "paused", message: `${rollingBack ? "rollback" : "update"} paused: ${summary}` };
    return plan;
  };

  if (failures > 0 && failures / Math.max(slots.length, 1) > cfg.maxFailureRatio && cfg.failureAction !== "continue") {
    return failWith(`${failures} of ${slots.length} slots failed (max failure ratio ${cfg.maxFailureRatio})${why ? `: ${why}` : ""}`);
  }

  if (updated.size + passed.size === slots.length) {
    const tail = passed.size ? ` (${passed.size} slot${passed.size === 1 ? "" : "s"} failed: ${why})` : "";
    plan.status = { ...status, state: rollingBack ? "rollback_completed" : "completed", message: `${rollingBack ? "rollback" : "update"} completed${tail}`, completedAt: now, nextStartAt: now };
    return plan;
  }

  // Blue-green: every new task is up, none serves yet: switch the traffic now (the mesh's pools
  // take the new tasks only, the old ones drain), then the old ones are stopped.
  if (blueGreen && !switched && dirty.length === 0 && allUp) {
    plan.status = { ...status, switchedAt: now, message: "switched: the new tasks take the traffic" };
    requeue(1);
    return plan;
  }

  // Start the next slots: at most `parallelism` in progress (blue-green, canary: all), none before the delay has passed.
  const capacity = cfg.parallelism === 0 || blueGreen || !!canaryCfg ? Infinity : cfg.parallelism - inProgress;
  if (capacity > 0 && dirty.length) {
    if (now < nextStartAt) requeue(nextStartAt - now);
    else {
      for (const key of dirty.slice(0, capacity)) {
        const old = (bySlot.get(key) ?? []).filter((t) => t.desiredState === "running");
        const restart = old[0] ? { ...old[0].restart, streak: 0 } : { attempts: 0, recent: [], streak: 0 };
        plan.create.push(newTask(svc, key, now, restart));
        if (cfg.order === "stop-first") for (const o of old) plan.update.push(shutdownTask(o, now));
      }
    }
  }
  // A canary (all its new tasks started above) moves from step to step on its error rate.
  if (canaryCfg && !promoted) {
    const newTasks = s.tasks.filter((t) => ofThisUpdate(t) && t.desiredState === "running");
    return planCanaryStep(plan, status, canaryCfg, canary!, newTasks, dirty.length === 0 && allUp, now, requeue, cfg.failureAction === "continue" ? undefined : failWith);
  }
  const total = slots.length;
  plan.status = { ...status, message: `${rollingBack ? "rolling back" : "updating"}: ${updated.size}/${total} slots updated${failures ? `, ${failures} failed` : ""}` };
  return plan;
}

const sumTraffic = (tasks: Task[]): TrafficCounters =>
  tasks.reduce((a, t) => ({ requests: a.requests + (t.status.traffic?.requests ?? 0), errors: a.errors + (t.status.traffic?.errors ?? 0) }), { requests: 0, errors: 0 });

const pct = (x: number): string => `${Math.round(x * 1000) / 10}%`;

/**
 * One canary step: start the first step once every new task is up (until then only the old
 * tasks serve), then per step watch the new tasks' error rate for the interval — over the limit
 * aborts (the failure action: rollback by default), otherwise the next share; after the last
 * step (100 %) the canary is promoted and the old tasks go.
 */
function planCanaryStep(
  plan: UpdatePlan,
  status: UpdateStatus,
  cfg: NonNullable<UpdateConfig["canary"]>,
  c: NonNullable<UpdateStatus["canary"]>,
  newTasks: Task[],
  allNewUp: boolean,
  now: number,
  requeue: (ms: number) => void,
  failWith: ((summary: string) => UpdatePlan) | undefined,
): UpdatePlan {
  const counters = sumTraffic(newTasks);
  if (c.step < 0) {
    if (!allNewUp) return plan;
    plan.status = { ...status, canary: { step: 0, since: now, base: counters }, message: `canary: ${cfg.steps[0]}% of requests to the new version` };
    // Looked at every second, not once per interval: a version that fails is aborted within about
    // a second of its errors being counted.
    requeue(Math.min(cfg.intervalMs, 1000));
    return plan;
  }
  const share = cfg.steps[c.step]!;
  // Counters restart when a task leaves the pools and comes back: never a negative delta.
  const requests = Math.max(0, counters.requests - c.base.requests);
  const errors = Math.max(0, counters.errors - c.base.errors);
  const rate = requests > 0 ? errors / requests : 0;
  if (failWith && requests > 0 && rate > cfg.maxErrorRate) {
    plan.status = { ...status, canary: { ...c, errorRate: rate } };
    return failWith(`canary aborted at ${share}%: error rate ${pct(rate)} (${errors} of ${requests} requests) > ${pct(cfg.maxErrorRate)}`);
  }
  const elapsed = now - c.since;
  if (elapsed < cfg.intervalMs) {
    plan.status = { ...status, canary: { ...c, errorRate: rate }, message: `canary: ${share}% of requests to the new version, error rate ${pct(rate)} (${requests} requests)` };
    requeue(Math.min(cfg.intervalMs - elapsed, 1000));
    return plan;
  }
  const next = c.step + 1;
  if (next >= cfg.steps.length) {
    plan.status = { ...status, canary: { step: next, since: now, base: counters, errorRate: rate }, message: `canary promoted (error rate ${pct(rate)} at ${share}%)` };
  } else {
    plan.status = { ...status, canary: { step: next, since: now, base: counters }, message: `canary: ${cfg.steps[next]}% of requests to the new version` };
    requeue(Math.min(cfg.intervalMs, 1000));
  }
  requeue(1);
  return plan;
}
