// Multi-node on real hosts: network namespaces (test/harness/netns.ts), one `baton` process per
// host. Run by bench/run.mjs as `node --import tsx bench/cluster.ts` (BENCH_ONLY=cluster), or
// alone after `npm run build`. Needs root. See docs/benchmarks.md ("Cluster") for the definitions.
//
//  join       : spawn `baton join --token T MANAGER:4242` in a namespace host with a fresh data
//               dir → the node is `ready` in GET /v1/nodes on the manager (polled every 20 ms)
//  join floor : `baton info` inside the same namespace (Node start + CLI load + one request)
//  node loss  : 6 replicas of examples/hello/server.js (--health-http /, -p 8080:80), 2 per node on
//               3 nodes; SIGKILL a worker's baton (or partition it) → 6 tasks running and ready,
//               none on the lost node (GET /v1/tasks?service=web every 20 ms)
//  loss floor : SIGKILL one task process on a live worker → its slot's replacement running and ready
//
// Env: BENCH_CLUSTER_REPS (5), BENCH_CLUSTER_POLL_MS (20), BENCH_CLUSTER_VARIANTS (sigkill,partition).
// Writes bench/results/cluster-latest.json, prints the result JSON as the last stdout line (for
// bench/run.mjs) after the markdown table; progress on stderr.
import { execFileSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { BIN, HELLO, ROOT } from "../test/harness/baton.js";
import { NetnsBaton, createTestNetwork, netnsAvailability, type TestHost, type TestNetwork } from "../test/harness/netns.js";
import { batonApi, loadavg, log, now, pollUntil, r1, stats } from "./lib.mjs";
import { clusterTable, PUBLISHED_NODE_LOSS_S, TARGET_NODE_LOSS_MS } from "./cluster-table.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const RESULTS = path.join(HERE, "results");
const REPS = Number(process.env.BENCH_CLUSTER_REPS || 5);
const POLL_MS = Number(process.env.BENCH_CLUSTER_POLL_MS || 20);
const VARIANTS = (process.env.BENCH_CLUSTER_VARIANTS || "sigkill,partition").split(",").filter(Boolean);
const REPLICAS = 6;
const SVC = "web";
/** A task that ran this long restarts at once (src/orchestrator/restart.ts BACKOFF_RESET_MS + margin). */
const OLD_ENOUGH_MS = 10_500;
/** The manager's default (`baton init --heartbeat-grace`): 3 × the 500 ms period. */
const HEARTBEAT_GRACE_MS = 1500;

interface ApiTask {
  id: string;
  slot: number;
  nodeId?: string;
  desiredState: string;
  status: { state: string; ready?: boolean; pid?: number; startedAt?: number };
}
interface ApiNode {
  id: string;
  hostname: string;
  status: { state: string };
}

type Api = ReturnType<typeof batonApi>;

const out: Record<string, unknown> = {
  bench: "cluster",
  complete: false,
  conditions: { date: new Date().toISOString(), node: process.version, cpus: os.cpus().length, cpu_model: os.cpus()[0]?.model ?? null, loadavg_start: loadavg() },
  config: {
    reps: REPS,
    poll_ms: POLL_MS,
    hosts: "4 network namespaces on one bridge: h1 manager (`baton init`), h2 h3 workers, h4 for the join measurement",
    heartbeat: "defaults: period 500 ms, grace 3 periods = 1.5 s",
    service: `${REPLICAS} replicas of examples/hello/server.js, -p 8080:80, --health-http / --health-interval 1s`,
    variants: VARIANTS,
  },
  target_node_loss_ms: TARGET_NODE_LOSS_MS,
  published_default_not_measured_s: PUBLISHED_NODE_LOSS_S,
};

function save(): void {
  mkdirSync(RESULTS, { recursive: true });
  const f = path.join(RESULTS, "cluster-latest.json");
  writeFileSync(f + ".tmp", JSON.stringify(out, null, 2) + "\n");
  renameSync(f + ".tmp", f);
}

/** Running hello apps on the machine (the namespaces share one pid space): `node HELLO` exactly. */
function helloProcesses(): number {
  const exact = `${process.execPath} ${HELLO}`.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  try {
    return Number(execFileSync("pgrep", ["-fcx", exact], { encoding: "utf8" }).trim());
  } catch {
    return 0;
  }
}

const servingTasks = (ts: ApiTask[]): ApiTask[] => ts.filter((t) => t.desiredState === "running" && t.status.state === "running" && t.status.ready === true);

/** Lines of a child's stream, each with Date.now() of its arrival and its pino `time` if JSON. */
function lines(proc: ChildProcess): { at: number; time?: number; msg?: string }[] {
  const seen: { at: number; time?: number; msg?: string }[] = [];
  let buf = "";
  const on = (d: Buffer): void => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const l = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        const j = JSON.parse(l) as { time?: number; msg?: string };
        seen.push({ at: Date.now(), time: j.time, msg: j.msg });
      } catch {
        seen.push({ at: Date.now(), msg: l });
      }
    }
  };
  proc.stdout?.on("data", on);
  proc.stderr?.on("data", on);
  return seen;
}

