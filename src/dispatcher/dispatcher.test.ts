import { test } from "node:test";
import assert from "node:assert/strict";
import { applyStatus } from "./dispatcher.js";
import { createMemoryStore } from "../store/memory/memory-store.js";
import { aService, aTask } from "../../test/harness/builders.js";
import type { TaskStatusUpdate } from "./protocol.js";

// issue #7: same-state reports overwrote details unconditionally, so a late report could
// replace a newer one (readiness in the mesh depends on this).
test("a late report (lower sequence number) never overwrites a newer one", async () => {
  const store = createMemoryStore();
  const svc = aService();
  const t = aTask(svc, { state: "running" });
  await store.update((tx) => tx.create("tasks", t));
  const report = (seq: number, over: Partial<TaskStatusUpdate>): Promise<void> =>
    store.update((tx) => applyStatus(tx, { taskId: t.id, state: "running", message: "", timestamp: 1, seq, ...over }));
  await report(10, { health: "healthy", message: "healthy" });
  await report(9, { health: "unhealthy", message: "late" });
  assert.equal(store.view((tx) => tx.get("tasks", t.id))!.status.health, "healthy");
  await report(11, { health: "unhealthy", message: "unhealthy" });
  assert.equal(store.view((tx) => tx.get("tasks", t.id))!.status.health, "unhealthy");
  await report(12, { state: "starting", message: "backwards" });
  assert.equal(store.view((tx) => tx.get("tasks", t.id))!.status.state, "running", "states never go backwards");
});

test("blue-green: the pools hold one color — the old tasks before the switch, the new ones after", async () => {
  const { serviceEndpoints } = await import("./endpoints.js");
  const { withNewSpec } = await import("../updater/transitions.js");
  const store = createMemoryStore();
  const v1 = aService({ name: "web", publish: ["8080:80"], update: { strategy: "blue-green" } });
  const v2 = withNewSpec(v1, { ...v1.spec, task: { ...v1.spec.task, env: { V: "2" } } }, {}, 0);
  const ready = { state: "running" as const, timestamp: 0, message: "", ready: true, port: 1 };
  const oldT = aTask(v1, { slot: 1, nodeId: "n", status: ready });
  const newT = { ...aTask(v2, { slot: 1, nodeId: "n", status: ready }), specVersion: 2, spec: v2.spec.task };
  await store.update((tx) => {
    tx.create("services", v2);
    tx.create("tasks", oldT);
    tx.create("tasks", newT);
  });
  const ids = (): string[] => store.view((tx) => serviceEndpoints(tx, tx.get("services", v2.id)!).backends.map((b) => b.taskId));
  assert.deepEqual(ids(), [oldT.id], "before the switch: old only");
  await store.update((tx) => {
    const s = tx.get("services", v2.id)!;
    tx.update("services", { ...s, updateStatus: { ...s.updateStatus!, switchedAt: 1 } });
  });
  assert.deepEqual(ids(), [newT.id], "after the switch: new only");
});

test("a session reports only for its own node's tasks, and times are the manager's clock", async () => {
  const { Dispatcher } = await import("./dispatcher.js");
  const { FakeClock, settle } = await import("../../test/harness/fake-clock.js");
  const { silentLogger } = await import("../lib/log.js");
  const clock = new FakeClock();
  const store = createMemoryStore({ clock });
  const d = new Dispatcher({ store, clock, log: silentLogger() });
  d.start();
  const desc = (id: string) => ({ nodeId: id, hostname: id, role: "worker" as const, resources: { cpus: 1, memoryBytes: 1 }, drivers: ["process"], platform: { os: "linux", arch: "x64" }, agentVersion: "t" });
  const a = d.localSession();
  const b = d.localSession();
  await a.register(desc("node-a"));
  await b.register(desc("node-b"));
  const svc = aService();
  const onA = aTask(svc, { nodeId: "node-a", state: "assigned" });
  await store.update((tx) => tx.create("tasks", onA));
  await b.reportStatus([{ taskId: onA.id, state: "failed", message: "forged", timestamp: clock.now(), seq: 1 }]);
  assert.equal(store.view((tx) => tx.get("tasks", onA.id))!.status.state, "assigned", "node-b cannot report node-a's task");
  await a.reportStatus([{ taskId: onA.id, state: "running", message: "ok", timestamp: clock.now() + 3_600_000, seq: 2 }]);
  await settle();
  const t = store.view((tx) => tx.get("tasks", onA.id))!;
  assert.equal(t.status.state, "running");
  assert.equal(t.status.timestamp, clock.now(), "an agent clock an hour ahead does not leak into the store");
  assert.equal(t.status.startedAt, clock.now());
  d.stop();
});

test("a node's limit support is stored as its agent describes it; an agent that stops describing it enforces none", async () => {
  const { Dispatcher } = await import("./dispatcher.js");
  const { FakeClock } = await import("../../test/harness/fake-clock.js");
  const { silentLogger } = await import("../lib/log.js");
  const clock = new FakeClock();
  const store = createMemoryStore({ clock });
  const d = new Dispatcher({ store, clock, log: silentLogger() });
  const base = { nodeId: "n1", hostname: "n1", role: "worker" as const, resources: { cpus: 1, memoryBytes: 1 }, drivers: ["process"], platform: { os: "linux", arch: "x64" }, agentVersion: "t" };
  await d.register({ ...base, limits: { memory: true, cpu: true, cgroup: "v1" } });
  assert.deepEqual(store.view((tx) => tx.get("nodes", "n1"))!.limits, { memory: true, cpu: true, cgroup: "v1" });
  await d.register(base);
  assert.equal(store.view((tx) => tx.get("nodes", "n1"))!.limits, undefined);
});
