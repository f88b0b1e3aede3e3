// Driver conformance for the process driver: start, wait, stop with a signal, re-adopt, exit
// status recorded while nobody watched, strays, logs. Waits on events and files, never sleeps.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ProcessDriver } from "./process-driver.js";
import { StartError, type ExitStatus, type StartRequest, type TaskHandle } from "../driver.js";
import { systemClock } from "../../../lib/clock.js";
import { isLiveProcess } from "./proc-stat.js";
import { CGROUP_JOIN_FAILED } from "./shim.js";
import { Cgroups } from "../../cgroups/cgroups.js";
import { fakeV1Root } from "../../../../test/harness/fake-cgroups.js";
import { waitFor } from "../../../../test/harness/baton.js";

const dir = mkdtempSync(join(tmpdir(), "baton-driver-"));
// The driver unrefs its children and timers (tasks must not keep Baton alive); the test must stay up.
const keepAlive = setInterval(() => undefined, 1000);
test.after(() => {
  clearInterval(keepAlive);
  rmSync(dir, { recursive: true, force: true });
});
const env = { PATH: process.env.PATH ?? "/usr/bin:/bin" };
const req = (taskId: string, command: string[], extra: Partial<StartRequest> = {}): StartRequest => ({
  taskId,
  command,
  env: { ...env, BATON_TASK_ID: taskId },
  logPath: join(dir, `${taskId}.log`),
  statePrefix: join(dir, taskId),
  ...extra,
});
const exitOf = (d: ProcessDriver, h: TaskHandle): Promise<ExitStatus> => new Promise((r) => d.wait(h, r));
/** Resolves once the task has written `text` to its log: it is up and past its set-up. */
const logged = (taskId: string, text: string): Promise<unknown> =>
  waitFor(() => existsSync(join(dir, `${taskId}.log`)) && readFileSync(join(dir, `${taskId}.log`), "utf8").includes(text), 5000, `${taskId} logging "${text}"`, 5);

test("runs a command, output straight to the log file, and reports the exit code", async () => {
  const d = new ProcessDriver(systemClock);
  const h = await d.start(req("a", ["sh", "-c", "echo out; echo err >&2; exit 3"]));
  assert.ok(h.pid > 0 && h.startTime !== "");
  assert.deepEqual(await exitOf(d, h), { exitCode: 3 });
  assert.equal(readFileSync(join(dir, "a.log"), "utf8"), "out\nerr\n");
  assert.equal(d.isAlive(h), false);
});

