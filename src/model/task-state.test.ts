import { test } from "node:test";
import assert from "node:assert/strict";
import { canTransition, isTerminal, taskStates } from "./task-state.js";

test("states only move forward", () => {
  assert.ok(canTransition("new", "pending"));
  assert.ok(canTransition("assigned", "running"));
  assert.ok(!canTransition("running", "starting"));
  assert.ok(!canTransition("running", "running"));
});

test("terminal states are final", () => {
  for (const s of taskStates.filter(isTerminal)) for (const to of taskStates) assert.ok(!canTransition(s, to), `${s} -> ${to}`);
  assert.deepEqual(taskStates.filter(isTerminal), ["complete", "failed", "shutdown", "rejected", "orphaned"]);
});