async function main(): Promise<void> {
  const a = netnsAvailability();
  if (!a.ok) throw new Error(`the cluster section needs network namespaces: ${a.reason}`);
  const scratch = mkdtempSync(path.join(os.tmpdir(), "baton-bench-cluster-"));
  const net: TestNetwork = await createTestNetwork({ hosts: 4, prefix: "bb" });
  const [h1, h2, h3, h4] = net.hosts as [TestHost, TestHost, TestHost, TestHost];
  const m = new NetnsBaton(net, h1, { argv: ["init", "--advertise-addr", h1.address], logLevel: "info" });
  const workers = new Map<string, NetnsBaton>();
  let api: Api | undefined;
  try {
    await m.start();
    api = batonApi(m.socket);
    const token = (await m.cliOk("join-token", "worker", "-q")).trim();
    const nodes = (): Promise<ApiNode[]> => api!.call<ApiNode[]>("GET", "/v1/nodes");
    const tasks = (): Promise<ApiTask[]> => api!.call<ApiTask[]>("GET", `/v1/tasks?service=${SVC}`);
    const nodeId = async (h: TestHost): Promise<string> => (await nodes()).find((n) => n.hostname === h.name)!.id;

    // ---------------------------------------------------------------- join
    const join: { total: number[]; after_joined_line: number[]; to_joined_line: number[]; floor_info: number[]; floor_node: number[] } = { total: [], after_joined_line: [], to_joined_line: [], floor_info: [], floor_node: [] };
    const infoEnv = { ...process.env, BATON_HOST: `unix://${m.socket}` };
    // Warm-up, not recorded: the first Node start in a namespace reads the modules from disk.
    await net.exec(h4, process.execPath, [BIN, "info"], { env: infoEnv, cwd: ROOT });
    for (let i = -1; i < REPS; i++) {
      const before = new Set((await nodes()).map((n) => n.id));
      const dir = mkdtempSync(path.join(scratch, "join-"));
      const t0 = Date.now();
      const p0 = now();
      const proc = net.spawn(h4, "unshare", ["--uts", "sh", "-c", `hostname ${h4.name} && exec "$0" "$@"`, process.execPath, BIN, "join", "--token", token, `${h1.address}:4242`, "--data-dir", dir, "--log-level", "info"], { cwd: ROOT });
      const seen = lines(proc);
      const ready = await pollUntil(
        async () => {
          if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`baton join exited (${proc.exitCode ?? proc.signalCode}): ${JSON.stringify(seen.slice(-5))}`);
          const n = (await nodes()).find((x) => !before.has(x.id) && x.hostname === h4.name && x.status.state === "ready");
          return n ? { id: n.id, at: Date.now(), ms: now() - p0 } : undefined;
        },
        30_000,
        POLL_MS,
        "the joining node to be ready",
      );
      const joined = seen.find((l) => l.msg === "joined the cluster as a worker");
      if (i >= 0) {
        join.total.push(ready.ms);
        if (joined?.time) {
          join.after_joined_line.push(ready.at - joined.time);
          join.to_joined_line.push(joined.time - t0);
        }
      }
      log(`cluster join${i < 0 ? " (warm-up)" : ` rep ${i}`}: ready after ${r1(ready.ms)} ms${joined?.time ? ` (joined line at +${joined.time - t0} ms, then ${ready.at - joined.time} ms to ready)` : ""}`);
      // Gone again: the process, the node record, the data dir; h4 is fresh for the next rep.
      await new Promise<void>((r) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return r();
        proc.once("exit", () => r());
        try {
          process.kill(-proc.pid!, "SIGKILL");
        } catch {
          proc.kill("SIGKILL");
        }
      });
      await api.call("DELETE", `/v1/nodes/${ready.id}?force=true`);
      rmSync(dir, { recursive: true, force: true });
      // The floors, in the same namespace, right after.
      if (i >= 0) {
        let s = now();
        const info = await net.exec(h4, process.execPath, [BIN, "info"], { env: infoEnv, cwd: ROOT });
        if (info.code !== 0) throw new Error(`baton info in ${h4.ns}: ${info.stderr}`);
        join.floor_info.push(now() - s);
        s = now();
        await net.exec(h4, process.execPath, ["-e", "0"]);
        join.floor_node.push(now() - s);
      }
    }
    out.join = {
      join_to_ready_ms: stats(join.total),
      spawn_to_joined_log_line_ms: stats(join.to_joined_line),
      joined_log_line_to_ready_ms: stats(join.after_joined_line),
      floor_baton_info_ms: stats(join.floor_info),
      node_e_0_in_namespace_ms: stats(join.floor_node),
    };
    const jr = out.join as Record<string, { median?: number }>;
    (out.join as Record<string, unknown>).ratio_to_floor = jr.join_to_ready_ms!.median && jr.floor_baton_info_ms!.median ? r1(jr.join_to_ready_ms!.median / jr.floor_baton_info_ms!.median) : null;
    save();

    // ---------------------------------------------------------------- node loss
    for (const h of [h2, h3]) {
      const w = new NetnsBaton(net, h, { argv: ["join", "--token", token, `${h1.address}:4242`], logLevel: "info" });
      workers.set(h.name, w);
      await w.start();
    }
    await pollUntil(async () => (await nodes()).filter((n) => n.status.state === "ready").length === 3, 15_000, 50, "3 nodes ready");
    await m.cliOk("service", "create", "--name", SVC, "--replicas", String(REPLICAS), "-p", "8080:80", "--health-http", "/", "--health-interval", "1s", process.execPath, HELLO);
    const ids = { h1: await nodeId(h1), h2: await nodeId(h2), h3: await nodeId(h3) } as Record<string, string>;

    /** 6 serving, 2 per node, exactly 6 hello processes on the machine (no stale task left). */
    const settled = async (what: string): Promise<void> => {
      await pollUntil(
        async () => {
          const s = servingTasks(await tasks());
          const per = Object.values(ids).map((id) => s.filter((t) => t.nodeId === id).length);
          return s.length === REPLICAS && per.every((c) => c === 2) && helloProcesses() === REPLICAS;
        },
        30_000,
        100,
        what,
      );
    };
    const rebalance = async (): Promise<void> => {
      const s = servingTasks(await tasks());
      if (Object.values(ids).every((id) => s.filter((t) => t.nodeId === id).length === 2)) return;
      await api!.call("POST", `/v1/services/${SVC}/rebalance`);
    };
    await rebalance();
    await settled("6 serving, 2 per node");

    const floor: number[] = [];
    const loss: Record<string, { total: number[]; down: number[] }> = Object.fromEntries(VARIANTS.map((v) => [v, { total: [], down: [] }]));

    /** Timer starts just before cut(); stops at the first poll with 6 serving tasks, none on `lost`. */
    const measureLoss = async (lost: TestHost, cut: () => Promise<void>): Promise<{ total: number; down?: number }> => {
      const lostId = ids[lost.name]!;
      let down: number | undefined;
      const t0 = now();
      await cut();
      const total = await pollUntil(
        async () => {
          const [ts, ns] = await Promise.all([tasks(), down === undefined ? nodes() : Promise.resolve(undefined)]);
          const at = now() - t0;
          if (down === undefined && ns?.find((n) => n.id === lostId)?.status.state === "down") down = at;
          const s = servingTasks(ts);
          return s.length === REPLICAS && !s.some((t) => t.nodeId === lostId) ? at : undefined;
        },
        30_000,
        POLL_MS,
        `${REPLICAS} serving off ${lost.name}`,
      );
      return { total, down };
    };
    const readyAgain = async (h: TestHost): Promise<void> => {
      await pollUntil(async () => (await nodes()).find((n) => n.id === ids[h.name])?.status.state === "ready", 30_000, 50, `${h.name} ready again`);
      await rebalance();
      await settled(`${h.name} back: 6 serving, 2 per node, no stale task`);
    };

    for (let i = 0; i < REPS; i++) {
      // Floor: one task process SIGKILLed on a live worker → its slot's replacement serving.
      const victimHost = i % 2 === 0 ? h3 : h2;
      const victim = await pollUntil(
        async () => {
          const s = servingTasks(await tasks()).filter((t) => t.nodeId === ids[victimHost.name] && t.status.pid);
          const old = s.find((t) => Date.now() - (t.status.startedAt ?? Date.now()) >= OLD_ENOUGH_MS);
          return old;
        },
        30_000,
        200,
        "a task that ran 10.5 s (its restart is immediate)",
      );
      const t0 = now();
      process.kill(victim.status.pid!, "SIGKILL");
      const ms = await pollUntil(
        async () => {
          const ts = await tasks();
          const at = now() - t0;
          return servingTasks(ts).some((t) => t.slot === victim.slot && t.id !== victim.id) ? at : undefined;
        },
        30_000,
        POLL_MS,
        "the killed task's replacement serving",
      );
      floor.push(ms);
      log(`cluster floor rep ${i}: task on ${victimHost.name} SIGKILLed → replacement ready after ${r1(ms)} ms`);
      await settled("6 serving after the floor kill");

      for (const v of VARIANTS) {
        const lost = i % 2 === 0 ? h2 : h3;
        const w = workers.get(lost.name)!;
        const r = await measureLoss(lost, v === "sigkill" ? () => w.kill("SIGKILL") : () => net.partition(lost));
        loss[v]!.total.push(r.total);
        loss[v]!.down.push(r.down ?? NaN);
        log(`cluster loss rep ${i} ${v} of ${lost.name}: 6 ready elsewhere after ${r1(r.total)} ms (node down at ${r.down === undefined ? "?" : r1(r.down)} ms)`);
        if (v === "sigkill") await w.start();
        else await net.heal(lost);
        await readyAgain(lost);
      }
      save();
    }
    const f = stats(floor);
    out.node_loss = {
      floor_task_restart_ms: f,
      ...Object.fromEntries(
        VARIANTS.map((v) => {
          const s = stats(loss[v]!.total);
          return [
            v,
            {
              replicas_ready_elsewhere_ms: s,
              node_marked_down_ms: stats(loss[v]!.down),
              // After the manager saw the node down: what replacing its tasks took (vs the restart floor).
              down_to_ready_elsewhere_ms: stats(loss[v]!.total.map((t, k) => t - loss[v]!.down[k]!)),
              meets_target: s.median !== undefined && s.median <= TARGET_NODE_LOSS_MS,
              floor_bound_ms: f.median !== undefined ? r1(HEARTBEAT_GRACE_MS + f.median) : null,
              ratio_to_floor: s.median && f.median ? r1(s.median / (HEARTBEAT_GRACE_MS + f.median)) : null,
              ratio_to_target: s.median ? r1(s.median / TARGET_NODE_LOSS_MS) : null,
            },
          ];
        }),
      ),
    };
    (out.conditions as Record<string, unknown>).loadavg_end = loadavg();
    out.complete = true;
    save();
  } finally {
    api?.close();
    for (const w of workers.values()) await w.destroy().catch(() => undefined);
    await m.destroy().catch(() => undefined);
    await net.destroy().catch(() => net.destroySync());
    rmSync(scratch, { recursive: true, force: true });
  }
}

try {
  await main();
  process.stdout.write(clusterTable(out));
  process.stdout.write(JSON.stringify(out) + "\n");
  process.exit(0);
} catch (err) {
  log(`cluster bench failed: ${(err as Error)?.stack ?? String(err)}`);
  out.error = String((err as Error)?.message ?? err);
  save();
  process.stdout.write(JSON.stringify(out) + "\n");
  process.exit(1);
}
