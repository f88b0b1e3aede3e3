import { test } from "node:test";
import assert from "node:assert/strict";
import { systemClock } from "../lib/clock.js";
import { silentLogger } from "../lib/log.js";
import { createMemoryStore } from "../store/memory/memory-store.js";
import { Scheduler } from "./scheduler.js";
import { aNode, aService, aTask } from "../../test/harness/builders.js";

test("a pass commits its decisions in transactions of at most maxOpsPerCommit tasks", async () => {
  const store = createMemoryStore();
  const svc = aService({ replicas: 5 });
  await store.update((tx) => {
    tx.create("nodes", aNode());
    tx.create("services", svc);
    for (let slot = 1; slot <= 5; slot++) tx.create("tasks", aTask(svc, { slot, state: "pending" }));
  });
  const before = store.revision();
  const perRevision = new Map<number, number>();
  store.watch(before, (evs) => { for (const e of evs) perRevision.set(e.revision, (perRevision.get(e.revision) ?? 0) + 1); });
  const scheduler = new Scheduler({ store, clock: systemClock, log: silentLogger(), maxOpsPerCommit: 2 });
  scheduler.start();
  await scheduler.idle();
  scheduler.stop();
  assert.ok(store.view((tx) => tx.list("tasks")).every((t) => t.status.state === "assigned"));
  assert.deepEqual([...perRevision.values()], [2, 2, 1]);
  assert.equal(store.revision(), before + 3);
});
