import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { Node, Task } from "../model/objects.js";
import { Pipeline } from "./pipeline.js";
import { buildNodeViews } from "./view.js";
import { aNode, aService, aTask } from "../../test/harness/builders.js";

const GiB = 1024 ** 3;

const nodeArb = fc.record({
  zone: fc.constantFrom("a", "b", "c", undefined),
  rack: fc.constantFrom("1", "2", undefined),
  tier: fc.constantFrom("web", "db"),
  state: fc.constantFrom("ready", "ready", "ready", "down" as const),
  availability: fc.constantFrom("active", "active", "active", "pause" as const),
  cpus: fc.constantFrom(0, 0.3, 1, 2),
  memoryGiB: fc.constantFrom(0, 0.25, 1, 4),
});
const specArb = fc.record({
  spread: fc.constantFrom([], ["node.labels.zone"], ["node.labels.zone", "node.labels.rack"], ["node.labels.rack"]),
  constrained: fc.boolean(),
  // Sums of 0.1 and 0.05 are inexact in binary: scores that differ in the last bits hit the 1e-12 tie rule.
  cpus: fc.constantFrom(0, 0.05, 0.1, 0.25),
  memoryMiB: fc.constantFrom(0, 64, 300),
  maxPerNode: fc.constantFrom(0, 0, 1, 3),
  hostPort: fc.boolean(),
});
const worldArb = fc.record({
  nodes: fc.array(nodeArb, { minLength: 0, maxLength: 14 }),
  spec: specArb,
  count: fc.integer({ min: 1, max: 25 }),
  // Tasks already placed: of this service (counts for spread) or another (usage only).
  existing: fc.array(fc.record({ node: fc.nat(), own: fc.boolean(), cpus: fc.constantFrom(0, 0.1, 0.05) }), { maxLength: 20 }),
});

test("placeAlike makes exactly the placements of place() called task after task", () => {
  fc.assert(
    fc.property(worldArb, (w) => {
      const nodes: Node[] = w.nodes.map((g, i) =>
        aNode({
          id: `n${String(i).padStart(2, "0")}`,
          labels: { tier: g.tier, ...(g.zone ? { zone: g.zone } : {}), ...(g.rack ? { rack: g.rack } : {}) },
          availability: g.availability,
          status: { state: g.state, message: "", heartbeatAt: 0 },
          resources: { cpus: g.cpus, memoryBytes: Math.round(g.memoryGiB * GiB) },
        }),
      );
      const s = w.spec;
      const svc = aService({
        replicas: w.count,
        placementPrefs: s.spread.map((a) => `spread=${a}`),
        ...(s.constrained ? { constraints: ["node.labels.tier==web"] } : {}),
        ...(s.cpus ? { reserveCpus: s.cpus } : {}),
        ...(s.memoryMiB ? { reserveMemory: `${s.memoryMiB}m` } : {}),
        ...(s.maxPerNode ? { maxReplicasPerNode: s.maxPerNode } : {}),
        ...(s.hostPort ? { publish: ["published=18500,target=80,mode=host"] } : {}),
      }, { id: "svc" });
      const other = aService({ name: "other" }, { id: "other" });
      const existing: Task[] = nodes.length === 0 ? [] : w.existing.map((e, i) => {
        const owner = e.own ? svc : other;
        const t = aTask(owner, { id: `old${i}`, slot: 100 + i, nodeId: nodes[e.node % nodes.length]!.id, state: "running" });
        return { ...t, spec: { ...t.spec, hostPorts: [], reservations: { cpus: e.cpus } } };
      });
      const task = aTask(svc, { state: "pending" });
      const sorted = (m: ReturnType<typeof buildNodeViews>) => [...m.values()].sort((a, b) => (a.node.id < b.node.id ? -1 : 1));
      const one = sorted(buildNodeViews(nodes, existing));
      const alike = sorted(buildNodeViews(nodes, existing));
      const pipeline = new Pipeline();

      const expected = Array.from({ length: w.count }, () => pipeline.place(task, one));
      const actual = pipeline.placeAlike(task, w.count, alike);

      assert.deepEqual(actual, expected);
      assert.deepEqual(alike, one, "the views end up booked alike");
    }),
    { numRuns: 1500 },
  );
});

test("placeAlike on no nodes gives every task the reason", () => {
  const svc = aService();
  const ps = new Pipeline().placeAlike(aTask(svc, { state: "new" }), 3, []);
  assert.deepEqual(ps, Array(3).fill({ reason: "no node satisfies: no nodes in the cluster" }));
});
