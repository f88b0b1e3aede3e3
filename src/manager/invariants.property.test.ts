import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { NodeAvailability, RestartCondition, Service, Task } from "../model/objects.js";
import { isTerminal } from "../model/task-state.js";
import { wantsGlobalTask } from "../model/eligibility.js";
import { SimCluster, type AgentBehaviour } from "../../test/harness/sim-cluster.js";
import { EventRecorder, whyNotPlaceable, type Accounting, type TaskLife } from "../../test/harness/invariants.js";

// Commands are plain data so fast-check can shrink them; indices pick among whatever exists
// when the command runs (modulo), so a shrunk sequence still means something.
type Command =
  | {
      kind: "create";
      mode: "replicated" | "global";
      replicas: number;
      condition: RestartCondition;
      maxAttempts: number;
      cpus: number;
      memoryMiB: number;
      constrained: boolean;
    }
  | { kind: "scale"; service: number; replicas: number }
  | { kind: "remove"; service: number }
  | { kind: "exit"; task: number; exitCode: 0 | 1 }
  | { kind: "lose"; node: number }
  | { kind: "return"; node: number }
  | { kind: "availability"; node: number; availability: NodeAvailability }
  | { kind: "advance"; ms: number };

interface NodeSetup extends AgentBehaviour {
  tier: "a" | "b";
}

interface Scenario {
  nodes: NodeSetup[];
  commands: Command[];
}

const nodeArb: fc.Arbitrary<NodeSetup> = fc.record({
  tier: fc.constantFrom("a" as const, "b" as const),
  startDelayMs: fc.constantFrom(0, 0, 300),
  stopDelayMs: fc.constantFrom(0, 0, 500, 3000),
  resources: fc.record({ cpus: fc.constantFrom(1, 2, 4), memoryBytes: fc.constantFrom(1, 2, 4).map((g) => g * 1024 ** 3) }),
});

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("create" as const),
      mode: fc.constantFrom("replicated" as const, "replicated" as const, "global" as const),
      replicas: fc.integer({ min: 0, max: 8 }),
      condition: fc.constantFrom<RestartCondition>("none", "on-failure", "any"),
      maxAttempts: fc.integer({ min: 0, max: 3 }),
      cpus: fc.constantFrom(0, 0, 0.25, 0.5, 1, 1.5),
      memoryMiB: fc.constantFrom(0, 0, 128, 512, 1024),
      constrained: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("scale" as const), service: fc.nat(7), replicas: fc.integer({ min: 0, max: 8 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("remove" as const), service: fc.nat(7) }) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant("exit" as const), task: fc.nat(40), exitCode: fc.constantFrom(0 as const, 1 as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("lose" as const), node: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("return" as const), node: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("availability" as const), node: fc.nat(3), availability: fc.constantFrom<NodeAvailability>("active", "pause", "drain") }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("advance" as const), ms: fc.constantFrom(0, 100, 250, 1000, 5000, 12_000) }) },
);

const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  nodes: fc.array(nodeArb, { minLength: 1, maxLength: 4, size: "max" }),
  // size "max": fast-check's default bias keeps arrays short; a cluster needs some history.
  commands: fc.array(commandArb, { minLength: 3, maxLength: 30, size: "max" }),
});

const nodeIdOf = (i: number): string => `n${i + 1}`;

/** Runs a scenario against a fresh cluster; returns the cluster (converged) and the recorder. */
async function runScenario(s: Scenario, accounting: Accounting): Promise<{ sim: SimCluster; rec: EventRecorder }> {
  const rec = new EventRecorder(accounting);
  const sim = new SimCluster({ onEvents: (events, c) => rec.onEvents(events, { nodes: c.nodes(), tasks: c.tasks() }) });
  for (const [i, n] of s.nodes.entries()) await sim.addNode(nodeIdOf(i), { ...n, labels: { tier: n.tier } });
  const created: string[] = [];
  const nodeIds = s.nodes.map((_, i) => nodeIdOf(i));

  for (const c of s.commands) {
    switch (c.kind) {
      case "create": {
        const svc = await sim.createService({
          ...(c.mode === "global" ? { mode: "global" } : { replicas: c.replicas }),
          restartPolicy: { condition: c.condition, maxAttempts: c.maxAttempts },
          ...(c.cpus > 0 ? { reserveCpus: c.cpus } : {}),
          ...(c.memoryMiB > 0 ? { reserveMemory: `${c.memoryMiB}m` } : {}),
          ...(c.constrained ? { constraints: ["node.labels.tier==a"] } : {}),
        });
        created.push(svc.id);
        break;
      }
      case "scale": {
        const id = created[c.service % Math.max(created.length, 1)];
        if (!id) break;
        for (let slot = c.replicas + 1; slot <= 8; slot++) rec.bumpEpoch(`${id}/${slot}`);
        await sim.scale(id, c.replicas);
        break;
      }
      case "remove": {
        const id = created[c.service % Math.max(created.length, 1)];
        if (id) await sim.removeService(id);
        break;
      }
      case "exit": {
        const running = sim.runningTasks();
        const t = running[c.task % Math.max(running.length, 1)];
        if (t) await sim.exitTask(t.id, c.exitCode);
        break;
      }
      case "lose": {
        const id = nodeIds[c.node % nodeIds.length]!;
        rec.bumpEpoch(`node:${id}`);
        await sim.loseNode(id);
        break;
      }
      case "return": {
        const id = nodeIds[c.node % nodeIds.length]!;
        rec.bumpEpoch(`node:${id}`);
        await sim.returnNode(id);
        break;
      }
      case "availability": {
        const id = nodeIds[c.node % nodeIds.length]!;
        rec.bumpEpoch(`node:${id}`);
        await sim.setAvailability(id, c.availability);
        break;
      }
      case "advance":
        await sim.advance(c.ms);
        break;
    }
  }
  // Long enough for the longest restart backoff (10 s) and stop delay, several times over.
  await sim.converge(30_000);
  return { sim, rec };
}

