// A node down with more tasks than one store transaction holds (etcd's --max-txn-ops, emulated
// by the memory store): marked down first, tasks orphaned in chunks, and a failure midway
// finished by the next liveness check.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Dispatcher } from "./dispatcher.js";
import { createMemoryStore } from "../store/memory/memory-store.js";
import { silentLogger } from "../lib/log.js";
import { BatonError } from "../lib/errors.js";
import type { Store } from "../store/store.js";
import { FakeClock } from "../../test/harness/fake-clock.js";
import { aService, aTask } from "../../test/harness/builders.js";

test("a silent node with 25 tasks on a 10-operation limit: down, every task orphaned; a failed chunk is finished by the next check", async () => {
  const clock = new FakeClock();
  const store = createMemoryStore({ clock, maxTxnOps: 10 });
  // The leader's decisions: the second transaction fails once, as an etcd hiccup would.
  let writes = 0;
  const decisions: Store = {
    maxOpsPerTxn: store.maxOpsPerTxn!,
    revision: () => store.revision(),
    view: (fn) => store.view(fn),
    watch: (from, fn) => store.watch(from, fn),
    update: (fn, opts) => (++writes === 2 ? Promise.reject(new BatonError("UNAVAILABLE", "etcd did not answer", [], { retryable: true })) : store.update(fn, opts)),
    close: () => undefined,
  };
  const d = new Dispatcher({ store, decisions, clock, log: silentLogger(), heartbeatPeriodMs: 500, heartbeatGraceMs: 1500 });
  d.start();
  await d.localSession().register({ nodeId: "n1", hostname: "n1", role: "worker", resources: { cpus: 1, memoryBytes: 1 }, drivers: ["process"], platform: { os: "linux", arch: "x64" }, agentVersion: "t" });
  const svc = aService();
  const tasks = Array.from({ length: 25 }, (_, i) => aTask(svc, { nodeId: "n1", slot: i + 1, state: "running" }));
  for (let i = 0; i < tasks.length; i += 5) await store.update((tx) => tasks.slice(i, i + 5).forEach((t) => tx.create("tasks", t)));
  const orphaned = (): number => store.view((tx) => tx.tasksOfNode("n1").filter((t) => t.status.state === "orphaned").length);

  d.startLiveness();
  clock.jump(2000);
  await assert.rejects(d.checkLiveness(), /etcd did not answer/);
  // The first transaction went through: the node is down (nothing more is placed there) with 8 tasks.
  assert.equal(store.view((tx) => tx.get("nodes", "n1"))!.status.state, "down");
  assert.equal(orphaned(), 8);
  await d.checkLiveness();
  assert.equal(orphaned(), 25, "the next check finished the job");
  d.stop();
});
