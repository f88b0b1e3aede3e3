// The routes one manager asks of the one holding a node's session (cluster/session-forward.ts):
// what they read from their sources, and that a forwarded request says so to the source.
import { test } from "node:test";
import assert from "node:assert/strict";
import { buildApp } from "./app.js";
import { createMemoryStore } from "../store/memory/memory-store.js";
import { silentLogger } from "../lib/log.js";
import { FakeClock } from "../../test/harness/fake-clock.js";
import { aNode, aService, aTask } from "../../test/harness/builders.js";
import { FORWARDED_HEADER } from "./forwarding.js";

async function setup() {
  const clock = new FakeClock();
  const store = createMemoryStore({ clock });
  const asked: { what: string; forward: boolean | undefined }[] = [];
  const app = await buildApp({
    store,
    clock,
    log: silentLogger(),
    logs: {
      open: (task, opts, onLines, _paused, forward) => {
        asked.push({ what: `logs ${task.id} tail=${opts.tail ?? "all"}`, forward });
        onLines(["one", "two"]);
        return { done: task.slot === 2 ? Promise.reject(new Error("node n1 is not connected")) : Promise.resolve(), cancel: () => undefined };
      },
    },
    stats: {
      read: async (nodeId, taskIds, forward) => {
        asked.push({ what: `stats ${nodeId} ${taskIds.join(",")}`, forward });
        return taskIds.map((taskId) => ({ taskId, cpus: 0.5, memoryBytes: 1024 }));
      },
    },
    system: { info: () => ({ version: "test" }), shutdown: async () => ({ stoppedTasks: 0 }), exit: async () => undefined },
  });
  const svc = aService({ name: "web" });
  const node = aNode({ id: "n1", hostname: "h1" });
  const placed = aTask(svc, { nodeId: "n1", slot: 1 });
  const broken = aTask(svc, { nodeId: "n1", slot: 2 });
  const unplaced = aTask(svc, { slot: 3, state: "pending" });
  await store.update((tx) => {
    tx.create("services", svc);
    tx.create("nodes", node);
    for (const t of [placed, broken, unplaced]) tx.create("tasks", t);
  });
  return { app, asked, placed, broken, unplaced };
}

test("GET /v1/tasks/{id}/logs: the task's lines as NDJSON; its source may forward unless the request was forwarded", async () => {
  const { app, asked, placed } = await setup();
  const r = await app.inject({ method: "GET", url: `/v1/tasks/${placed.id}/logs?tail=5` });
  assert.equal(r.statusCode, 200);
  const lines = r.body.trim().split("\n").map((l) => JSON.parse(l) as { taskId: string; node: string; line: string });
  assert.deepEqual(lines.map((l) => [l.taskId, l.node, l.line]), [[placed.id, "h1", "one"], [placed.id, "h1", "two"]]);
  await app.inject({ method: "GET", url: `/v1/tasks/${placed.id}/logs`, headers: { [FORWARDED_HEADER]: "1" } });
  assert.deepEqual(asked, [{ what: `logs ${placed.id} tail=5`, forward: true }, { what: `logs ${placed.id} tail=all`, forward: false }]);
});

test("GET /v1/tasks/{id}/logs: a source failure is a line with error; an unknown task a 404; a task on no node a 400", async () => {
  const { app, broken, unplaced } = await setup();
  const r = await app.inject({ method: "GET", url: `/v1/tasks/${broken.id}/logs` });
  assert.match(r.body.trim().split("\n").at(-1)!, /"error":"node n1 is not connected"/);
  assert.equal((await app.inject({ method: "GET", url: "/v1/tasks/nope/logs" })).statusCode, 404);
  const u = await app.inject({ method: "GET", url: `/v1/tasks/${unplaced.id}/logs` });
  assert.equal(u.statusCode, 400);
  assert.match(u.json().message, /not on a node yet/);
});

test("POST /v1/nodes/{id}/stats: the node's answer for those tasks; the body is checked; forwarded requests say so", async () => {
  const { app, asked, placed } = await setup();
  const r = await app.inject({ method: "POST", url: "/v1/nodes/h1/stats", payload: { taskIds: [placed.id] } });
  assert.equal(r.statusCode, 200);
  assert.deepEqual(r.json(), [{ taskId: placed.id, cpus: 0.5, memoryBytes: 1024 }]);
  await app.inject({ method: "POST", url: "/v1/nodes/n1/stats", payload: { taskIds: ["x"] }, headers: { [FORWARDED_HEADER]: "1" } });
  assert.deepEqual(asked.map((a) => a.forward), [true, false]);
  const bad = await app.inject({ method: "POST", url: "/v1/nodes/n1/stats", payload: { tasks: [] } });
  assert.equal(bad.statusCode, 400);
  assert.equal((await app.inject({ method: "POST", url: "/v1/nodes/nope/stats", payload: { taskIds: [] } })).statusCode, 404);
});
