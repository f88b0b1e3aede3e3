// Endpoint health on a real 3-member etcd: a member that stops answering (SIGSTOP: its sockets
// stay open, nothing is refused, as on a partition) is abandoned within about a second — calls
// waiting on it settle, new calls and the watch go to the others — and used again once it answers.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { Etcd3 } from "etcd3";
import { newEtcdClient } from "./etcd-client.js";
import { PROBE_DEADLINE_MS, PROBE_INTERVAL_MS } from "./endpoint-health.js";
import { etcdTestGate, startEtcd, type EtcdCluster } from "../../../test/harness/etcd.js";
import { waitFor } from "../../../test/harness/baton.js";

const { missingInCi, opts } = etcdTestGate("endpoint health tests");
const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** A member that is not etcd's raft leader: pausing it leaves the cluster its quorum and its leader. */
async function aFollower(etcd: EtcdCluster): Promise<number> {
  for (let i = 0; i < etcd.members.length; i++) {
    const one = new Etcd3({ hosts: etcd.members[i]!.clientUrl });
    try {
      const st = await one.maintenance.status();
      if (st.leader !== st.header.member_id) return i;
    } finally {
      one.close();
    }
  }
  throw new Error("no follower");
}

test("endpoint health: a silent member is skipped within ~1 s, its waiting calls and the watch move on; it is used again when it answers", opts, async () => {
  if (missingInCi) throw missingInCi;
  const etcd = await startEtcd({ members: 3 });
  cleanups.push(() => etcd.stop());
  const changes: { endpoint: string; up: boolean; at: number }[] = [];
  // No deadline on any call: without the probes, a call sent to the paused member would never end.
  const client = newEtcdClient({ endpoints: etcd.endpoints }, {}, { onEndpointChange: (endpoint, up) => changes.push({ endpoint, up, at: Date.now() }) });
  cleanups.push(() => client.close());
  await client.put("/eh/k").value("0");
  const seen = new Set<string>();
  const watcher = await client.watch().prefix("/eh/").create();
  watcher.on("put", (kv) => seen.add(kv.value.toString()));

  const i = await aFollower(etcd);
  const paused = etcd.members[i]!;
  const pausedAt = Date.now();
  paused.pause();
  cleanups.push(() => paused.resume());
  // Calls sent right away: some go to the paused member and wait on it.
  const reads = await Promise.allSettled(Array.from({ length: 12 }, () => client.get("/eh/k").string()));
  const settledIn = Date.now() - pausedAt;
  const down = changes.find((c) => c.endpoint === paused.clientUrl && !c.up);
  assert.ok(down, "the paused member was found down");
  console.log(`# paused member found down after ${down.at - pausedAt} ms; 12 calls settled in ${settledIn} ms (${reads.filter((r) => r.status === "rejected").length} UNAVAILABLE)`);
  assert.ok(down.at - pausedAt <= PROBE_INTERVAL_MS + PROBE_DEADLINE_MS + 500, `found down after ${down.at - pausedAt} ms`);
  assert.ok(settledIn < 2500, `calls waiting on the paused member settled after ${settledIn} ms`);
  for (const r of reads) if (r.status === "rejected") assert.match(String(r.reason), /UNAVAILABLE|stopped answering/);

  // From now on every call avoids it, and the watch (wherever it was) brings every write.
  const t0 = Date.now();
  for (let n = 1; n <= 20; n++) await client.put("/eh/k").value(String(n));
  const took = Date.now() - t0;
  assert.ok(took < 2000, `20 writes took ${took} ms with a member paused`);
  await waitFor(() => seen.has("20"), 3000, "the watch never brought the last write (still on the paused member?)");

  paused.resume();
  await waitFor(() => changes.some((c) => c.endpoint === paused.clientUrl && c.up && c.at > down.at), 5000, "the resumed member was never used again");
  // Closed here: node:test runs after() only once nothing keeps the loop alive, and a watch does.
  await watcher.cancel();
  client.close();
});

test("endpoint health: with every member silent, none is skipped (calls fail on their own deadline, as without probes)", opts, async () => {
  if (missingInCi) throw missingInCi;
  const etcd = await startEtcd({ members: 2 });
  cleanups.push(() => etcd.stop());
  const client = newEtcdClient({ endpoints: etcd.endpoints }, { defaultCallOptions: () => ({ deadline: Date.now() + 1000 }) });
  cleanups.push(() => client.close());
  for (const m of etcd.members) m.pause();
  cleanups.push(() => etcd.members.forEach((m) => m.resume()));
  await new Promise((r) => setTimeout(r, PROBE_INTERVAL_MS + PROBE_DEADLINE_MS + 300));
  await assert.rejects(client.get("/x").string(), /DEADLINE_EXCEEDED|UNAVAILABLE|stopped answering/);
  for (const m of etcd.members) m.resume();
  await waitFor(async () => (await client.get("/x").string().then(() => true, () => false)), 5000, "calls never worked again once the members answered");
  client.close();
});

test("endpoint health: a killed member (its port refuses) is skipped at its next probe", opts, async () => {
  if (missingInCi) throw missingInCi;
  const etcd = await startEtcd({ members: 3 });
  cleanups.push(() => etcd.stop());
  const changes: { endpoint: string; up: boolean; at: number }[] = [];
  const client = newEtcdClient({ endpoints: etcd.endpoints }, {}, { onEndpointChange: (endpoint, up) => changes.push({ endpoint, up, at: Date.now() }) });
  await client.put("/k").value("0");
  const killed = etcd.members[await aFollower(etcd)]!;
  const killedAt = Date.now();
  await killed.kill();
  const down = await waitFor(() => changes.find((c) => c.endpoint === killed.clientUrl && !c.up), 3000, "the killed member was never found down");
  console.log(`# killed member found down after ${down.at - killedAt} ms`);
  assert.ok(down.at - killedAt <= PROBE_INTERVAL_MS + 300, `found down after ${down.at - killedAt} ms`);
  // Every call now goes to the two others: none fails.
  for (let n = 0; n < 20; n++) await client.put("/k").value(String(n));
  client.close();
});
