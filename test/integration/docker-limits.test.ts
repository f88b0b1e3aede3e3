// Issue 12, limits on the docker driver: --limit-cpu measured from the container's own cgroup,
// --limit-memory ending in an OOM kill that `service ps` reports, reservations counted by the
// scheduler for containers, and `baton stats`. A real `baton up` against the local Docker Engine.
// Without an engine these tests skip with the reason printed; under CI=true they fail.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type Docker from "dockerode";
import { BatonProcess, waitFor, type PsRow } from "../harness/baton.js";
import { dockerOrSkip, ensureBusyboxImage } from "../harness/images.js";
import { NODE_LABEL } from "../../src/agent/drivers/labels.js";

const engine = await dockerOrSkip();
const skip = "skip" in engine ? { skip: engine.skip } : {};

/**
 * CPU time (s) of every process in the cgroup that holds `pid`, read from the kernel: cgroup v1
 * `cpuacct.usage` (ns) of its cpuacct hierarchy, or v2 `cpu.stat` usage_usec.
 */
function cgroupCpuSeconds(pid: number): number {
  const lines = readFileSync(`/proc/${pid}/cgroup`, "utf8").trim().split("\n");
  const v1 = lines.map((l) => l.split(":")).find(([, controllers]) => controllers!.split(",").includes("cpuacct"));
  if (v1) {
    const dir = join("/sys/fs/cgroup", v1[1]!, v1[2]!);
    return Number(readFileSync(join(dir, "cpuacct.usage"), "utf8")) / 1e9;
  }
  const v2 = lines.find((l) => l.startsWith("0::"))!.slice(3);
  const stat = readFileSync(join("/sys/fs/cgroup", v2, "cpu.stat"), "utf8");
  return Number(/usage_usec (\d+)/.exec(stat)![1]) / 1e6;
}

/** Cores the cgroup of `pid` used over a 2 s window (the window is the measurement, not a wait). */
async function coresUsed(pid: number, windowMs = 2000): Promise<number> {
  const t0 = performance.now();
  const c0 = cgroupCpuSeconds(pid);
  await new Promise((r) => setTimeout(r, windowMs));
  return (cgroupCpuSeconds(pid) - c0) / ((performance.now() - t0) / 1000);
}

