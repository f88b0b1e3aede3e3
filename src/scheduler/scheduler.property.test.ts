import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { Node, NodeAvailability, NodeState, Task } from "../model/objects.js";
import type { DesiredState, TaskState } from "../model/task-state.js";
import { failedConstraint } from "../model/eligibility.js";
import { planPlacements } from "./scheduler.js";
import { Pipeline } from "./pipeline.js";
import { aNode, aService, aTask } from "../../test/harness/builders.js";

const GiB = 1024 ** 3;

interface NodeGen {
  state: NodeState;
  availability: NodeAvailability;
  hasDriver: boolean;
  tier: "a" | "b";
  cpus: number;
  memoryGiB: number;
}
interface ServiceGen {
  global: boolean;
  tasks: number;
  cpus: number;
  memoryMiB: number;
  constrained: boolean;
}
interface ExistingGen {
  service: number;
  node: number;
  state: TaskState;
}

const nodeArb: fc.Arbitrary<NodeGen> = fc.record({
  state: fc.constantFrom<NodeState>("ready", "ready", "ready", "down", "unknown"),
  availability: fc.constantFrom<NodeAvailability>("active", "active", "active", "pause", "drain"),
  hasDriver: fc.constantFrom(true, true, true, true, false),
  tier: fc.constantFrom("a" as const, "b" as const),
  cpus: fc.constantFrom(0, 0.5, 1, 2, 4),
  memoryGiB: fc.constantFrom(0, 0.5, 1, 4),
});
const serviceArb: fc.Arbitrary<ServiceGen> = fc.record({
  global: fc.boolean(),
  tasks: fc.integer({ min: 0, max: 10 }),
  cpus: fc.constantFrom(0, 0.1, 0.25, 0.5, 1, 1.5, 3),
  memoryMiB: fc.constantFrom(0, 64, 256, 512, 1024, 3000),
  constrained: fc.boolean(),
});
// Tasks already on nodes: held (assigned…running, wanted running) or not (ended).
const existingArb: fc.Arbitrary<ExistingGen> = fc.record({
  service: fc.nat(),
  node: fc.nat(),
  state: fc.constantFrom<TaskState>("assigned", "accepted", "starting", "running", "running", "failed", "shutdown", "orphaned"),
});

const worldArb = fc.record({
  nodes: fc.array(nodeArb, { minLength: 0, maxLength: 6 }),
  services: fc.array(serviceArb, { minLength: 1, maxLength: 4 }),
  existing: fc.array(existingArb, { maxLength: 12 }),
});

const sumRes = (ts: Task[]): { cpus: number; mem: number } => ({
  cpus: ts.reduce((s, t) => s + (t.spec.reservations.cpus ?? 0), 0),
  mem: ts.reduce((s, t) => s + (t.spec.reservations.memoryBytes ?? 0), 0),
});

/** The scheduler's own accounting (view.ts): placed, not ended, wanted running. */
const holds = (t: Task): boolean =>
  t.nodeId !== undefined && t.desiredState === "running" && !["new", "pending", "complete", "failed", "shutdown", "rejected", "orphaned"].includes(t.status.state);

