// Multi-node (#10) on real hosts: 3 network namespaces on a bridge, each with its own `baton`
// process and data dir — h1 the manager (`baton init`), h2 and h3 workers (`baton join`). Traffic
// goes only to the test subnet's addresses. The tests run in order on one cluster.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BIN, HELLO, ROOT, waitFor } from "../harness/baton.js";
import { NetnsBaton, createTestNetwork, httpGetFrom, netnsSkipReason, type TestHost, type TestNetwork } from "../harness/netns.js";

interface Row {
  ID: string;
  Name: string;
  Node: string;
  DesiredState: string;
  CurrentState: string;
  Ready?: boolean | string;
}
interface NodeRow {
  ID: string;
  Hostname: string;
  Status: string;
  Address: string;
  ManagerStatus: string;
}

/** Bounded HTTP load from inside a host: `n` workers GET url until `ms` passed; prints {ok, failed}. */
const LOAD = `const http=require("http");const [url,ms,n]=[process.argv[1],+process.argv[2],+process.argv[3]];let ok=0,failed=0;const end=Date.now()+ms;
const one=()=>{if(Date.now()>end)return Promise.resolve();return new Promise(r=>{const q=http.get(url,{agent:false,timeout:3000},s=>{s.resume();s.on("end",()=>{s.statusCode===200?ok++:failed++;r()})});q.on("timeout",()=>q.destroy());q.on("error",()=>{failed++;r()})}).then(one)};
Promise.all(Array.from({length:n},one)).then(()=>console.log(JSON.stringify({ok,failed})))`;

/**
 * Running hello apps on this machine (the namespaces share one pid space): duplicates show here.
 * Exactly `node HELLO`, not the task's supervising shell whose command line names it too.
 */
const helloProcesses = (): number => {
  const exact = `${process.execPath} ${HELLO}`.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  try {
    return Number(execFileSync("pgrep", ["-fcx", exact], { encoding: "utf8" }).trim());
  } catch {
    return 0; // pgrep exits 1 when nothing matches
  }
};

