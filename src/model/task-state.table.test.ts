import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { canTransition, isAgentState, isTerminal, taskStates, type TaskState } from "./task-state.js";

// The table from docs/task-states.md, written out rather than derived from the code's ranks:
// the lifecycle in order, and the ended states, any of which ends any lifecycle state.
const lifecycle: TaskState[] = ["new", "pending", "assigned", "accepted", "preparing", "starting", "running"];
const ended: TaskState[] = ["complete", "failed", "shutdown", "rejected", "orphaned"];

function expected(from: TaskState, to: TaskState): boolean {
  if (ended.includes(from)) return false;
  if (ended.includes(to)) return true;
  return lifecycle.indexOf(to) > lifecycle.indexOf(from);
}

test("every state is either in the lifecycle or ended", () => {
  assert.deepEqual([...taskStates].sort(), [...lifecycle, ...ended].sort());
  for (const s of taskStates) assert.equal(isTerminal(s), ended.includes(s), s);
});

test("the transition table matches docs/task-states.md, cell by cell", () => {
  const wrong: string[] = [];
  for (const from of taskStates) for (const to of taskStates) if (canTransition(from, to) !== expected(from, to)) wrong.push(`${from} → ${to}: ${canTransition(from, to)}`);
  assert.deepEqual(wrong, []);
});

test("any lifecycle state can end every way (a task can be shut down, orphaned or fail from anywhere)", () => {
  for (const from of lifecycle) for (const to of ended) assert.ok(canTransition(from, to), `${from} → ${to}`);
});

test("the agent owns the states from accepted on", () => {
  assert.deepEqual(
    taskStates.filter(isAgentState),
    taskStates.filter((s) => s !== "new" && s !== "pending" && s !== "assigned"),
  );
});

test("the relation is a strict order: irreflexive, antisymmetric, transitive", () => {
  for (const a of taskStates) {
    assert.ok(!canTransition(a, a), `${a} → ${a}`);
    for (const b of taskStates) {
      if (canTransition(a, b)) assert.ok(!canTransition(b, a), `${a} ⇄ ${b}`);
      for (const c of taskStates) if (canTransition(a, b) && canTransition(b, c)) assert.ok(canTransition(a, c), `${a} → ${b} → ${c} but not ${a} → ${c}`);
    }
  }
});

test("reports applied in any order only move forward, and the first ended state is final", () => {
  const stateArb = fc.constantFrom(...taskStates);
  fc.assert(
    fc.property(fc.array(stateArb, { maxLength: 30 }), (reports) => {
      // What the dispatcher does with a stream of reports: apply those canTransition allows.
      let cur: TaskState = "new";
      const seen: TaskState[] = [cur];
      for (const r of reports) {
        if (canTransition(cur, r)) seen.push((cur = r));
      }
      for (let i = 1; i < seen.length; i++) {
        assert.ok(taskStates.indexOf(seen[i]!) > taskStates.indexOf(seen[i - 1]!), `went back: ${seen.join(" → ")}`);
      }
      assert.ok(seen.filter(isTerminal).length <= 1, `more than one ended state: ${seen.join(" → ")}`);
      const firstEnd = reports.find(isTerminal);
      if (firstEnd) assert.equal(cur, firstEnd, "the first ended report wins");
    }),
    { numRuns: 500 },
  );
});