const describeTask = (t: Task): string => `${t.serviceName}.${t.slot || t.nodeId} ${t.status.state}/${t.desiredState} v${t.specVersion}${t.restartBlocked ? ` blocked(${t.restartBlocked})` : ""} on ${t.nodeId ?? "-"} "${t.status.message}"`;

/** Invariant 1: every wanted slot has its one task running, unless it cannot be placed or was given up on. */
function checkConverged(sim: SimCluster): string[] {
  const problems: string[] = [];
  const nodes = sim.nodes();
  const tasks = sim.tasks();
  const services = new Map(sim.services().map((s) => [s.id, s]));
  const pendingIsJustified = (t: Task): boolean => {
    const pool = t.slot > 0 ? nodes : nodes.filter((n) => n.id === t.nodeId);
    return pool.every((n) => whyNotPlaceable(t, n, tasks) !== undefined);
  };
  const checkHead = (svc: Service, where: string, wanted: Task[]): void => {
    // A start-first move whose replacement cannot be placed: the old task keeps running on its
    // (drained) node beside the pending replacement, so the slot stays served.
    const replacement = wanted.length === 2 ? wanted.find((t) => t.moveOf && wanted.some((o) => o.id === t.moveOf!.taskId)) : undefined;
    if (replacement) {
      if (replacement.status.state !== "pending" || !pendingIsJustified(replacement)) problems.push(`${svc.spec.name} ${where}: a move not done although its replacement could run: ${wanted.map(describeTask).join("; ")}`);
      checkHead(svc, where, wanted.filter((t) => t !== replacement));
      return;
    }
    if (wanted.length !== 1) {
      problems.push(`${svc.spec.name} ${where}: ${wanted.length} tasks wanted running: ${wanted.map(describeTask).join("; ")}`);
      return;
    }
    const h = wanted[0]!;
    if (h.restartBlocked) {
      if (!isTerminal(h.status.state)) problems.push(`${svc.spec.name} ${where}: restart blocked on a task that has not ended: ${describeTask(h)}`);
      return;
    }
    if (h.status.state === "pending") {
      if (!pendingIsJustified(h)) problems.push(`${svc.spec.name} ${where}: pending although a node could take it: ${describeTask(h)}`);
      return;
    }
    if (h.status.state !== "running" || h.specVersion !== svc.specVersion) problems.push(`${svc.spec.name} ${where}: not running the current spec: ${describeTask(h)}`);
  };

  for (const svc of services.values()) {
    const own = tasks.filter((t) => t.serviceId === svc.id);
    const wanted = own.filter((t) => t.desiredState === "running");
    if (svc.spec.mode.kind === "replicated") {
      const n = svc.spec.mode.replicas;
      for (let slot = 1; slot <= n; slot++) checkHead(svc, `slot ${slot}`, wanted.filter((t) => t.slot === slot));
      for (const t of wanted.filter((t) => t.slot > n)) problems.push(`${svc.spec.name}: slot above replicas (${n}) still wanted: ${describeTask(t)}`);
    } else {
      for (const node of nodes) {
        const here = wanted.filter((t) => t.nodeId === node.id);
        // The one eligibility rule (model/eligibility.ts): a paused node keeps a running task only.
        if (wantsGlobalTask(node, svc.spec.task, own.filter((t) => t.nodeId === node.id))) checkHead(svc, `on ${node.id}`, here);
        else for (const t of here) problems.push(`${svc.spec.name}: task wanted on a node that is ${node.status.state}/${node.availability}: ${describeTask(t)}`);
      }
    }
  }
  // A removed service leaves nothing behind once its tasks have stopped.
  for (const t of tasks) if (!services.has(t.serviceId)) problems.push(`task of a removed service remains: ${describeTask(t)}`);
  return problems;
}