describe("limits on the docker driver", skip, () => {
  const docker = "docker" in engine ? engine.docker : (undefined as unknown as Docker);
  const baton = new BatonProcess(undefined, ["--dns-addr", "127.77.0.1:0"]);
  let image = "";
  let nodeId = "";
  const running = (service: string): Promise<PsRow> =>
    waitFor(async () => (await baton.tasks(service)).find((t) => t.CurrentState === "running" && t.ContainerId && t.Pid), 20_000, `${service} running`);

  before(async () => {
    image = await ensureBusyboxImage(docker);
    await baton.start();
    nodeId = (await baton.info()).nodeId;
  });
  after(async () => {
    await baton.destroy();
    for (const c of await docker.listContainers({ all: true, filters: { label: [`${NODE_LABEL}=${nodeId}`] } })) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
  });

  test("--limit-cpu 0.5 holds a busy container to about half a core (its cgroup's CPU time over a window)", async () => {
    await baton.cliOk("service", "create", "--name", "spin", "--limit-cpu", "0.5", "--stop-grace-period", "1s", "-d", image, "sh", "-c", "while :; do :; done");
    const task = await running("spin");
    const info = await docker.getContainer(task.ContainerId!).inspect();
    assert.equal(info.HostConfig.NanoCpus, 500_000_000, "the engine was given 0.5 CPU");
    // A limit is a ceiling: on a machine busy with other work the container may get less than
    // its half core in one window, never more. Up to 3 windows, until one is in the band.
    const samples: number[] = [];
    for (let i = 0; i < 3 && !(samples.at(-1)! >= 0.3); i++) samples.push(await coresUsed(task.Pid!));
    process.stdout.write(`# docker --limit-cpu 0.5 used ${samples.map((s) => s.toFixed(3)).join(", ")} of a core\n`);
    assert.ok(samples.every((s) => s <= 0.7), `never more than about half a core: ${samples.join(", ")}`);
    assert.ok(samples.at(-1)! >= 0.3, `about half a core: used ${samples.join(", ")}`);

    // `baton stats`: the driver's own sample agrees; a process task is listed by its pid.
    await baton.cliOk("service", "create", "--name", "idle", "-d", "sleep", "600");
    const idle = await waitFor(async () => (await baton.tasks("idle")).find((t) => t.CurrentState === "running" && t.Pid), 15_000, "idle running");
    const stats = (await baton.cliOk("stats", "--format", "json")).trim().split("\n").map((l) => JSON.parse(l) as { task: string; containerId?: string; pid?: number; cpus?: number; memoryBytes?: number; cpuLimit?: number; error?: string });
    const spin = stats.find((s) => s.containerId === task.ContainerId);
    const proc = stats.find((s) => s.pid === idle.Pid);
    assert.ok(spin && proc, `both tasks listed: ${JSON.stringify(stats)}`);
    assert.equal(spin.error, undefined);
    assert.ok(spin.cpus! > 0.1 && spin.cpus! <= 0.7, `docker stats: busy, at most about half a core (${spin.cpus})`);
    assert.equal(spin.cpuLimit, 0.5);
    assert.ok(spin.memoryBytes! > 0 && proc.memoryBytes! > 0, "memory in use reported");
    assert.ok(proc.cpus! < 0.2, `an idle process uses next to no CPU (${proc.cpus})`);
    const table = await baton.cliOk("stats", "spin");
    assert.match(table, new RegExp(`${task.ContainerId!.slice(0, 12)}\\s+spin\\.1\\s+\\d+\\.\\d\\d%`));
    await baton.cliOk("service", "rm", "spin", "idle");
  });

  test("a container over --limit-memory 32M is OOM-killed: failed, \"OOM killed\", exit code 137", async () => {
    // 200 MB of "y\n" into a shell variable: far over the limit.
    await baton.cliOk("service", "create", "--name", "hog", "--limit-memory", "32M", "--restart-condition", "none", "-d", image, "sh", "-c", "x=$(yes | head -c 209715200); echo survived ${#x}");
    const failed = await waitFor(async () => (await baton.tasks("hog")).find((t) => t.CurrentState === "failed"), 30_000, "the hog failed");
    assert.equal(failed.Error, "OOM killed");
    assert.equal(failed.ExitCode, 137);
    assert.match(await baton.cliOk("service", "ps", "hog"), /ERROR[\s\S]*OOM killed/);
  });

  test("--reserve-cpu counts for containers: 3 replicas reserving 1 CPU each on a 2-CPU node → 2 run, 1 pending with the reason", async (t) => {
    const cpus = (JSON.parse(await baton.cliOk("node", "inspect", "self")) as { resources: { cpus: number } }[])[0]!.resources.cpus;
    if (cpus > 8) return t.skip(`the node has ${cpus} CPUs; the test reserves whole CPUs`);
    await baton.cliOk("service", "create", "--name", "big", "--replicas", String(cpus + 1), "--reserve-cpu", "1", "--stop-grace-period", "1s", "-d", image, "sleep", "600");
    const rows = await waitFor(async () => {
      const r = await baton.tasks("big");
      return r.filter((x) => x.CurrentState === "running").length === cpus && r.some((x) => x.CurrentState === "pending") ? r : undefined;
    }, 20_000, `${cpus} big tasks running and one pending`);
    const pending = rows.find((x) => x.CurrentState === "pending")!;
    assert.match(pending.Message, /no node satisfies: 1 node insufficient cpu/);
    await baton.cliOk("service", "rm", "big");
  });
});
