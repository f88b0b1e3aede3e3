import { test } from "node:test";
import assert from "node:assert/strict";
import { Manager } from "./manager.js";
import { createMemoryStore } from "../store/memory/memory-store.js";
import { silentLogger } from "../lib/log.js";
import type { AgentSession, Assignment } from "../dispatcher/protocol.js";
import type { Task } from "../model/objects.js";
import type { TaskState } from "../model/task-state.js";
import { FakeClock, settle } from "../../test/harness/fake-clock.js";
import { aService } from "../../test/harness/builders.js";

let seq = 0;

/** An agent that runs nothing: the test decides what its tasks do. */
async function fakeAgent(session: AgentSession, nodeId: string, hostname = nodeId) {
  const seen = new Map<string, Assignment>();
  await session.register({ nodeId, hostname, role: "manager", resources: { cpus: 2, memoryBytes: 1024 ** 3 }, drivers: ["process"], platform: { os: "linux", arch: "x64" }, agentVersion: "test" });
  session.assignments((c) => {
    for (const a of c.type === "full" ? c.assignments : c.upserts) seen.set(a.taskId, a);
  });
  return {
    seen,
    report: (taskId: string, state: TaskState, clock: FakeClock, extra: { exitCode?: number } = {}) =>
      session.reportStatus([{ taskId, state, message: state, timestamp: clock.now(), seq: ++seq, ...extra }]),
  };
}

async function setup(heartbeatPeriodMs = 1000) {
  const clock = new FakeClock();
  const store = createMemoryStore({ clock });
  const manager = new Manager({ store, clock, log: silentLogger(), heartbeatPeriodMs });
  manager.start();
  const running = (svcId: string): Task[] => store.view((tx) => tx.tasksOfService(svcId)).filter((t) => t.desiredState === "running");
  return { clock, store, manager, running };
}

test("a created service's tasks are assigned to the node and reach its agent", async () => {
  const { clock, store, manager, running } = await setup();
  const agent = await fakeAgent(manager.dispatcher.localSession(), "n1");
  const svc = aService({ replicas: 3 });
  await store.update((tx) => tx.create("services", { id: svc.id, spec: svc.spec, specVersion: 1 }));
  await settle();
  const tasks = running(svc.id);
  assert.equal(tasks.length, 3);
  assert.ok(tasks.every((t) => t.status.state === "assigned" && t.nodeId === "n1"));
  assert.equal(agent.seen.size, 3);
  for (const t of tasks) await agent.report(t.id, "running", clock);
  await settle();
  assert.ok(running(svc.id).every((t) => t.status.state === "running" && t.status.startedAt === clock.now()));
  manager.stop();
});

test("a crash is replaced at once; a crash loop waits out the backoff on the clock", async () => {
  const { clock, store, manager, running } = await setup();
  const agent = await fakeAgent(manager.dispatcher.localSession(), "n1");
  const svc = aService({ replicas: 1 });
  await store.update((tx) => tx.create("services", { id: svc.id, spec: svc.spec, specVersion: 1 }));
  await settle();
  const first = running(svc.id)[0]!;
  await agent.report(first.id, "running", clock);
  await clock.advance(100);
  await agent.report(first.id, "failed", clock, { exitCode: 1 });
  await settle();
  const second = running(svc.id)[0]!;
  assert.notEqual(second.id, first.id, "replaced immediately");
  assert.equal(second.slot, 1);
  await agent.report(second.id, "running", clock);
  await clock.advance(100);
  await agent.report(second.id, "failed", clock, { exitCode: 1 });
  await settle();
  assert.equal(running(svc.id)[0]!.id, second.id, "second quick failure: backoff holds the restart");
  await clock.advance(199);
  assert.equal(running(svc.id)[0]!.id, second.id);
  await clock.advance(1);
  const third = running(svc.id)[0]!;
  assert.notEqual(third.id, second.id, "restarted after 200 ms");
  assert.equal(third.restart.attempts, 2);
  manager.stop();
});

