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
  // The other hosts' healthy voters must be a quorum by themselves, or a move buys nothing.
  assert.equal(raftLeaderTarget("m1", [member("m1", { leader: true }), member("m2"), member("m3", { healthy: false })]), undefined, "one of 3 voters lost: stays");
  assert.equal(raftLeaderTarget("m1", [member("m1", { leader: true }), member("m2"), member("m3"), member("m4", { healthy: false }), member("m5")])?.name, "m2", "one of 5 lost, 3 others healthy: moves");
  assert.equal(raftLeaderTarget("m1", [member("m1", { leader: true }), member("m2"), member("m3", { healthy: false }), member("m4", { healthy: false }), member("m5")]), undefined, "two of 5 lost: stays");
  assert.equal(raftLeaderTarget("m1", [member("m1", { leader: true }), member("m2"), member("m3"), member("m4", { isLearner: true })])?.name, "m2", "a learner is not a voter");
});

test("only Baton's leader moves it, once per look; failed moves back off, doubling up to the cap; members are listed only when this member leads raft", async () => {
  const clock = new FakeClock();
  let leading = false;
  let raftLeader = "m1";
  const moves: string[] = [];
  const tries: number[] = [];
  let lists = 0;
  let failures = 3;
  const p = new RaftLeaderPlacement({
    selfName: "m1",
    isLeading: () => leading,
    selfLeadsRaft: async () => raftLeader === "m1",
    members: async () => {
      lists++;
      return ["m1", "m2", "m3"].map((n) => member(n, { leader: n === raftLeader }));
    },
    moveLeader: async (id) => {
      tries.push(clock.now());
      if (failures > 0) {
        failures--;
        throw new Error("etcdserver: request timed out");
      }
      moves.push(id);
      raftLeader = `m${id}`;
    },
    clock,
    log: silentLogger(),
    periodMs: 2000,
    maxBackoffMs: 6000,
  });
  p.start();
  await settle();
  assert.deepEqual(moves, [], "a follower never moves etcd's leader");
  assert.equal(lists, 0, "nor lists the members");
  leading = true;
  const start = clock.now();
  await clock.advance(2000);
  for (let i = 0; i < 10; i++) await clock.advance(1000);
  // Tried at +2 s, then after 4 s (+6), then after 6 s, the cap (+12); the 4th try at +18 moves.
  assert.deepEqual(tries.map((t) => t - start), [2000, 6000, 12000], "waits of 4 s then 6 s (capped) after failures");
  await clock.advance(6000);
  assert.deepEqual(moves, ["2"], "tried again, to m2");
  const listed = lists;
  await clock.advance(10_000);
  assert.deepEqual(moves, ["2"], "raft leader elsewhere now: no more moves");
  assert.equal(lists, listed, "and no member lists: one status call per look");
  p.stop();
});