describe("multi-node: init, join, sessions over mTLS, node loss, drain, rebalance", { skip: netnsSkipReason() }, () => {
  let net: TestNetwork;
  let h1: TestHost, h2: TestHost, h3: TestHost;
  let m: NetnsBaton;
  const workers = new Map<string, NetnsBaton>();
  let token = "";
  const scratch = mkdtempSync(join(tmpdir(), "baton-cluster-"));

  const nodes = async (): Promise<NodeRow[]> =>
    (await m.cliOk("node", "ls", "--format", "json")).trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as NodeRow);
  const ps = async (svc: string): Promise<Row[]> =>
    (await m.cliOk("service", "ps", svc, "--format", "json")).trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Row);
  const running = (rows: Row[]): Row[] => rows.filter((r) => r.DesiredState === "running" && r.CurrentState === "running");
  const hostsOf = (rows: Row[]): string[] => running(rows).map((r) => r.Node).sort();
  const load = async (from: TestHost, url: string, ms: number, during: () => Promise<void>): Promise<{ ok: number; failed: number }> => {
    const run = net.exec(from, process.execPath, ["-e", LOAD, url, String(ms), "4"], { timeoutMs: ms + 15_000 });
    await during();
    const r = await run;
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as { ok: number; failed: number };
  };
  /** `baton join` run to its end (a refused join exits): code and output. */
  const tryJoin = (host: TestHost, tok: string) =>
    net.exec(host, process.execPath, [BIN, "join", "--token", tok, "--data-dir", mkdtempSync(join(scratch, "j-")), "--dns-addr", "127.0.0.1:0", `${h1.address}:4242`], { timeoutMs: 20_000, cwd: ROOT });
  const worker = (host: TestHost, argv: string[]): NetnsBaton => {
    const w = new NetnsBaton(net, host, { argv, logLevel: "info" });
    workers.set(host.name, w);
    return w;
  };

  before(async () => {
    net = await createTestNetwork({ hosts: 3 });
    [h1, h2, h3] = [net.hosts[0]!, net.hosts[1]!, net.hosts[2]!];
    m = new NetnsBaton(net, h1, { argv: ["init", "--advertise-addr", h1.address], logLevel: "info" });
    await m.start();
    token = (await m.cliOk("join-token", "worker", "-q")).trim();
  });
  after(async () => {
    for (const w of workers.values()) await w.destroy().catch(() => undefined);
    await m?.destroy().catch(() => undefined);
    net?.destroy();
    rmSync(scratch, { recursive: true, force: true });
  });

  test("init prints the join command; wrong, foreign and rotated tokens are refused; the right one joins in about a second", async (t) => {
    assert.match(m.output, new RegExp(`baton join --token BTN-1-[a-z2-7]{52}-[a-z2-7]{26} ${h1.address.replace(/\./g, "\\.")}:4242`));
    const [, fp, secret] = /^BTN-1-([a-z2-7]{52})-([a-z2-7]{26})$/.exec(token)!;
    const wrong = await tryJoin(h2, `BTN-1-${fp}-${"a".repeat(26)}`);
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /join token is not valid/);
    const foreign = await tryJoin(h2, `BTN-1-${"b".repeat(52)}-${secret}`);
    assert.notEqual(foreign.code, 0);
    assert.match(foreign.stderr, /CA does not match the join token/);
    const rotated = (await m.cliOk("join-token", "worker", "-q", "--rotate")).trim();
    assert.notEqual(rotated, token);
    const old = await tryJoin(h2, token);
    assert.notEqual(old.code, 0);
    assert.match(old.stderr, /not valid/);
    token = rotated;

    for (const h of [h2, h3]) {
      const t0 = Date.now();
      await worker(h, ["join", "--token", token, `${h1.address}:4242`]).start();
      await waitFor(async () => (await nodes()).some((n) => n.Hostname === h.name && n.Status === "Ready"), 10_000, `${h.name} Ready`);
      t.diagnostic(`${h.name} joined and Ready after ${Date.now() - t0} ms (process start included)`);
    }
    const list = await nodes();
    assert.deepEqual(list.map((n) => [n.Hostname, n.Status, n.Address, n.ManagerStatus]).sort(), [
      ["h1", "Ready", h1.address, "Leader"],
      ["h2", "Ready", h2.address, ""],
      ["h3", "Ready", h3.address, ""],
    ]);
  });

  test("constraints on labels, spread over a label, max replicas per node", async () => {
    await m.cliOk("node", "update", "--label-add", "zone=a", "h1");
    await m.cliOk("node", "update", "--label-add", "zone=b", "--label-add", "tier=web", "h2");
    await m.cliOk("node", "update", "--label-add", "zone=b", "--label-add", "tier=web", "h3");
    await m.cliOk("service", "create", "--name", "c1", "--replicas", "4", "--constraint", "node.labels.tier==web", "sleep", "3600");
    assert.deepEqual([...new Set(hostsOf(await ps("c1")))], ["h2", "h3"]);
    await m.cliOk("service", "create", "--name", "c2", "--replicas", "4", "--placement-pref", "spread=node.labels.zone", "--replicas-max-per-node", "2", "sleep", "3600");
    const c2 = hostsOf(await ps("c2"));
    assert.equal(c2.filter((h) => h === "h1").length, 2, `zone a gets half: ${c2.join(",")}`);
    assert.equal(c2.length, 4);
    // Max per node: 7 replicas on 3 nodes with at most 2 each leave one pending, saying why.
    await m.cliOk("service", "create", "--name", "c3", "--replicas", "7", "--replicas-max-per-node", "2", "--detach", "sleep", "3600");
    await waitFor(async () => running(await ps("c3")).length === 6, 10_000, "6 of c3 running");
    const out = await m.cliOk("service", "ps", "c3");
    assert.match(out, /3 nodes max replicas per node/i);
    await m.cliOk("service", "rm", "c1", "c2", "c3");
  });

  test("a published port answers on all three hosts; logs come from every node", async () => {
    await m.cliOk("service", "create", "--name", "web", "--replicas", "3", "-p", "8080:80", "--health-http", "/", "--health-interval", "1s", process.execPath, HELLO);
    assert.deepEqual(hostsOf(await ps("web")), ["h1", "h2", "h3"]);
    for (const from of [h1, h2, h3]) for (const to of [h1, h2, h3]) assert.ok(await waitFor(() => httpGetFrom(net, from, `http://${to.address}:8080/`), 5000, `${to.name}:8080 from ${from.name}`));
    const logs = await m.cliOk("service", "logs", "web");
    for (const h of ["h1", "h2", "h3"]) assert.match(logs, new RegExp(`web\\.\\d\\.\\w+@${h} +\\| listening on`), logs);
  });

  test("drain moves tasks off a node with no failed request through a published port; active again takes tasks", async () => {
    const r = await load(h1, `http://${h2.address}:8080/`, 4000, async () => {
      await new Promise((res) => setTimeout(res, 500));
      await m.cliOk("node", "update", "--availability", "drain", "h3");
      await waitFor(async () => !hostsOf(await ps("web")).includes("h3") && running(await ps("web")).length === 3, 15_000, "web off h3");
    });
    assert.equal(r.failed, 0, JSON.stringify(r));
    assert.ok(r.ok > 50, JSON.stringify(r));
    await m.cliOk("node", "update", "--availability", "active", "h3");
  });

  test("rebalance after a node is active again moves tasks to it with no failed request", async () => {
    const r = await load(h1, `http://${h1.address}:8080/`, 4000, async () => {
      await m.cliOk("service", "rebalance", "web");
    });
    assert.equal(r.failed, 0, JSON.stringify(r));
    assert.deepEqual(hostsOf(await ps("web")), ["h1", "h2", "h3"]);
    assert.equal(helloProcesses(), 3);
  });

  const lose = async (t: { diagnostic(s: string): void }, host: TestHost, how: string, cut: () => Promise<void>): Promise<void> => {
    const t0 = Date.now();
    await cut();
    await waitFor(
      async () => {
        const rows = running(await ps("web"));
        return rows.length === 3 && !rows.some((r) => r.Node === host.name) && rows.every((r) => r.Ready === true || r.Ready === "yes" || r.Ready === undefined);
      },
      15_000,
      `web's replicas off ${host.name} after ${how}`,
      100,
    );
    t.diagnostic(`${how}: ${host.name}'s replica running (ready) elsewhere after ${Date.now() - t0} ms`);
    assert.equal((await nodes()).find((n) => n.Hostname === host.name)?.Status, "Down");
    assert.ok(await httpGetFrom(net, h1, `http://${h1.address}:8080/`));
  };

  test("SIGKILL of a worker's baton: its replica runs elsewhere within seconds; back, the stale task is stopped", async (t) => {
    const w3 = workers.get("h3")!;
    await lose(t, h3, "SIGKILL of h3's baton", () => w3.kill("SIGKILL"));
    // Its task still runs meanwhile (an agent crash stops no workload): one more than desired.
    assert.equal(helloProcesses(), 4);
    await w3.start();
    await waitFor(async () => (await nodes()).find((n) => n.Hostname === "h3")?.Status === "Ready", 10_000, "h3 Ready again");
    await waitFor(() => helloProcesses() === 3, 10_000, () => `3 hello processes (now ${helloProcesses()})`);
    assert.equal(running(await ps("web")).length, 3);
  });

  test("a partition of a worker (veth down): its replica runs elsewhere; healed, no duplicates", async (t) => {
    await lose(t, h2, "partition of h2", () => net.partition(h2));
    await net.heal(h2);
    await waitFor(async () => (await nodes()).find((n) => n.Hostname === "h2")?.Status === "Ready", 15_000, "h2 Ready again");
    await waitFor(() => helloProcesses() === 3, 10_000, () => `3 hello processes (now ${helloProcesses()})`);
    assert.equal(running(await ps("web")).length, 3);
  });

  test("the remote CLI works over mutual TLS with a client certificate, and is refused without one", async () => {
    const dir = join(scratch, "client");
    await m.cliOk("cert", "create", "--out", dir);
    const env = { ...process.env, BATON_HOST: `tcp://${h1.address}:4242`, BATON_CERT_PATH: dir };
    const ok = await net.exec(h2, process.execPath, [BIN, "service", "ls"], { env, cwd: ROOT });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /web +replicated +3\/3/);
    const none = await net.exec(h2, "curl", ["-sk", `https://${h1.address}:4242/v1/services`], { cwd: ROOT });
    assert.match(none.stdout, /UNAUTHORIZED/);
    // A worker's own certificate is a node's, not a user's: the API refuses it.
    const wdir = workers.get("h2")!.dataDir;
    const asWorker = await net.exec(h2, "curl", ["-sk", "--cacert", join(wdir, "certs", "ca.crt"), "--cert", join(wdir, "certs", "node.crt"), "--key", join(wdir, "certs", "node.key"), `https://${h1.address}:4242/v1/services`]);
    assert.match(asWorker.stdout, /FORBIDDEN/);
  });

  test("a removed node stops its tasks and cannot reconnect", async () => {
    const refused = await m.cli("node", "rm", "h3");
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /is up/);
    await m.cliOk("node", "rm", "--force", "h3");
    await waitFor(async () => running(await ps("web")).filter((r) => r.Node !== "h3").length === 3, 15_000, "web replaced off h3");
    await waitFor(() => helloProcesses() === 3, 10_000, () => `h3 stopped its task (now ${helloProcesses()} hello processes)`);
    // Restarted, it is refused at its first handshake and says so.
    const w3 = workers.get("h3")!;
    await w3.kill("SIGKILL");
    await assert.rejects(w3.start(), /removed from the cluster/);
    assert.ok(!(await nodes()).some((n) => n.Hostname === "h3"));
    assert.equal(helloProcesses(), 3);
    // It forgot the cluster: a later `baton join` without a token does not quietly become something else.
    assert.equal(existsSync(join(w3.dataDir, "cluster.json")), false);
    const resume = await net.exec(h3, process.execPath, [BIN, "join", "--data-dir", w3.dataDir, "--dns-addr", "127.0.0.1:0"], { timeoutMs: 20_000, cwd: ROOT });
    assert.notEqual(resume.code, 0);
    assert.match(resume.stderr, /not a worker of a cluster: a first join needs --token/);
  });
});

