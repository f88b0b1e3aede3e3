// Logs and stats across managers (#11): two managers on one plain etcd and a worker, in network
// namespaces. The worker's agent session ends at one manager; `service logs` (with -f) and
// `stats` through the other one are forwarded to it over mutual TLS (docs/ha.md).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { request } from "node:http";
import { BIN, HELLO, ROOT, getJson, waitFor } from "../harness/baton.js";
import { NetnsBaton, createTestNetwork, netnsSkipReason, type TestNetwork } from "../harness/netns.js";
import { etcdUnavailable, startEtcd, type EtcdCluster } from "../harness/etcd.js";
import { ELECTION_TIMEOUT_MS, HEARTBEAT_INTERVAL_MS } from "../../src/ha/etcd-args.js";

interface Info {
  nodeId: string;
  isLeader?: boolean;
  connectedNodes?: number;
}
interface StatsRow {
  task: string;
  nodeId: string;
  error?: string;
  memoryBytes?: number;
  cpus?: number;
}

const skip = netnsSkipReason() ?? etcdUnavailable();
if (skip && process.env.CI === "true") throw new Error(`CI=true and ${skip}`);
if (skip) console.log(`# ha-forward skipped: ${skip}`);

describe("logs and stats through a manager without the node's session", { ...(skip ? { skip } : {}) }, () => {
  let net: TestNetwork;
  let etcd: EtcdCluster;
  const managers: NetnsBaton[] = [];
  let worker: NetnsBaton;
  /** The manager holding the worker's session, and the other one. */
  let near: NetnsBaton;
  let far: NetnsBaton;
  let workerId: string;

  before(async () => {
    net = await createTestNetwork({ hosts: 3, prefix: "hf" });
    const [h1, h2, h3] = net.hosts as [typeof net.hosts[0], typeof net.hosts[0], typeof net.hosts[0]];
    // Baton's managed raft timings: the 1 s lease a managed etcd grants (2 s with etcd's defaults),
    // so a lost manager's key is gone before its agents can have reconnected (the last test).
    etcd = await startEtcd({ members: 1, raftTiming: { heartbeatMs: HEARTBEAT_INTERVAL_MS, electionMs: ELECTION_TIMEOUT_MS, preVote: true }, member: () => ({ host: h1.address, wrap: (cmd) => ["ip", "netns", "exec", h1.ns, ...cmd] }) });
    const store = `etcd://${etcd.endpoints.map((e) => e.replace(/^http:\/\//, "")).join(",")}`;
    const m1 = new NetnsBaton(net, h1, { argv: ["init", "--advertise-addr", h1.address, "--store", store], logLevel: "info" });
    managers.push(m1);
    await m1.start();
    const m2 = new NetnsBaton(net, h2, { argv: ["join", "--token", (await m1.cliOk("join-token", "manager", "-q")).trim(), "--advertise-addr", h2.address, `${h1.address}:4242`], logLevel: "info" });
    managers.push(m2);
    await m2.start();
    // Through m2: the worker's session starts on the manager that does not lead (m1, first, leads).
    worker = new NetnsBaton(net, h3, { argv: ["join", "--token", (await m1.cliOk("join-token", "worker", "-q")).trim(), `${h2.address}:4242`], logLevel: "info" });
    await worker.start();
    workerId = ((await getJson(worker.socket, "/v1/info")) as Info).nodeId;
    // Tasks on the worker only.
    for (const h of ["h1", "h2"]) await m1.cliOk("node", "update", "--availability", "drain", h);
    const holders = await waitFor(
      async () => {
        const infos = await Promise.all(managers.map((m) => getJson(m.socket, "/v1/info") as Promise<Info>));
        const i = infos.findIndex((x) => x.connectedNodes === 1);
        return i >= 0 && infos.filter((x) => x.connectedNodes === 1).length === 1 && i + 1;
      },
      15_000,
      "the worker's session never settled on one manager",
    );
    near = managers[holders - 1]!;
    far = managers.find((m) => m !== near)!;
    await far.cliOk("service", "create", "--name", "web", "--replicas", "1", process.execPath, HELLO);
  });
  after(async () => {
    await worker?.destroy().catch(() => undefined);
    for (const m of managers) await m.destroy().catch(() => undefined);
    await etcd?.stop();
    await net?.destroy();
  });

  test("service logs through the other manager: the worker's lines, as through the near one", async () => {
    const line = new RegExp(`web\\.1\\.\\w+@h3 +\\| listening on \\d+`);
    const logs = await waitFor(async () => {
      const r = await far.cli("service", "logs", "web");
      return r.code === 0 && line.test(r.stdout) && r.stdout;
    }, 15_000, "no forwarded log line");
    assert.match(logs, line);
    assert.equal(logs, await near.cliOk("service", "logs", "web"), "the same lines through either manager");
  });

  test("service logs -f through the other manager follows new lines and new tasks", async () => {
    const cli = spawn(process.execPath, [BIN, "service", "logs", "-f", "web"], { cwd: ROOT, env: { ...process.env, BATON_HOST: `unix://${far.socket}` }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    cli.stdout.on("data", (d: Buffer) => (out += d.toString()));
    cli.stderr.on("data", (d: Buffer) => (out += d.toString()));
    try {
      await waitFor(() => /web\.1\.\w+@h3 +\| listening on/.test(out), 15_000, () => `no first line: ${out}`);
      // A second task (on the worker, whose session is on the other manager) joins the stream.
      await far.cliOk("service", "scale", "web=2");
      await waitFor(() => /web\.2\.\w+@h3 +\| listening on/.test(out), 20_000, () => `the new task's line never came: ${out}`);
      // And a line written later by a running task: SIGTERM makes hello log before it exits.
      await far.cliOk("service", "scale", "web=1");
      await waitFor(() => /web\.2\.\w+@h3 +\| SIGTERM: closing/.test(out), 20_000, () => `no later line: ${out}`);
      assert.equal(cli.exitCode, null, "still following");
    } finally {
      cli.kill();
    }
  });

  test("stats through the other manager: the worker's task sampled, no error", async () => {
    const rows = await waitFor(async () => {
      const r = await far.cli("stats", "--format", "json");
      if (r.code !== 0) return false;
      const list = r.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as StatsRow);
      return list.length === 1 && list[0]!.error === undefined && list;
    }, 15_000, "no forwarded stats row");
    assert.equal(rows[0]!.nodeId, workerId);
    assert.ok((rows[0]!.memoryBytes ?? 0) > 1024 * 1024, `memory ${rows[0]!.memoryBytes}`);
  });

  test("a forwarded request is not forwarded again: the far manager alone answers that the node is not connected here", async () => {
    const task = ((await getJson(far.socket, "/v1/tasks?service=web")) as { id: string; desiredState: string }[]).find((t) => t.desiredState === "running")!;
    const res = await new Promise<string>((resolve, reject) => {
      const req = request(
        { socketPath: far.socket, path: `/v1/tasks/${task.id}/logs`, headers: { "x-baton-forwarded": "1" } },
        (r) => {
          let b = "";
          r.on("data", (c: Buffer) => (b += c.toString()));
          r.on("end", () => resolve(b));
        },
      );
      req.on("error", reject);
      req.end();
    });
    assert.match(res, /"error":"node \w+ is not connected/);
  });

  // Last: it cuts a manager off. The lost manager's key expires (1 s lease) before its agents can
  // have found another manager (no connection reset from a cut-off host: 3 heartbeat periods + 1 s
  // to call it silent, then a reconnection and a publication); the leader gives their nodes that
  // time instead of marking them down after the 1.5 s grace and replacing their running tasks.
  // (A kill -9 is the easy case: the agent's connection is reset and it reconnects in ~0.3 s.)
  test("a partition of the follower holding the worker's session: the worker's node never goes down, its task keeps running (same id); the session moves to the leader", async (t) => {
    assert.ok(((await getJson(far.socket, "/v1/info")) as Info).isLeader, "precondition: the manager without the worker's session leads");
    const runningIds = async (): Promise<string[]> =>
      ((await getJson(far.socket, "/v1/tasks?service=web")) as { id: string; desiredState: string; status: { state: string } }[])
        .filter((x) => x.desiredState === "running" && x.status.state === "running").map((x) => x.id).sort();
    const before = await runningIds();
    assert.equal(before.length, 1);
    const killedAt = Date.now();
    await net.partition(near.host);
    const states = new Set<string>();
    let movedMs: number | undefined;
    while (Date.now() - killedAt < 7000) {
      const node = (await getJson(far.socket, `/v1/nodes/${workerId}`)) as { status: { state: string } };
      states.add(node.status.state);
      if (movedMs === undefined && ((await getJson(far.socket, "/v1/info")) as Info).connectedNodes === 1) movedMs = Date.now() - killedAt;
      await new Promise((r) => setTimeout(r, 100));
    }
    t.diagnostic(`the worker's session was on the other manager ${movedMs ?? "never"} ms after the partition`);
    assert.deepEqual([...states], ["ready"], "the worker's node stayed ready");
    assert.ok(movedMs !== undefined, "the worker's agent reconnected to the other manager");
    assert.deepEqual(await runningIds(), before, "the same task runs: nothing replaced");
    // Its logs are now served by the manager holding the session.
    assert.match(await far.cliOk("service", "logs", "web"), /web\.1\.\w+@h3 +\| listening on \d+/);
  });
});
