import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TaskRunner, type ExecutorDeps } from "./executor.js";
import { LogFiles } from "./logs/log-files.js";
import { PortAllocator } from "./ports.js";
import { TaskFiles } from "./task-files.js";
import { MemoryTaskRecords } from "../../test/harness/memory-records.js";
import type { Assignment, TaskStatusUpdate } from "../dispatcher/protocol.js";
import { canTransition, type TaskState } from "../model/task-state.js";
import { silentLogger } from "../lib/log.js";
import { FakeClock, settle } from "../../test/harness/fake-clock.js";
import { FakeDriver } from "../../test/harness/fake-driver.js";
import { aService } from "../../test/harness/builders.js";

const svc = aService({ name: "web", stopGracePeriod: "10s" });

function setup() {
  const dir = mkdtempSync(join(tmpdir(), "baton-exec-"));
  const clock = new FakeClock();
  const driver = new FakeDriver(clock);
  const reports: Omit<TaskStatusUpdate, "timestamp" | "seq">[] = [];
  const records = new MemoryTaskRecords(join(dir, "tasks"));
  const deps: ExecutorDeps = {
    driver,
    clock,
    log: silentLogger(),
    ports: new PortAllocator(),
    logs: new LogFiles(join(dir, "logs")),
    records,
    nodeName: "n1",
    report: (u) => reports.push(u),
  };
  const assignment = (over: Partial<Assignment> = {}): Assignment => ({
    taskId: `t${Math.random().toString(36).slice(2, 8)}`,
    serviceId: svc.id,
    serviceName: "web",
    slot: 1,
    nodeId: "n1",
    desiredState: "running",
    state: "assigned",
    spec: svc.spec.task,
    port: 31000 + Math.floor(Math.random() * 500),
    ...over,
  });
  const states = (taskId: string): TaskState[] => reports.filter((r) => r.taskId === taskId).map((r) => r.state);
  return { dir, clock, driver, reports, records, deps, assignment, states, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** States reported for one task only ever move forward (same-state reports carry details). */
function assertForwardOnly(states: TaskState[]): void {
  for (let i = 1; i < states.length; i++) {
    const [a, b] = [states[i - 1]!, states[i]!];
    assert.ok(a === b || canTransition(a, b), `reported ${a} then ${b}: ${states.join(" → ")}`);
  }
}

// issue #7: a stop while driver.start was in flight was lost; the task ran forever.
test("a stop that arrives while the start is in flight is honoured when the start resolves", async () => {
  const { clock, driver, deps, assignment, states, records, cleanup } = setup();
  try {
    driver.startDelayMs = 500;
    const a = assignment();
    const r = new TaskRunner(a, deps);
    void r.run();
    await settle();
    await clock.advance(100);
    assert.equal(r.phaseName, "starting");
    let done = false;
    void r.stop("shutdown").then(() => (done = true));
    await clock.advance(400);
    const p = driver.byTask(a.taskId)!;
    assert.deepEqual(p.signals, ["SIGTERM"], "the stop signal went out as soon as there was a process");
    await settle();
    assert.ok(done, "stop resolved once the process ended");
    assert.deepEqual(states(a.taskId), ["accepted", "preparing", "starting", "shutdown"], "never reported running");
    assert.equal(records.loadAll().length, 0, "its record is gone");
  } finally {
    cleanup();
  }
});

test("a process that ignores the stop signal is killed after the grace period", async () => {
  const { clock, driver, deps, assignment, states, cleanup } = setup();
  try {
    driver.exitDelayMs = 60_000;
    const a = assignment();
    const r = new TaskRunner(a, deps);
    await r.run();
    assert.equal(r.phaseName, "running");
    void r.stop("shutdown");
    await clock.advance(9_999);
    assert.deepEqual(driver.byTask(a.taskId)!.signals, ["SIGTERM"]);
    await clock.advance(1);
    assert.deepEqual(driver.byTask(a.taskId)!.signals, ["SIGTERM", "SIGKILL"]);
    assert.equal(states(a.taskId).at(-1), "shutdown");
    assertForwardOnly(states(a.taskId));
  } finally {
    cleanup();
  }
});

test("a stop before the start slot came ends the task without starting it", async () => {
  const { driver, deps, assignment, states, cleanup } = setup();
  try {
    const a = assignment();
    const r = new TaskRunner(a, deps);
    await r.stop("shutdown");
    await r.run();
    assert.equal(driver.processes.size, 0);
    assert.deepEqual(states(a.taskId), ["shutdown"]);
  } finally {
    cleanup();
  }
});

test("the store asking for shutdown during the start (scale down, rm) stops it the same way", async () => {
  const { clock, driver, deps, assignment, states, cleanup } = setup();
  try {
    driver.startDelayMs = 500;
    const a = assignment();
    const r = new TaskRunner(a, deps);
    void r.run();
    await settle();
    await clock.advance(200);
    r.update({ ...a, desiredState: "remove" });
    await clock.advance(300);
    await settle();
    assert.equal(r.isDone, true);
    assert.deepEqual(states(a.taskId), ["accepted", "preparing", "starting", "shutdown"]);
  } finally {
    cleanup();
  }
});

test("the record is durable before the spawn, and carries the handle once running", async () => {
  const { clock, driver, deps, assignment, records, cleanup } = setup();
  try {
    driver.startDelayMs = 100;
    const a = assignment();
    const r = new TaskRunner(a, deps);
    void r.run();
    await settle();
    await clock.advance(50);
    const during = records.loadAll();
    assert.equal(during.length, 1);
    assert.equal(during[0]!.handle, undefined, "written before the process exists");
    await clock.advance(50);
    assert.equal(records.loadAll()[0]!.handle?.pid, driver.byTask(a.taskId)!.handle.pid);
    assert.equal(r.phaseName, "running");
  } finally {
    cleanup();
  }
});

test("exit codes map to complete / failed, with the exit code", async () => {
  const { driver, deps, assignment, states, reports, cleanup } = setup();
  try {
    const ok = assignment();
    const bad = assignment();
    const r1 = new TaskRunner(ok, deps);
    const r2 = new TaskRunner(bad, deps);
    await r1.run();
    await r2.run();
    driver.exit(driver.byTask(ok.taskId)!.handle.pid, { exitCode: 0 });
    driver.exit(driver.byTask(bad.taskId)!.handle.pid, { exitCode: 3 });
    await settle();
    assert.equal(states(ok.taskId).at(-1), "complete");
    assert.equal(states(bad.taskId).at(-1), "failed");
    assert.equal(reports.filter((r) => r.taskId === bad.taskId).at(-1)!.exitCode, 3);
  } finally {
    cleanup();
  }
});

test("adoption: a live task is running again; one that ended meanwhile reports its recorded status; a start never finished is orphaned", async () => {
  const { driver, deps, assignment, states, reports, cleanup } = setup();
  try {
    const live = assignment({ state: "running" });
    const first = new TaskRunner(live, deps);
    await first.run();
    first.detach();
    const ended = assignment({ state: "running" });
    const r2 = new TaskRunner(ended, deps);
    await r2.run();
    r2.detach();
    const handleOf = (id: string) => driver.byTask(id)!.handle;
    driver.endUnwatched(handleOf(ended.taskId).pid, { exitCode: 0 });

    const adopted = new TaskRunner(live, deps);
    adopted.adopt({ taskId: live.taskId, handle: handleOf(live.taskId), logPath: "x", statePrefix: "x", startedAt: 1 });
    assert.equal(adopted.phaseName, "running");
    assert.equal(reports.filter((r) => r.taskId === live.taskId).at(-1)!.message, "adopted after agent restart");

    const gone = new TaskRunner(ended, deps);
    gone.adopt({ taskId: ended.taskId, handle: handleOf(ended.taskId), logPath: "x", statePrefix: "x", startedAt: 1 });
    await settle();
    assert.equal(states(ended.taskId).at(-1), "complete", "exit 0 while the agent was down is complete, not failed");

    const half = assignment({ state: "starting" });
    const r3 = new TaskRunner(half, deps);
    r3.adopt({ taskId: half.taskId, logPath: "x", statePrefix: "x" });
    assert.equal(states(half.taskId).at(-1), "orphaned", "cut short by the agent, not by itself");
    for (const id of [live.taskId, ended.taskId, half.taskId]) assertForwardOnly(states(id));
  } finally {
    cleanup();
  }
});

test("a task adopted after an agent restart: its exec probes see the same BATON_SECRETS_DIR as the task", async () => {
  const { clock, driver, deps, dir, assignment, reports, cleanup } = setup();
  try {
    deps.files = TaskFiles.open(dir, silentLogger(), join(dir, "no-tmpfs"));
    // Healthy only when the probe finds the task's secret file through the variable.
    const spec = aService({ name: "web", healthcheck: { cmd: 'test "$(cat "$BATON_SECRETS_DIR/db_password")" = pw', interval: "1s", retries: 1 } }).spec.task;
    const a = assignment({ spec, files: [{ kind: "secret", name: "db_password", target: "db_password", mode: 0o400, data: Buffer.from("pw").toString("base64") }] });
    const first = new TaskRunner(a, deps);
    await first.run();
    first.detach();
    const adopted = new TaskRunner(a, deps);
    adopted.adopt({ taskId: a.taskId, handle: driver.byTask(a.taskId)!.handle, logPath: "x", statePrefix: "x", startedAt: clock.now() });
    const from = reports.length;
    // The probe is a real sh: the fake clock schedules it, real time runs it.
    const health = async () => {
      await clock.advance(1000);
      await new Promise((r) => setTimeout(r, 50));
      return reports.slice(from).find((r) => r.taskId === a.taskId && r.health !== undefined && r.health !== "starting")?.health;
    };
    let h: string | undefined;
    for (let i = 0; i < 40 && h === undefined; i++) h = await health();
    assert.equal(h, "healthy");
    adopted.detach();
  } finally {
    cleanup();
  }
});

// Mesh issue (#8): a task leaves every pool before its stop signal; a second stop while it
// drains changes nothing.
test("stop drains first (not ready, then beforeStop), signals once after it; a stop during the drain is absorbed", async () => {
  const { clock, driver, deps, assignment, reports, cleanup } = setup();
  try {
    const order: string[] = [];
    deps.beforeStop = async (taskId) => {
      order.push(`drain ${taskId === a.taskId}`);
      await clock.sleep(300);
      order.push("drained");
    };
    const a = assignment({ spec: { ...svc.spec.task, targets: [80] } });
    const r = new TaskRunner(a, deps);
    await r.run();
    // A task with nothing to probe is ready as soon as it runs.
    const r2 = new TaskRunner(assignment(), deps);
    await r2.run();
    assert.equal(reports.filter((u) => u.taskId === r2.taskId).at(-1)!.ready, true);
    void r2.stop("shutdown");
    assert.deepEqual(reports.filter((u) => u.taskId === r2.taskId).at(-1), { taskId: r2.taskId, state: "running", message: "draining", ready: false }, "out of the pools first");
    await clock.advance(100);
    void r2.stop("shutdown");
    r2.update({ ...assignment(), taskId: r2.taskId, desiredState: "remove" });
    assert.deepEqual(driver.byTask(r2.taskId)!.signals, [], "no signal while draining");
    await clock.advance(200);
    assert.deepEqual(driver.byTask(r2.taskId)!.signals, ["SIGTERM"], "one signal, after the drain");
    await settle();
    assert.equal(r2.isDone, true);
    void r.stop("shutdown");
    await clock.advance(300);
    await settle();
    assert.equal(r.isDone, true);
    assert.deepEqual(order.filter((o) => o.startsWith("drain ")), ["drain false", "drain true"], "every stop drains, ready or not");
  } finally {
    cleanup();
  }
});

test("a task over its memory limit is reported failed: OOM killed, exit code 137 (SIGKILL)", async () => {
  const { driver, deps, assignment, reports, cleanup } = setup();
  try {
    const limited = aService({ name: "job", limitMemory: "32m", limitCpus: 0.5 });
    const a = assignment({ spec: limited.spec.task });
    const r = new TaskRunner(a, deps);
    await r.run();
    assert.deepEqual(driver.starts.at(-1)!.limits, { memoryBytes: 32 * 1024 * 1024, cpus: 0.5 }, "the driver is given the limits");
    driver.exit(driver.byTask(a.taskId)!.handle.pid, { signal: "SIGKILL", oomKilled: true });
    await r.whenDone();
    const end = reports.filter((u) => u.taskId === a.taskId).at(-1)!;
    assert.deepEqual({ state: end.state, message: end.message, err: end.err, exitCode: end.exitCode, signal: end.signal }, { state: "failed", message: "OOM killed", err: "OOM killed", exitCode: 137, signal: "SIGKILL" });
  } finally {
    cleanup();
  }
});

test("a task without limits starts with none", async () => {
  const { driver, deps, assignment, cleanup } = setup();
  try {
    await new TaskRunner(assignment(), deps).run();
    assert.equal("limits" in driver.starts.at(-1)!, false);
  } finally {
    cleanup();
  }
});

test("a starting task asks discovery for its own networks, and a process gets its volume's directory", async () => {
  const { driver, deps, assignment, cleanup, dir } = setup();
  try {
    const scopes: unknown[] = [];
    const r = new TaskRunner(assignment({ spec: { ...svc.spec.task, networks: ["net-a"], mounts: [{ type: "volume", source: "data", target: "/data" }] } }), {
      ...deps,
      volumesDir: join(dir, "volumes"),
      discoveryEnv: (scope) => (scopes.push(scope), { API_SERVICE_HOST: "127.77.1.2" }),
    });
    await r.run();
    assert.deepEqual(scopes, [{ networks: ["net-a"], container: false }]);
    const env = driver.starts.at(-1)!.env;
    assert.equal(env.API_SERVICE_HOST, "127.77.1.2");
    assert.equal(env.BATON_VOLUME_DATA, join(dir, "volumes", "data"));
    assert.equal(env.BATON_MOUNT_DATA, join(dir, "volumes", "data"));
  } finally {
    cleanup();
  }
});
