import { test } from "node:test";
import assert from "node:assert/strict";
import { Pipeline } from "./pipeline.js";
import { planPlacements } from "./scheduler.js";
import { buildNodeViews } from "./view.js";
import { aNode, aService, aTask } from "../../test/harness/builders.js";

test("pending reason groups and counts rejections, most common first", () => {
  const svc = aService({ reserveMemory: "512m", constraints: ["node.labels.tier==data"] });
  const small = { cpus: 2, memoryBytes: 256 * 1024 ** 2 };
  const nodes = [
    aNode({ resources: small, labels: { tier: "data" } }),
    aNode({ resources: small, labels: { tier: "data" } }),
    aNode({ resources: small, labels: { tier: "data" } }),
    aNode({ labels: { tier: "web" } }),
    aNode({}),
  ];
  const [d] = planPlacements([aTask(svc, { state: "new" })], nodes, [], new Pipeline());
  assert.equal(d!.reason, "no node satisfies: 3 nodes insufficient memory (needs 512 MiB); 2 nodes constraint node.labels.tier == data");
});

test("no nodes at all is said plainly", () => {
  const svc = aService();
  const [d] = planPlacements([aTask(svc, { state: "new" })], [], [], new Pipeline());
  assert.equal(d!.reason, "no node satisfies: no nodes in the cluster");
});

test("down, paused and driverless nodes are filtered with their reason", () => {
  const svc = aService();
  const nodes = [
    aNode({ status: { state: "down", message: "", heartbeatAt: 0 } }),
    aNode({ availability: "pause" }),
    aNode({ availability: "drain" }),
    aNode({ drivers: ["docker"] }),
  ];
  const [d] = planPlacements([aTask(svc, { state: "new" })], nodes, [], new Pipeline());
  assert.equal(d!.reason, "no node satisfies: 1 node availability drain; 1 node availability pause; 1 node no process driver; 1 node not ready (down)");
});

test("a task with a memory limit is not placed on a node that cannot enforce memory limits, and says why", () => {
  const svc = aService({ limitMemory: "64m" });
  const nodes = [
    aNode({}),
    aNode({ limits: { memory: false, cpu: true, cgroup: "v1" } }),
    aNode({ limits: { memory: false, cpu: false, cgroup: "none" } }),
  ];
  const [d] = planPlacements([aTask(svc, { state: "new" })], nodes, [], new Pipeline());
  assert.equal(d!.reason, "no node satisfies: 3 nodes cannot enforce memory limits");
  const able = aNode({ limits: { memory: true, cpu: false, cgroup: "v2" } });
  const [placed] = planPlacements([aTask(svc, { state: "new" })], [...nodes, able], [], new Pipeline());
  assert.equal(placed!.nodeId, able.id);
});

test("cpu limits need a node that enforces cpu limits; a task with both names both", () => {
  const memoryOnly = aNode({ limits: { memory: true, cpu: false, cgroup: "v1" } });
  const [cpu] = planPlacements([aTask(aService({ limitCpus: 0.5 }), { state: "new" })], [memoryOnly], [], new Pipeline());
  assert.equal(cpu!.reason, "no node satisfies: 1 node cannot enforce cpu limits");
  const [both] = planPlacements([aTask(aService({ limitCpus: 0.5, limitMemory: "64m" }), { state: "new" })], [aNode({})], [], new Pipeline());
  assert.equal(both!.reason, "no node satisfies: 1 node cannot enforce memory and cpu limits");
});

test("a container's limits are the engine's to enforce: a docker node without writable cgroups takes it", () => {
  const svc = aService({ image: "nginx:1", command: [], limitMemory: "64m", limitCpus: 0.5 });
  const node = aNode({ drivers: ["process", "docker"], limits: { memory: false, cpu: false, cgroup: "none" } });
  const [placed] = planPlacements([aTask(svc, { state: "new" })], [node], [], new Pipeline());
  assert.equal(placed!.nodeId, node.id);
});

test("a task without limits goes to nodes that enforce none", () => {
  const node = aNode({ limits: { memory: false, cpu: false, cgroup: "none" } });
  const [d] = planPlacements([aTask(aService(), { state: "new" })], [node], [], new Pipeline());
  assert.equal(d!.nodeId, node.id);
});

