// One driver conformance suite, run against the process driver and (when an engine answers) the
// docker driver: start, exit codes, logs, a stop signal and its handler, re-adoption by a second
// driver instance, a start that cannot happen. Waits on events and files, never sleeps.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { systemClock } from "../../lib/clock.js";
import { silentLogger } from "../../lib/log.js";
import { waitFor } from "../../../test/harness/baton.js";
import { dockerOrSkip, ensureBusyboxImage } from "../../../test/harness/images.js";
import { StartError, type Driver, type ExitStatus, type StartRequest, type TaskHandle } from "./driver.js";
import { DockerDriver } from "./docker/docker-driver.js";
import { ProcessDriver } from "./process/process-driver.js";
import { NODE_LABEL, TASK_LABEL } from "./labels.js";

const dir = mkdtempSync(join(tmpdir(), "baton-conformance-"));
// The process driver unrefs its children and timers; the test must stay up while it waits.
const keepAlive = setInterval(() => undefined, 1000);
after(() => {
  clearInterval(keepAlive);
  rmSync(dir, { recursive: true, force: true });
});

interface Subject {
  name: string;
  make(): Driver;
  /** A start request for this driver running `command` (a busybox/POSIX sh command line). */
  req(taskId: string, command: string[]): StartRequest;
  /** Kills the task from outside Baton (kill -9 of the process, `docker kill`). */
  killFromOutside(h: TaskHandle): Promise<void>;
  /** How this driver reports a task ended by SIGKILL. */
  killed: ExitStatus;
  /** A start request that cannot start, and the StartError it gives. */
  impossible(taskId: string): [StartRequest, RegExp];
  skip?: string;
  cleanupAll?(): Promise<void>;
}

const runId = `conf-${process.pid}`;
const base = (taskId: string, command: string[]): StartRequest => ({
  taskId: `${runId}-${taskId}`,
  command,
  env: { PATH: process.env.PATH ?? "/usr/bin:/bin", BATON_TASK_ID: `${runId}-${taskId}` },
  logPath: join(dir, `${runId}-${taskId}.log`),
  statePrefix: join(dir, `${runId}-${taskId}`),
});

const engine = await dockerOrSkip();
const image = "docker" in engine ? await ensureBusyboxImage(engine.docker) : "";
const subjects: Subject[] = [
  {
    name: "process",
    make: () => new ProcessDriver(systemClock),
    req: base,
    killFromOutside: async (h) => {
      process.kill(h.pid, "SIGKILL");
    },
    killed: { signal: "SIGKILL" },
    impossible: (id) => [base(id, ["/nonexistent/bin"]), /executable not found: \/nonexistent\/bin/],
  },
  {
    name: "docker",
    ...("skip" in engine ? { skip: engine.skip } : {}),
    make: () => new DockerDriver({ clock: systemClock, log: silentLogger(), pullTimeoutMs: 1000 }),
    req: (id, command) => {
      const r = base(id, command);
      // The container has its own PATH; only Baton's variables are passed.
      return { ...r, env: { BATON_TASK_ID: r.taskId }, image, name: r.taskId, labels: { [TASK_LABEL]: r.taskId, [NODE_LABEL]: runId } };
    },
    killFromOutside: async (h) => {
      if ("docker" in engine) await engine.docker.getContainer(h.containerId!).kill();
    },
    killed: { exitCode: 137 },
    impossible: (id) => [{ ...base(id, ["true"]), image: "baton-test/not-there:1" }, /image not found locally: baton-test\/not-there:1/],
    cleanupAll: async () => {
      const d = new DockerDriver({ clock: systemClock, log: silentLogger() });
      for (const o of await d.listOwned(runId)) await d.remove(o.handle);
    },
  },
];

const exitOf = (d: Driver, h: TaskHandle): Promise<ExitStatus> => new Promise((r) => d.wait(h, r));
const started = async (d: Driver, r: StartRequest): Promise<TaskHandle> => {
  await d.prepare?.(r);
  return d.start(r);
};
const logged = (r: StartRequest, text: string): Promise<unknown> =>
  waitFor(() => existsSync(r.logPath) && readFileSync(r.logPath, "utf8").includes(text), 10_000, `${r.taskId} logging "${text}"`, 10);

for (const s of subjects) {
  describe(`driver conformance: ${s.name}`, { ...(s.skip ? { skip: s.skip } : {}) }, () => {
    after(() => s.cleanupAll?.());

    test("runs a command, its output reaches the task's log file, the exit code is reported", async () => {
      const d = s.make();
      const r = s.req("exit3", ["sh", "-c", "echo out; echo err >&2; exit 3"]);
      const h = await started(d, r);
      assert.deepEqual(await exitOf(d, h), { exitCode: 3 });
      const log = readFileSync(r.logPath, "utf8");
      assert.match(log, /out\n/);
      assert.match(log, /err\n/);
      d.cleanup(h);
    });

    test("the stop signal reaches the task and its handler decides the exit code", async () => {
      const d = s.make();
      const r = s.req("trap", ["sh", "-c", "trap 'echo bye; exit 7' TERM; echo up; while true; do sleep 0.1; done"]);
      const h = await started(d, r);
      await logged(r, "up");
      const exited = exitOf(d, h);
      d.signal(h, "SIGTERM");
      assert.deepEqual(await exited, { exitCode: 7 });
      await logged(r, "bye");
      d.cleanup(h);
    });

    test("a second driver instance (an agent restart) re-adopts the running task and sees how it ended", async () => {
      const first = s.make();
      const r = s.req("adopt", ["sh", "-c", "echo up; exec sleep 30"]);
      const h = await started(first, r);
      assert.ok(h.pid > 0, `the task's pid (${h.pid})`);
      await logged(r, "up");
      const second = s.make();
      const exited = exitOf(second, h);
      await s.killFromOutside(h);
      assert.deepEqual(await exited, s.killed);
      second.cleanup(h);
    });

    test("a task that cannot start is a StartError (the task is rejected), quickly", async () => {
      const d = s.make();
      const [r, message] = s.impossible("impossible");
      const t0 = Date.now();
      await assert.rejects(started(d, r), (e: unknown) => e instanceof StartError && message.test((e as Error).message));
      assert.ok(Date.now() - t0 < 5000, `rejected in ${Date.now() - t0} ms`);
    });
  });
}

describe("docker driver specifics", { ...("skip" in engine ? { skip: engine.skip } : {}) }, () => {
  const docker = subjects[1]!;
  after(() => docker.cleanupAll?.());

  test("exec runs inside the container; listOwned finds containers by node label; remove takes them", async () => {
    const d = docker.make() as DockerDriver;
    const r = docker.req("exec", ["sh", "-c", "echo inside > /tmp/mark; echo up; exec sleep 30"]);
    const h = await started(d, r);
    await logged(r, "up");
    assert.deepEqual(await d.exec(h, ["cat", "/tmp/mark"], 5000), { ok: true, output: "inside" });
    assert.equal((await d.exec(h, ["sh", "-c", "exit 4"], 5000)).ok, false);
    const owned = await d.listOwned(runId);
    assert.deepEqual(owned.filter((o) => o.handle.containerId === h.containerId).map((o) => o.taskId), [r.taskId]);
    assert.equal((await d.inspect(h))?.running, true);
    const exited = exitOf(d, h);
    await d.remove(h);
    assert.match((await exited).message ?? String((await exited).exitCode), /removed outside Baton|137/);
    assert.equal(await d.inspect(h), undefined, "gone");
  });
});
