// Mesh issue (#8): published ports, balancing, draining, probes and discovery against a real
// `baton up` with real processes; all traffic to 127.0.0.0/8, every load bounded in time.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { createSocket } from "node:dgram";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import dnsPacket from "dns-packet";
import { BatonProcess, ROOT, getJson, httpGet, waitFor, type PsRow } from "../harness/baton.js";
import { runLoad, shares } from "../harness/load.js";

const APP = join(ROOT, "test", "fixtures", "mesh-app.js");
const running = (rows: PsRow[]): PsRow[] => rows.filter((r) => r.DesiredState === "running" && r.CurrentState === "running");
const readyRows = (rows: PsRow[]): PsRow[] => running(rows).filter((r) => (r as PsRow & { Ready: boolean }).Ready);

describe("routing mesh: published ports, balancing, draining", () => {
  const baton = new BatonProcess(undefined, ["--dns-addr", "127.77.0.1:0"]);
  before(() => baton.start());
  after(() => baton.destroy());

  const allReady = (svc: string, n: number) =>
    waitFor(async () => readyRows(await baton.tasks(svc)).length === n, 15_000, `${n} ready tasks of ${svc}`);

  test("4 replicas behind an L7 and an L4 published port: every task gets its share", async () => {
    await baton.cliOk("service", "create", "--name", "web", "--replicas", "4", "-p", "18080:80/http", "node", APP);
    await baton.cliOk("service", "create", "--name", "tcpweb", "--replicas", "4", "-p", "published=18081,target=80,protocol=tcp", "node", APP);
    await allReady("web", 4);
    await allReady("tcpweb", 4);
    for (const [port, keepAlive] of [[18080, true], [18081, false]] as const) {
      const r = await runLoad({ port, durationMs: 1500, concurrency: 4, keepAlive });
      assert.equal(r.failed, 0, r.errors.join("; "));
      assert.equal(r.by.size, 4, `4 tasks answered on ${port}: ${[...r.by.keys()].join(", ")}`);
      for (const share of shares(r)) assert.ok(Math.abs(share - 25) <= 10, `share ${share.toFixed(1)} % within 25 ± 10 on ${port}`);
    }
  });

  test("kill -9 of one replica of 4 under L7 load for 6 s: no failed GET", async () => {
    const victim = running(await baton.tasks("web"))[1]!;
    // Killed 1.5 s in; the 4.5 s after it span the replacement's start and its return to the pool.
    const load = runLoad({ port: 18080, durationMs: 6000, concurrency: 8 });
    await new Promise((r) => setTimeout(r, 1500));
    process.kill(victim.Pid!, "SIGKILL");
    const r = await load;
    assert.equal(r.failed, 0, `failed: ${r.errors.join("; ")}`);
    assert.ok(r.ok > 100, `${r.ok} requests answered`);
  });

  test("kill -9 of one replica under L4 load: only connections open on it fail, new ones do not", async () => {
    await allReady("tcpweb", 4);
    const victim = running(await baton.tasks("tcpweb"))[0]!;
    const concurrency = 8;
    const load = runLoad({ port: 18081, durationMs: 3000, concurrency, keepAlive: false });
    await new Promise((r) => setTimeout(r, 800));
    process.kill(victim.Pid!, "SIGKILL");
    const r = await load;
    // At most one connection per load loop can have been open on the killed task.
    assert.ok(r.failed <= concurrency, `${r.failed} failed connections (at most the ${concurrency} that could be open on it): ${r.errors.join("; ")}`);
    process.stderr.write(`L4 kill -9: ${r.failed} failed of ${r.ok + r.failed} connections\n`);
  });

  test("scale 4 → 1 under load: draining fails no request", async () => {
    await allReady("web", 4);
    const load = runLoad({ port: 18080, path: "/slow?ms=50", durationMs: 4000, concurrency: 8 });
    await new Promise((r) => setTimeout(r, 500));
    await baton.cliOk("service", "scale", "web=1");
    const r = await load;
    assert.equal(r.failed, 0, `failed: ${r.errors.join("; ")}`);
    assert.equal(running(await baton.tasks("web")).length, 1);
  });

  test("service inspect shows the endpoints in the pool", async () => {
    const [svc] = JSON.parse(await baton.cliOk("service", "inspect", "web")) as [{ vip: string; endpoints: { vip: string; backends: { taskId: string }[] } }];
    assert.match(svc.vip, /^127\.77\.\d+\.\d+$/);
    assert.equal(svc.endpoints.backends.length, 1);
    assert.equal(svc.endpoints.backends[0]!.taskId, running(await baton.tasks("web"))[0]!.ID);
  });

  test("host mode: the task itself listens on the published port; a second one on the node stays pending, naming the port", async () => {
    await baton.cliOk("service", "create", "--detach", "--name", "hostweb", "--replicas", "2", "--publish", "published=18200,target=80,mode=host", "node", APP);
    const rows = await waitFor(async () => {
      const rs = await baton.tasks("hostweb");
      return running(rs).length === 1 && rs.some((r) => r.CurrentState === "pending") && rs;
    }, 10_000, "one running, one pending");
    assert.equal(running(rows)[0]!.Port, 18200, "its $PORT is the published port");
    assert.match((await waitFor(() => httpGet(18200), 5000, "answers on 18200"))!, /^hostweb\.\d /);
    assert.equal(rows.find((r) => r.CurrentState === "pending")!.Message, "no node satisfies: 1 node host port 18200 in use");
    await baton.cliOk("service", "rm", "hostweb");
  });

  test("UDP: a published UDP port forwards datagrams to the tasks and their answers back", async () => {
    const UDP = join(ROOT, "test", "fixtures", "udp-echo.js");
    // No TCP port to probe: a UDP-only service is ready when its task runs.
    await baton.cliOk("service", "create", "--name", "echo", "--replicas", "2", "-p", "18300:53/udp", "node", UDP);
    await waitFor(async () => readyRows(await baton.tasks("echo")).length === 2, 10_000, "echo ready");
    const answers = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const reply = await new Promise<string>((resolve, reject) => {
        const sock = createSocket("udp4");
        const timer = setTimeout(() => (sock.close(), reject(new Error("no UDP answer"))), 2000);
        sock.on("message", (m) => (clearTimeout(timer), sock.close(), resolve(m.toString())));
        sock.send(`ping ${i}`, 18300, "127.0.0.1");
      });
      assert.match(reply, new RegExp(`^echo\\.\\d ping ${i}$`));
      answers.add(reply.split(" ")[0]!);
    }
    assert.equal(answers.size, 2, "new client addresses are spread over both tasks");
    await baton.cliOk("service", "rm", "echo");
  });

  test("no ready task: a request waits for one instead of failing", async () => {
    await baton.cliOk("service", "scale", "web=0");
    await waitFor(async () => running(await baton.tasks("web")).length === 0, 10_000, "web scaled to 0");
    const pending = runLoad({ port: 18080, durationMs: 1, concurrency: 1 });
    await baton.cliOk("service", "scale", "--detach", "web=1");
    const r = await pending;
    assert.equal(r.failed, 0, `the waiting request was answered once a task was ready: ${r.errors.join("; ")}`);
  });
});

