import { test } from "node:test";
import assert from "node:assert/strict";
import { planUpdate, type UpdatePlan } from "./plan.js";
import { withNewSpec, withRollback } from "./transitions.js";
import { aService, aTask } from "../../test/harness/builders.js";
import type { Service, Task } from "../model/objects.js";
import type { ServiceSpecInput } from "../input/schemas.js";
import { resolveServiceSpec } from "../input/resolve.js";

const T0 = 1_000_000;

/** A service at v1 with `replicas` running, ready tasks, then changed (v2) with the given update config. */
function updating(replicas: number, update: ServiceSpecInput["update"] = {}) {
  const v1 = aService({ replicas, env: ["V=1"], update });
  const old = Array.from({ length: replicas }, (_, i) => aTask(v1, { slot: i + 1, startedAt: 0, status: { state: "running", timestamp: 0, message: "", ready: true, startedAt: 0 } }));
  const v2 = withNewSpec(v1, resolveServiceSpec({ name: "web", command: ["node", "server.js"], replicas, env: ["V=2"], update }), {}, T0);
  return { v1, v2, old };
}

/** Applies a plan's writes to a task list, as the store would (for stepping through an update). */
function apply(svc: Service, tasks: Task[], p: UpdatePlan, now: number): { svc: Service; tasks: Task[] } {
  const byId = new Map(tasks.map((t) => [t.id, t]));
  for (const u of p.update) byId.set(u.id, u);
  for (const c of p.create) byId.set(c.id, { ...c, version: 1, createdAt: now, updatedAt: now } as Task);
  return { svc: p.status ? { ...svc, updateStatus: p.status } : svc, tasks: [...byId.values()] };
}

/** Marks the new-version tasks running and ready since `at`. */
const becomeReady = (svc: Service, tasks: Task[], at: number): Task[] =>
  tasks.map((t) => (t.specVersion === svc.specVersion && t.status.state === "new" ? { ...t, status: { ...t.status, state: "running", ready: true, startedAt: at, timestamp: at } } : t));

test("a spec change is a new version with the previous spec kept; scale alone is not", () => {
  const { v1, v2 } = updating(3);
  assert.equal(v2.specVersion, 2);
  assert.equal(v2.previousSpec, v1.spec);
  assert.equal(v2.updateStatus?.state, "updating");
  const scaled = withNewSpec(v1, { ...v1.spec, mode: { kind: "replicated", replicas: 9 } }, {}, T0);
  assert.equal(scaled.specVersion, 1);
  assert.equal(scaled.updateStatus, undefined);
});

test("parallelism 1, start-first: one new task at a time; the old one goes once the new one is ready; a slot is done after the monitor period", () => {
  const { v2, old } = updating(3, { parallelism: 1, monitor: "2s" });
  let p = planUpdate({ service: v2, tasks: old }, T0);
  assert.deepEqual(p.create.map((t) => t.slot), [1], "slot 1 first");
  assert.deepEqual(p.update, [], "start-first: the old task stays until the new one is ready");
  let st = apply(v2, old, p, T0);
  p = planUpdate({ service: st.svc, tasks: st.tasks }, T0 + 100);
  assert.deepEqual(p.create, [], "one in progress: nothing new");
  st = { ...st, tasks: becomeReady(st.svc, st.tasks, T0 + 500) };
  p = planUpdate({ service: st.svc, tasks: st.tasks }, T0 + 500);
  assert.deepEqual(p.update.map((t) => [t.slot, t.desiredState]), [[1, "shutdown"]], "old task of slot 1 goes");
  st = apply(st.svc, st.tasks, p, T0 + 500);
  p = planUpdate({ service: st.svc, tasks: st.tasks }, T0 + 2500);
  assert.deepEqual(p.status!.updated, ["1"], "slot 1 updated after the monitor period");
  assert.deepEqual(p.create.map((t) => t.slot), [2], "then slot 2");
});

