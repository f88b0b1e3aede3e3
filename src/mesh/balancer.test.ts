import { test } from "node:test";
import assert from "node:assert/strict";
import { pickBackend, type Candidate } from "./balancer.js";

const aBackend = (name: string, over: Partial<Candidate> = {}): Candidate & { name: string } => ({ name, weight: 1, active: 0, currentWeight: 0, ejectedUntil: 0, ...over });

function countPicks(list: (Candidate & { name: string })[], n: number, mode: "round-robin" | "least-connections" = "round-robin"): Record<string, number> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const b = pickBackend(mode, list, 0)!;
    counts[b.name] = (counts[b.name] ?? 0) + 1;
  }
  return counts;
}

test("round robin with equal weights visits every backend in turn", () => {
  const list = ["a", "b", "c", "d"].map((n) => aBackend(n));
  const order = Array.from({ length: 8 }, () => (pickBackend("round-robin", list, 0) as { name: string }).name);
  assert.deepEqual(order, ["a", "b", "c", "d", "a", "b", "c", "d"]);
  assert.deepEqual(countPicks(list, 1000), { a: 250, b: 250, c: 250, d: 250 });
});

test("smooth weighted round robin gives weight 9 vs 1 a 90/10 share within 2 points over 1000 picks", () => {
  const counts = countPicks([aBackend("stable", { weight: 9 }), aBackend("canary", { weight: 1 })], 1000);
  assert.ok(Math.abs(counts.stable! / 1000 - 0.9) <= 0.02, `stable got ${counts.stable}`);
  assert.ok(Math.abs(counts.canary! / 1000 - 0.1) <= 0.02, `canary got ${counts.canary}`);
});

test("smooth weighted round robin interleaves instead of bursting (nginx's 5,1,1 example)", () => {
  const list = [aBackend("a", { weight: 5 }), aBackend("b"), aBackend("c")];
  const order = Array.from({ length: 7 }, () => (pickBackend("round-robin", list, 0) as { name: string }).name).join(" ");
  assert.equal(order, "a a b a c a a");
});

test("weight 0 receives no new traffic", () => {
  assert.deepEqual(countPicks([aBackend("a", { weight: 0 }), aBackend("b")], 10), { b: 10 });
});

test("least connections picks the backend with the fewest active, relative to weight", () => {
  const list = [aBackend("a", { active: 3 }), aBackend("b", { active: 1 }), aBackend("c", { active: 2 })];
  assert.equal((pickBackend("least-connections", list, 0) as { name: string }).name, "b");
  const weighted = [aBackend("a", { active: 4, weight: 4 }), aBackend("b", { active: 2 })];
  assert.equal((pickBackend("least-connections", weighted, 0) as { name: string }).name, "a");
});

test("least connections spreads ties in turn", () => {
  const list = ["a", "b", "c"].map((n) => aBackend(n));
  assert.deepEqual(countPicks(list, 9, "least-connections"), { a: 3, b: 3, c: 3 });
});

test("an ejected or already tried backend is skipped; ejected ones are still used when nothing else is left", () => {
  const a = aBackend("a", { ejectedUntil: 100 });
  const b = aBackend("b");
  assert.equal(pickBackend("round-robin", [a, b], 50), b);
  assert.equal(pickBackend("round-robin", [a, b], 50, new Set([b])), a);
  assert.equal(pickBackend("round-robin", [a, b], 50, new Set([a, b])), undefined);
  a.ejectedUntil = 0;
  assert.equal(countPicks([a, b], 4).a, 2, "after the ejection both are used again");
});
