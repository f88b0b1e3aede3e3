// Cgroup layout logic against a temp dir standing in for /sys/fs/cgroup. The kernel makes a
// cgroup's control files when its directory is made; here the test writes the ones that matter.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cgroups, cpuQuotaUs, readCounter } from "./cgroups.js";
import { fakeV1Root, fakeV2Root, writeCgroupFiles } from "../../../test/harness/fake-cgroups.js";

const roots: string[] = [];
test.after(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

const files = writeCgroupFiles;
const v1Root = (opts?: Parameters<typeof fakeV1Root>[0]): string => {
  const root = fakeV1Root(opts);
  roots.push(root);
  return root;
};
const v2Root = (controllers?: string): string => {
  const root = fakeV2Root(controllers);
  roots.push(root);
  return root;
};

test("v1: memory and cpu hierarchies with a writable parent are found and advertised", () => {
  const cg = Cgroups.detect({ root: v1Root() });
  assert.deepEqual(cg.support, { version: 1, memory: true, cpu: true });
  assert.deepEqual(cg.nodeSupport, { memory: true, cpu: true, cgroup: "v1" });
});

test("v1: a task's memory limit goes in memory/baton/<task>, its cpu quota in cpu/baton/<task>", () => {
  const root = v1Root({ memsw: true });
  const cg = Cgroups.detect({ root });
  files(join(root, "memory", "baton", "task1"), { "memory.memsw.limit_in_bytes": "9223372036854771712\n" });
  const t = cg.create("task1", { memoryBytes: 32 * 1024 * 1024, cpus: 0.5 });
  const mem = join(root, "memory", "baton", "task1");
  const cpu = join(root, "cpu", "baton", "task1");
  assert.deepEqual(t, { dirs: [mem, cpu], procs: [join(mem, "cgroup.procs"), join(cpu, "cgroup.procs")] });
  assert.equal(readFileSync(join(mem, "memory.limit_in_bytes"), "utf8"), String(32 * 1024 * 1024));
  assert.equal(readFileSync(join(mem, "memory.memsw.limit_in_bytes"), "utf8"), String(32 * 1024 * 1024), "no swap past the limit");
  assert.equal(readFileSync(join(cpu, "cpu.cfs_period_us"), "utf8"), "100000");
  assert.equal(readFileSync(join(cpu, "cpu.cfs_quota_us"), "utf8"), "50000");
});

test("v1: only the controllers a task limits get a cgroup", () => {
  const root = v1Root();
  const t = Cgroups.detect({ root }).create("task2", { cpus: 1.5 });
  assert.deepEqual(t.dirs, [join(root, "cpu", "baton", "task2")]);
  assert.equal(existsSync(join(root, "memory", "baton", "task2")), false);
});

test("v1: a host without a cpu hierarchy enforces memory only, and refuses a cpu limit", () => {
  const cg = Cgroups.detect({ root: v1Root({ cpu: false }) });
  assert.deepEqual(cg.support, { version: 1, memory: true, cpu: false });
  assert.deepEqual(cg.unenforceable({ cpus: 1, memoryBytes: 1 }), ["cpu"]);
  assert.throws(() => cg.create("t", { cpus: 1 }), /cannot enforce cpu limits/);
});

test("v1: an OOM kill is read from memory.oom_control; kernels without the counter fall back to failcnt and SIGKILL", () => {
  const root = v1Root();
  const dir = join(root, "memory", "baton", "t");
  files(dir, { "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n" });
  const cg = Cgroups.detect({ root });
  assert.equal(cg.oomKilled([dir], true), false);
  writeFileSync(join(dir, "memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n");
  assert.equal(cg.oomKilled([dir], false), true);
  const old = join(root, "memory", "baton", "old-kernel");
  files(old, { "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\n", "memory.failcnt": "12\n" });
  assert.equal(cg.oomKilled([old], true), true);
  assert.equal(cg.oomKilled([old], false), false, "hitting the limit is not a kill when the task ended otherwise");
});

test("v2: the parent is made at the top with memory and cpu enabled for its children", () => {
  const root = v2Root();
  const cg = Cgroups.detect({ root });
  assert.deepEqual(cg.support, { version: 2, memory: true, cpu: true });
  assert.deepEqual(cg.nodeSupport, { memory: true, cpu: true, cgroup: "v2" });
  assert.ok(existsSync(join(root, "baton", "cgroup.subtree_control")), "children get the controllers");
});

test("v2: one cgroup per task with memory.max, memory.swap.max 0 and cpu.max quota period", () => {
  const root = v2Root();
  const cg = Cgroups.detect({ root });
  files(join(root, "baton", "t"), { "memory.swap.max": "max\n" });
  const t = cg.create("t", { memoryBytes: 64 * 1024 * 1024, cpus: 0.25 });
  const dir = join(root, "baton", "t");
  assert.deepEqual(t, { dirs: [dir], procs: [join(dir, "cgroup.procs")] });
  assert.equal(readFileSync(join(dir, "memory.max"), "utf8"), String(64 * 1024 * 1024));
  assert.equal(readFileSync(join(dir, "memory.swap.max"), "utf8"), "0");
  assert.equal(readFileSync(join(dir, "cpu.max"), "utf8"), "25000 100000");
});

test("v2: a controller the host does not offer is not advertised", () => {
  const cg = Cgroups.detect({ root: v2Root("cpuset io pids memory") });
  assert.deepEqual(cg.support, { version: 2, memory: true, cpu: false });
});

test("v2: an OOM kill is the oom_kill counter of memory.events", () => {
  const root = v2Root();
  const dir = join(root, "baton", "t");
  files(dir, { "memory.events": "low 0\nhigh 0\nmax 7\noom 1\noom_kill 0\n" });
  const cg = Cgroups.detect({ root });
  assert.equal(cg.oomKilled([dir], true), false, "hitting max is not a kill");
  writeFileSync(join(dir, "memory.events"), "low 0\nhigh 0\nmax 9\noom 2\noom_kill 1\n");
  assert.equal(cg.oomKilled([dir], false), true);
});

test("no cgroup file system, or one Baton cannot write: none, and every limit is unenforceable", () => {
  const empty = mkdtempSync(join(tmpdir(), "baton-cg0-"));
  roots.push(empty);
  assert.deepEqual(Cgroups.detect({ root: empty }).support, { version: "none", memory: false, cpu: false });
  assert.deepEqual(Cgroups.detect({ root: join(empty, "missing") }).nodeSupport, { memory: false, cpu: false, cgroup: "none" });
  // A file where Baton's parent should go: mkdir fails as on a read-only /sys/fs/cgroup.
  const blocked = v2Root();
  writeFileSync(join(blocked, "baton"), "");
  assert.deepEqual(Cgroups.detect({ root: blocked }).support, { version: "none", memory: false, cpu: false });
  assert.deepEqual(Cgroups.none().unenforceable({ memoryBytes: 1, cpus: 1 }), ["memory", "cpu"]);
});

test("removing a task's cgroups: gone dirs are skipped, removable ones removed, busy ones returned", () => {
  const root = v1Root();
  const cg = Cgroups.detect({ root });
  const t = cg.create("t", { memoryBytes: 8 * 1024 * 1024, cpus: 1 });
  // The kernel lets a cgroup with no process go whatever its control files; a temp dir needs them gone.
  rmSync(join(t.dirs[0]!, "memory.limit_in_bytes"));
  assert.deepEqual(cg.remove([...t.dirs, join(root, "memory", "baton", "never-made")]), [t.dirs[1]]);
  assert.equal(existsSync(t.dirs[0]!), false);
  assert.deepEqual(cg.dirsOf("x"), [join(root, "memory", "baton", "x"), join(root, "cpu", "baton", "x")]);
});

test("cpu quotas: a fraction of the 100 ms period, never under the kernel's 1 ms", () => {
  assert.equal(cpuQuotaUs(0.5), 50_000);
  assert.equal(cpuQuotaUs(2), 200_000);
  assert.equal(cpuQuotaUs(0.001), 1000);
});

test("counters are read from key-value lines", () => {
  const root = v2Root();
  writeFileSync(join(root, "cpu.stat"), "usage_usec 1234\nuser_usec 1000\n");
  assert.equal(readCounter(join(root, "cpu.stat"), "usage_usec"), 1234);
  assert.equal(readCounter(join(root, "cpu.stat"), "nope"), undefined);
  assert.equal(readCounter(join(root, "missing"), "usage_usec"), undefined);
});