test("the task's own pid is reported; it runs in a session and process group apart from Baton's", async () => {
  const d = new ProcessDriver(systemClock);
  const h = await d.start(req("s", ["sh", "-c", "echo $$; exec sleep 5"]));
  await logged("s", "\n");
  assert.equal(Number(readFileSync(join(dir, "s.log"), "utf8").trim()), h.pid, "the pid the task sees is the one reported");
  const fields = readFileSync(`/proc/${h.pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  assert.equal(Number(fields[2]), h.groupId, "in the group the driver signals");
  assert.equal(Number(fields[3]), h.groupId, "in a session of its own");
  const ownSession = Number(readFileSync(`/proc/${process.pid}/stat`, "utf8").split(") ")[1]!.split(" ")[3]);
  assert.notEqual(Number(fields[3]), ownSession, "not Baton's session");
  const exited = exitOf(d, h);
  process.kill(h.pid, "SIGKILL");
  assert.deepEqual(await exited, { signal: "SIGKILL" }, "a kill -9 of the task is reported as such");
});

test("a signal reaches the whole process group, and the task's handler runs", async () => {
  const d = new ProcessDriver(systemClock);
  const h = await d.start(req("g", ["sh", "-c", "trap 'echo bye; exit 7' TERM; sleep 30 & echo child $!; wait"]));
  await logged("g", "child ");
  const child = Number(/child (\d+)/.exec(readFileSync(join(dir, "g.log"), "utf8"))![1]);
  const exited = exitOf(d, h);
  d.signal(h, "SIGTERM");
  assert.deepEqual(await exited, { exitCode: 7 });
  assert.match(readFileSync(join(dir, "g.log"), "utf8"), /bye/);
  await waitFor(() => !isLiveProcess(child), 2000, "the background child gone too");
});

test("a missing executable or working directory is a StartError (the task is rejected)", async () => {
  const d = new ProcessDriver(systemClock);
  await assert.rejects(d.start(req("x", ["/nonexistent/bin"])), (e: unknown) => e instanceof StartError && /executable not found: \/nonexistent\/bin/.test((e as Error).message));
  await assert.rejects(d.start(req("y", ["no-such-command-here"])), (e: unknown) => e instanceof StartError && /executable not found: no-such-command-here/.test((e as Error).message));
  await assert.rejects(d.start(req("z", ["true"], { workdir: join(dir, "missing") })), (e: unknown) => e instanceof StartError && /working directory not found/.test((e as Error).message));
});

test("another driver instance (an agent restart) re-adopts by pid + start time and sees the exit", async () => {
  const first = new ProcessDriver(systemClock);
  const h = await first.start(req("r", ["sleep", "30"]));
  const second = new ProcessDriver(systemClock);
  assert.equal(second.isAlive(h), true);
  assert.equal(second.isAlive({ ...h, startTime: "1" }), false, "a reused pid with another start time is not the task");
  const exited = exitOf(second, h);
  process.kill(h.pid, "SIGKILL");
  assert.deepEqual(await exited, { signal: "SIGKILL" }, "the shim recorded how it ended");
});

// issue #7: a task that exited while Baton was down always counted as failed.
test("the exit status of a task that ends while nobody watches is recorded and read back", async () => {
  const first = new ProcessDriver(systemClock);
  const h = await first.start(req("q", ["sh", "-c", "read x < /dev/null; sleep 0.2; exit 0"]));
  // The "agent" is gone: nobody waits. A second instance finds the task ended, with its status.
  await waitFor(() => !first.isAlive(h), 5000, "task ended");
  const second = new ProcessDriver(systemClock);
  assert.deepEqual(second.recordedExit(h), { exitCode: 0 });
  assert.deepEqual(await exitOf(second, h), { exitCode: 0 });
  second.cleanup(h);
  assert.equal(second.recordedExit(h), undefined);
});

// issue #7: a crash between spawn and the task record leaked the process.
test("strays are found by their BATON_TASK_ID and killed with their group", async () => {
  const d = new ProcessDriver(systemClock);
  const h = await d.start(req("stray-1", ["sh", "-c", "sleep 30 & echo child $!; wait"]));
  await logged("stray-1", "child ");
  const child = Number(/child (\d+)/.exec(readFileSync(join(dir, "stray-1.log"), "utf8"))![1]);
  const other = await d.start(req("other-1", ["sleep", "30"]));
  const killed = new ProcessDriver(systemClock).killStrays(new Set(["stray-1"]));
  // The group kill of the first match may take the others before the scan reaches them.
  assert.ok(killed.includes(h.groupId!) || killed.includes(h.pid), `killed ${killed} includes the task's group`);
  await waitFor(() => !isLiveProcess(h.pid) && !isLiveProcess(child), 2000, "stray and its child gone");
  assert.equal(d.isAlive(other), true, "a task with another id is untouched");
  d.signal(other, "SIGKILL");
});

describe("limits (a temp dir stands in for /sys/fs/cgroup)", () => {
  const root = fakeV1Root();
  test.after(() => rmSync(root, { recursive: true, force: true }));
  const memDir = (taskId: string): string => join(root, "memory", "baton", taskId);
  const cpuDir = (taskId: string): string => join(root, "cpu", "baton", taskId);

  test("the node advertises what its cgroups enforce", () => {
    assert.deepEqual(new ProcessDriver(systemClock, { cgroups: Cgroups.detect({ root }) }).limits, { memory: true, cpu: true, cgroup: "v1" });
    assert.deepEqual(new ProcessDriver(systemClock).limits, { memory: false, cpu: false, cgroup: "none" });
  });

  test("a task with limits is in its cgroups before its command runs", async () => {
    const d = new ProcessDriver(systemClock, { cgroups: Cgroups.detect({ root }) });
    // The command's first act is to read the cgroups' pid lists: its own pid is already there.
    const h = await d.start(req("lim-a", ["sh", "-c", `cat "${memDir("lim-a")}/cgroup.procs" "${cpuDir("lim-a")}/cgroup.procs"; echo $$`], { limits: { memoryBytes: 16 * 1024 * 1024, cpus: 0.5 } }));
    assert.deepEqual(h.cgroups, [memDir("lim-a"), cpuDir("lim-a")]);
    assert.deepEqual(await exitOf(d, h), { exitCode: 0 });
    assert.deepEqual(readFileSync(join(dir, "lim-a.log"), "utf8").trim().split("\n").map(Number), [h.pid, h.pid, h.pid]);
    assert.equal(readFileSync(join(memDir("lim-a"), "memory.limit_in_bytes"), "utf8"), String(16 * 1024 * 1024));
    assert.equal(readFileSync(join(cpuDir("lim-a"), "cpu.cfs_quota_us"), "utf8"), "50000");
    // A kernel cgroup goes with rmdir whatever its control files; a temp dir needs them gone.
    for (const d of h.cgroups!) for (const f of readdirSync(d)) rmSync(join(d, f));
    d.cleanup(h);
    assert.equal(existsSync(memDir("lim-a")) || existsSync(cpuDir("lim-a")), false, "cgroups removed once the task ended");
  });

  test("a task without limits gets no cgroup", async () => {
    const d = new ProcessDriver(systemClock, { cgroups: Cgroups.detect({ root }) });
    const h = await d.start(req("lim-none", ["true"]));
    assert.equal(h.cgroups, undefined);
    assert.deepEqual(await exitOf(d, h), { exitCode: 0 });
    assert.equal(existsSync(memDir("lim-none")), false);
  });

  test("limits the node cannot enforce reject the task before anything runs", async () => {
    const d = new ProcessDriver(systemClock, { cgroups: Cgroups.detect({ root: join(root, "nothing-here") }) });
    await assert.rejects(d.start(req("lim-no", ["true"], { limits: { memoryBytes: 16 * 1024 * 1024 } })), (e: unknown) => e instanceof StartError && (e as Error).message === "this node cannot enforce memory limits (cgroup none)");
    assert.equal(existsSync(join(dir, "lim-no.log")), false, "nothing was spawned");
  });

  test("a task that cannot join its cgroup fails with status 125 and says why in its log", async () => {
    const d = new ProcessDriver(systemClock, { cgroups: Cgroups.detect({ root }) });
    // Made in the way of the pid list: the join's write fails, as a kernel refusal would.
    mkdirSync(join(memDir("lim-j"), "cgroup.procs"), { recursive: true });
    const h = await d.start(req("lim-j", ["echo", "never runs"], { limits: { memoryBytes: 16 * 1024 * 1024 } }));
    assert.deepEqual(await exitOf(d, h), { exitCode: CGROUP_JOIN_FAILED });
    const log = readFileSync(join(dir, "lim-j.log"), "utf8");
    assert.match(log, /baton: cannot join cgroup .*lim-j\/cgroup.procs\n$/);
    assert.doesNotMatch(log, /never runs/);
  });

  test("a task the kernel OOM-killed is reported as such, read from its cgroup's counter", async () => {
    const d = new ProcessDriver(systemClock, { cgroups: Cgroups.detect({ root }) });
    const oomControl = join(memDir("lim-oom"), "memory.oom_control");
    // Stands in for the kernel: the counter goes up, then the task dies by SIGKILL.
    const h = await d.start(req("lim-oom", ["sh", "-c", `printf 'oom_kill_disable 0\\nunder_oom 0\\noom_kill 1\\n' > "${oomControl}"; kill -9 $$`], { limits: { memoryBytes: 16 * 1024 * 1024 } }));
    assert.deepEqual(await exitOf(d, h), { signal: "SIGKILL", oomKilled: true });
    const plain = await d.start(req("lim-kill", ["sh", "-c", `printf 'oom_kill 0\\n' > "${join(memDir("lim-kill"), "memory.oom_control")}"; kill -9 $$`], { limits: { memoryBytes: 16 * 1024 * 1024 } }));
    assert.deepEqual(await exitOf(d, plain), { signal: "SIGKILL" }, "a SIGKILL from elsewhere is not an OOM kill");
  });

  test("a re-adopted task keeps its cgroup; strays' cgroups go with them", async () => {
    const cgroups = Cgroups.detect({ root });
    const first = new ProcessDriver(systemClock, { cgroups });
    const h = await first.start(req("lim-r", ["sleep", "30"], { limits: { cpus: 0.5 } }));
    const second = new ProcessDriver(systemClock, { cgroups });
    assert.equal(second.isAlive(h), true);
    assert.ok(existsSync(cpuDir("lim-r")), "adoption leaves the cgroup alone");
    for (const f of readdirSync(cpuDir("lim-r"))) rmSync(join(cpuDir("lim-r"), f));
    second.killStrays(new Set(["lim-r"]));
    await waitFor(() => !existsSync(cpuDir("lim-r")), 2000, "the stray's cgroup removed");
  });
});
