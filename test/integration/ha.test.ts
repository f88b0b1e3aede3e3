// HA managers (#11) on real hosts: 4 network namespaces — h1..h3 each run an etcd member and a
// baton manager (h1 `baton init --store etcd://…`, h2 and h3 `baton join` with the manager
// token), h4 a worker. The leader's baton is killed -9 under a write load, then the next
// leader's host is partitioned (veth down). The tests run in order on one cluster.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { HELLO, getJson, runCli, waitFor } from "../harness/baton.js";
import { NetnsBaton, createTestNetwork, netnsSkipReason, type TestNetwork } from "../harness/netns.js";
import { etcdUnavailable, startEtcd, type EtcdCluster } from "../harness/etcd.js";
import { checkHistory, recordHistory, serviceModel } from "../harness/linearizability/index.js";

interface Row {
  ID: string;
  Name: string;
  Node: string;
  DesiredState: string;
  CurrentState: string;
}
interface NodeRow {
  Hostname: string;
  Status: string;
  ManagerStatus: string;
}
interface Info {
  nodeId: string;
  isLeader?: boolean;
  leader?: string;
}

const skip = netnsSkipReason() ?? etcdUnavailable();

describe("HA managers on etcd: leader kill -9 and partition under load", { skip }, () => {
  let net: TestNetwork;
  let etcd: EtcdCluster;
  const managers: NetnsBaton[] = [];
  let worker: NetnsBaton;

  const info = (m: NetnsBaton): Promise<Info> => getJson(m.socket, "/v1/info") as Promise<Info>;
  const live = (): NetnsBaton[] => managers.filter((m) => m.running);
  const leaderOf = async (among: NetnsBaton[]): Promise<NetnsBaton | undefined> => {
    for (const m of among) if ((await info(m).catch(() => undefined))?.isLeader) return m;
    return undefined;
  };
  const nodes = async (m: NetnsBaton): Promise<NodeRow[]> =>
    (await m.cliOk("node", "ls", "--format", "json")).trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as NodeRow);
  const ps = async (m: NetnsBaton, svc: string): Promise<Row[]> =>
    (await m.cliOk("service", "ps", svc, "--format", "json")).trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Row);
  const running = (rows: Row[]): Row[] => rows.filter((r) => r.DesiredState === "running" && r.CurrentState === "running");

  /** Clients creating services through the managers, round robin, until stopped: what was acknowledged. */
  const writeLoad = (clients: number) => {
    let stop = false;
    const acked: string[] = [];
    let failed = 0;
    let n = 0;
    const loops = Array.from({ length: clients }, async (_, c) => {
      while (!stop) {
        const targets = live();
        const m = targets[n++ % targets.length]!;
        const name = `load-${c}-${n}`;
        const r = await runCli(m.socket, ["service", "create", "--detach", "--name", name, "--replicas", "0", process.execPath, HELLO]);
        if (r.code === 0) acked.push(name);
        else failed++;
      }
    });
    return {
      stop: async () => {
        stop = true;
        await Promise.all(loops);
        return { acked, failed };
      },
    };
  };

  before(async () => {
    net = await createTestNetwork({ hosts: 4, prefix: "ha" });
    const [h1, h2, h3, h4] = net.hosts as [typeof net.hosts[0], typeof net.hosts[0], typeof net.hosts[0], typeof net.hosts[0]];
    etcd = await startEtcd({ members: 3, member: (i) => ({ host: net.hosts[i]!.address, wrap: (cmd) => ["ip", "netns", "exec", net.hosts[i]!.ns, ...cmd] }) });
    const store = `etcd://${etcd.endpoints.map((e) => e.replace(/^http:\/\//, "")).join(",")}`;
    const m1 = new NetnsBaton(net, h1, { argv: ["init", "--advertise-addr", h1.address, "--store", store], logLevel: "info" });
    managers.push(m1);
    await m1.start();
    const managerToken = (await m1.cliOk("join-token", "manager", "-q")).trim();
    for (const h of [h2, h3]) {
      const m = new NetnsBaton(net, h, { argv: ["join", "--token", managerToken, "--advertise-addr", h.address, `${h1.address}:4242`], logLevel: "info" });
      managers.push(m);
      await m.start();
    }
    const workerToken = (await m1.cliOk("join-token", "worker", "-q")).trim();
    worker = new NetnsBaton(net, h4, { argv: ["join", "--token", workerToken, `${h1.address}:4242`], logLevel: "info" });
    await worker.start();
  });
  after(async () => {
    if (process.env.BATON_HA_LOGS) {
      const { writeFileSync } = await import("node:fs");
      for (const b of [...managers, worker]) if (b) writeFileSync(`${process.env.BATON_HA_LOGS}/${b.host.name}.log`, b.output);
    }
    await worker?.destroy().catch(() => undefined);
    for (const m of managers) await m.destroy().catch(() => undefined);
    await etcd?.stop();
    net?.destroy();
  });

  test("three managers joined on one etcd: one Leader, two Reachable; every manager serves the API", async () => {
    const m1 = managers[0]!;
    const rows = await waitFor(
      async () => {
        const list = await nodes(m1);
        return list.length === 4 && list.every((n) => n.Status === "Ready") && list.filter((n) => n.ManagerStatus === "Reachable").length === 2 && list;
      },
      15_000,
      "nodes never settled: 4 Ready, one Leader, two Reachable",
    );
    assert.deepEqual(rows.map((n) => n.ManagerStatus).sort(), ["", "Leader", "Reachable", "Reachable"]);
    // Tasks on the worker only: managers' own agents are drained, so a manager's death moves nothing.
    for (const h of ["h1", "h2", "h3"]) await m1.cliOk("node", "update", "--availability", "drain", h);
    // Created through a follower: API writes go straight to etcd.
    const follower = managers.find((m) => m !== m1)!;
    await follower.cliOk("service", "create", "--name", "web", "--replicas", "4", process.execPath, HELLO);
    for (const m of managers) {
      const seen = running(await ps(m, "web"));
      assert.equal(seen.length, 4, "a linearizable read on every manager sees the 4 running tasks");
      assert.ok(seen.every((r) => r.Node === "h4"));
    }
  });

  test("kill -9 of the leader's baton under a write load: a new leader within 2 s, no acknowledged write lost, tasks untouched, no duplicates", async (t) => {
    const old = (await leaderOf(managers))!;
    assert.ok(old, "a leader");
    const before = running(await ps(old, "web")).map((r) => r.ID).sort();
    const load = writeLoad(3);
    // Beside the load, the history recorder: 2 clients per manager, the leader's first. Its
    // clients stop at the kill (their request in flight then is an unknown outcome); the others
    // go on through the failover, and the whole history must be linearizable.
    const dying = new AbortController();
    const done = new AbortController();
    const seed = Date.now();
    const recording = recordHistory({
      endpoints: [old, ...managers.filter((m) => m !== old)].map((m) => ({ socketPath: m.socket })),
      endpointSignals: [dying.signal],
      signal: done.signal,
      clients: 6,
      opsPerClient: 400,
      names: ["fo-a", "fo-b", "fo-c", "fo-d"],
      staleReads: 0.1,
      seed,
    });
    await new Promise((r) => setTimeout(r, 1000));
    const killedAt = Date.now();
    const killedAtPerf = performance.now();
    dying.abort();
    await old.kill("SIGKILL");
    const next = await waitFor(() => leaderOf(live()), 10_000, "no new leader after the leader's kill -9");
    const took = Date.now() - killedAt;
    t.diagnostic(`new leader ${next.host.name} ${took} ms after kill -9 of ${old.host.name}`);
    console.log(`# failover: new leader ${took} ms after kill -9 of the leader's baton`);
    await new Promise((r) => setTimeout(r, 1500));
    const { acked, failed } = await load.stop();
    done.abort();
    const history = await recording;
    t.diagnostic(`writes during failover: ${acked.length} acknowledged, ${failed} refused`);
    const afterKill = history.filter((o) => o.invokeAt > killedAtPerf && o.outcome === "ok");
    t.diagnostic(`history (seed ${seed}): ${history.length} operations, ${history.filter((o) => o.outcome === "timeout").length} without an answer, ${afterKill.length} answered ok after the kill`);
    assert.ok(afterKill.some((o) => o.op !== "get"), "writes were acknowledged through the surviving managers after the kill");
    assert.ok(afterKill.some((o) => o.op === "get" && !o.input.stale), "linearizable reads were answered after the kill");
    const checked = checkHistory(serviceModel({ systemWrites: true }), history);
    assert.ok(checked.ok, checked.ok ? "" : checked.text);
    // A follower finds the dead leader's port refusing and revokes its lease (docs/ha.md): ~0.5–0.8 s
    // measured, not the lease TTL (2 s with this etcd's default timings).
    assert.ok(took < 2000, `failover took ${took} ms`);
    const names = new Set((await next.cliOk("service", "ls", "--format", "json")).trim().split("\n").filter(Boolean).map((l) => (JSON.parse(l) as { Name: string }).Name));
    const lost = acked.filter((n) => !names.has(n));
    assert.deepEqual(lost, [], "every acknowledged create is there");
    // The worker kept its tasks: the same 4 task ids still running, nothing started twice.
    await new Promise((r) => setTimeout(r, 2000));
    const after = running(await ps(next, "web"));
    assert.deepEqual(after.map((r) => r.ID).sort(), before);
    assert.equal(new Set(after.map((r) => r.Name)).size, 4, "one running task per slot");
  });

  test("a partition of the leader's host: another leader, and the cut-off one stops leading", async (t) => {
    const old = (await waitFor(() => leaderOf(live()), 10_000, "no leader"))!;
    const cutAt = Date.now();
    await net.partition(old.host);
    try {
      const next = await waitFor(() => leaderOf(live().filter((m) => m !== old)), 10_000, "no new leader after the partition");
      t.diagnostic(`new leader ${next.host.name} ${Date.now() - cutAt} ms after the partition of ${old.host.name}`);
      await waitFor(async () => (await info(old)).isLeader === false, 5000, "the partitioned manager kept leading");
      const updateAt = Date.now();
      // The cluster goes on: an update through the new leader completes, one task per slot.
      // A write whose etcd call went to the cut-off member is answered UNAVAILABLE ("may or may not
      // have been applied") until the client's breaker skips that member: a client retries.
      await waitFor(
        async () => {
          const r = await next.cli("service", "update", "--env-add", "V=2", "--update-parallelism", "2", "--update-monitor", "1s", "web");
          if (r.code !== 0) t.diagnostic(`update refused after ${Date.now() - updateAt} ms: ${r.stderr.trim().split("\n")[0]}`);
          return r.code === 0;
        },
        // The update itself takes ~3 s (2 batches, 1 s monitor each); the etcd clients route
        // around the cut-off member within ~1 s (src/store/etcd/endpoint-health.ts).
        45_000,
        "the update never completed through the new leader",
      );
      t.diagnostic(`update through the new leader completed in ${Date.now() - updateAt} ms`);
      const rows = running(await ps(next, "web"));
      assert.equal(rows.length, 4);
      assert.equal(new Set(rows.map((r) => r.Name)).size, 4);
    } finally {
      await net.heal(old.host);
    }
    const healAt = Date.now();
    // Healed: its etcd connections, dead since the cut, are found dead by gRPC keepalive and redialled.
    await waitFor(async () => (await nodes(old).catch(() => [])).filter((n) => n.ManagerStatus === "Leader").length === 1, 20_000, "the healed manager never saw a leader again");
    t.diagnostic(`the healed manager answered with a leader ${Date.now() - healAt} ms after the heal`);
  });
});

