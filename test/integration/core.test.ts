// Core issue (#3): the real CLI against a real `baton up` in a temp dir.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BatonProcess, HELLO, httpGet, isAlive, waitFor, type PsRow } from "../harness/baton.js";

const running = (rows: PsRow[]): PsRow[] => rows.filter((r) => r.DesiredState === "running" && r.CurrentState === "running");

describe("baton up: run, heal, report", () => {
  const baton = new BatonProcess();
  before(() => baton.start());
  after(() => baton.destroy());

  test("the API socket is 0600", () => {
    assert.equal(statSync(baton.socket).mode & 0o777, 0o600);
  });

  test("3 replicas of a real HTTP server converge and answer on their PORTs", async () => {
    const out = await baton.cliOk("service", "create", "--name", "web", "--replicas", "3", "-e", "GREETING=hi", "node", HELLO);
    assert.match(out, /verify: Service web converged/);
    const ls = await baton.cliOk("service", "ls");
    assert.match(ls, /web\s+replicated\s+3\/3/);
    const rows = running(await baton.tasks("web"));
    assert.deepEqual(rows.map((r) => r.Name).sort(), ["web.1", "web.2", "web.3"]);
    for (const r of rows) {
      const body = await waitFor(() => httpGet(r.Port!), 5000, `${r.Name} answering on ${r.Port}`);
      assert.match(body, new RegExp(`^hi from web\\.${r.Slot} pid ${r.Pid}`));
    }
    const table = await baton.cliOk("service", "ps", "web");
    assert.match(table.split("\n")[0]!, /^ID\s+NAME\s+NODE\s+CONTAINER\/PID\s+DESIRED STATE\s+CURRENT STATE\s+READY\s+ERROR\s+PORTS$/);
    assert.match(table, /web\.1\s+\S+\s+\d+\s+Running\s+Running .* ago\s+yes/, "the process task's pid in CONTAINER/PID");
  });

  test("kill -9 of one task: it is replaced in its slot and answers", async () => {
    const victim = running(await baton.tasks("web")).find((r) => r.Slot === 2)!;
    process.kill(victim.Pid!, "SIGKILL");
    const replacement = await waitFor(async () => running(await baton.tasks("web")).find((r) => r.Slot === 2 && r.ID !== victim.ID), 5000, "a new running task in slot 2");
    await waitFor(() => httpGet(replacement.Port!), 5000, "the replacement answering HTTP");
    const history = (await baton.tasks("web")).find((r) => r.ID === victim.ID)!;
    assert.equal(history.CurrentState, "failed");
    assert.equal(history.Error, "killed by SIGKILL");
    assert.match(await baton.cliOk("service", "ps", "web"), / \\_ web\.2 .*Failed .*"killed by SIGKILL"/);
  });

  test("scale up and down: down removes the highest slots", async () => {
    assert.match(await baton.cliOk("service", "scale", "web=5"), /web scaled to 5[\s\S]*converged/);
    assert.deepEqual(running(await baton.tasks("web")).map((r) => r.Slot).sort(), [1, 2, 3, 4, 5]);
    await baton.cliOk("service", "scale", "web=2");
    const rows = await waitFor(async () => {
      const rs = await baton.tasks("web");
      return rs.filter((r) => r.Slot > 2).every((r) => r.DesiredState === "shutdown" && r.CurrentState === "shutdown") && rs;
    }, 15_000, "slots 3-5 shut down");
    assert.deepEqual(running(rows).map((r) => r.Slot).sort(), [1, 2]);
  });

  test("service logs prefixes each line with task@node, and -f follows new lines", async () => {
    const logs = await baton.cliOk("service", "logs", "web");
    assert.match(logs, /^web\.1\.[a-z0-9]{12}@\S+\s+\| listening on \d+$/m);
    const lines = logs.trim().split("\n");
    assert.ok(lines.every((l) => /^web\.\d\.[a-z0-9]{12}@\S+\s+\| /.test(l)), logs);
  });

  test("service logs -f streams the lines of tasks that start later", async () => {
    const { spawn } = await import("node:child_process");
    const { BIN } = await import("../harness/baton.js");
    const follow = spawn(process.execPath, [BIN, "service", "logs", "-f", "--tail", "0", "web"], { env: { ...process.env, BATON_HOST: `unix://${baton.socket}` } });
    let out = "";
    follow.stdout.on("data", (d: Buffer) => (out += d.toString()));
    try {
      // Give the follower time to attach, then make a new task start and print.
      await waitFor(async () => (await baton.info()) && follow.pid, 2000, "follower started");
      await new Promise((r) => setTimeout(r, 500));
      const victim = running(await baton.tasks("web")).find((r) => r.Slot === 1)!;
      process.kill(victim.Pid!, "SIGKILL");
      const replacement = await waitFor(async () => running(await baton.tasks("web")).find((r) => r.Slot === 1 && r.ID !== victim.ID), 5000, "slot 1 replaced");
      await waitFor(() => out.includes(`web.1.${replacement.ID.slice(0, 12)}@`) && out.includes(`| listening on ${replacement.Port}`), 5000, () => `the replacement's first line in the followed stream; got: ${out}`);
    } finally {
      follow.kill();
    }
  });

  test("restart on-failure with max attempts 2: exactly 3 runs, then failed", async () => {
    await baton.cliOk("service", "create", "--detach", "--name", "crash", "--restart-condition", "on-failure", "--restart-max-attempts", "2", "sh", "-c", "echo run; exit 1");
    await waitFor(async () => /restart max attempts \(2\) reached/.test(await baton.cliOk("service", "ps", "crash")), 10_000, "the slot given up on");
    const rows = await baton.tasks("crash");
    assert.equal(rows.length, 3);
    assert.ok(rows.every((x) => x.CurrentState === "failed" && x.Error === "exit code 1"));
    const logs = await baton.cliOk("service", "logs", "crash", "--raw");
    assert.equal(logs, "run\nrun\nrun\n");
  });

  test("a failing --health-cmd gets the task replaced", async () => {
    await baton.cliOk("service", "create", "--detach", "--name", "sick", "--health-cmd", "echo nope; exit 1", "--health-interval", "100ms", "--health-retries", "2", "--restart-delay", "0s", "sleep", "60");
    const rows = await waitFor(async () => {
      const rs = await baton.tasks("sick");
      return rs.some((x) => x.CurrentState === "failed" && /^unhealthy: nope/.test(x.Error)) && rs.length >= 2 && rs;
    }, 10_000, "an unhealthy task failed and a replacement created");
    assert.ok(rows.filter((x) => x.DesiredState === "running").length === 1);
  });

  test("a passing --health-http makes the task healthy, and create waits for it", async () => {
    const out = await baton.cliOk("service", "create", "--name", "healthy", "--health-http", "/", "--health-interval", "200ms", "node", HELLO);
    assert.match(out, /converged/);
    const inspect = JSON.parse(await baton.cliOk("service", "inspect", "healthy")) as [{ status: { running: number; converged: boolean } }];
    assert.deepEqual(inspect[0].status, { running: 1, desired: 1, converged: true });
  });

  test("a task that cannot be placed stays pending with the reason in service ps", async () => {
    await baton.cliOk("service", "create", "--detach", "--name", "nowhere", "--constraint", "node.labels.tier==data", "sleep", "1");
    const rows = await waitFor(async () => (await baton.tasks("nowhere")).filter((r) => r.CurrentState === "pending"), 5000, "a pending task");
    assert.equal(rows[0]!.Message, "no node satisfies: 1 node constraint node.labels.tier == data");
    assert.match(await baton.cliOk("service", "ps", "--no-trunc", "nowhere"), /Pending .* "no node satisfies: 1 node constraint node\.labels\.tier == data"/);
  });

  test("global mode runs one task per node", async () => {
    await baton.cliOk("service", "create", "--name", "everywhere", "--mode", "global", "sleep", "60");
    const rows = running(await baton.tasks("everywhere"));
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.Slot, 0);
  });

  test("events streams store changes as they happen", async () => {
    const { spawn } = await import("node:child_process");
    const { BIN } = await import("../harness/baton.js");
    const { revision } = await baton.info();
    const ev = spawn(process.execPath, [BIN, "events", "--filter", "services", "--since", String(revision)], { env: { ...process.env, BATON_HOST: `unix://${baton.socket}` } });
    let out = "";
    ev.stdout.on("data", (d: Buffer) => (out += d.toString()));
    try {
      await baton.cliOk("service", "create", "--detach", "--name", "evt", "sleep", "5");
      await waitFor(() => /service create \w+ \(name=evt\)/.test(out), 10_000, () => `a service create event; got: ${out}`);
      await baton.cliOk("service", "scale", "--detach", "evt=2");
      await waitFor(() => /service update \w+ \(name=evt\)/.test(out), 10_000, () => `a service update event; got: ${out}`);
    } finally {
      ev.kill();
    }
  });

  test("service rm stops the service's tasks", async () => {
    const pids = running(await baton.tasks("everywhere")).map((r) => r.Pid!);
    assert.match(await baton.cliOk("service", "rm", "everywhere"), /everywhere/);
    await waitFor(() => pids.every((p) => !isAlive(p)), 15_000, "the removed service's processes gone");
    const r = await baton.cli("service", "ps", "everywhere");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /service "everywhere" not found/);
  });

  test("--env-file and -e reach the task; PORT and BATON_* are set", async () => {
    const envFile = join(baton.dataDir, "app.env");
    writeFileSync(envFile, "# comment\nFROM_FILE=yes\n");
    await baton.cliOk("service", "create", "--name", "envcheck", "--env-file", envFile, "-e", "EXTRA=1", "--restart-condition", "none", "--detach", "sh", "-c", "echo $FROM_FILE $EXTRA $PORT $BATON_TASK_SLOT $BATON_SERVICE_NAME ${#BATON_TASK_ID}");
    const logs = await waitFor(async () => (await baton.cliOk("service", "logs", "envcheck", "--raw")).trim(), 5000, "envcheck output");
    assert.match(logs, /^yes 1 \d+ 1 envcheck 25$/);
  });
});

