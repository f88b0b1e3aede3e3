import { test } from "node:test";
import assert from "node:assert/strict";
import { planService, type Plan } from "./plan.js";
import { backoffMs, BACKOFF_CAP_MS } from "./restart.js";
import { aNode, aService, aTask } from "../../test/harness/builders.js";
import type { Service, Task } from "../model/objects.js";
import { serviceStatus } from "../model/service-status.js";

const T0 = 1_000_000;
const plan = (service: Service | undefined, tasks: Task[], now = T0, nodes = [aNode()]): Plan =>
  planService({ serviceId: service?.id ?? "gone", service, tasks, nodes }, now);

test("creates one task per missing slot, numbered 1..N", () => {
  const svc = aService({ replicas: 3 });
  const p = plan(svc, []);
  assert.deepEqual(p.create.map((t) => t.slot).sort(), [1, 2, 3]);
  assert.ok(p.create.every((t) => t.desiredState === "running" && t.status.state === "new" && t.specVersion === 1));
});

test("fills only the free slots", () => {
  const svc = aService({ replicas: 3 });
  const p = plan(svc, [aTask(svc, { slot: 2 })]);
  assert.deepEqual(p.create.map((t) => t.slot).sort(), [1, 3]);
});

test("scale down shuts down the highest slots", () => {
  const svc = aService({ replicas: 2 });
  const tasks = [1, 2, 3, 4].map((slot) => aTask(svc, { slot }));
  const p = plan(svc, tasks);
  assert.equal(p.create.length, 0);
  assert.deepEqual(p.update.map((t) => [t.slot, t.desiredState]).sort(), [[3, "shutdown"], [4, "shutdown"]]);
});

test("a pending task that is scaled away ends at once (no agent holds it)", () => {
  const svc = aService({ replicas: 0 });
  const p = plan(svc, [aTask(svc, { slot: 1, state: "pending" })], T0);
  assert.equal(p.update[0]!.status.state, "shutdown");
  assert.equal(p.update[0]!.desiredState, "shutdown");
});

test("first restart is immediate and the old task becomes history", () => {
  const svc = aService({ replicas: 1 });
  const failed = aTask(svc, { state: "failed", at: T0, startedAt: T0 - 500 });
  const p = plan(svc, [failed], T0);
  assert.equal(p.create.length, 1);
  assert.equal(p.create[0]!.slot, 1);
  assert.deepEqual(p.create[0]!.restart, { attempts: 1, recent: [T0], streak: 1 });
  assert.equal(p.update[0]!.id, failed.id);
  assert.equal(p.update[0]!.desiredState, "shutdown");
});

test("backoff doubles from 200 ms and is capped at 10 s", () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 8, 20].map(backoffMs), [0, 200, 400, 800, 1600, 3200, 6400, BACKOFF_CAP_MS, BACKOFF_CAP_MS]);
});

test("a second quick failure waits for the backoff, then restarts", () => {
  const svc = aService({ replicas: 1 });
  const failed = aTask(svc, { state: "failed", at: T0, startedAt: T0 - 100, restart: { attempts: 1, recent: [T0 - 200], streak: 1 } });
  const early = plan(svc, [failed], T0 + 50);
  assert.equal(early.create.length, 0);
  assert.equal(early.requeueAfterMs, 150);
  const due = plan(svc, [failed], T0 + 200);
  assert.equal(due.create.length, 1);
  assert.equal(due.create[0]!.restart.streak, 2);
});

test("a task that ran 10 s or more resets the backoff", () => {
  const svc = aService({ replicas: 1 });
  const failed = aTask(svc, { state: "failed", at: T0, startedAt: T0 - 10_000, restart: { attempts: 7, recent: [], streak: 7 } });
  const p = plan(svc, [failed], T0);
  assert.equal(p.create.length, 1, "restarted immediately");
  assert.equal(p.create[0]!.restart.streak, 1);
});

test("an explicit restart delay replaces the backoff", () => {
  const svc = aService({ replicas: 1, restartPolicy: { delay: "2s" } });
  const failed = aTask(svc, { state: "failed", at: T0, startedAt: T0 - 100 });
  assert.equal(plan(svc, [failed], T0).requeueAfterMs, 2000);
  assert.equal(plan(svc, [failed], T0 + 2000).create.length, 1);
});

