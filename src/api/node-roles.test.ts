// The promote/demote routes over a memory store: what is written (desiredRole) and what is
// refused without writing anything. The node carrying it out is test/integration/ha-join.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { testApi } from "../../test/harness/api.js";
import type { RoleControl } from "./deps.js";
import { createMemoryStore } from "../store/memory/memory-store.js";
import { FakeClock } from "../../test/harness/fake-clock.js";
import { aNode } from "../../test/harness/builders.js";
import type { MemberStatus } from "../ha/membership.js";

async function setup(roles: Omit<RoleControl, "changed"> | undefined) {
  const clock = new FakeClock();
  const store = createMemoryStore({ clock });
  let changed = 0;
  const a = await testApi({
    store,
    clock,
    system: { info: () => ({ version: "test", nodeId: "self" }), shutdown: async () => ({ stoppedTasks: 0 }), exit: async () => undefined },
    ...(roles ? { roles: { ...roles, changed: () => void changed++ } } : {}),
  });
  const m1 = aNode({ id: "m1", hostname: "m1" });
  const w1 = aNode({ id: "w1", hostname: "w1", role: "worker" });
  await store.update((tx) => {
    tx.create("nodes", m1);
    tx.create("nodes", w1);
  });
  const node = (id: string) => store.view((tx) => tx.get("nodes", id))!;
  return { a, node, changed: () => changed, store };
}

const member = (name: string, healthy = true): MemberStatus => ({ id: name, name, peerUrls: [], clientUrls: [], isLearner: false, healthy, leader: false });

test("promote on a SQLite cluster is refused with the reason, and nothing is written", async () => {
  const { a, node, changed } = await setup({ etcd: false });
  const r = await a.inject({ method: "POST", url: "/v1/nodes/w1/promote" });
  assert.equal(r.statusCode, 400);
  assert.match(r.json<{ message: string }>().message, /SQLite.*baton init --ha/);
  assert.equal(node("w1").desiredRole, undefined);
  assert.equal(changed(), 0);
});

test("promote declares desiredRole manager and wakes the role reconciler; demote of the last manager is refused", async () => {
  const { a, node, changed } = await setup({ etcd: true });
  const r = await a.inject({ method: "POST", url: "/v1/nodes/w1/promote" });
  assert.equal(r.statusCode, 200, r.body);
  assert.equal(node("w1").desiredRole, "manager");
  assert.equal(changed(), 1);
  const last = await a.inject({ method: "POST", url: "/v1/nodes/m1/demote" });
  assert.equal(last.statusCode, 400);
  assert.match(last.json<{ message: string }>().message, /m1 is the last manager/);
  assert.equal(node("m1").desiredRole, undefined);
  assert.equal((await a.inject({ method: "POST", url: "/v1/nodes/nope/demote" })).statusCode, 404);
});

test("demote is refused when the etcd members left would lose quorum; allowed when they would not", async () => {
  let members = [member("m1"), member("m2"), member("m3", false)];
  const { a, node, store } = await setup({ etcd: true, members: async () => members });
  await store.update((tx) => {
    tx.create("nodes", aNode({ id: "m2", hostname: "m2" }));
    tx.create("nodes", aNode({ id: "m3", hostname: "m3" }));
  });
  const refused = await a.inject({ method: "POST", url: "/v1/nodes/m1/demote" });
  assert.equal(refused.statusCode, 400);
  assert.match(refused.json<{ message: string }>().message, /would lose the etcd quorum: 1 of the 2 members left are healthy/);
  assert.equal(node("m1").desiredRole, undefined);
  members = [member("m1"), member("m2"), member("m3")];
  assert.equal((await a.inject({ method: "POST", url: "/v1/nodes/m1/demote" })).statusCode, 200);
  assert.equal(node("m1").desiredRole, "worker");
});

test("node rm of a down manager removes its etcd member before the node; a worker's rm touches no member", async () => {
  const removed: string[] = [];
  const { a, store } = await setup({ etcd: true, members: async () => [member("m1"), member("m2"), member("m3")], removeMember: async (n) => void removed.push(n) });
  await store.update((tx) => tx.create("nodes", aNode({ id: "m2", hostname: "m2", status: { state: "down", message: "", heartbeatAt: 0 } })));
  assert.equal((await a.inject({ method: "DELETE", url: "/v1/nodes/m2" })).statusCode, 200);
  assert.deepEqual(removed, ["m2"]);
  await store.update((tx) => tx.update("nodes", { ...tx.get("nodes", "w1")!, status: { state: "down", message: "", heartbeatAt: 0 } }));
  assert.equal((await a.inject({ method: "DELETE", url: "/v1/nodes/w1" })).statusCode, 200);
  assert.deepEqual(removed, ["m2"]);
  // A manager that is up is refused without --force, before its member is touched.
  await store.update((tx) => tx.create("nodes", aNode({ id: "m3", hostname: "m3" })));
  assert.equal((await a.inject({ method: "DELETE", url: "/v1/nodes/m3" })).statusCode, 400);
  assert.deepEqual(removed, ["m2"]);
});
