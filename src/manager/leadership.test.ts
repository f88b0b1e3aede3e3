// Leadership on a real etcd: one leader at a time, the next one within about two seconds of the
// last one's end, a deposed leader's fenced writes refused, and a leader that loses etcd stops
// leading before its lease can expire.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { Etcd3 } from "etcd3";
import { Leadership } from "./leadership.js";
import { EtcdStore } from "../store/etcd/etcd-store.js";
import { systemClock } from "../lib/clock.js";
import { BatonError } from "../lib/errors.js";
import { createLogger } from "../lib/log.js";
import type { Fence } from "../store/store.js";
import { aService } from "../../test/harness/builders.js";
import { etcdTestGate, startEtcd, type EtcdCluster } from "../../test/harness/etcd.js";
import { waitFor } from "../../test/harness/baton.js";

const { missingInCi, opts } = etcdTestGate("leadership tests");

const log = createLogger({ level: process.env.LOG_LEVEL ?? "silent" });
const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

let prefixes = 0;
async function cluster(): Promise<EtcdCluster> {
  if (missingInCi) throw missingInCi;
  const c = await startEtcd();
  cleanups.push(() => c.stop());
  return c;
}

/** A manager's leadership with a record of its terms. */
function candidate(endpoints: string[], nodeId: string, prefix: string) {
  const terms: { fence: Fence; electedAt: number; deposedAt?: number; reason?: string }[] = [];
  const l = new Leadership({
    connection: { endpoints },
    prefix,
    self: { nodeId, addr: `${nodeId}:4242` },
    clock: systemClock,
    log,
    onElected: (fence) => terms.push({ fence, electedAt: Date.now() }),
    onDeposed: (reason) => Object.assign(terms[terms.length - 1]!, { deposedAt: Date.now(), reason }),
  });
  l.start();
  cleanups.push(() => l.close());
  return { l, terms };
}

test("leadership: exactly one of three managers leads; when it stops, another leads within 2 s", opts, async () => {
  const etcd = await cluster();
  const prefix = `/ha-${++prefixes}/`;
  const ms = ["m1", "m2", "m3"].map((id) => candidate(etcd.endpoints, id, prefix));
  await waitFor(() => ms.some((m) => m.l.isLeader()), 5000, "no manager became leader");
  await new Promise((r) => setTimeout(r, 600));
  assert.equal(ms.filter((m) => m.l.isLeader()).length, 1);
  const leader = ms.find((m) => m.l.isLeader())!;
  await waitFor(() => ms.every((m) => m.l.managers().reachable.size === 3 && m.l.managers().leader?.nodeId === leader.l.managers().leader?.nodeId), 3000, "managers do not all see each other");
  const stoppedAt = Date.now();
  await leader.l.close();
  const next = await waitFor(() => ms.find((m) => m !== leader && m.l.isLeader()), 5000, "no new leader after the leader stopped");
  const took = Date.now() - stoppedAt;
  console.log(`# new leader ${took} ms after the old one stopped (lease revoked)`);
  assert.ok(took < 2000, `took ${took} ms`);
  assert.ok(next.terms[0]!.fence.revision > leader.terms[0]!.fence.revision, "a new term has a higher revision");
});

test("leadership: a deposed leader's fenced write fails with NOT_LEADER and changes nothing; the new leader's succeeds", opts, async () => {
  const etcd = await cluster();
  const prefix = `/ha-${++prefixes}/`;
  const a = candidate(etcd.endpoints, "a", prefix);
  await waitFor(() => a.l.isLeader(), 5000, "a did not lead");
  const b = candidate(etcd.endpoints, "b", prefix);
  const store = await EtcdStore.open({ endpoints: etcd.endpoints, prefix: `/store-${prefixes}/` });
  cleanups.push(() => store.close());
  const oldFence = a.l.fence()!;
  const s = aService({ name: "web" });
  const created = await store.update((tx) => tx.create("services", { id: s.id, spec: s.spec, specVersion: 1 }), { fence: oldFence });

  // As if a's lease expired while a was stalled: the key goes, and a new term starts (b's, or a's
  // own new campaign: either way another create revision).
  const outside = new Etcd3({ hosts: etcd.endpoints });
  cleanups.push(() => outside.close());
  await outside.delete().key(a.l.leaderKey).exec();
  const next = await waitFor(() => [a, b].find((m) => m.l.fence() && m.l.fence()!.revision !== oldFence.revision), 3000, "no new term");

  await assert.rejects(
    store.update((tx) => tx.update("services", { ...tx.get("services", s.id)!, specVersion: 2 }), { fence: oldFence }),
    (e: unknown) => e instanceof BatonError && e.code === "NOT_LEADER" && /leadership .* ended/.test(e.message),
  );
  await store.sync();
  assert.equal(store.view((tx) => tx.get("services", s.id))!.specVersion, 1, "the deposed write changed nothing");
  const updated = await store.update((tx) => tx.update("services", { ...tx.get("services", s.id)!, specVersion: 3 }), { fence: next.l.fence()! });
  assert.ok(updated.version > created.version);
  await waitFor(() => a.terms[0]!.deposedAt, 2000, "a never noticed its term ended");
  assert.match(a.terms[0]!.reason ?? "", /another manager leads|gone/);
});

