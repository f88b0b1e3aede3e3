import { test } from "node:test";
import assert from "node:assert/strict";
import { planRebalance } from "./rebalance.js";
import { planPlacements } from "./scheduler.js";
import { Pipeline } from "./pipeline.js";
import { aNode, aService, aTask } from "../../test/harness/builders.js";
import type { Node, Service, Task } from "../model/objects.js";

const on = (svc: Service, node: Node, n: number, firstSlot = 1): Task[] =>
  Array.from({ length: n }, (_, i) => aTask(svc, { slot: firstSlot + i, nodeId: node.id }));
const moves = (svc: Service, tasks: Task[], nodes: Node[]): string[] => {
  const p = planRebalance(svc, tasks, nodes);
  const name = (id: string): string => nodes.find((n) => n.id === id)!.hostname;
  return p.kind === "moves" ? p.moves.map((m) => `${m.slot}:${name(m.fromNodeId)}→${name(m.toNodeId)}`) : [p.kind];
};

test("rebalance: 3 tasks on a, b empty → one move (2/1); a second would be no better", () => {
  const svc = aService({ replicas: 3 });
  const a = aNode({ id: "a", hostname: "a" });
  const b = aNode({ id: "b", hostname: "b" });
  assert.deepEqual(moves(svc, on(svc, a, 3), [a, b]), ["3:a→b"]);
});

test("rebalance: 6 tasks over a (4), b (2), c (0) → two moves, both off a, onto c", () => {
  const svc = aService({ replicas: 6 });
  const [a, b, c] = ["a", "b", "c"].map((h) => aNode({ id: h, hostname: h }));
  assert.deepEqual(moves(svc, [...on(svc, a!, 4), ...on(svc, b!, 2, 5)], [a!, b!, c!]), ["4:a→c", "3:a→c"]);
});

test("rebalance: a balanced service has nothing to move, and says how it is spread", () => {
  const svc = aService({ replicas: 3 });
  const a = aNode({ id: "a", hostname: "a" });
  const b = aNode({ id: "b", hostname: "b" });
  assert.deepEqual(planRebalance(svc, [...on(svc, a, 2), ...on(svc, b, 1, 3)], [a, b]), { kind: "balanced", perNode: { a: 2, b: 1 } });
});

test("rebalance: only nodes that may take the task count — constraints, availability, max per node", () => {
  const svc = aService({ replicas: 4, constraints: ["node.labels.tier==a"], maxReplicasPerNode: 3 });
  const a = aNode({ id: "a", hostname: "a", labels: { tier: "a" } });
  const b = aNode({ id: "b", hostname: "b", labels: { tier: "b" } });
  const p = aNode({ id: "p", hostname: "p", labels: { tier: "a" }, availability: "pause" });
  const c = aNode({ id: "c", hostname: "c", labels: { tier: "a" } });
  assert.deepEqual(moves(svc, [...on(svc, a, 3), ...on(svc, c, 1, 4)], [a, b, p, c]), ["3:a→c"]);
  assert.deepEqual(moves(svc, on(svc, a, 3), [a, b, p]), ["balanced"], "no other node may take one");
});

test("rebalance: while moves are under way nothing new is planned; a finished move's replacement does not count", () => {
  const svc = aService({ replicas: 3 });
  const a = aNode({ id: "a", hostname: "a" });
  const b = aNode({ id: "b", hostname: "b" });
  const tasks = on(svc, a, 3);
  const marked = [{ ...tasks[2]!, moveRequest: { reason: "rebalance" as const, requestedAt: 0 } }, ...tasks.slice(0, 2)];
  assert.deepEqual(planRebalance(svc, marked, [a, b]), { kind: "in-flight", moving: 1 });
  const done = [...tasks.slice(0, 2), aTask(svc, { slot: 3, nodeId: b.id, moveOf: { taskId: "gone", nodeId: a.id, reason: "rebalance" } })];
  assert.equal(planRebalance(svc, done, [a, b]).kind, "balanced");
});

test("a move's replacement is never placed on the node it leaves; pending says why and that nothing is lost", () => {
  const svc = aService({ replicas: 1 });
  const a = aNode({ id: "a", hostname: "a" });
  const b = aNode({ id: "b", hostname: "b", availability: "pause" });
  const repl = aTask(svc, { state: "pending", moveOf: { taskId: "old", nodeId: a.id, reason: "rebalance" } });
  const [d] = planPlacements([repl], [a, b], [repl], new Pipeline());
  assert.equal(d!.reason, "no node satisfies: 1 node availability pause; 1 node being moved off (the task it replaces keeps running meanwhile)");
});