test("max attempts 2: the third failure blocks the slot with a reason", () => {
  const svc = aService({ replicas: 1, restartPolicy: { condition: "on-failure", maxAttempts: 2, delay: "0s" } });
  const third = aTask(svc, { state: "failed", at: T0, restart: { attempts: 2, recent: [T0 - 20, T0 - 10], streak: 2 } });
  const p = plan(svc, [third], T0);
  assert.equal(p.create.length, 0);
  assert.equal(p.update[0]!.restartBlocked, "restart max attempts (2) reached");
  assert.equal(p.update[0]!.desiredState, "running", "the slot keeps its failed task; it is not refilled");
  const again = plan(svc, [p.update[0]!], T0 + 60_000);
  assert.equal(again.create.length + again.update.length, 0);
});

test("max attempts count only inside the restart window", () => {
  const svc = aService({ replicas: 1, restartPolicy: { maxAttempts: 1, window: "10s", delay: "0s" } });
  const old = aTask(svc, { state: "failed", at: T0, restart: { attempts: 5, recent: [T0 - 20_000], streak: 1 } });
  assert.equal(plan(svc, [old], T0).create.length, 1);
  const recent = aTask(svc, { state: "failed", at: T0, restart: { attempts: 5, recent: [T0 - 5_000], streak: 1 } });
  assert.equal(plan(svc, [recent], T0).create.length, 0);
});

test("on-failure does not restart a task that completed; any does", () => {
  const onFailure = aService({ restartPolicy: { condition: "on-failure" } });
  const p = plan(onFailure, [aTask(onFailure, { state: "complete", at: T0 })]);
  assert.equal(p.create.length, 0);
  assert.match(p.update[0]!.restartBlocked!, /on-failure/);
  const any = aService({});
  assert.equal(plan(any, [aTask(any, { state: "complete", at: T0 })]).create.length, 1);
});

test("condition none never restarts, but an orphaned task is always replaced", () => {
  const svc = aService({ restartPolicy: { condition: "none" } });
  assert.equal(plan(svc, [aTask(svc, { state: "failed", at: T0 })]).create.length, 0);
  assert.equal(plan(svc, [aTask(svc, { state: "orphaned", at: T0 })]).create.length, 1);
});

test("global: one task per eligible node; drained and constrained-out nodes get none", () => {
  const svc = aService({ mode: "global", constraints: ["node.labels.tier!=edge"] });
  const a = aNode({ hostname: "a" });
  const b = aNode({ hostname: "b", availability: "drain" });
  const c = aNode({ hostname: "c", labels: { tier: "edge" } });
  const d = aNode({ hostname: "d" });
  const p = plan(svc, [aTask(svc, { slot: 0, nodeId: b.id })], T0, [a, b, c, d]);
  assert.deepEqual(p.create.map((t) => t.nodeId).sort(), [a.id, d.id].sort());
  assert.ok(p.create.every((t) => t.slot === 0));
  assert.equal(p.update[0]!.nodeId, b.id);
  assert.equal(p.update[0]!.desiredState, "shutdown");
});

// issue #7: the orchestrator counted a paused node as eligible, the scheduler refused it, and
// `service create --mode global` waited forever.
test("global: a paused node gets no new task but keeps the one it runs; status agrees", () => {
  const svc = aService({ mode: "global" });
  const active = aNode({ hostname: "active" });
  const pausedEmpty = aNode({ hostname: "paused-empty", availability: "pause" });
  const pausedRunning = aNode({ hostname: "paused-running", availability: "pause" });
  const down = aNode({ hostname: "down", status: { state: "down", message: "", heartbeatAt: 0 } });
  const kept = aTask(svc, { slot: 0, nodeId: pausedRunning.id });
  const nodes = [active, pausedEmpty, pausedRunning, down];
  const p = plan(svc, [kept], T0, nodes);
  assert.deepEqual(p.create.map((t) => t.nodeId), [active.id], "only the active, ready node gets a new task");
  assert.deepEqual(p.update, [], "the paused node's running task is left alone");
  const onActive = aTask(svc, { slot: 0, nodeId: active.id });
  const st = serviceStatus(svc, [kept, onActive], nodes);
  assert.deepEqual(st, { running: 2, desired: 2, converged: true });
});

test("history: keeps the newest taskHistoryLimit ended tasks per slot", () => {
  const svc = aService({ replicas: 1, taskHistoryLimit: 2 });
  const history = [1, 2, 3, 4].map((i) => aTask(svc, { state: "failed", desiredState: "shutdown", at: T0 + i }));
  const p = plan(svc, [...history, aTask(svc, { at: T0 + 10 })]);
  assert.deepEqual(p.delete.sort(), [history[0]!.id, history[1]!.id].sort());
});