describe("bad input: clear errors, store unchanged", () => {
  const baton = new BatonProcess();
  before(async () => {
    await baton.start();
    await baton.cliOk("service", "create", "--name", "taken", "sleep", "3600");
    // Converged: no write of its own lands inside a test's before/after revision window.
    await waitFor(async () => (await baton.tasks("taken"))[0]?.CurrentState === "running", 5000, "taken running");
  });
  after(() => baton.destroy());

  const big = "x".repeat(40 * 1024);
  const cases: [string, string[], RegExp][] = [
    ["negative replicas", ["--name", "a", "--replicas", "-1", "sleep", "1"], /replicas: must be an integer >= 0/],
    ["non-numeric replicas", ["--name", "a", "--replicas", "three", "sleep", "1"], /"three" is not an integer/],
    ["unknown flag", ["--name", "a", "--replcas", "3", "sleep", "1"], /unknown option '--replcas'/],
    ["bad restart delay", ["--name", "a", "--restart-delay", "soon", "sleep", "1"], /restartPolicy\.delay: invalid duration "soon"/],
    ["bad restart window", ["--name", "a", "--restart-window", "5 s", "sleep", "1"], /restartPolicy\.window: invalid duration "5 s"/],
    ["bad stop grace period", ["--name", "a", "--stop-grace-period", "-1s", "sleep", "1"], /stopGracePeriod: invalid duration "-1s"/],
    ["bad health interval", ["--name", "a", "--health-cmd", "true", "--health-interval", "fast", "sleep", "1"], /healthcheck\.interval: invalid duration "fast"/],
    ["bad restart condition", ["--name", "a", "--restart-condition", "sometimes", "sleep", "1"], /restartPolicy\.condition: must be one of: none, on-failure, any/],
    ["missing command", ["--name", "a"], /missing required argument 'command'/],
    ["empty command", ["--name", "a", ""], /command\[0\]: the command must not be empty/],
    ["duplicate name", ["--name", "taken", "sleep", "1"], /service name "taken" is already in use/],
    ["name with /", ["--name", "a/b", "sleep", "1"], /name: must start with a letter or digit/],
    ["name starting with -", ["--name=-a", "sleep", "1"], /name: must start with a letter or digit/],
    ["oversized env value", ["--name", "a", "-e", `BIG=${big}`, "sleep", "1"], /env\[0\]: must be at most 32768 characters/],
    ["invalid env name", ["--name", "a", "-e", "1BAD=x", "sleep", "1"], /env\[0\]: "1BAD" is not a valid variable name/],
    ["replicas with global mode", ["--name", "a", "--mode", "global", "--replicas", "2", "sleep", "1"], /replicas: replicas can only be set for replicated services/],
    ["bad mode", ["--name", "a", "--mode", "everywhere", "sleep", "1"], /argument 'everywhere' is invalid/],
    ["unknown stop signal", ["--name", "a", "--stop-signal", "SIGNOPE", "sleep", "1"], /stopSignal: unknown signal "SIGNOPE"/],
    ["bad constraint", ["--name", "a", "--constraint", "node.labels.tier=data", "sleep", "1"], /constraints\[0\]: "node\.labels\.tier=data" is not KEY==VALUE/],
    ["two health checks", ["--name", "a", "--health-cmd", "true", "--health-tcp", "0", "sleep", "1"], /healthcheck: give exactly one of cmd, http or tcp/],
    ["bad reserve memory", ["--name", "a", "--reserve-memory", "lots", "sleep", "1"], /reserveMemory: invalid size "lots"/],
    ["negative max attempts", ["--name", "a", "--restart-max-attempts", "-2", "sleep", "1"], /restartPolicy\.maxAttempts: must be an integer >= 0/],
  ];

  for (const [what, args, expected] of cases) {
    test(`${what} → a clear error naming the field; nothing changes`, async () => {
      const before = await baton.info();
      const r = await baton.cli("service", "create", ...args);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, expected);
      assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, "no stack trace");
      assert.equal((await baton.info()).revision, before.revision, "store revision unchanged");
      assert.equal((await baton.cliOk("service", "ls", "-q")).trim().split("\n").length, 1);
    });
  }

  test("all problems are reported together", async () => {
    const r = await baton.cli("service", "create", "--name", "a/b", "--replicas", "-1", "--restart-delay", "x", "sleep", "1");
    assert.equal(r.code, 1);
    for (const f of ["name", "replicas", "restartPolicy.delay"]) assert.match(r.stderr, new RegExp(`${f.replace(".", "\\.")}: `));
  });

  test("scale to a negative count and of a missing service are refused", async () => {
    const neg = await baton.cli("service", "scale", "taken=-3");
    assert.match(neg.stderr, /replicas: must be an integer >= 0/);
    const missing = await baton.cli("service", "scale", "ghost=3");
    assert.match(missing.stderr, /service "ghost" not found/);
    const bad = await baton.cli("service", "scale", "taken");
    assert.match(bad.stderr, /invalid scale specifier "taken"/);
  });

  test("no baton at the address: a one-line error", async () => {
    const { runCli } = await import("../harness/baton.js");
    const r = await runCli("/nonexistent/baton.sock", ["service", "ls"]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, "Error: cannot reach baton at unix:///nonexistent/baton.sock: is `baton up` running? (set BATON_HOST or -H)\n");
  });
});