test("a node that misses heartbeats goes down; its tasks are orphaned and replaced on another node", async () => {
  const { clock, store, manager, running } = await setup(1000);
  const a = await fakeAgent(manager.dispatcher.localSession(), "a");
  const bSession = manager.dispatcher.localSession();
  await fakeAgent(bSession, "b");
  const svc = aService({ replicas: 2 });
  await store.update((tx) => tx.create("services", { id: svc.id, spec: svc.spec, specVersion: 1 }));
  await settle();
  const onA = running(svc.id).find((t) => t.nodeId === "a")!;
  assert.ok(onA, "spread puts one task on each node");
  // Only b keeps beating.
  for (let i = 0; i < 6; i++) {
    await bSession.heartbeat();
    await clock.advance(1000);
  }
  await settle();
  const nodeA = store.view((tx) => tx.get("nodes", "a"))!;
  assert.equal(nodeA.status.state, "down");
  assert.equal(store.view((tx) => tx.get("tasks", onA.id))!.status.state, "orphaned");
  const now = running(svc.id);
  assert.equal(now.length, 2);
  assert.ok(now.every((t) => t.nodeId === "b"), "replacement placed on the live node");
  void a;
  manager.stop();
});

test("a stalled manager does not mark its nodes down for its own stall", async () => {
  const { clock, store, manager } = await setup(1000);
  await fakeAgent(manager.dispatcher.localSession(), "n1");
  // The event loop was blocked for 20 s: no heartbeat could arrive, no timer could fire.
  clock.jump(20_000);
  await clock.advance(0);
  assert.equal(store.view((tx) => tx.get("nodes", "n1"))!.status.state, "ready");
  // Real silence afterwards still counts.
  await clock.advance(6000);
  assert.equal(store.view((tx) => tx.get("nodes", "n1"))!.status.state, "down");
  manager.stop();
});

test("a task that cannot be placed stays pending with the reason", async () => {
  const { store, manager, running } = await setup();
  await fakeAgent(manager.dispatcher.localSession(), "n1");
  const svc = aService({ replicas: 1, constraints: ["node.labels.tier==data"] });
  await store.update((tx) => tx.create("services", { id: svc.id, spec: svc.spec, specVersion: 1 }));
  await settle();
  const t = running(svc.id)[0]!;
  assert.equal(t.status.state, "pending");
  assert.equal(t.status.message, "no node satisfies: 1 node constraint node.labels.tier == data");
  // Labelling the node makes it placeable.
  await store.update((tx) => {
    const n = tx.get("nodes", "n1")!;
    tx.update("nodes", { ...n, labels: { tier: "data" } });
  });
  await settle();
  assert.equal(running(svc.id)[0]!.status.state, "assigned");
  manager.stop();
});

test("states reported out of order never go backwards", async () => {
  const { clock, store, manager, running } = await setup();
  const agent = await fakeAgent(manager.dispatcher.localSession(), "n1");
  const svc = aService({ replicas: 1, restartPolicy: { condition: "none" } });
  await store.update((tx) => tx.create("services", { id: svc.id, spec: svc.spec, specVersion: 1 }));
  await settle();
  const t = running(svc.id)[0]!;
  await agent.report(t.id, "failed", clock, { exitCode: 3 });
  await agent.report(t.id, "running", clock);
  await settle();
  const after = store.view((tx) => tx.get("tasks", t.id))!;
  assert.equal(after.status.state, "failed");
  assert.equal(after.status.exitCode, 3);
  assert.equal(after.restartBlocked, "restart condition is none");
  manager.stop();
});

test("a new term on a shared store: the controllers start only once the store's cache caught up (sync), retried while it fails", async () => {
  const clock = new FakeClock();
  const memory = createMemoryStore({ clock });
  let syncs = 0;
  let release: () => void = () => undefined;
  // A shared store's barrier: fails once (etcd not answering), then waits until the test lets it go.
  const store = Object.assign(Object.create(memory) as typeof memory, {
    sync: (): Promise<void> => (++syncs === 1 ? Promise.reject(new Error("etcd did not answer")) : new Promise<void>((r) => (release = r))),
  });
  const manager = new Manager({ store, clock, log: silentLogger(), heartbeatPeriodMs: 1000 });
  manager.startSessions();
  await fakeAgent(manager.dispatcher.localSession(), "n1");
  const svc = aService({ replicas: 2 });
  await store.update((tx) => tx.create("services", { id: svc.id, spec: svc.spec, specVersion: 1 }));
  manager.lead({ key: "/leader", revision: 7 });
  await settle();
  const tasks = (): number => store.view((tx) => tx.tasksOfService(svc.id)).length;
  assert.ok(manager.isLeading());
  assert.equal(tasks(), 0, "nothing planned from a cache that may be behind");
  await clock.advance(200);
  assert.equal(syncs, 2, "the failed barrier is retried");
  assert.equal(tasks(), 0);
  release();
  await settle();
  assert.equal(tasks(), 2, "caught up: the orchestrator runs");
  manager.stop();
});
