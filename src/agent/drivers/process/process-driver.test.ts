// Driver conformance for the process driver: start, wait, stop with a signal, re-adopt, logs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ProcessDriver } from "./process-driver.js";
import { StartError, type ExitStatus, type TaskHandle } from "../driver.js";
import { systemClock } from "../../../lib/clock.js";

const dir = mkdtempSync(join(tmpdir(), "baton-driver-"));
// The driver unrefs its children and timers (tasks must not keep Baton alive); the test must stay up.
const keepAlive = setInterval(() => undefined, 1000);
test.after(() => {
  clearInterval(keepAlive);
  rmSync(dir, { recursive: true, force: true });
});
const env = { PATH: process.env.PATH ?? "/usr/bin:/bin" };
const exitOf = (d: ProcessDriver, h: TaskHandle): Promise<ExitStatus> => new Promise((r) => d.wait(h, r));

test("runs a command in its own process group, output straight to the log file, and reports the exit code", async () => {
  const d = new ProcessDriver(systemClock);
  const logPath = join(dir, "a.log");
  const h = await d.start({ taskId: "a", command: ["sh", "-c", "echo out; echo err >&2; exit 3"], env, logPath });
  assert.ok(h.pid > 0 && h.startTime !== "");
  assert.deepEqual(await exitOf(d, h), { exitCode: 3 });
  assert.equal(readFileSync(logPath, "utf8"), "out\nerr\n");
  assert.equal(d.isAlive(h), false);
});

test("the task leads its own session, apart from Baton's", async () => {
  const d = new ProcessDriver(systemClock);
  const h = await d.start({ taskId: "s", command: ["sleep", "5"], env, logPath: join(dir, "s.log") });
  const fields = readFileSync(`/proc/${h.pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  assert.equal(Number(fields[2]), h.pid, "process group id is its own pid");
  assert.equal(Number(fields[3]), h.pid, "session id is its own pid");
  d.signal(h, "SIGKILL");
  assert.deepEqual(await exitOf(d, h), { signal: "SIGKILL" });
});

test("a signal reaches the whole process group", async () => {
  const d = new ProcessDriver(systemClock);
  const logPath = join(dir, "g.log");
  const h = await d.start({ taskId: "g", command: ["sh", "-c", "sleep 30 & echo $!; wait"], env, logPath });
  const deadline = Date.now() + 5000;
  while (!readFileSync(logPath, "utf8").trim() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  const child = Number(readFileSync(logPath, "utf8").trim());
  d.signal(h, "SIGTERM");
  await exitOf(d, h);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(d.isAlive({ pid: child, startTime: "" }), false, "the background child went too");
});

test("an executable that does not exist is a StartError (the task is rejected)", async () => {
  const d = new ProcessDriver(systemClock);
  await assert.rejects(d.start({ taskId: "x", command: ["/nonexistent/bin"], env, logPath: join(dir, "x.log") }), (e: unknown) => e instanceof StartError && /executable not found/.test((e as Error).message));
});

test("another driver instance (an agent restart) re-adopts by pid + start time and sees the exit", async () => {
  const first = new ProcessDriver(systemClock);
  const h = await first.start({ taskId: "r", command: ["sleep", "30"], env, logPath: join(dir, "r.log") });
  const second = new ProcessDriver(systemClock);
  assert.equal(second.isAlive(h), true);
  assert.equal(second.isAlive({ pid: h.pid, startTime: "1" }), false, "a reused pid with another start time is not the task");
  const exited = exitOf(second, h);
  process.kill(h.pid, "SIGKILL");
  const s = await exited;
  assert.match(s.message!, /exit status unknown/);
});