test("planPlacements never over-commits a node, places only where every filter passes, and explains every unplaced task", () => {
  fc.assert(
    fc.property(worldArb, (w) => {
      const nodes: Node[] = w.nodes.map((g, i) =>
        aNode({
          id: `n${i}`,
          hostname: `n${i}`,
          availability: g.availability,
          labels: { tier: g.tier },
          status: { state: g.state, message: "", heartbeatAt: 0 },
          resources: { cpus: g.cpus, memoryBytes: Math.round(g.memoryGiB * GiB) },
          drivers: g.hasDriver ? ["process"] : [],
        }),
      );
      const services = w.services.map((g, i) =>
        aService({
          name: `s${i}`,
          ...(g.global ? { mode: "global" as const } : { replicas: g.tasks }),
          ...(g.cpus ? { reserveCpus: g.cpus } : {}),
          ...(g.memoryMiB ? { reserveMemory: `${g.memoryMiB}m` } : {}),
          ...(g.constrained ? { constraints: ["node.labels.tier==a"] } : {}),
        }, { id: `svc${i}` }),
      );
      const existing: Task[] =
        nodes.length === 0
          ? []
          : w.existing.map((e, i) => {
              const svc = services[e.service % services.length]!;
              return aTask(svc, { id: `old${i}`, slot: svc.spec.mode.kind === "global" ? 0 : 100 + i, nodeId: nodes[e.node % nodes.length]!.id, state: e.state, desiredState: "running" as DesiredState });
            });
      const todo: Task[] = services.flatMap((svc, si) => {
        const g = w.services[si]!;
        if (!g.global) return Array.from({ length: g.tasks }, (_, k) => aTask(svc, { id: `new-s${si}-${k + 1}`, slot: k + 1, state: k % 2 ? "pending" : "new" }));
        return nodes.map((n) => aTask(svc, { id: `new-s${si}-${n.id}`, slot: 0, nodeId: n.id, state: "new" }));
      });

      const decisions = planPlacements(todo, nodes, [...existing, ...todo], new Pipeline());

      assert.deepEqual(decisions.map((d) => d.taskId).sort(), todo.map((t) => t.id).sort(), "one decision per task");
      const byId = new Map(todo.map((t) => [t.id, t]));
      const placedOn = new Map<string, Task[]>(nodes.map((n) => [n.id, existing.filter((t) => t.nodeId === n.id && holds(t))]));
      for (const d of decisions) {
        const t = byId.get(d.taskId)!;
        if (!d.nodeId) {
          assert.ok(d.reason?.startsWith("no node satisfies: "), `task ${t.id} unplaced without a reason: ${String(d.reason)}`);
          continue;
        }
        const n = nodes.find((x) => x.id === d.nodeId)!;
        assert.ok(n, `placed on an unknown node ${d.nodeId}`);
        if (t.nodeId) assert.equal(d.nodeId, t.nodeId, "a global task goes to its own node only");
        assert.equal(n.status.state, "ready", `${t.id} placed on a ${n.status.state} node`);
        assert.equal(n.availability, "active", `${t.id} placed on a ${n.availability} node`);
        assert.ok(n.drivers.includes("process"), `${t.id} placed on a node without its driver`);
        assert.equal(failedConstraint(n, t.spec), undefined, `${t.id} placed against its constraint`);
        // Replayed in decision order: each placement that reserves something must fit with
        // everything held or placed before it (a zero reservation asks nothing of the node).
        const on = [...placedOn.get(n.id)!, t];
        placedOn.set(n.id, on);
        const used = sumRes(on);
        if ((t.spec.reservations.cpus ?? 0) > 0) assert.ok(used.cpus <= n.resources.cpus + 1e-9, `${n.id} over-committed: cpus ${used.cpus} > ${n.resources.cpus}`);
        if ((t.spec.reservations.memoryBytes ?? 0) > 0) assert.ok(used.mem <= n.resources.memoryBytes, `${n.id} over-committed: memory ${used.mem} > ${n.resources.memoryBytes}`);
      }
      // Whatever was held before fitted; then nothing placed may push a node over.
      for (const n of nodes) {
        const before = sumRes(existing.filter((t) => t.nodeId === n.id && holds(t)));
        const after = sumRes(placedOn.get(n.id)!);
        if (before.cpus <= n.resources.cpus + 1e-9 && before.mem <= n.resources.memoryBytes) {
          assert.ok(after.cpus <= n.resources.cpus + 1e-9 && after.mem <= n.resources.memoryBytes, `${n.id}: ${JSON.stringify(after)} > ${JSON.stringify(n.resources)}`);
        }
      }
    }),
    { numRuns: 500 },
  );
});

test("an unplaced task is unplaceable: every candidate node fails some filter", () => {
  fc.assert(
    fc.property(fc.array(nodeArb, { maxLength: 5 }), serviceArb, (ng, sg) => {
      const nodes = ng.map((g, i) =>
        aNode({ id: `n${i}`, availability: g.availability, labels: { tier: g.tier }, status: { state: g.state, message: "", heartbeatAt: 0 }, resources: { cpus: g.cpus, memoryBytes: Math.round(g.memoryGiB * GiB) }, drivers: g.hasDriver ? ["process"] : [] }),
      );
      const svc = aService({ replicas: 1, ...(sg.cpus ? { reserveCpus: sg.cpus } : {}), ...(sg.memoryMiB ? { reserveMemory: `${sg.memoryMiB}m` } : {}), ...(sg.constrained ? { constraints: ["node.labels.tier==a"] } : {}) });
      const t = aTask(svc, { state: "new" });
      const [d] = planPlacements([t], nodes, [t], new Pipeline());
      const fits = (n: Node): boolean =>
        n.status.state === "ready" && n.availability === "active" && n.drivers.includes("process") && !failedConstraint(n, t.spec) &&
        (t.spec.reservations.cpus ?? 0) <= n.resources.cpus + 1e-9 && (t.spec.reservations.memoryBytes ?? 0) <= n.resources.memoryBytes;
      assert.equal(d!.nodeId !== undefined, nodes.some(fits), d!.reason ?? `placed on ${d!.nodeId}`);
    }),
    { numRuns: 300 },
  );
});

// issue: found by src/manager/invariants.property.test.ts. A task told to stop still runs, and
// holds its reservation, until its agent reports it ended (stop grace period up to 10 s).
test(
  "a task being stopped still holds its reservation on its node",
  () => {
    const old = aService({ name: "old", reserveCpus: 1 });
    const svc = aService({ name: "new", reserveCpus: 1 });
    const node = aNode({ id: "n1", resources: { cpus: 1, memoryBytes: GiB } });
    const stopping = aTask(old, { nodeId: "n1", state: "running", desiredState: "shutdown" });
    const t = aTask(svc, { state: "new" });
    const [d] = planPlacements([t], [node], [stopping, t], new Pipeline());
    assert.equal(d!.reason, "no node satisfies: 1 node insufficient cpu (needs 1)");
  },
);