describe("from one host to a cluster: `baton init` on a `baton up` data dir keeps its services and running tasks", { skip: netnsSkipReason() }, () => {
  let net: TestNetwork;
  let b: NetnsBaton | undefined;
  let w: NetnsBaton | undefined;
  before(async () => {
    net = await createTestNetwork({ hosts: 2 });
  });
  after(async () => {
    await w?.destroy().catch(() => undefined);
    await b?.destroy().catch(() => undefined);
    net?.destroy();
  });

  test("the same tasks (same pids) run on after init, and a joined worker takes new replicas", async () => {
    const [h1, h2] = [net.hosts[0]!, net.hosts[1]!];
    const up = new NetnsBaton(net, h1, { argv: ["up"], logLevel: "info" });
    b = up;
    await up.start();
    await up.cliOk("service", "create", "--name", "app", "--replicas", "2", "sleep", "3600");
    const pids = (await up.tasks("app")).map((r) => r.Pid).sort();
    await up.kill("SIGTERM");

    const init = new NetnsBaton(net, h1, { argv: ["init", "--advertise-addr", h1.address], dataDir: up.dataDir, logLevel: "info" });
    b = init;
    await init.start();
    assert.deepEqual((await init.tasks("app")).filter((r) => r.CurrentState === "running").map((r) => r.Pid).sort(), pids);
    const token = (await init.cliOk("join-token", "worker", "-q")).trim();
    w = new NetnsBaton(net, h2, { argv: ["join", "--token", token, `${h1.address}:4242`], logLevel: "info" });
    await w.start();
    await init.cliOk("service", "scale", "app=4");
    const rows = (await init.cliOk("service", "ps", "app", "--format", "json")).trim().split("\n").map((l) => JSON.parse(l) as Row);
    assert.deepEqual(rows.filter((r) => r.CurrentState === "running").map((r) => r.Node).sort(), ["h1", "h1", "h2", "h2"]);
    // A later start resumes from the data dir: no flags needed.
    await init.kill("SIGTERM");
    const again = new NetnsBaton(net, h1, { argv: ["init"], dataDir: up.dataDir, logLevel: "info" });
    b = again;
    await again.start();
    await waitFor(async () => (await again.cliOk("node", "ls")).match(/Ready/g)?.length === 2, 10_000, "both nodes Ready after the manager restarted");
  });
});