test("stop-first and parallelism 2 with a delay: two at a time, the old ones go with the new ones' creation, the next waits the delay", () => {
  const { v2, old } = updating(3, { parallelism: 2, order: "stop-first", delay: "10s", monitor: "1s" });
  let p = planUpdate({ service: v2, tasks: old }, T0);
  assert.deepEqual(p.create.map((t) => t.slot), [1, 2]);
  assert.deepEqual(p.update.map((t) => [t.slot, t.desiredState]), [[1, "shutdown"], [2, "shutdown"]]);
  let st = apply(v2, old, p, T0);
  st = { ...st, tasks: becomeReady(st.svc, st.tasks, T0 + 200) };
  p = planUpdate({ service: st.svc, tasks: st.tasks }, T0 + 1200);
  assert.deepEqual(p.status!.updated.sort(), ["1", "2"]);
  assert.deepEqual(p.create, [], "slot 3 waits for the delay");
  assert.equal(p.requeueAfterMs, 10_000);
  st = apply(st.svc, st.tasks, p, T0 + 1200);
  p = planUpdate({ service: st.svc, tasks: st.tasks }, T0 + 11_200);
  assert.deepEqual(p.create.map((t) => t.slot), [3]);
});

test("parallelism 0 updates every slot at once; all done → completed", () => {
  const { v2, old } = updating(4, { parallelism: 0, monitor: "1s" });
  let p = planUpdate({ service: v2, tasks: old }, T0);
  assert.equal(p.create.length, 4);
  let st = apply(v2, old, p, T0);
  st = { ...st, tasks: becomeReady(st.svc, st.tasks, T0) };
  p = planUpdate({ service: st.svc, tasks: st.tasks }, T0);
  st = apply(st.svc, st.tasks, p, T0);
  st = { ...st, tasks: st.tasks.filter((t) => t.desiredState === "running") };
  p = planUpdate({ service: st.svc, tasks: st.tasks }, T0 + 1000);
  assert.equal(p.status!.state, "completed");
});

const failNew = (svc: Service, tasks: Task[], at: number): Task[] =>
  tasks.map((t) => (t.specVersion === svc.specVersion && t.status.state === "new" ? { ...t, status: { ...t.status, state: "failed", err: "exit code 1", timestamp: at } } : t));

test("failure actions: pause stops the update, rollback returns to the previous spec, continue passes the slot over", () => {
  for (const action of ["pause", "rollback", "continue"] as const) {
    const { v2, old } = updating(2, { failureAction: action, monitor: "1s" });
    const p0 = planUpdate({ service: v2, tasks: old }, T0);
    let st = apply(v2, old, p0, T0);
    st = { ...st, tasks: failNew(st.svc, st.tasks, T0 + 100) };
    const p = planUpdate({ service: st.svc, tasks: st.tasks }, T0 + 100);
    if (action === "pause") {
      assert.equal(p.status!.state, "paused");
      assert.match(p.status!.message, /update paused: 1 of 2 slots failed \(max failure ratio 0\): exit code 1/);
    } else if (action === "rollback") {
      assert.match(p.rollback!, /update rolled back: 1 of 2 slots failed/);
    } else {
      assert.equal(p.status!.state, "updating");
      assert.deepEqual(p.create.map((t) => t.slot), [2], "the next slot starts");
    }
  }
});

test("max failure ratio tolerates failures up to the ratio", () => {
  const { v2, old } = updating(4, { parallelism: 0, maxFailureRatio: 0.25 });
  let st = apply(v2, old, planUpdate({ service: v2, tasks: old }, T0), T0);
  const firstNew = st.tasks.find((t) => t.specVersion === 2)!;
  st = { ...st, tasks: st.tasks.map((t) => (t.id === firstNew.id ? { ...t, status: { ...t.status, state: "failed" as const, err: "boom", timestamp: T0 } } : t)) };
  assert.equal(planUpdate({ service: st.svc, tasks: st.tasks }, T0).status!.state, "updating", "1 of 4 = 0.25 is tolerated");
});

test("a new task that never becomes ready fails the update after the ready timeout", () => {
  const { v2, old } = updating(1, { monitor: "1s", readyTimeout: "2s", failureAction: "rollback" });
  let st = apply(v2, old, planUpdate({ service: v2, tasks: old }, T0), T0);
  st = { ...st, tasks: st.tasks.map((t) => (t.specVersion === 2 ? { ...t, status: { ...t.status, state: "running" as const, ready: false, startedAt: T0, timestamp: T0 } } : t)) };
  let p = planUpdate({ service: st.svc, tasks: st.tasks }, T0 + 1000);
  assert.equal(p.requeueAfterMs, 1000);
  p = planUpdate({ service: st.svc, tasks: st.tasks }, T0 + 2000);
  assert.match(p.update.find((t) => t.specVersion === 2)!.updateFailure!, /not ready within 2s/);
  assert.match(p.rollback!, /not ready within 2s/);
});

