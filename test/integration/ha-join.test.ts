// The issue's HA user story on three hosts (network namespaces): `baton init --ha` on h1, `baton
// join` with the manager token on h2 and h3 (each adds its own managed etcd member), a kill -9 of
// the leader's baton, then `baton node demote` and `promote`. The tests run in order on one cluster.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HELLO, getJson, waitFor } from "../harness/baton.js";
import { etcdUnavailable } from "../harness/etcd.js";
import { NetnsBaton, createTestNetwork, netnsSkipReason, type TestNetwork } from "../harness/netns.js";

const skip = netnsSkipReason() ?? etcdUnavailable();

interface NodeRow {
  ID: string;
  Hostname: string;
  Status: string;
  ManagerStatus: string;
}
interface Info {
  nodeId: string;
  role: string;
  isLeader?: boolean;
}

describe("HA managers on managed etcd: init --ha, manager joins, leader kill -9, demote and promote", { skip }, () => {
  let net: TestNetwork;
  const batons: NetnsBaton[] = [];

  const info = (b: NetnsBaton): Promise<Info> => getJson(b.socket, "/v1/info") as Promise<Info>;
  const nodes = async (b: NetnsBaton): Promise<NodeRow[]> =>
    (await b.cliOk("node", "ls", "--format", "json")).trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as NodeRow);
  const memberRows = async (b: NetnsBaton): Promise<string[]> => (await b.cliOk("ha", "members")).trim().split("\n").slice(1);
  const leaderOf = async (among: NetnsBaton[]): Promise<NetnsBaton | undefined> => {
    for (const b of among) if (b.running && (await info(b).catch(() => undefined))?.isLeader) return b;
    return undefined;
  };
  const started = (rows: string[]): boolean => rows.every((r) => /\s(leader|healthy)$/.test(r));

  before(async () => {
    net = await createTestNetwork({ hosts: 3, prefix: "haj" });
    const [h1, h2, h3] = net.hosts as [(typeof net.hosts)[0], (typeof net.hosts)[0], (typeof net.hosts)[0]];
    const m1 = new NetnsBaton(net, h1, { argv: ["init", "--ha", "--advertise-addr", h1.address, "--heartbeat-period", "400ms", "--heartbeat-grace", "1600ms", "--dns-addr", "127.0.0.1:0"], logLevel: "info", startTimeoutMs: 40_000 });
    batons.push(m1);
    await m1.start();
    const token = (await m1.cliOk("join-token", "manager", "-q")).trim();
    // Both at once: etcd takes one learner at a time, so the second add waits for the first promotion.
    // h3 as the issue writes it, without --advertise-addr: the host's one address is found.
    const joiners = [h2, h3].map((h) => new NetnsBaton(net, h, { argv: ["join", "--token", token, ...(h === h2 ? ["--advertise-addr", h.address] : []), "--dns-addr", "127.0.0.1:0", `${h1.address}:4242`], logLevel: "info", startTimeoutMs: 60_000 }));
    batons.push(...joiners);
    await Promise.all(joiners.map((m) => m.start()));
  });
  after(async () => {
    if (process.env.BATON_HA_LOGS) {
      const { writeFileSync } = await import("node:fs");
      for (const b of batons) writeFileSync(`${process.env.BATON_HA_LOGS}/${b.host.name}.log`, b.output);
    }
    for (const b of batons) await b.destroy().catch(() => undefined);
    await net?.destroy();
  });

  test("two managers join a managed etcd: three started members, one Leader and two Reachable, a service created through h3 runs", async () => {
    const [m1, , m3] = batons as [NetnsBaton, NetnsBaton, NetnsBaton];
    const rows = await memberRows(m1);
    assert.equal(rows.length, 3, rows.join("\n"));
    assert.ok(started(rows), rows.join("\n"));
    for (const b of batons) {
      // Each joined manager runs its own member and resumes as an HA manager from cluster.json.
      const cfg = JSON.parse(readFileSync(join(b.dataDir, "cluster.json"), "utf8")) as { ha?: boolean; heartbeatPeriodMs?: number; heartbeatGraceMs?: number };
      assert.equal(cfg.ha, true, `${b.host.name} cluster.json ha`);
      assert.equal(cfg.heartbeatPeriodMs, 400, `${b.host.name} inherits the heartbeat period`);
      assert.equal(cfg.heartbeatGraceMs, 1600, `${b.host.name} inherits the heartbeat grace`);
      const i = (await getJson(b.socket, "/v1/info")) as { store: string; etcdClientUrl?: string };
      assert.equal(i.store, "etcd");
      assert.equal(i.etcdClientUrl, `https://${b.host.address}:2379`);
    }
    await waitFor(
      async () => {
        const list = await nodes(m1);
        return list.length === 3 && list.every((n) => n.Status === "Ready") && list.map((n) => n.ManagerStatus).sort().join() === "Leader,Reachable,Reachable";
      },
      20_000,
      "nodes never settled at one Leader and two Reachable",
    );
    await m3.cliOk("service", "create", "--name", "web", "--replicas", "3", process.execPath, HELLO);
    const ps = (await m1.cliOk("service", "ps", "web", "--format", "json")).trim().split("\n").map((l) => JSON.parse(l) as { CurrentState: string });
    assert.equal(ps.filter((r) => r.CurrentState === "running").length, 3);
  });

  test("Baton's leader keeps etcd's raft leader on another host; a partition of the leader's host: a new leader within 2 s", async (t) => {
    const raftLeaderName = async (b: NetnsBaton): Promise<string | undefined> => (await memberRows(b)).find((r) => /\sleader$/.test(r))?.split(/\s+/)[1];
    const leader = await waitFor(() => leaderOf(batons), 10_000, "no leader");
    const leaderId = (await info(leader)).nodeId;
    // At the start one host often holds both (the first manager); the leader moves etcd's away.
    await waitFor(async () => {
      const raft = await raftLeaderName(leader).catch(() => undefined);
      return raft !== undefined && raft !== leaderId;
    }, 15_000, "etcd's raft leader stayed on the Baton leader's host");
    const rest = batons.filter((b) => b !== leader);
    const cutAt = Date.now();
    await net.partition(leader.host);
    try {
      // Polled straight from the API of the others, every 50 ms: the time is to ~50 ms.
      await waitFor(() => leaderOf(rest), 10_000, "no new leader after the partition", 50);
      const took = Date.now() - cutAt;
      t.diagnostic(`partition of the Baton leader's host (etcd's raft leader elsewhere, kept so by Baton): a new leader after ${took} ms`);
      assert.ok(took <= 2000, `a new leader after ${took} ms`);
    } finally {
      await net.heal(leader.host);
    }
    // Healed: the cut-off manager follows again and every member is healthy.
    await waitFor(async () => {
      const rows = await memberRows(rest[0]!).catch(() => []);
      return rows.length === 3 && started(rows) && (await leaderOf(batons)) !== undefined;
    }, 30_000, "the cluster did not heal");
  });

  test("kill -9 of the leader's baton: another manager leads, the service is still there", async () => {
    const old = await waitFor(() => leaderOf(batons), 10_000, "no leader");
    await old.kill("SIGKILL");
    const rest = batons.filter((b) => b !== old);
    const next = await waitFor(() => leaderOf(rest), 15_000, "no new leader after the kill -9");
    assert.notEqual(next, old);
    const svc = JSON.parse(await next.cliOk("service", "inspect", "web")) as { spec: { name: string } }[];
    assert.equal(svc[0]!.spec.name, "web");
    // Back on its data dir: it resumes as an HA manager on its own member.
    await old.start();
    await waitFor(async () => started(await memberRows(next)) && (await memberRows(next)).length === 3, 30_000, "the restarted manager's member healthy again");
  });

  test("demote a manager: its member leaves (2 members), it runs on as a worker with its tasks; promote it back: 3 members", async () => {
    const leader = await waitFor(() => leaderOf(batons), 15_000, "no leader");
    const target = batons.find((b) => b !== leader && b.running)!;
    const id = (await info(target)).nodeId;
    const tasksOn = async (): Promise<string[]> =>
      (await leader.cliOk("service", "ps", "per-node", "--format", "json"))
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { ID: string; Node: string; CurrentState: string })
        .filter((r) => r.Node === target.host.name && r.CurrentState === "running")
        .map((r) => r.ID)
        .sort();
    // One task on every node: the demoted node's must run on through both role changes.
    await leader.cliOk("service", "create", "--name", "per-node", "--mode", "global", process.execPath, HELLO);
    const before = await waitFor(async () => ((await tasksOn()).length === 1 ? tasksOn() : undefined), 15_000, "the global task on the node to demote");

    // Refused: an unknown node, and promote of a manager is a no-op.
    assert.match((await leader.cli("node", "demote", "nosuchnode")).stderr, /nosuchnode/);
    assert.match(await leader.cliOk("node", "promote", target.host.name), /already a manager/);

    // Its manager certificate, kept aside to try after the demotion.
    const oldCert = mkdtempSync(join(tmpdir(), "baton-oldcert-"));
    cpSync(join(target.dataDir, "certs"), oldCert, { recursive: true });
    const asManager = async (dir: string): Promise<number> => {
      const script = `const fs=require("fs"),p=require("path"),d=process.argv[1];const r=require("https").request({host:process.argv[2],port:4242,path:"/v1/nodes",ca:fs.readFileSync(p.join(d,"ca.crt")),cert:fs.readFileSync(p.join(d,"node.crt")),key:fs.readFileSync(p.join(d,"node.key")),checkServerIdentity:()=>undefined},(s)=>{console.log(s.statusCode);s.resume()});r.on("error",(e)=>{console.log("error "+e.message)});r.end();`;
      const r = await net.exec(target.host, process.execPath, ["-e", script, dir, leader.host.address], { timeoutMs: 10_000 });
      return Number(r.stdout.trim().split(/\s/)[0]) || 0;
    };
    assert.equal(await asManager(oldCert), 200, "the manager certificate works before the demotion");

    const out = await leader.cliOk("node", "demote", target.host.name);
    assert.match(out, new RegExp(`node ${target.host.name} is now a worker`));
    assert.equal((await memberRows(leader)).length, 2);
    assert.equal((await info(target)).role, "worker");
    const cfg = JSON.parse(readFileSync(join(target.dataDir, "cluster.json"), "utf8")) as { role: string };
    assert.equal(cfg.role, "worker");
    const rows = await nodes(leader);
    assert.equal(rows.find((n) => n.ID === id || n.Hostname === target.host.name)!.ManagerStatus, "");
    assert.deepEqual(await tasksOn(), before, "the demoted node keeps its task");
    // Its old manager certificate is refused now (revoked by serial); its new one is a worker's.
    assert.equal(await asManager(oldCert), 401, "the demoted node's manager certificate is no longer accepted");
    assert.equal(await asManager(join(target.dataDir, "certs")), 403, "a worker certificate cannot use the API");
    assert.equal(existsSync(join(target.dataDir, "ca", "ca.key")), false, "the demoted node no longer holds the CA key");
    rmSync(oldCert, { recursive: true, force: true });

    const back = await leader.cliOk("node", "promote", target.host.name);
    assert.match(back, new RegExp(`node ${target.host.name} is now a manager`));
    await waitFor(async () => {
      const m = await memberRows(leader);
      return m.length === 3 && started(m);
    }, 30_000, "3 started members after the promotion");
    assert.equal((await info(target)).role, "manager");
    assert.deepEqual(await tasksOn(), before, "the promoted node keeps its task");
    await waitFor(async () => (await nodes(leader)).map((n) => n.ManagerStatus).sort().join() === "Leader,Reachable,Reachable", 20_000, "three managers again");
  });

  test("node rm --force of a live manager removes its etcd member: 2 members; its supervisor does not restart the removed member", async () => {
    const leader = await waitFor(() => leaderOf(batons), 15_000, "no leader");
    const managersUp: NetnsBaton[] = [];
    for (const b of batons) if (b !== leader && b.running && (await info(b)).role === "manager") managersUp.push(b);
    const gone = managersUp[0]!;
    const etcdPid = Number(readFileSync(join(gone.dataDir, "etcd", "etcd.pid"), "utf8"));
    assert.match(await leader.cliOk("node", "rm", "--force", gone.host.name), /\w/);
    const rows = await memberRows(leader);
    assert.equal(rows.length, 2, rows.join("\n"));
    assert.ok(started(rows), rows.join("\n"));
    const managers = (JSON.parse(await leader.cliOk("info", "--format", "json")) as { managers: string[] }).managers;
    assert.ok(!managers.some((m) => m.startsWith(`${gone.host.address}:`)), `the removed manager is no longer listed: ${managers.join(", ")}`);
    // Its etcd learns it was removed and exits; the supervisor asks the others and stops there.
    const aside = await waitFor(() => readdirSync(gone.dataDir).find((f) => f.startsWith("etcd.removed-")), 20_000, "the removed member's data moved aside");
    assert.equal(existsSync(`/proc/${etcdPid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${etcdPid}/status`, "utf8")), false, "the removed member's etcd exited");
    assert.equal(existsSync(join(gone.dataDir, aside, "tls")), false, "no member key left behind");
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(existsSync(join(gone.dataDir, "etcd")), false, "not restarted");
    assert.match(gone.output, /etcd member was removed from the cluster: not restarting it/);
    // Two members, both up: the cluster still writes.
    await leader.cliOk("service", "scale", "web=2");
  });
});
