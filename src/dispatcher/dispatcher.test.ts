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

test("a node's assignments carry the secrets of its own running tasks only, and stop carrying them when the task should stop", async () => {
  const { Dispatcher } = await import("./dispatcher.js");
  const { FakeClock } = await import("../../test/harness/fake-clock.js");
  const { silentLogger } = await import("../lib/log.js");
  const { secretBox } = await import("../secrets/data-key.js");
  const { randomBytes } = await import("node:crypto");
  const box = secretBox(randomBytes(32));
  const store = createMemoryStore();
  const secret = (id: string, name: string, value: string) => ({ id, name, labels: {}, sealed: box.seal(id, Buffer.from(value)), size: value.length });
  await store.update((tx) => (tx.create("secrets", secret("sa", "a", "value-a")), tx.create("secrets", secret("sb", "b", "value-b"))));
  const ref = (id: string, name: string) => ({ id, name, target: name, mode: 0o400 });
  const svcA = aService({ name: "svc-a" });
  const svcB = aService({ name: "svc-b" });
  const onN1 = aTask({ ...svcA, spec: { ...svcA.spec, task: { ...svcA.spec.task, secrets: [ref("sa", "a")] } } }, { nodeId: "n1", state: "assigned" });
  const onN2 = aTask({ ...svcB, spec: { ...svcB.spec, task: { ...svcB.spec.task, secrets: [ref("sb", "b")] } } }, { nodeId: "n2", state: "assigned" });
  await store.update((tx) => (tx.create("tasks", onN1), tx.create("tasks", onN2)));
  const d = new Dispatcher({ store, clock: new FakeClock(), log: silentLogger(), openSecret: box.open });
  const seen: string[] = [];
  d.subscribe("n1", (c) => {
    for (const a of c.type === "full" ? c.assignments : c.upserts) seen.push(JSON.stringify(a));
  });
  const full = JSON.parse(seen[0]!) as { files?: { name: string; data: string }[] };
  assert.deepEqual(full.files?.map((f) => [f.name, Buffer.from(f.data, "base64").toString()]), [["a", "value-a"]]);
  assert.ok(!seen.join("").includes(Buffer.from("value-b").toString("base64")), "n1 never gets n2's secret");
  d.start();
  await store.update((tx) => tx.update("tasks", { ...tx.get("tasks", onN1.id)!, desiredState: "shutdown" }));
  await new Promise((r) => setImmediate(r));
  const last = JSON.parse(seen.at(-1)!) as { desiredState: string; files?: unknown };
  assert.equal(last.desiredState, "shutdown");
  assert.equal(last.files, undefined, "a task being stopped gets no files");
  d.stop();
});

test("a session's volume names: the whole set at once, then again when a volume is created or removed (not on other changes)", async () => {
  const { Dispatcher } = await import("./dispatcher.js");
  const { FakeClock, settle } = await import("../../test/harness/fake-clock.js");
  const { silentLogger } = await import("../lib/log.js");
  const clock = new FakeClock();
  const store = createMemoryStore({ clock });
  await store.update((tx) => tx.create("volumes", { id: "v1", name: "data", driver: "local", labels: {} }));
  const d = new Dispatcher({ store, clock, log: silentLogger() });
  d.start();
  const seen: string[][] = [];
  const off = d.localSession().volumes!((names) => seen.push(names));
  assert.deepEqual(seen, [["data"]]);
  await store.update((tx) => tx.create("volumes", { id: "v2", name: "cache", driver: "local", labels: {} }));
  await store.update((tx) => tx.create("services", aService()));
  await store.update((tx) => tx.delete("volumes", "v1"));
  await settle();
  assert.deepEqual(seen, [["data"], ["cache", "data"], ["cache"]]);
  off();
  await store.update((tx) => tx.delete("volumes", "v2"));
  await settle();
  assert.equal(seen.length, 3, "nothing after unsubscribing");
  d.stop();
});

