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
