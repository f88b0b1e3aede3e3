// The supervisor with a real child process standing in for etcd (sh running sleep): what is
// tested is the supervision (start, restart after kill -9 with a backoff, stop, a stale member
// left by a killed Baton), not etcd itself (test/integration/ha-etcd.test.ts runs etcd).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { systemClock } from "../lib/clock.js";
import { BatonError } from "../lib/errors.js";
import { silentLogger } from "../lib/log.js";
import { EtcdProcess, requireEtcdBinary } from "./etcd-process.js";

const alive = (pid: number): boolean => existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));

async function until<T>(fn: () => T | undefined, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`never happened: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function setup(script: string, ready: () => Promise<boolean> = async () => true, extra: Partial<ConstructorParameters<typeof EtcdProcess>[0]> = {}) {
  const dir = mkdtempSync(join(tmpdir(), "baton-etcd-proc-"));
  const dataDir = join(dir, "data");
  const proc = new EtcdProcess({
    binary: "/bin/sh",
    args: ["-c", script, "sh", dataDir],
    dataDir,
    logFile: join(dir, "logs", "etcd.log"),
    pidFile: join(dir, "etcd.pid"),
    ready,
    clock: systemClock,
    log: silentLogger(),
    startTimeoutMs: 2000,
    ...extra,
  });
  return { dir, dataDir, proc };
}

test("a missing etcd binary is an error naming the Debian package", () => {
  assert.throws(() => requireEtcdBinary("/nonexistent/etcd"), (e: unknown) => e instanceof BatonError && /etcd not found at \/nonexistent\/etcd: install the Debian package etcd-server/.test(e.message));
});

test("the member is restarted after kill -9, and stop() ends it for good", async () => {
  const { proc, dir } = setup("echo started; exec sleep 30");
  await proc.start();
  const first = proc.pid!;
  assert.equal(proc.status, "running");
  assert.equal(readFileSync(join(dir, "etcd.pid"), "utf8").trim(), String(first));
  const logText = (): string => readFileSync(join(dir, "logs", "etcd.log"), "utf8");
  await until(() => (logText() === "started\n" ? true : undefined), 2000, "the first run's output in etcd.log");
  process.kill(first, "SIGKILL");
  const second = await until(() => (proc.pid && proc.pid !== first ? proc.pid : undefined), 5000, "a new etcd process");
  assert.equal(proc.restarts, 1);
  // Both runs wrote to the one log (appended, not truncated by the restart).
  await until(() => (logText() === "started\nstarted\n" ? true : undefined), 2000, "the restarted member's output in etcd.log");
  await proc.stop();
  assert.equal(proc.status, "stopped");
  assert.equal(alive(second), false);
  assert.equal(existsSync(join(dir, "etcd.pid")), false);
  await new Promise((r) => setTimeout(r, 700));
  assert.equal(proc.pid, undefined, "no restart after stop");
});

test("a member that exits at once fails the start with the tail of its log", async () => {
  const { proc } = setup("echo 'bad flag --frobnicate' >&2; exit 2", async () => false);
  await assert.rejects(proc.start(), (e: unknown) => e instanceof BatonError && /etcd member did not start: etcd exited while starting/.test(e.message) && /bad flag --frobnicate/.test(e.message));
  assert.equal(proc.status, "stopped");
});

test("an etcd of this data dir left running by a killed Baton is stopped before a new start", async () => {
  const { proc, dataDir, dir } = setup("exec sleep 30");
  // A shell that stays (no exec), so its command line names the data dir as etcd's would.
  const keeper = spawn("/bin/sh", ["-c", "sleep 30; true", "sh", dataDir], { stdio: "ignore" });
  writeFileSync(join(dir, "etcd.pid"), `${keeper.pid}\n`);
  await proc.start();
  await until(() => (keeper.exitCode !== null || keeper.signalCode !== null ? true : undefined), 5000, "the stale process stopped");
  assert.notEqual(proc.pid, keeper.pid);
  await proc.stop();
});

test("a member the cluster removed is not restarted: onRemoved runs once, the supervisor stops", async () => {
  let removedCalls = 0;
  let asked = 0;
  const { proc } = setup("exec sleep 30", async () => true, {
    isRemoved: async () => (asked++, true),
    onRemoved: () => removedCalls++,
  });
  await proc.start();
  const first = proc.pid!;
  process.kill(first, "SIGKILL");
  await until(() => (removedCalls === 1 ? true : undefined), 5000, "onRemoved");
  assert.equal(proc.status, "stopped");
  await new Promise((r) => setTimeout(r, 1200));
  assert.equal(proc.pid, undefined, "not spawned again");
  assert.equal(proc.restarts, 0);
  assert.equal(asked, 1);
  assert.equal(removedCalls, 1);
});

test("a member that is still a member (or when nobody can tell) is restarted as before", async () => {
  const { proc } = setup("exec sleep 30", async () => true, { isRemoved: () => Promise.reject(new Error("no member answered")) });
  await proc.start();
  const first = proc.pid!;
  process.kill(first, "SIGKILL");
  await until(() => (proc.pid && proc.pid !== first ? true : undefined), 5000, "a restart");
  await proc.stop();
});