describe("probes: readiness, liveness, startup", () => {
  const baton = new BatonProcess(undefined, ["--dns-addr", "127.77.0.1:0"]);
  before(() => baton.start());
  after(() => baton.destroy());

  test("a task whose readiness fails leaves the pool without a restart, and returns when it passes", async () => {
    const notReady = join(baton.dataDir, "{slot}.notready");
    await baton.cliOk("service", "create", "--name", "rdy", "--replicas", "2", "-p", "18090:80/http", "-e", `NOT_READY_FILE=${notReady}`, "--readiness-http", "/ready", "--readiness-period", "200ms", "--readiness-failure-threshold", "1", "node", APP);
    await waitFor(async () => readyRows(await baton.tasks("rdy")).length === 2, 10_000, "both ready");
    const before1 = running(await baton.tasks("rdy")).find((r) => r.Slot === 1)!;
    writeFileSync(notReady.replace("{slot}", "1"), "");
    await waitFor(async () => readyRows(await baton.tasks("rdy")).length === 1, 5000, "slot 1 out of the pool");
    const r = await runLoad({ port: 18090, durationMs: 800, concurrency: 2 });
    assert.equal(r.failed, 0);
    assert.deepEqual([...r.by.keys()], ["rdy.2"], "only the ready task answers");
    rmSync(notReady.replace("{slot}", "1"));
    await waitFor(async () => readyRows(await baton.tasks("rdy")).length === 2, 5000, "slot 1 back in the pool");
    const after1 = running(await baton.tasks("rdy")).find((r) => r.Slot === 1)!;
    assert.equal(after1.ID, before1.ID, "readiness failure never restarts");
  });

  test("a startup probe holds liveness back: a slow starter is not killed", async () => {
    await baton.cliOk("service", "create", "--detach", "--name", "slow", "-p", "18091:80/http", "-e", "START_DELAY_MS=2500",
      "--startup-http", "/healthz", "--startup-period", "200ms", "--startup-failure-threshold", "30",
      "--liveness-http", "/healthz", "--liveness-period", "200ms", "--liveness-failure-threshold", "2", "node", APP);
    const first = await waitFor(async () => running(await baton.tasks("slow"))[0], 5000, "slow running");
    const ready = await waitFor(async () => readyRows(await baton.tasks("slow"))[0], 10_000, "slow ready after its start delay");
    assert.equal(ready.ID, first.ID, "the same task: never killed while starting");
    assert.equal((await baton.tasks("slow")).length, 1);
  });

  test("a failing liveness probe restarts the task; its error names the probe", async () => {
    const sick = join(baton.dataDir, "sick");
    await baton.cliOk("service", "create", "--name", "live", "-p", "18092:80/http", "-e", `SICK_FILE=${sick}`, "--liveness-http", "/healthz", "--liveness-period", "200ms", "--liveness-failure-threshold", "2", "--restart-delay", "0s", "node", APP);
    const first = running(await baton.tasks("live"))[0]!;
    writeFileSync(sick, "");
    const failed = await waitFor(async () => (await baton.tasks("live")).find((r) => r.ID === first.ID && r.CurrentState === "failed"), 10_000, "the sick task failed");
    assert.match(failed.Error, /^liveness probe failed: GET \/healthz: 503/);
    rmSync(sick);
    await waitFor(async () => readyRows(await baton.tasks("live")).find((r) => r.ID !== first.ID), 10_000, "a replacement ready");
  });
});