test("a removed service: unstarted and ended tasks are deleted, running ones told to go", () => {
  const svc = aService({ replicas: 3 });
  const running = aTask(svc, { slot: 1 });
  const ended = aTask(svc, { slot: 2, state: "failed" });
  const pending = aTask(svc, { slot: 3, state: "pending" });
  const p = plan(undefined, [running, ended, pending]);
  assert.deepEqual(p.delete.sort(), [ended.id, pending.id].sort());
  assert.equal(p.update[0]!.desiredState, "remove");
});

test("two tasks wanted running in one slot (a lost race): the older one is shut down", () => {
  const svc = aService({ replicas: 1 });
  const older = aTask(svc, { at: 1 });
  const newer = aTask(svc, { at: 2 });
  const p = plan(svc, [older, newer]);
  assert.deepEqual(p.update.map((t) => [t.id, t.desiredState]), [[older.id, "shutdown"]]);
});

// Moves (drain, rebalance): one code path, start-first unless a drain of a stop-first service.
const drainedAnd = (): { a: ReturnType<typeof aNode>; b: ReturnType<typeof aNode> } => ({ a: aNode({ hostname: "a", availability: "drain" }), b: aNode({ hostname: "b" }) });

test("drain, start-first: a replacement is created beside the drained task, which keeps running", () => {
  const svc = aService({ replicas: 1, publish: ["8080:80"] });
  const { a, b } = drainedAnd();
  const old = aTask(svc, { nodeId: a.id, status: { state: "running", timestamp: 0, message: "", ready: true } });
  const p = plan(svc, [old], T0, [a, b]);
  assert.deepEqual(p.update, [], "the drained task is not touched");
  assert.equal(p.create.length, 1);
  assert.deepEqual(p.create[0]!.moveOf, { taskId: old.id, nodeId: a.id, reason: "drain" });
});

test("drain, start-first: the drained task is stopped once its replacement runs and is ready, not before", () => {
  const svc = aService({ replicas: 1, publish: ["8080:80"] });
  const { a, b } = drainedAnd();
  const old = aTask(svc, { nodeId: a.id, at: T0 - 10 });
  const moveOf = { taskId: old.id, nodeId: a.id, reason: "drain" as const };
  const starting = aTask(svc, { nodeId: b.id, at: T0, moveOf, status: { state: "running", timestamp: T0, message: "", ready: false } });
  assert.deepEqual(plan(svc, [old, starting], T0, [a, b]), { create: [], update: [], delete: [] }, "a move pair is no lost race: both stay");
  const ready = { ...starting, status: { ...starting.status, ready: true } };
  const p = plan(svc, [old, ready], T0, [a, b]);
  assert.deepEqual(p.update.map((t) => [t.id, t.desiredState]), [[old.id, "shutdown"]]);
  assert.equal(p.create.length, 0);
});

test("drain, stop-first: the drained task is shut down as its replacement is created", () => {
  const svc = aService({ replicas: 1, update: { order: "stop-first" } });
  const { a, b } = drainedAnd();
  const old = aTask(svc, { nodeId: a.id });
  const p = plan(svc, [old], T0, [a, b]);
  assert.deepEqual(p.update.map((t) => [t.id, t.desiredState]), [[old.id, "shutdown"]]);
  assert.equal(p.create.length, 1);
  assert.equal(p.create[0]!.moveOf, undefined);
});

test("a move pair created in the same millisecond: the old task never heads the slot", () => {
  const svc = aService({ replicas: 1 });
  const { a, b } = drainedAnd();
  // Ids chosen so that the old task sorts first on the tie.
  const old = aTask(svc, { id: "a-old", nodeId: a.id, at: T0 });
  const repl = aTask(svc, { id: "z-new", at: T0, state: "pending", moveOf: { taskId: "a-old", nodeId: a.id, reason: "drain" } });
  assert.deepEqual(plan(svc, [old, repl], T0, [a, b]), { create: [], update: [], delete: [] });
});

test("rebalance: a marked task moves start-first even for a stop-first service", () => {
  const svc = aService({ replicas: 1, update: { order: "stop-first" } });
  const a = aNode({ hostname: "a" });
  const old = aTask(svc, { nodeId: a.id, moveRequest: { reason: "rebalance", requestedAt: T0 } });
  const p = plan(svc, [old], T0, [a, aNode()]);
  assert.deepEqual(p.update, []);
  assert.deepEqual(p.create[0]!.moveOf, { taskId: old.id, nodeId: a.id, reason: "rebalance" });
});