test("restartable: a slot that already carries the new version is not updated again", () => {
  const { v2, old } = updating(3, { parallelism: 1, monitor: "1s" });
  const st = apply(v2, old, planUpdate({ service: v2, tasks: old }, T0), T0);
  // "baton up" was killed here and restarted: the plan from the store alone.
  const again = planUpdate({ service: st.svc, tasks: st.tasks }, T0 + 50);
  assert.deepEqual(again.create, [], "slot 1 is in progress, not started twice");
});

test("rollback keeps the current replica count and is a new version", () => {
  const { v2 } = updating(3);
  const scaled = { ...v2, spec: { ...v2.spec, mode: { kind: "replicated" as const, replicas: 5 } } };
  const rb = withRollback(scaled, T0 + 5);
  assert.equal(rb.specVersion, 3);
  assert.deepEqual(rb.spec.task.env, { V: "1" });
  assert.deepEqual(rb.spec.mode, { kind: "replicated", replicas: 5 });
  assert.equal(rb.updateStatus!.state, "rollback_started");
});

test("blue-green: every new task at once; the switch only when all are up; then the old ones go; done after the monitor", () => {
  const { v2, old } = updating(3, { strategy: "blue-green", monitor: "1s" });
  assert.equal(v2.updateStatus!.blueGreen, true);
  let p = planUpdate({ service: v2, tasks: old }, T0);
  assert.deepEqual(p.create.map((t) => t.slot), [1, 2, 3], "all new tasks at once, parallelism aside");
  assert.deepEqual(p.update, [], "the old ones keep serving");
  let st = apply(v2, old, p, T0);
  const two = becomeReady(st.svc, st.tasks, T0 + 100).map((t) => (t.slot === 3 && t.specVersion === 2 ? { ...t, status: { ...t.status, state: "starting" as const } } : t));
  p = planUpdate({ service: st.svc, tasks: two }, T0 + 100);
  assert.equal(p.status!.switchedAt, undefined, "not all new tasks are up: no switch");
  st = { ...st, tasks: becomeReady(st.svc, st.tasks, T0 + 200) };
  p = planUpdate({ service: st.svc, tasks: st.tasks }, T0 + 200);
  assert.equal(p.status!.switchedAt, T0 + 200, "switched");
  assert.deepEqual(p.update, [], "the switch is its own step: the pools change before the old tasks go");
  st = apply(st.svc, st.tasks, p, T0 + 200);
  p = planUpdate({ service: st.svc, tasks: st.tasks }, T0 + 201);
  assert.deepEqual(p.update.map((t) => t.desiredState), ["shutdown", "shutdown", "shutdown"]);
  st = apply(st.svc, st.tasks, p, T0 + 201);
  assert.equal(planUpdate({ service: st.svc, tasks: st.tasks }, T0 + 1200).status!.state, "completed");
});

test("a new task that ended is the orchestrator's to restart: the updater never starts a second one in its slot", () => {
  const { v2, old } = updating(2, { parallelism: 2, monitor: "1s" });
  let st = apply(v2, old, planUpdate({ service: v2, tasks: old }, T0), T0);
  // Slot 1's new task exited 0 (not a failure); its old task still runs beside it (start-first).
  st = { ...st, tasks: st.tasks.map((t) => (t.specVersion === 2 && t.slot === 1 ? { ...t, status: { ...t.status, state: "complete" as const, timestamp: T0 + 50 } } : t)) };
  const p = planUpdate({ service: st.svc, tasks: st.tasks }, T0 + 50);
  assert.deepEqual(p.create.filter((t) => t.slot === 1), [], "no second new task in slot 1");
});