test("leadership: a leader that loses etcd stops leading before its lease can expire; leadership resumes when etcd returns", opts, async () => {
  const etcd = await cluster();
  const prefix = `/ha-${++prefixes}/`;
  const a = candidate(etcd.endpoints, "a", prefix);
  await waitFor(() => a.l.isLeader(), 5000, "a did not lead");
  const killedAt = Date.now();
  await etcd.members[0]!.kill();
  await waitFor(() => !a.l.isLeader(), 3000, "the leader kept leading without etcd");
  const took = a.terms[0]!.deposedAt! - killedAt;
  console.log(`# leader stepped down ${took} ms after etcd went away (${a.terms[0]!.reason})`);
  // The lease lives at least 2 s after the last keepalive sent before the kill.
  assert.ok(took < 2000, `stepped down after ${took} ms: the lease may have expired first`);
  await etcd.members[0]!.start();
  // The old lease outlives the restart by its TTL (etcd renews leases on start), then a campaigns.
  await waitFor(() => a.l.isLeader(), 15000, "no leader after etcd came back");
  assert.equal(a.terms.length, 2);
});

test("leadership: a leader whose listener refuses connections (its process killed) is replaced well before its lease expires; one never seen listening is not", opts, async () => {
  const etcd = await cluster();
  const { createServer } = await import("node:net");
  const raw = new Etcd3({ hosts: etcd.endpoints });
  cleanups.push(() => raw.close());
  // A ghost leader: its lease (10 s) is never kept alive and never revoked by itself, as after a
  // kill -9; its address first has a listener, then none.
  const ghost = async (prefix: string, listening: boolean) => {
    const srv = createServer((s) => s.destroy());
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    const addr = `127.0.0.1:${(srv.address() as { port: number }).port}`;
    if (!listening) await new Promise((r) => srv.close(r));
    const lease = raw.lease(10, { autoKeepAlive: false });
    lease.on("lost", () => undefined);
    await lease.put(`${prefix}leader`).value(JSON.stringify({ nodeId: "ghost", addr }));
    return { kill: () => new Promise((r) => (listening ? srv.close(r) : r(undefined))) };
  };

  const p1 = `/ha-${++prefixes}/`;
  const g1 = await ghost(p1, true);
  const b = candidate(etcd.endpoints, "b", p1);
  await waitFor(() => b.l.managers().leader?.nodeId === "ghost", 3000, "b never saw the ghost leader");
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(b.l.isLeader(), false, "b does not lead while the ghost's listener accepts");
  const killedAt = Date.now();
  await g1.kill();
  await waitFor(() => b.l.isLeader(), 5000, "b never led after the ghost's listener closed");
  const took = Date.now() - killedAt;
  console.log(`# a follower led ${took} ms after the leader's listener closed (lease revoked by the follower)`);
  assert.ok(took < 2000, `took ${took} ms`);

  // Refusals from an address that never accepted (a firewall, a wrong address) revoke nothing.
  const p2 = `/ha-${++prefixes}/`;
  await ghost(p2, false);
  const c = candidate(etcd.endpoints, "c", p2);
  await waitFor(() => c.l.managers().leader?.nodeId === "ghost", 3000, "c never saw the ghost leader");
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(c.l.isLeader(), false, "a leader never seen listening is left to its lease");
});

test("leadership: a manager whose lease etcd no longer knows (revoked, or expired while it was slow) takes a new one and leads again", opts, async () => {
  const etcd = await cluster();
  const prefix = `/ha-${++prefixes}/`;
  const a = candidate(etcd.endpoints, "a", prefix);
  await waitFor(() => a.l.isLeader(), 5000, "a did not lead");
  const raw = new Etcd3({ hosts: etcd.endpoints });
  cleanups.push(() => raw.close());
  const leaseId = (await raw.get(a.l.leaderKey).exec()).kvs[0]!.lease;
  await raw.leaseClient.leaseRevoke({ ID: leaseId });
  await waitFor(() => a.terms.length === 2 && a.l.isLeader(), 5000, "a never led again on a new lease");
  const again = (await raw.get(a.l.leaderKey).exec()).kvs[0]!;
  assert.notEqual(again.lease, leaseId, "the leader key is on a new lease");
});