test("a batch spreads a service's replicas across nodes", () => {
  const svc = aService({ replicas: 6 });
  const nodes = [aNode({ hostname: "a" }), aNode({ hostname: "b" }), aNode({ hostname: "c" })];
  const tasks = [1, 2, 3, 4, 5, 6].map((slot) => aTask(svc, { slot, state: "new" }));
  const ds = planPlacements(tasks, nodes, tasks, new Pipeline());
  const perNode = new Map<string, number>();
  for (const d of ds) perNode.set(d.nodeId!, (perNode.get(d.nodeId!) ?? 0) + 1);
  assert.deepEqual([...perNode.values()], [2, 2, 2]);
});

test("placements in a batch see each other's reservations", () => {
  const svc = aService({ replicas: 3, reserveCpus: 1 });
  const nodes = [aNode({ resources: { cpus: 2, memoryBytes: 1024 ** 3 } })];
  const tasks = [1, 2, 3].map((slot) => aTask(svc, { slot, state: "new" }));
  const ds = planPlacements(tasks, nodes, tasks, new Pipeline());
  assert.equal(ds.filter((d) => d.nodeId).length, 2);
  assert.equal(ds[2]!.reason, "no node satisfies: 1 node insufficient cpu (needs 1)");
});

test("running tasks count against a node's resources; ended ones do not", () => {
  const svc = aService({ reserveCpus: 1.5 });
  const node = aNode({ resources: { cpus: 2, memoryBytes: 1024 ** 3 } });
  const running = aTask(svc, { nodeId: node.id, state: "running" });
  const ended = aTask(svc, { nodeId: node.id, state: "failed" });
  const views = buildNodeViews([node], [running, ended]);
  assert.equal(views.get(node.id)!.reservedCpus, 1.5);
});

test("a global task is only considered for its own node", () => {
  const svc = aService({ mode: "global" });
  const a = aNode({ hostname: "a" });
  const b = aNode({ hostname: "b", availability: "pause" });
  const [d] = planPlacements([aTask(svc, { slot: 0, nodeId: b.id, state: "new" })], [a, b], [], new Pipeline());
  assert.equal(d!.reason, "no node satisfies: 1 node availability pause");
});

test("a host-mode published port is held by one task per node; the rest say which port", () => {
  const svc = aService({ replicas: 3, publish: ["published=18500,target=80,mode=host"] });
  const nodes = [aNode({ hostname: "a" }), aNode({ hostname: "b" })];
  const tasks = [1, 2, 3].map((slot) => aTask(svc, { slot, state: "new" }));
  const ds = planPlacements(tasks, nodes, tasks, new Pipeline());
  assert.deepEqual(new Set(ds.filter((d) => d.nodeId).map((d) => d.nodeId)).size, 2, "one per node");
  assert.equal(ds[2]!.reason, "no node satisfies: 2 nodes host port 18500 in use");
});

test("spread preference: replicas spread evenly over label values first, then over nodes", () => {
  const svc = aService({ replicas: 4, placementPrefs: ["spread=node.labels.zone"] });
  const a = aNode({ hostname: "a", labels: { zone: "1" } });
  const b = aNode({ hostname: "b", labels: { zone: "1" } });
  const c = aNode({ hostname: "c", labels: { zone: "2" } });
  const tasks = [1, 2, 3, 4].map((slot) => aTask(svc, { slot, state: "new" }));
  const ds = planPlacements(tasks, [a, b, c], tasks, new Pipeline());
  const on = (n: { id: string }) => ds.filter((d) => d.nodeId === n.id).length;
  assert.equal(on(c), 2, "zone 2 (one node) gets half");
  assert.equal(on(a) + on(b), 2, "zone 1 gets the other half");
  assert.equal(on(a), 1, "and spreads it over its nodes");
});

test("max replicas per node: the rest stay pending, saying why", () => {
  const svc = aService({ replicas: 4, maxReplicasPerNode: 1 });
  const nodes = [aNode({ hostname: "a" }), aNode({ hostname: "b" }), aNode({ hostname: "c" })];
  const tasks = [1, 2, 3, 4].map((slot) => aTask(svc, { slot, state: "new" }));
  const ds = planPlacements(tasks, nodes, tasks, new Pipeline());
  assert.equal(new Set(ds.filter((d) => d.nodeId).map((d) => d.nodeId)).size, 3);
  assert.equal(ds[3]!.reason, "no node satisfies: 3 nodes max replicas per node (1)");
});

test("bad placement preferences are refused with the field named", () => {
  assert.throws(() => aService({ placementPrefs: ["pack=node.labels.zone"] }), /placementPrefs\.0|placementPrefs\[0\]/);
});