/** Invariant 3: the restart policy's counts, per slot epoch (a slot scaled away starts over). */
function checkRestartCounts(rec: EventRecorder): string[] {
  const problems: string[] = [];
  const byEpoch = new Map<string, TaskLife[]>();
  for (const l of rec.lives.values()) {
    const k = `${l.serviceId}|${l.slot}|${l.epoch}`;
    byEpoch.set(k, [...(byEpoch.get(k) ?? []), l]);
  }
  for (const [k, lives] of byEpoch) {
    const policy = lives[0]!.policy;
    lives.sort((a, b) => a.createdRevision - b.createdRevision);
    const ownEnds = lives.filter((l) => l.endedByItself);
    // "Replaced" means a task created after the end: a start-first move's replacement already
    // exists when the task it replaces ends by itself (the slot is then blocked, the replacement stopped).
    const createdAfter = (end: TaskLife | undefined): boolean => !!end && lives.some((l) => l.createdRevision > end.endedRevision!);
    const firstEnd = lives.find((l) => l.endedByItself);
    const firstComplete = lives.find((l) => l.endedByItself === "complete");
    if (policy.condition === "none" && createdAfter(firstEnd)) problems.push(`${k}: restart condition none, yet replaced after it ended ${firstEnd!.endedByItself}`);
    if (policy.condition === "on-failure" && createdAfter(firstComplete)) problems.push(`${k}: on-failure, yet a completed task was replaced`);
    if (policy.maxAttempts > 0 && ownEnds.length > policy.maxAttempts + 1) problems.push(`${k}: max attempts ${policy.maxAttempts}, yet ${ownEnds.length} tasks ended by themselves`);
  }
  return problems;
}

async function checkScenario(s: Scenario, accounting: Accounting): Promise<void> {
  const { sim, rec } = await runScenario(s, accounting);
  try {
    const problems = [...rec.violations, ...checkConverged(sim), ...checkRestartCounts(rec)];
    assert.deepEqual(problems, []);
  } finally {
    sim.stop();
  }
}

// Over-commit counts every task until it is observed ended ("observed"): a stopping task keeps
// its reservation.
test("cluster invariants hold under random services, crashes, node loss and availability changes", async () => {
  await fc.assert(
    fc.asyncProperty(scenarioArb, (s) => checkScenario(s, "observed")),
    { numRuns: 100 },
  );
});

// Found by the property above (seed -1127392098), shrunk. One node with 1 cpu whose tasks take
// 500 ms to stop. svc2 holds 2 × 0.25 cpu; svc3 (1 cpu) is pending. Removing svc2 tells its tasks
// to stop, and the scheduler places svc3.1 at once: for 500 ms the node runs 1.25 cpu of
// reservations. scheduler/view.ts `holdsResources` counts only tasks wanted running.
test(
  "a task being stopped keeps its reservation until it has stopped",
  async () => {
    await checkScenario(
      {
        nodes: [{ tier: "a", startDelayMs: 0, stopDelayMs: 500, resources: { cpus: 1, memoryBytes: 1024 ** 3 } }],
        commands: [
          { kind: "create", mode: "replicated", replicas: 2, condition: "none", maxAttempts: 0, cpus: 0.25, memoryMiB: 0, constrained: false },
          { kind: "create", mode: "replicated", replicas: 1, condition: "none", maxAttempts: 0, cpus: 1, memoryMiB: 0, constrained: false },
          { kind: "remove", service: 0 },
        ],
      },
      "observed",
    );
  },
);

const wantedOn = (sim: SimCluster, serviceId: string, nodeId: string): Task[] =>
  sim.tasks().filter((t) => t.serviceId === serviceId && t.nodeId === nodeId && t.desiredState === "running");

// Invariant 1's global rule for paused nodes. eligibility.ts has no function for it yet
// (isNodeEligible treats a paused node like an active one), so the property skips paused nodes.
test(
  "a paused node keeps the global task it runs but gets no new one",
  async () => {
    const sim = new SimCluster();
    try {
      await sim.addNode("n1");
      await sim.addNode("n2");
      const before = await sim.createService({ mode: "global" });
      await sim.setAvailability("n1", "pause");
      await sim.converge(5000);
      const kept = wantedOn(sim, before.id, "n1");
      assert.equal(kept.length, 1, "the running global task stays");
      assert.equal(kept[0]!.status.state, "running");
      const after = await sim.createService({ mode: "global" });
      await sim.converge(5000);
      assert.deepEqual(wantedOn(sim, after.id, "n1").map((t) => `${t.status.state}: ${t.status.message}`), [], "no new task on the paused node");
      assert.equal(wantedOn(sim, after.id, "n2")[0]?.status.state, "running");
    } finally {
      sim.stop();
    }
  },
);

// Docker semantics for drain: the node's tasks are shut down and placed elsewhere. Global
// services follow it (isNodeEligible); nothing moves a replicated service's tasks.
test(
  "draining a node moves its replicated tasks to other nodes",
  async () => {
    const sim = new SimCluster();
    try {
      await sim.addNode("n1");
      await sim.addNode("n2");
      const svc = await sim.createService({ replicas: 2 });
      assert.equal(wantedOn(sim, svc.id, "n1").length, 1, "spread puts one replica on each node");
      await sim.setAvailability("n1", "drain");
      await sim.converge(5000);
      assert.equal(wantedOn(sim, svc.id, "n1").length, 0, "nothing left wanted on the drained node");
      assert.deepEqual(wantedOn(sim, svc.id, "n2").map((t) => t.status.state), ["running", "running"]);
    } finally {
      sim.stop();
    }
  },
);
