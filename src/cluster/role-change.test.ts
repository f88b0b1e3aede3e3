import { test } from "node:test";
import assert from "node:assert/strict";
import { aNode } from "../../test/harness/builders.js";
import type { MemberStatus } from "../ha/membership.js";
import { BatonError } from "../lib/errors.js";
import { checkDemote, checkPromote, hasMember } from "./role-change.js";

const member = (name: string, healthy = true): MemberStatus => ({ id: name, name, peerUrls: [], clientUrls: [`https://${name}:2379`], isLearner: false, healthy, leader: false });
const refused = (problem: RegExp, field: string) => (e: unknown) => e instanceof BatonError && e.code === "BAD_REQUEST" && problem.test(e.message) && e.fields[0]?.problem === field;

test("promote: refused on SQLite (needs etcd) and for a node that is down; a manager already is nothing to do", () => {
  const w = aNode({ hostname: "w1", role: "worker" });
  assert.throws(() => checkPromote(w, { etcd: false }), refused(/SQLite.*`baton init --ha`/, "promotion needs an etcd store"));
  assert.throws(() => checkPromote({ ...w, status: { ...w.status, state: "down" } }, { etcd: true }), refused(/w1 is down/, "not ready"));
  assert.equal(checkPromote(w, { etcd: true }), true);
  assert.equal(checkPromote(aNode({ role: "manager" }), { etcd: true }), false);
  // A manager on its way down may be asked back.
  assert.equal(checkPromote(aNode({ role: "manager", desiredRole: "worker" }), { etcd: true }), true);
});

test("demote: the last manager is refused, counting a manager already being demoted as gone", () => {
  const m1 = aNode({ hostname: "m1" });
  const m2 = aNode({ hostname: "m2", desiredRole: "worker" });
  const w = aNode({ hostname: "w", role: "worker" });
  assert.throws(() => checkDemote(m1, [m1, w], { etcd: true }), refused(/m1 is the last manager/, "last manager"));
  assert.throws(() => checkDemote(m1, [m1, m2, w], { etcd: true }), refused(/last manager/, "last manager"));
  assert.equal(checkDemote(m1, [m1, aNode({ hostname: "m3" })], { etcd: true }), true);
  assert.equal(checkDemote(w, [m1, w], { etcd: true }), false, "a worker already");
});

test("demote: refused when the members left would not be a quorum (2 of 3 unhealthy), allowed when they are", () => {
  const [a, b, c] = [aNode({ hostname: "a" }), aNode({ hostname: "b" }), aNode({ hostname: "c" })];
  const nodes = [a, b, c];
  // Demoting a leaves b and c: one healthy of two is no quorum.
  assert.throws(() => checkDemote(a, nodes, { etcd: true, members: [member(a.id), member(b.id), member(c.id, false)] }), refused(/1 of the 2 members left are healthy, 2 are needed/, "etcd quorum"));
  // Demoting the unhealthy one's peer is refused too; demoting when all are up is fine.
  assert.equal(checkDemote(a, nodes, { etcd: true, members: [member(a.id), member(b.id), member(c.id)] }), true);
  // Demoting the member that is down leaves two healthy of two.
  assert.equal(checkDemote(c, nodes, { etcd: true, members: [member(a.id), member(b.id), member(c.id, false)] }), true);
  // Five members, two down: demoting a healthy one leaves 2 of 4 healthy, short of 3.
  const five = [...nodes, aNode({ hostname: "d" }), aNode({ hostname: "e" })];
  const ms = five.map((n, i) => member(n.id, i < 3));
  assert.throws(() => checkDemote(a, five, { etcd: true, members: ms }), refused(/2 of the 4 members left/, "etcd quorum"));
  // A manager that is down steps down nowhere: node rm is the way.
  assert.throws(() => checkDemote({ ...b, status: { ...b.status, state: "down" } }, nodes, { etcd: true }), refused(/node rm/, "not ready"));
});

test("hasMember: a manager's etcd member is named by its node id", () => {
  const m = aNode();
  assert.equal(hasMember(m, [member(m.id)]), true);
  assert.equal(hasMember(m, [member("other")]), false);
  assert.equal(hasMember(m, undefined), false);
});
