import { test } from "node:test";
import assert from "node:assert/strict";
import { RaftLeaderPlacement, raftLeaderTarget } from "./raft-leader-placement.js";
import type { MemberStatus } from "./membership.js";
import { FakeClock, settle } from "../../test/harness/fake-clock.js";
import { silentLogger } from "../lib/log.js";

const member = (name: string, over: Partial<MemberStatus> = {}): MemberStatus => ({ id: name.replace(/\D/g, "") || "1", name, peerUrls: [], clientUrls: [], isLearner: false, healthy: true, leader: false, ...over });

test("raft leadership moves only when this member leads raft, to a healthy voting member of another host (first by name)", () => {
  assert.equal(raftLeaderTarget("m1", [member("m1"), member("m2", { leader: true }), member("m3")]), undefined, "raft leader elsewhere: nothing");
  assert.equal(raftLeaderTarget("m1", [member("m1", { leader: true }), member("m3"), member("m2")])?.name, "m2");
  assert.equal(raftLeaderTarget("m1", [member("m1", { leader: true }), member("m2", { healthy: false }), member("m3", { isLearner: true }), member("", { id: "9" })]), undefined, "no healthy voting member: stays");
  assert.equal(raftLeaderTarget("m1", [member("m1", { leader: true })]), undefined, "a single member: stays");
});

test("only Baton's leader moves it, once per look, and a failed move is tried again at the next period", async () => {
  const clock = new FakeClock();
  let leading = false;
  let raftLeader = "m1";
  const moves: string[] = [];
  let failNext = true;
  const p = new RaftLeaderPlacement({
    selfName: "m1",
    isLeading: () => leading,
    members: async () => ["m1", "m2", "m3"].map((n) => member(n, { leader: n === raftLeader })),
    moveLeader: async (id) => {
      if (failNext) {
        failNext = false;
        throw new Error("etcdserver: request timed out");
      }
      moves.push(id);
      raftLeader = `m${id}`;
    },
    clock,
    log: silentLogger(),
    periodMs: 2000,
  });
  p.start();
  await settle();
  assert.deepEqual(moves, [], "a follower never moves etcd's leader");
  leading = true;
  await clock.advance(2000);
  assert.deepEqual(moves, [], "the first move failed");
  await clock.advance(2000);
  assert.deepEqual(moves, ["2"], "tried again, to m2");
  await clock.advance(10_000);
  assert.deepEqual(moves, ["2"], "raft leader elsewhere now: no more moves");
  p.stop();
});
