import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent } from "./agent.js";
import type { AgentSession, Assignment, AssignmentChange, NodeDescription, TaskStatusUpdate } from "../dispatcher/protocol.js";
import { silentLogger } from "../lib/log.js";
import { FakeClock, settle } from "../../test/harness/fake-clock.js";
import { FakeDriver } from "../../test/harness/fake-driver.js";
import { aService } from "../../test/harness/builders.js";
import { MemoryTaskRecords } from "../../test/harness/memory-records.js";

const svc = aService({ name: "web" });

/** A session the test controls: it can refuse reports (manager unreachable) and push assignments. */
function fakeSession() {
  const sent: TaskStatusUpdate[][] = [];
  let push: (c: AssignmentChange) => void = () => undefined;
  const s = {
    up: true,
    /** The full set the "dispatcher" sends on subscribe. */
    initial: [] as Assignment[],
    sent,
    push: (c: AssignmentChange) => push(c),
    session: {
      register: async () => ({ heartbeatPeriodMs: 1000 }),
      heartbeat: async () => undefined,
      assignments: (fn: (c: AssignmentChange) => void) => {
        push = fn;
        fn({ type: "full", assignments: s.initial });
        return () => undefined;
      },
      reportStatus: async (u: TaskStatusUpdate[]) => {
        if (!s.up) throw new Error("manager unreachable");
        sent.push(u);
      },
      endpoints: () => () => undefined,
      close: () => undefined,
    } satisfies AgentSession,
  };
  return s;
}

const assignment = (taskId: string, over: Partial<Assignment> = {}): Assignment => ({
  taskId, serviceId: svc.id, serviceName: "web", slot: 1, nodeId: "n", desiredState: "running", state: "assigned", spec: svc.spec.task, ...over,
});

async function setup() {
  const dir = mkdtempSync(join(tmpdir(), "baton-agent-"));
  const clock = new FakeClock();
  const driver = new FakeDriver(clock);
  const s = fakeSession();
  const records = new MemoryTaskRecords();
  const agent = new Agent({ session: s.session, driver, clock, log: silentLogger(), dataDir: dir, filesTmpfs: dir, records });
  await agent.start();
  return { dir, clock, driver, s, agent, records, cleanup: () => (agent.detach(), rmSync(dir, { recursive: true, force: true })) };
}

// issue #7: the outbox grew without bound while the session was down.
test("while the manager is unreachable, reports coalesce to one per task; the newest is sent, in sequence order", async () => {
  const { clock, driver, s, agent, cleanup } = await setup();
  try {
    s.up = false;
    const ids = Array.from({ length: 10 }, (_, i) => `task-${i}`);
    s.push({ type: "update", upserts: ids.map((id) => assignment(id)), removes: [] });
    await clock.advance(10);
    // 1,000 crashes and restarts' worth of reports per task would pile up; only one each remains.
    for (let round = 0; round < 100; round++) {
      for (const id of ids) {
        const p = driver.byTask(id);
        if (p?.alive) driver.exit(p.handle.pid, { exitCode: 1 });
      }
      await settle(1);
    }
    assert.ok(agent.pendingReports() <= ids.length, `outbox holds ${agent.pendingReports()} reports for ${ids.length} tasks`);
    s.up = true;
    await clock.advance(600);
    const last = s.sent.flat();
    assert.deepEqual(new Set(last.map((u) => u.taskId)), new Set(ids));
    for (const u of last) {
      assert.equal(u.state, "failed", "the newest state of each task");
      assert.equal(u.pid !== undefined && u.port !== undefined, true, "details of earlier reports kept (pid, port)");
    }
    const seqs = last.map((u) => u.seq);
    assert.equal(new Set(seqs).size, seqs.length, "every report has its own sequence number");
  } finally {
    cleanup();
  }
});

test("baton down (stopAll) during a slow start waits for the task and reports it shut down", async () => {
  const { clock, driver, s, agent, cleanup } = await setup();
  try {
    driver.startDelayMs = 500;
    s.push({ type: "update", upserts: [assignment("slow")], removes: [] });
    await clock.advance(100);
    let stopped: number | undefined;
    void agent.stopAll().then((n) => (stopped = n));
    await clock.advance(500);
    await settle();
    assert.equal(stopped, 1);
    assert.equal(s.sent.flat().filter((u) => u.taskId === "slow").at(-1)?.state, "shutdown");
    assert.equal(driver.byTask("slow")!.alive, false);
  } finally {
    cleanup();
  }
});

test("sequence numbers keep increasing across an agent restart", async () => {
  const { dir, clock, driver, s, agent, records } = await setup();
  try {
    s.push({ type: "update", upserts: [assignment("a")], removes: [] });
    await clock.advance(10);
    const before = Math.max(...s.sent.flat().map((u) => u.seq));
    agent.detach();
    // A restart takes far longer than the few microseconds of numbers the old agent ran ahead.
    await clock.advance(200);
    const again = new Agent({ session: s.session, driver, clock, log: silentLogger(), dataDir: dir, filesTmpfs: dir, records });
    s.initial = [assignment("a", { state: "running" })];
    await again.start();
    await clock.advance(10);
    const after = s.sent.flat().slice(s.sent.flat().findIndex((u) => u.seq === before) + 1);
    assert.ok(after.length > 0 && after.every((u) => u.seq > before), "the restarted agent's reports come after the old ones");
    assert.equal(after.at(-1)!.message, "adopted after agent restart");
    again.detach();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// issue #7: a crash between spawn and the task record leaked a process holding its port.
test("a start the agent never saw through: its stray is killed by task id and the task reported orphaned (not its own failure)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "baton-agent-"));
  try {
    const clock = new FakeClock();
    const driver = new FakeDriver(clock);
    const records = new MemoryTaskRecords();
    // What a crash right after the spawn leaves: the record written before it, without a handle.
    await records.save({ taskId: "half", port: 31999, logPath: join(dir, "x.log"), statePrefix: records.statePrefixOf("half") });
    const s = fakeSession();
    s.initial = [assignment("half", { state: "starting" })];
    const agent = new Agent({ session: s.session, driver, clock, log: silentLogger(), dataDir: dir, filesTmpfs: dir, records });
    await agent.start();
    await clock.advance(10);
    assert.deepEqual(driver.strayKills, [["half"]]);
    const last = s.sent.flat().filter((u) => u.taskId === "half").at(-1)!;
    assert.equal(last.state, "orphaned");
    assert.match(last.err!, /agent stopped while starting this task/);
    assert.equal(records.loadAll().length, 0);
    agent.detach();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the node describes the limits its driver enforces", async () => {
  const dir = mkdtempSync(join(tmpdir(), "baton-agent-"));
  const clock = new FakeClock();
  const driver = new FakeDriver(clock);
  driver.limits = { memory: true, cpu: false, cgroup: "v1" };
  const descs: NodeDescription[] = [];
  const s = fakeSession();
  const agent = new Agent({ session: { ...s.session, register: async (d) => (descs.push(d), { heartbeatPeriodMs: 1000 }) }, driver, clock, log: silentLogger(), dataDir: dir, filesTmpfs: dir, records: new MemoryTaskRecords() });
  try {
    await agent.start();
    assert.deepEqual(descs[0]!.limits, { memory: true, cpu: false, cgroup: "v1" });
  } finally {
    agent.detach();
    rmSync(dir, { recursive: true, force: true });
  }
});