test("a new task orphaned (its node went down, or the agent died while starting it) is not a failure of the update", () => {
  const { v2, old } = updating(2, { parallelism: 1, monitor: "1s" });
  let st = apply(v2, old, planUpdate({ service: v2, tasks: old }, T0), T0);
  st = { ...st, tasks: st.tasks.map((t) => (t.specVersion === 2 ? { ...t, status: { ...t.status, state: "orphaned" as const, err: "the agent stopped while starting this task", timestamp: T0 + 50 } } : t)) };
  const p = planUpdate({ service: st.svc, tasks: st.tasks }, T0 + 50);
  assert.equal(p.status!.state, "updating", "not paused: the default failure action did not fire");
  assert.equal(p.status!.failures, 0);
  assert.deepEqual(p.create, [], "the orchestrator replaces it in its slot; the updater starts nothing twice");
});

test("--force replaces every task even with the spec unchanged", () => {
  const v1 = aService({ replicas: 2, update: { parallelism: 0 } });
  const old = [1, 2].map((slot) => aTask(v1, { slot, status: { state: "running", timestamp: 0, message: "", ready: true, startedAt: 0 } }));
  const forced = withNewSpec(v1, v1.spec, {}, T0, true);
  assert.equal(forced.specVersion, 2);
  assert.equal(forced.updateStatus!.force, true);
  const p = planUpdate({ service: forced, tasks: old }, T0);
  assert.deepEqual(p.create.map((t) => t.slot).sort(), [1, 2], "both slots get a new task");
  assert.equal(p.status!.state, "updating", "not completed at once");
});

/** A canary's new tasks with these traffic counters (the mesh's, reported by the agents). */
const withTraffic = (svc: Service, tasks: Task[], requests: number, errors: number): Task[] =>
  tasks.map((t) => (t.specVersion === svc.specVersion ? { ...t, status: { ...t.status, traffic: { requests, errors } } } : t));

test("canary: each step is looked at every second; errors over the limit abort it within that second, not at the end of the interval; a clean step moves on after the interval", () => {
  const update = { strategy: "canary" as const, canarySteps: [10, 100], canaryInterval: "30s", canaryMaxErrorRate: "1%" };
  const input = { name: "web", command: ["node", "server.js"], replicas: 2, publish: ["8080:80/http"], update };
  const v1 = aService({ ...input, env: ["V=1"] });
  const old = [1, 2].map((slot) => aTask(v1, { slot, startedAt: 0, status: { state: "running", timestamp: 0, message: "", ready: true, startedAt: 0 } }));
  const v2 = withNewSpec(v1, resolveServiceSpec({ ...input, env: ["V=2"] }), {}, T0);
  let st = apply(v2, old, planUpdate({ service: v2, tasks: old }, T0), T0);
  assert.equal(st.tasks.filter((t) => t.specVersion === 2).length, 2, "every new task starts beside the old ones");
  st = { ...st, tasks: becomeReady(st.svc, st.tasks, T0 + 500) };
  let p = planUpdate({ service: st.svc, tasks: st.tasks }, T0 + 500);
  assert.equal(p.status!.canary!.step, 0, "first step once all new tasks are up");
  assert.equal(p.requeueAfterMs, 1000, "looked at again in a second, not in 30");
  st = apply(st.svc, st.tasks, p, T0 + 500);
  // Clean traffic for 29.5 s: the same step, still looked at every second.
  st = { ...st, tasks: withTraffic(st.svc, st.tasks, 500, 0) };
  p = planUpdate({ service: st.svc, tasks: st.tasks }, T0 + 30_000);
  assert.equal(p.status!.canary!.step, 0);
  assert.equal(p.requeueAfterMs, 500);
  st = apply(st.svc, st.tasks, p, T0 + 30_000);
  p = planUpdate({ service: st.svc, tasks: st.tasks }, T0 + 30_500);
  assert.equal(p.status!.canary!.step, 1, "the interval passed clean: the next share");
  assert.equal(p.requeueAfterMs, 1, "and a pass at once");
  st = apply(st.svc, st.tasks, p, T0 + 30_500);
  // At 100 %, errors 2 s into the step (200 more requests over the two new tasks, 40 of them failed): aborted (rollback, a canary's default) at the next look.
  st = { ...st, tasks: withTraffic(st.svc, st.tasks, 600, 20) };
  p = planUpdate({ service: st.svc, tasks: st.tasks }, T0 + 32_500);
  assert.match(p.rollback ?? "", /^update rolled back: canary aborted at 100%: error rate 20% \(40 of 200 requests\) > 1%$/);
});
