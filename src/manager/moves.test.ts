import { test } from "node:test";
import assert from "node:assert/strict";
import type { FastifyInstance } from "fastify";
import type { Task } from "../model/objects.js";
import { isTaskUp } from "../model/service-status.js";
import { testApi } from "../../test/harness/api.js";
import type { RebalanceResult } from "../api/rebalance.js";
import { SimCluster, type AgentBehaviour } from "../../test/harness/sim-cluster.js";

// Drain and rebalance on a whole cluster in one process (memory store, real Manager, fake agents,
// FakeClock). Slow agents make every step observable: a start takes 300 ms, readiness 500 ms more
// (the services have a service port, so "up" means ready), a stop 200 ms.
const slow: AgentBehaviour = { startDelayMs: 300, readyDelayMs: 500, stopDelayMs: 200 };

/** A cluster that records, at every store revision, the fewest tasks of `watched` that were up. */
function watchedCluster(): { sim: SimCluster; watch: (serviceId: string) => void; lowest: () => number } {
  let watched: string | undefined;
  let lowest = Infinity;
  const sim = new SimCluster({
    onEvents: (_e, c) => {
      if (watched) lowest = Math.min(lowest, c.tasks().filter((t) => t.serviceId === watched && isTaskUp(t)).length);
    },
  });
  return { sim, watch: (id) => void (watched = id), lowest: () => lowest };
}

const wanted = (sim: SimCluster, serviceId: string): Task[] => sim.tasks().filter((t) => t.serviceId === serviceId && t.desiredState === "running");
const perNode = (sim: SimCluster, serviceId: string): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const t of wanted(sim, serviceId)) if (t.status.state === "running") out[t.nodeId!] = (out[t.nodeId!] ?? 0) + 1;
  return out;
};

function apiOf(sim: SimCluster): Promise<FastifyInstance> {
  return testApi({ store: sim.store, clock: sim.clock });
}

async function rebalance(sim: SimCluster, name: string): Promise<RebalanceResult> {
  const app = await apiOf(sim);
  const r = await app.inject({ method: "POST", url: `/v1/services/${name}/rebalance` });
  assert.equal(r.statusCode, 200, r.body);
  await sim.quiesce();
  return r.json();
}

test("drain, start-first: the drained task stops only once its replacement runs and is ready; never fewer than N up", async () => {
  const { sim, watch, lowest } = watchedCluster();
  try {
    await sim.addNode("n1", slow);
    await sim.addNode("n2", slow);
    const svc = await sim.createService({ replicas: 2, publish: ["18080:80"] });
    await sim.converge(3000);
    assert.deepEqual(perNode(sim, svc.id), { n1: 1, n2: 1 });
    const old = wanted(sim, svc.id).find((t) => t.nodeId === "n1")!;
    watch(svc.id);

    await sim.setAvailability("n1", "drain");
    const repl = wanted(sim, svc.id).find((t) => t.moveOf?.taskId === old.id);
    assert.ok(repl, "a replacement is created beside the drained task");
    assert.deepEqual(repl.moveOf, { taskId: old.id, nodeId: "n1", reason: "drain" });
    assert.equal(repl.nodeId, "n2");
    await sim.advance(300);
    assert.equal(sim.store.view((tx) => tx.get("tasks", repl.id))!.status.state, "running");
    assert.equal(sim.store.view((tx) => tx.get("tasks", old.id))!.desiredState, "running", "running is not enough: not ready yet");
    await sim.advance(500);
    assert.equal(sim.store.view((tx) => tx.get("tasks", old.id))!.desiredState, "shutdown", "stopped once the replacement is ready");
    await sim.converge(3000);
    assert.deepEqual(perNode(sim, svc.id), { n2: 2 });
    assert.equal(lowest(), 2, "at no time fewer than 2 tasks up");
  } finally {
    sim.stop();
  }
});

test("drain, stop-first: the drained task is stopped as its replacement is created", async () => {
  const sim = new SimCluster();
  try {
    await sim.addNode("n1", slow);
    await sim.addNode("n2", slow);
    const svc = await sim.createService({ replicas: 2, publish: ["18081:80"], update: { order: "stop-first" } });
    await sim.converge(3000);
    const old = wanted(sim, svc.id).find((t) => t.nodeId === "n1")!;
    await sim.setAvailability("n1", "drain");
    assert.equal(sim.store.view((tx) => tx.get("tasks", old.id))!.desiredState, "shutdown");
    const fresh = wanted(sim, svc.id).filter((t) => t.id !== old.id && t.slot === old.slot);
    assert.equal(fresh.length, 1);
    assert.equal(fresh[0]!.moveOf, undefined, "not a move pair: the old task is already gone");
    await sim.converge(3000);
    assert.deepEqual(perNode(sim, svc.id), { n2: 2 });
  } finally {
    sim.stop();
  }
});

test("drain, start-first, nowhere to go: the drained task keeps running and the pending replacement says why", async () => {
  const sim = new SimCluster();
  try {
    await sim.addNode("n1");
    const svc = await sim.createService({ replicas: 1 });
    await sim.setAvailability("n1", "drain");
    await sim.converge(3000);
    const ts = wanted(sim, svc.id);
    assert.deepEqual(ts.map((t) => t.status.state).sort(), ["pending", "running"]);
    assert.equal(ts.find((t) => t.status.state === "pending")!.status.message, "no node satisfies: 1 node availability drain (the task it replaces keeps running meanwhile)");
    await sim.setAvailability("n1", "active");
    await sim.converge(3000);
    assert.deepEqual(wanted(sim, svc.id).map((t) => `${t.nodeId}:${t.status.state}`), ["n1:running"], "active again: the move is called off");
  } finally {
    sim.stop();
  }
});

