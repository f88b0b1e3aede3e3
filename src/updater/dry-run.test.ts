import { test } from "node:test";
import assert from "node:assert/strict";
import { previewUpdate } from "./dry-run.js";
import { aService, aTask } from "../../test/harness/builders.js";
import { resolveServiceSpec } from "../input/resolve.js";

test("dry run: the field diff, the new version, batches in slot order, and the slots kept as they are", () => {
  const svc = aService({ name: "web", replicas: 4, env: ["V=1"], update: { parallelism: 2 } });
  const next = resolveServiceSpec({ name: "web", command: ["node", "server.js"], replicas: 5, env: ["V=2"], update: { parallelism: 2 } });
  const tasks = [1, 2, 3, 4].map((slot) => aTask(svc, { slot }));
  const p = previewUpdate(svc, next, tasks, 0);
  assert.deepEqual(p.specVersion, { from: 1, to: 2 });
  assert.deepEqual(p.changes, [
    { path: "mode.replicas", from: 4, to: 5 },
    { path: "task.env.V", from: "1", to: "2" },
  ]);
  assert.deepEqual(p.replicas, { from: 4, to: 5 });
  assert.deepEqual(p.rollout!.batches, [["1", "2"], ["3", "4"], ["5"]]);
  assert.deepEqual(p.rollout!.kept, []);
  const scaleOnly = previewUpdate(svc, { ...svc.spec, mode: { kind: "replicated", replicas: 6 } }, tasks, 0);
  assert.deepEqual(scaleOnly.specVersion, { from: 1, to: 1 });
  assert.equal(scaleOnly.rollout, undefined, "a scale replaces nothing");
});
