// Node liveness on the leader with several managers: nodes heard through another manager, and what
// happens when that manager is lost while its agents look for another one.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Dispatcher } from "./dispatcher.js";
import { createMemoryStore } from "../store/memory/memory-store.js";
import { silentLogger } from "../lib/log.js";
import { FakeClock } from "../../test/harness/fake-clock.js";
import { aService, aTask } from "../../test/harness/builders.js";

async function leaderWithRemoteNode() {
  const clock = new FakeClock();
  const store = createMemoryStore({ clock });
  const d = new Dispatcher({ store, clock, log: silentLogger(), heartbeatPeriodMs: 500, heartbeatGraceMs: 1500 });
  d.start();
  // The node registered through another manager (its session is there, not here).
  await store.update((tx) => tx.create("nodes", { id: "w1", hostname: "w1", role: "worker", availability: "active", labels: {}, resources: { cpus: 1, memoryBytes: 1 }, drivers: ["process"], platform: { os: "linux", arch: "x64" }, agentVersion: "t", status: { state: "ready", message: "", heartbeatAt: clock.now() } }));
  const svc = aService();
  await store.update((tx) => tx.create("tasks", aTask(svc, { nodeId: "w1", slot: 1, state: "running" })));
  d.startLiveness();
  const state = (): string => store.view((tx) => tx.get("nodes", "w1"))!.status.state;
  return { clock, d, state };
}

test("a node heard only through a manager that is then lost: down after the grace period without the reconnection allowance", async () => {
  const { clock, d, state } = await leaderWithRemoteNode();
  for (let i = 0; i < 4; i++) {
    d.noteSeen(["w1"]);
    await clock.advance(500);
  }
  await clock.advance(2000);
  assert.equal(state(), "down", "no heartbeat for more than the grace period");
  d.stop();
});

test("a lost manager's agents get the reconnection allowance: their nodes stay up while the agents find another manager, and go down only if they never do", async () => {
  const { clock, d, state } = await leaderWithRemoteNode();
  for (let i = 0; i < 4; i++) {
    d.noteSeen(["w1"]);
    await clock.advance(500);
  }
  // The manager holding w1's session is gone from the view: 3 heartbeats + 2 s to reconnect.
  d.allowReconnect(["w1"], 3500);
  await clock.advance(4500);
  assert.equal(state(), "ready", "inside the allowance and the grace after it");
  // The agent is back through a third manager, which publishes it: heard again.
  d.noteSeen(["w1"]);
  await clock.advance(1000);
  assert.equal(state(), "ready");
  // A node that never comes back: down once the allowance and a grace period have passed.
  d.allowReconnect(["w1"], 3500);
  await clock.advance(3500 + 1500 + 600);
  assert.equal(state(), "down");
  d.stop();
});

test("noteSeen never shortens an allowance already given", async () => {
  const { clock, d, state } = await leaderWithRemoteNode();
  d.allowReconnect(["w1"], 3500);
  // A stale record of the lost manager read once more: it must not take the allowance back.
  d.noteSeen(["w1"]);
  await clock.advance(4500);
  assert.equal(state(), "ready");
  d.stop();
});