test("drain: a global service's task on the drained node stops, and nothing replaces it elsewhere", async () => {
  const sim = new SimCluster();
  try {
    await sim.addNode("n1");
    await sim.addNode("n2");
    const svc = await sim.createService({ mode: "global" });
    await sim.setAvailability("n1", "drain");
    await sim.converge(3000);
    const ts = wanted(sim, svc.id);
    assert.deepEqual(ts.map((t) => `${t.nodeId}:${t.status.state}`), ["n2:running"]);
    assert.ok(sim.tasks().filter((t) => t.serviceId === svc.id && t.nodeId === "n1").every((t) => t.status.state === "shutdown"));
  } finally {
    sim.stop();
  }
});

test("rebalance after a node joins: 3 tasks on n1 spread to 2/1, never fewer than 3 up; again is a no-op", async () => {
  const { sim, watch, lowest } = watchedCluster();
  try {
    await sim.addNode("n1", slow);
    const svc = await sim.createService({ replicas: 3, publish: ["18082:80"] });
    await sim.converge(3000);
    await sim.addNode("n2", slow);
    assert.deepEqual(perNode(sim, svc.id), { n1: 3 }, "a joining node gets nothing by itself");
    watch(svc.id);

    const r = await rebalance(sim, svc.spec.name);
    assert.equal(r.moves.length, 1);
    assert.deepEqual([r.moves[0]!.from.hostname, r.moves[0]!.to.hostname], ["n1", "n2"]);
    assert.equal(r.message, `moving 1 task of ${svc.spec.name}: ${r.moves[0]!.task} n1 → n2`);
    const again = await rebalance(sim, svc.spec.name);
    assert.deepEqual([again.moves.length, again.moving], [0, 1], "while it moves, nothing new is planned");
    await sim.converge(3000);
    assert.deepEqual(perNode(sim, svc.id), { n1: 2, n2: 1 });
    assert.equal(lowest(), 3, "at no time fewer than 3 tasks up");

    const noop = await rebalance(sim, svc.spec.name);
    assert.deepEqual(noop.moves, []);
    assert.equal(noop.message, `${svc.spec.name} is balanced: nothing to move (n1 2, n2 1)`);
  } finally {
    sim.stop();
  }
});

test("rebalance spreads only over nodes the constraints allow", async () => {
  const sim = new SimCluster();
  try {
    await sim.addNode("n1", { labels: { tier: "a" } });
    await sim.addNode("n2", { labels: { tier: "b" } });
    const svc = await sim.createService({ replicas: 4, constraints: ["node.labels.tier==a"] });
    await sim.addNode("n3", { labels: { tier: "a" } });
    const r = await rebalance(sim, svc.spec.name);
    assert.deepEqual(r.moves.map((m) => `${m.from.hostname}→${m.to.hostname}`), ["n1→n3", "n1→n3"]);
    await sim.converge(3000);
    assert.deepEqual(perNode(sim, svc.id), { n1: 2, n3: 2 });
  } finally {
    sim.stop();
  }
});

test("node update --availability active --rebalance: every replicated service spreads onto the node again", async () => {
  const sim = new SimCluster();
  try {
    await sim.addNode("n1");
    await sim.addNode("n2");
    const a = await sim.createService({ replicas: 2 });
    const b = await sim.createService({ replicas: 4 });
    await sim.createService({ mode: "global" });
    await sim.setAvailability("n2", "drain");
    await sim.converge(3000);
    assert.deepEqual([perNode(sim, a.id), perNode(sim, b.id)], [{ n1: 2 }, { n1: 4 }]);
    const app = await apiOf(sim);
    const r = await app.inject({ method: "POST", url: "/v1/nodes/n2/update", payload: { availability: "active", rebalance: true } });
    assert.equal(r.statusCode, 200, r.body);
    const body = r.json() as { availability: string; rebalanced: RebalanceResult[] };
    assert.equal(body.availability, "active");
    assert.deepEqual(body.rebalanced.map((x) => [x.name, x.moves.length]), [[a.spec.name, 1], [b.spec.name, 2]], "global services are left out");
    await sim.converge(3000);
    assert.deepEqual([perNode(sim, a.id), perNode(sim, b.id)], [{ n1: 1, n2: 1 }, { n1: 2, n2: 2 }]);
  } finally {
    sim.stop();
  }
});

test("a manager restart in the middle of a move: no duplicate replacement, and the move completes", async () => {
  const sim = new SimCluster();
  try {
    await sim.addNode("n1");
    const svc = await sim.createService({ replicas: 2 });
    await sim.addNode("n2", { startDelayMs: 2000 });
    const r = await rebalance(sim, svc.spec.name);
    assert.equal(r.moves.length, 1);
    const moved = r.moves[0]!.taskId;
    await sim.advance(500);
    const repl = wanted(sim, svc.id).filter((t) => t.moveOf?.taskId === moved);
    assert.equal(repl.length, 1);
    assert.notEqual(repl[0]!.status.state, "running", "still starting when the manager goes");

    await sim.restartManager();
    await sim.converge(5000);
    assert.equal(sim.tasks().filter((t) => t.moveOf?.taskId === moved).length, 1, "one replacement, not two");
    assert.equal(sim.store.view((tx) => tx.get("tasks", moved))!.desiredState, "shutdown");
    assert.deepEqual(perNode(sim, svc.id), { n1: 1, n2: 1 });
    assert.equal(wanted(sim, svc.id).length, 2);
  } finally {
    sim.stop();
  }
});