test("the node active again before the replacement is up: the replacement goes, the task stays", () => {
  const svc = aService({ replicas: 1 });
  const a = aNode({ hostname: "a" });
  const old = aTask(svc, { nodeId: a.id, at: T0 - 10 });
  const repl = aTask(svc, { at: T0, state: "pending", moveOf: { taskId: old.id, nodeId: a.id, reason: "drain" } });
  const p = plan(svc, [old, repl], T0, [a]);
  assert.deepEqual(p.update.map((t) => [t.id, t.desiredState, t.status.state]), [[repl.id, "shutdown", "shutdown"]]);
});

test("a replacement that fails before it is up is restarted as the same move; the old task keeps running", () => {
  const svc = aService({ replicas: 1 });
  const { a, b } = drainedAnd();
  const old = aTask(svc, { nodeId: a.id, at: T0 - 10 });
  const moveOf = { taskId: old.id, nodeId: a.id, reason: "drain" as const };
  const failed = aTask(svc, { nodeId: b.id, at: T0 - 5, state: "failed", moveOf });
  const p = plan(svc, [old, failed], T0, [a, b]);
  assert.deepEqual(p.update.map((t) => [t.id, t.desiredState]), [[failed.id, "shutdown"]]);
  assert.deepEqual(p.create[0]!.moveOf, moveOf);
});

test("the old task ends by itself during a move: its restart policy decides, the replacement is the restart", () => {
  const { a, b } = drainedAnd();
  for (const [condition, expect] of [["none", "blocked"], ["any", "carried"]] as const) {
    const svc = aService({ replicas: 1, restartPolicy: { condition } });
    const old = aTask(svc, { nodeId: a.id, at: T0 - 10, state: "complete" });
    const repl = aTask(svc, { nodeId: b.id, at: T0 - 5, state: "starting", moveOf: { taskId: old.id, nodeId: a.id, reason: "drain" } });
    const p = plan(svc, [old, repl], T0, [a, b]);
    assert.equal(p.create.length, 0, condition);
    const byId = new Map(p.update.map((t) => [t.id, t]));
    if (expect === "blocked") {
      assert.equal(byId.get(old.id)!.restartBlocked, "restart condition is none");
      assert.equal(byId.get(repl.id)!.desiredState, "shutdown");
    } else {
      assert.equal(byId.get(old.id)!.desiredState, "shutdown");
      assert.equal(byId.get(repl.id)!.restart.attempts, 1, "the replacement counts as the restart");
    }
  }
});

test("scaled away during a move: both tasks of the pair go", () => {
  const svc = aService({ replicas: 0 });
  const { a, b } = drainedAnd();
  const old = aTask(svc, { nodeId: a.id, at: T0 - 10 });
  const repl = aTask(svc, { nodeId: b.id, at: T0, state: "starting", moveOf: { taskId: old.id, nodeId: a.id, reason: "drain" } });
  const p = plan(svc, [old, repl], T0, [a, b]);
  assert.deepEqual(p.update.map((t) => t.id).sort(), [old.id, repl.id].sort());
  assert.ok(p.update.every((t) => t.desiredState === "shutdown"));
});

test("a rollback while a slot holds the new version beside the old one: the old task (the rolled-back spec, now current) is kept for the updater, whichever is newer", async () => {
  const { withNewSpec, withRollback } = await import("../updater/transitions.js");
  const { resolveServiceSpec } = await import("../input/resolve.js");
  const v1 = aService({ replicas: 2, env: ["V=1"] });
  const old = [1, 2].map((slot) => aTask(v1, { slot, state: "running", createdAt: T0 - 10_000 }));
  const v2 = withNewSpec(v1, resolveServiceSpec({ name: "web", command: ["node", "server.js"], replicas: 2, env: ["V=2"] }), {}, T0);
  const fresh = [1, 2].map((slot) => aTask(v2, { slot, state: "running", createdAt: T0 + 100 }));
  // Updating: the new tasks head their slots; the old ones wait for the updater.
  assert.deepEqual(plan(v2, [...old, ...fresh], T0 + 200).update, []);
  // Rolled back (a canary aborted, a start-first step failed): the old tasks are current again,
  // the newer ones are not. Neither is stopped here: the updater stops the new ones and keeps
  // the old ones serving; stopping the old ones would leave the failed version serving alone.
  const rolledBack = withRollback(v2, T0 + 300, "canary aborted");
  assert.deepEqual(plan(rolledBack, [...old, ...fresh], T0 + 300).update, []);
  // With no update open, two tasks in a slot are a lost race: the older one goes.
  const done = { ...rolledBack, updateStatus: { ...rolledBack.updateStatus!, state: "rollback_completed" as const } };
  assert.deepEqual(plan(done, [...old, ...fresh], T0 + 400).update.map((t) => t.id).sort(), old.map((t) => t.id).sort());
});