describe("service discovery", () => {
  const baton = new BatonProcess(undefined, ["--dns-addr", "127.77.0.1:0"]);
  before(() => baton.start());
  after(() => baton.destroy());

  test("a task of another service reaches web through WEB_SERVICE_HOST:WEB_SERVICE_PORT", async () => {
    await baton.cliOk("service", "create", "--name", "web", "--replicas", "2", "-p", "80/http", "node", APP);
    await waitFor(async () => readyRows(await baton.tasks("web")).length === 2, 10_000, "web ready");
    const client = `fetch("http://" + process.env.WEB_SERVICE_HOST + ":" + process.env.WEB_SERVICE_PORT + "/").then((r) => r.text()).then((t) => console.log("got " + t.trim()), (e) => console.log("error " + e.message)).finally(() => setTimeout(() => {}, 60000));`;
    await baton.cliOk("service", "create", "--name", "client", "node", "-e", client);
    const logs = await waitFor(async () => {
      const out = await baton.cliOk("service", "logs", "client");
      return /got web\.\d \d+|error/.test(out) && out;
    }, 10_000, "the client logged its answer");
    assert.match(logs, /got web\.\d \d+/);
  });

  test("the DNS responder answers the service name with its address", async () => {
    const info = (await getJson(baton.socket, "/v1/info")) as { dns: string };
    const [host, port] = [info.dns.slice(0, info.dns.lastIndexOf(":")), Number(info.dns.slice(info.dns.lastIndexOf(":") + 1))];
    const query = (name: string): Promise<dnsPacket.Packet & { rcode?: string }> =>
      new Promise((resolve, reject) => {
        const sock = createSocket("udp4");
        const timer = setTimeout(() => (sock.close(), reject(new Error("no DNS answer"))), 3000);
        sock.on("message", (m) => {
          clearTimeout(timer);
          sock.close();
          resolve(dnsPacket.decode(m));
        });
        sock.send(dnsPacket.encode({ type: "query", id: 7, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: "A", name }] }), port, host);
      });
    const [svc] = JSON.parse(await baton.cliOk("service", "inspect", "web")) as [{ vip: string }];
    const a = await query("web");
    assert.deepEqual(a.answers?.map((x) => (x as { data: string }).data), [svc.vip]);
    const none = await query("nope");
    assert.equal(none.rcode, "NXDOMAIN");
    // And the address answers: web:80 through the mesh.
    assert.match((await httpGet(80, 2000, svc.vip)) ?? "", /^web\.\d \d+/);
  });
});

describe("published ports: bad input", () => {
  const baton = new BatonProcess(undefined, ["--dns-addr", "127.77.0.1:0"]);
  before(() => baton.start());
  after(() => baton.destroy());

  test("bad ports, a port of another service, a port held outside Baton: clear errors, nothing stored", async () => {
    // Running before the checks: none of its own writes lands in a before/after window. (`sleep`
    // never listens, so it is never ready: --detach, then wait for it to run.)
    await baton.cliOk("service", "create", "--detach", "--name", "owner", "-p", "18100:80", "sleep", "60");
    await waitFor(async () => running(await baton.tasks("owner")).length === 1, 5000, "owner running");
    const outsider = createServer().listen(18101, "0.0.0.0");
    await new Promise((r) => outsider.once("listening", r));
    try {
      const cases: [string[], RegExp][] = [
        [["-p", "99999:80"], /publish\[0\]\.published: 99999 is not a port \(1-65535\)/],
        [["-p", "abc"], /publish\[0\]: "abc" is not PUBLISHED:TARGET/],
        [["-p", "18100:80"], /publish\[0\]\.published: 18100 is already published by service "owner"/],
        [["-p", "18101:80"], /publish\[0\]\.published: 18101\/tcp is in use on this host by a program outside Baton/],
        [["-p", "published=18102,target=0"], /publish\[0\]\.target: 0 is not a port/],
      ];
      for (const [flags, expected] of cases) {
        const before = (await baton.info()).revision;
        const r = await baton.cli("service", "create", "--name", "bad", ...flags, "sleep", "1");
        assert.equal(r.code, 1, flags.join(" "));
        assert.match(r.stderr, expected);
        assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, "no stack trace");
        assert.equal((await baton.info()).revision, before, "nothing stored");
      }
    } finally {
      outsider.close();
    }
  });
});