test("a session's attachable networks: the whole set at once, then again when networks change", async () => {
  const { Dispatcher } = await import("./dispatcher.js");
  const { FakeClock, settle } = await import("../../test/harness/fake-clock.js");
  const { silentLogger } = await import("../lib/log.js");
  const clock = new FakeClock();
  const store = createMemoryStore({ clock });
  const net = (id: string, name: string, attachable: boolean) => ({ id, name, driver: "overlay" as const, internal: false, attachable, labels: {} });
  await store.update((tx) => tx.create("networks", net("n1", "shared", true)));
  const d = new Dispatcher({ store, clock, log: silentLogger() });
  d.start();
  const seen: string[][] = [];
  d.localSession().attachableNetworks!((nets) => seen.push(nets.map((n) => `${n.id} ${n.name} internal=${n.internal}`)));
  await store.update((tx) => tx.create("networks", net("n2", "private", false)));
  await store.update((tx) => tx.create("networks", net("n3", "alpha", true)));
  await store.update((tx) => tx.delete("networks", "n1"));
  await settle();
  // Not again when a network that is not attachable comes: the set did not change.
  assert.deepEqual(seen, [["n1 shared internal=false"], ["n3 alpha internal=false", "n1 shared internal=false"], ["n3 alpha internal=false"]]);
  d.stop();
});

test("a node changing role (desiredRole set) is not called down after the heartbeat grace, only after the role-change grace; the role taken clears it", async () => {
  const { Dispatcher, ROLE_CHANGE_GRACE_MS } = await import("./dispatcher.js");
  const { FakeClock } = await import("../../test/harness/fake-clock.js");
  const { silentLogger } = await import("../lib/log.js");
  const clock = new FakeClock();
  const store = createMemoryStore({ clock });
  const d = new Dispatcher({ store, clock, log: silentLogger(), heartbeatPeriodMs: 500, heartbeatGraceMs: 1500 });
  const base = { hostname: "n", role: "manager" as const, resources: { cpus: 1, memoryBytes: 1 }, drivers: ["process"], platform: { os: "linux", arch: "x64" }, agentVersion: "t" };
  await d.register({ ...base, nodeId: "changing" });
  await d.register({ ...base, nodeId: "plain" });
  await store.update((tx) => tx.update("nodes", { ...tx.get("nodes", "changing")!, desiredRole: "worker" }));
  clock.jump(2000);
  await d.checkLiveness();
  const state = (id: string) => store.view((tx) => tx.get("nodes", id))!.status.state;
  assert.equal(state("plain"), "down");
  assert.equal(state("changing"), "ready", "a role change gets longer");
  // It comes back as the role it was asked to take: desiredRole is gone.
  await d.register({ ...base, nodeId: "changing", role: "worker" });
  const n = store.view((tx) => tx.get("nodes", "changing"))!;
  assert.equal(n.role, "worker");
  assert.equal(n.desiredRole, undefined);
  // One that never comes back is down after the role-change grace.
  await store.update((tx) => tx.update("nodes", { ...tx.get("nodes", "changing")!, desiredRole: "manager" }));
  clock.jump(ROLE_CHANGE_GRACE_MS + 1000);
  await d.checkLiveness();
  assert.equal(state("changing"), "down");
});

test("a registration written by another manager counts as heard: the node is not called down before a grace period after it", async () => {
  const { Dispatcher } = await import("./dispatcher.js");
  const { FakeClock } = await import("../../test/harness/fake-clock.js");
  const { silentLogger } = await import("../lib/log.js");
  const clock = new FakeClock();
  const store = createMemoryStore({ clock });
  const leader = new Dispatcher({ store, clock, log: silentLogger(), heartbeatPeriodMs: 500, heartbeatGraceMs: 1500 });
  const other = new Dispatcher({ store, clock, log: silentLogger(), heartbeatPeriodMs: 500, heartbeatGraceMs: 1500 });
  const desc = { nodeId: "m", hostname: "m", role: "manager" as const, resources: { cpus: 1, memoryBytes: 1 }, drivers: ["process"], platform: { os: "linux", arch: "x64" }, agentVersion: "t" };
  await leader.register(desc);
  clock.jump(1400);
  // It restarts as a manager and registers with its own dispatcher, not the leader's.
  await other.register(desc);
  clock.jump(1000);
  await leader.checkLiveness();
  assert.equal(store.view((tx) => tx.get("nodes", "m"))!.status.state, "ready");
  clock.jump(1000);
  await leader.checkLiveness();
  assert.equal(store.view((tx) => tx.get("nodes", "m"))!.status.state, "down", "silent for longer than the grace after that registration");
});