describe("baton up survives its own death: tasks are re-adopted", () => {
  const baton = new BatonProcess();
  after(() => baton.destroy());

  test("kill -9 of baton up right after create: the same pids are adopted, still exactly 3", async () => {
    await baton.start();
    await baton.cliOk("service", "create", "--name", "web", "--replicas", "3", "node", HELLO);
    const before = running(await baton.tasks("web"));
    assert.equal(before.length, 3);
    await baton.kill("SIGKILL");
    for (const r of before) assert.ok(isAlive(r.Pid!), `${r.Name} outlived baton`);
    await baton.start();
    const after = await baton.tasks("web");
    assert.equal(after.length, 3, "no duplicates, no replacements");
    assert.deepEqual(running(after).map((r) => `${r.ID}:${r.Pid}`).sort(), before.map((r) => `${r.ID}:${r.Pid}`).sort());
    for (const r of after) assert.ok(await httpGet(r.Port!), `${r.Name} still answers`);
  });

  test("a task that died while baton was down is replaced after restart", async () => {
    const before = running(await baton.tasks("web"));
    await baton.kill("SIGKILL");
    const victim = before.find((r) => r.Slot === 1)!;
    process.kill(victim.Pid!, "SIGKILL");
    await waitFor(() => !isAlive(victim.Pid!), 5000, "victim dead");
    await baton.start();
    const rows = await waitFor(async () => {
      const rs = running(await baton.tasks("web"));
      return rs.length === 3 && rs.find((r) => r.Slot === 1 && r.ID !== victim.ID) && rs;
    }, 10_000, "slot 1 replaced");
    const kept = rows.filter((r) => r.Slot !== 1).map((r) => r.Pid);
    assert.deepEqual(kept.sort(), before.filter((r) => r.Slot !== 1).map((r) => r.Pid).sort(), "the others were not restarted");
    const dead = (await baton.tasks("web")).find((r) => r.ID === victim.ID)!;
    assert.equal(dead.CurrentState, "failed");
  });

  test("an adopted task that dies later is still healed", async () => {
    const victim = running(await baton.tasks("web")).find((r) => r.Slot === 3)!;
    process.kill(victim.Pid!, "SIGKILL");
    await waitFor(async () => running(await baton.tasks("web")).find((r) => r.Slot === 3 && r.ID !== victim.ID), 10_000, "slot 3 replaced");
  });

  test("Ctrl-C (SIGINT to baton's process group) stops baton and leaves tasks running", async () => {
    const before = running(await baton.tasks("web"));
    process.kill(-baton.pid, "SIGINT");
    await new Promise<void>((r) => (baton.proc!.exitCode !== null ? r() : baton.proc!.once("exit", () => r())));
    assert.equal(baton.proc!.exitCode, 0);
    assert.match(baton.output, /3 tasks left running/);
    for (const r of before) assert.ok(isAlive(r.Pid!), `${r.Name} still alive`);
    await baton.start();
    assert.deepEqual(running(await baton.tasks("web")).map((r) => r.Pid).sort(), before.map((r) => r.Pid).sort());
  });

  test("baton down stops every task gracefully, then baton", async () => {
    const pids = running(await baton.tasks("web")).map((r) => r.Pid!);
    const out = await baton.cliOk("down");
    assert.equal(out, "stopped 3 tasks; baton is down\n");
    await new Promise<void>((r) => (baton.proc!.exitCode !== null ? r() : baton.proc!.once("exit", () => r())));
    for (const p of pids) assert.ok(!isAlive(p));
    const logs = (await import("node:fs")).readdirSync(join(baton.dataDir, "agent", "logs"));
    assert.ok(logs.length >= 3);
  });
});
