// HA benchmarks (issue 11): API write latency of one `baton up` on its embedded SQLite store vs on
// a 3-member etcd cluster on the same machine, at 1, 10 and 100 concurrent clients; and the
// failover time once leadership exists. Run by bench/run.mjs as `node --import tsx bench/ha.ts`
// (BENCH_ONLY=ha), or alone after `npm run build`. Definitions: docs/benchmarks.md ("HA").
//
//  write latency : each client, on its own keep-alive connection to the unix socket, creates a
//                  service (0 replicas: nothing runs) and deletes it, again and again; every
//                  create and delete is one write, timed from the request to the answer.
//  failover      : three failures of the leader (kill -9 of its baton, kill -9 of its etcd
//                  member, partition of its host), each under a write load: fault → first
//                  successful write through another manager, → a leader, → `node ls` shows it.
//
// Env: BENCH_HA_CLIENTS (1,10,100), BENCH_HA_WRITES (1000 per level), BENCH_HA_STORES (sqlite,etcd),
// BENCH_HA_SECTIONS (write_latency,failover), BENCH_HA_FAILOVER_REPS (3), BENCH_HA_FAILOVER_CASES
// (kill_baton,kill_etcd_member,kill_etcd_member_raft_leader,partition,partition_raft_leader). Writes bench/results/ha-latest.json and prints the
// result JSON as the last stdout line (for bench/run.mjs) after the markdown table.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { Agent, request } from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { BIN, ROOT } from "../test/harness/baton.js";
import { etcdUnavailable, startEtcd, type EtcdCluster } from "../test/harness/etcd.js";
import { NetnsBaton, netnsAvailability } from "../test/harness/netns.js";
import { isLeader, managerStatuses, measureFailover as measureOne, placeRaftLeader, raftTerm, startHaCluster, type FailoverMeasure, type HaCluster } from "../test/harness/ha-cluster.js";
import { loadavg, log, now, pollUntil, r1, sleep } from "./lib.mjs";
import { TARGET_FAILOVER_MS, haTable } from "./ha-table.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const RESULTS = path.join(HERE, "results");
const LEVELS = (process.env.BENCH_HA_CLIENTS || "1,10,100").split(",").map(Number).filter((n) => n > 0);
const WRITES = Number(process.env.BENCH_HA_WRITES || 1000);
const STORES = (process.env.BENCH_HA_STORES || "sqlite,etcd").split(",").filter(Boolean);
const SECTIONS = (process.env.BENCH_HA_SECTIONS || "write_latency,failover").split(",").filter(Boolean);
/** Warm-up writes per subject before the first level (not recorded): JIT, SQLite pages, etcd connections. */
const WARMUP_WRITES = 40;

interface Subject {
  store: string;
  socket: string;
  stop(): Promise<void>;
}

interface LevelResult {
  clients: number;
  writes: number;
  errors: number;
  first_error?: string;
  p50_ms: number;
  p99_ms: number;
  mean_ms: number;
  max_ms: number;
  wall_ms: number;
  writes_per_s: number;
}

const out: Record<string, unknown> = {
  bench: "ha",
  complete: false,
  conditions: { date: new Date().toISOString(), node: process.version, cpus: os.cpus().length, cpu_model: os.cpus()[0]?.model ?? null, loadavg_start: loadavg() },
  config: { clients: LEVELS, writes_per_level: WRITES, stores: STORES, warmup_writes: WARMUP_WRITES, etcd_members: 3, write: "POST /v1/services {replicas: 0} or DELETE /v1/services/NAME over the unix socket, one keep-alive connection per client" },
};

function save(): void {
  mkdirSync(RESULTS, { recursive: true });
  const tmp = path.join(RESULTS, ".ha-latest.json.tmp");
  writeFileSync(tmp, JSON.stringify(out, null, 2) + "\n");
  renameSync(tmp, path.join(RESULTS, "ha-latest.json"));
}

/** A fresh `baton up` (default log level, as a user runs it) in a temp data dir. */
async function startBaton(store: string, storeArgs: string[], cleanup: () => Promise<void> = async () => {}): Promise<Subject> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), `baton-bench-ha-${store}-`));
  const socket = path.join(dataDir, "baton.sock");
  let output = "";
  const proc: ChildProcess = spawn(process.execPath, [BIN, "up", "--data-dir", dataDir, ...storeArgs], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], detached: true });
  proc.stdout!.on("data", (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  proc.stderr!.on("data", (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  const exited = new Promise<void>((r) => proc.once("exit", () => r()));
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
      await exited;
    }
    rmSync(dataDir, { recursive: true, force: true });
    await cleanup();
  };
  try {
    await pollUntil(async () => existsSync(socket) && (await call(new Agent(), socket, "GET", "/v1/info").catch(() => undefined))?.status === 200, 20_000, 50, `baton up (${store}) to answer; output:\n${output}`);
  } catch (err) {
    await stop();
    throw err;
  }
  return { store, socket, stop };
}

function call(agent: Agent, socketPath: string, method: string, urlPath: string, body?: unknown): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request({ socketPath, agent, method, path: urlPath, headers: data ? { "content-type": "application/json", "content-length": Buffer.byteLength(data) } : {} }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
      res.on("error", reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error(`no answer within 30 s: ${method} ${urlPath}`)));
    req.on("error", reject);
    req.end(data);
  });
}

/** Nearest-rank percentile of sorted values. */
const percentile = (sorted: number[], p: number): number => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;

/** `clients` concurrent loops of create + delete until about `writes` writes are done. */
async function writeLoad(s: Subject, clients: number, writes: number, tag: string): Promise<LevelResult> {
  const pairs = Math.max(1, Math.ceil(writes / 2 / clients));
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const t0 = now();
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      try {
        for (let i = 0; i < pairs; i++) {
          const name = `bench-${tag}-${c}-${i}`;
          for (const [method, urlPath, body, expect] of [
            ["POST", "/v1/services", { name, replicas: 0, command: ["sleep", "3600"] }, 201],
            ["DELETE", `/v1/services/${name}`, undefined, 200],
          ] as const) {
            const t = now();
            const r = await call(agent, s.socket, method, urlPath, body).catch((e: Error) => ({ status: 0, text: e.message }));
            latencies.push(now() - t);
            if (r.status !== expect) {
              errors++;
              firstError ??= `${method} ${urlPath} → ${r.status} ${r.text.slice(0, 200)}`;
            }
          }
        }
      } finally {
        agent.destroy();
      }
    }),
  );
  const wall = now() - t0;
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    clients,
    writes: latencies.length,
    errors,
    ...(firstError ? { first_error: firstError } : {}),
    p50_ms: r1(percentile(sorted, 50)),
    p99_ms: r1(percentile(sorted, 99)),
    mean_ms: r1(sorted.reduce((a, b) => a + b, 0) / sorted.length),
    max_ms: r1(sorted.at(-1)!),
    wall_ms: r1(wall),
    writes_per_s: r1((latencies.length / wall) * 1000),
  };
}

async function startSubject(store: string): Promise<Subject> {
  if (store === "sqlite") return startBaton("sqlite", []);
  if (store === "etcd") {
    const missing = etcdUnavailable();
    if (missing) throw new Error(missing);
    const etcd: EtcdCluster = await startEtcd({ members: 3 });
    const url = `etcd://${etcd.endpoints.map((e) => e.replace("http://", "")).join(",")}`;
    try {
      return await startBaton("etcd", ["--store", url], () => etcd.stop());
    } catch (err) {
      await etcd.stop();
      throw err;
    }
  }
  throw new Error(`unknown store "${store}" in BENCH_HA_STORES (sqlite, etcd)`);
}

/** The subject running now, stopped on SIGTERM/SIGINT (bench/run.mjs's deadline or Ctrl-C). */
let current: Subject | undefined;
for (const sig of ["SIGTERM", "SIGINT"] as const) {
  process.once(sig, () => {
    log(`ha: ${sig}, stopping…`);
    void (current?.stop() ?? Promise.resolve()).finally(() => process.exit(1));
  });
}

/** Write latency per store and concurrency level, and the etcd/SQLite ratios. */
async function measureWriteLatency(): Promise<Record<string, unknown>> {
  const res: Record<string, Record<string, LevelResult> | { error: string }> = {};
  for (const store of STORES) {
    let s: Subject | undefined;
    try {
      log(`ha: write latency on ${store}…`);
      s = current = await startSubject(store);
      await writeLoad(s, 1, WARMUP_WRITES, "warmup");
      const levels: Record<string, LevelResult> = {};
      for (const c of LEVELS) {
        levels[`c${c}`] = await writeLoad(s, c, WRITES, `c${c}`);
        log(`ha: ${store} ${c} clients: p50 ${levels[`c${c}`]!.p50_ms} ms, p99 ${levels[`c${c}`]!.p99_ms} ms, ${levels[`c${c}`]!.writes_per_s} writes/s`);
      }
      res[store] = levels;
    } catch (err) {
      res[store] = { error: String((err as Error).message ?? err) };
      log(`ha: ${store} failed: ${(err as Error).message}`);
    } finally {
      await s?.stop();
      current = undefined;
    }
  }
  const ratio: Record<string, { p50: number | null; p99: number | null }> = {};
  const sq = res.sqlite as Record<string, LevelResult> | undefined;
  const et = res.etcd as Record<string, LevelResult> | undefined;
  for (const c of LEVELS) {
    const a = sq?.[`c${c}`];
    const b = et?.[`c${c}`];
    ratio[`c${c}`] = { p50: a && b ? r1(b.p50_ms / a.p50_ms) : null, p99: a && b ? r1(b.p99_ms / a.p99_ms) : null };
  }
  return { ...res, ratio_etcd_to_sqlite: ratio };
}

/** Nearest-rank summary of a list of durations. */
function summary(xs: number[]): { p50_ms: number; max_ms: number; min_ms: number; values_ms: number[] } {
  const sorted = [...xs].sort((a, b) => a - b);
  return { p50_ms: r1(percentile(sorted, 50)), max_ms: r1(sorted.at(-1) ?? NaN), min_ms: r1(sorted[0] ?? NaN), values_ms: xs.map(r1) };
}

type FailoverCase = "kill_baton" | "kill_etcd_member" | "kill_etcd_member_raft_leader" | "partition" | "partition_raft_leader";
const FAILOVER_CASES: Record<FailoverCase, string> = {
  kill_baton: "kill -9 of the leader's baton",
  kill_etcd_member: "kill -9 of the leader's etcd member (its baton keeps running; etcd's raft leader elsewhere)",
  kill_etcd_member_raft_leader: "kill -9 of the leader's etcd member, which is also etcd's raft leader",
  partition: "partition of the leader's host (veth down: its baton and its etcd member; etcd's raft leader elsewhere)",
  partition_raft_leader: "partition of the leader's host, which also runs etcd's raft leader",
};

/**
 * The three failures of issue 11, each under a write load (2 clients on every running manager,
 * POST /v1/services over the unix sockets), measured by test/harness/ha-cluster.ts
 * measureFailover: fault → (a) the first write answered 201 through another manager, (b) a
 * manager says isLeader (for the etcd member kill, 0 when the leader never lost its term), (c) a
 * survivor's `node ls` shows that Leader; and the longest stretch without a 201 through the
 * others. Three managers and three etcd members (Baton's managed timings) in network namespaces
 * h1..h3; between repetitions the fault is undone (the baton restarted on its data dir, the etcd
 * member restarted, the veth up) and the cluster settles; each repetition hits whoever leads then.
 */
async function measureFailover(): Promise<Record<string, unknown>> {
  const reps = Number(process.env.BENCH_HA_FAILOVER_REPS || 3);
  const cases = (process.env.BENCH_HA_FAILOVER_CASES || Object.keys(FAILOVER_CASES).join(",")).split(",").filter(Boolean) as FailoverCase[];
  for (const k of cases) if (!(k in FAILOVER_CASES)) throw new Error(`unknown case "${k}" in BENCH_HA_FAILOVER_CASES (${Object.keys(FAILOVER_CASES).join(", ")})`);
  const missing = netnsAvailability().ok ? etcdUnavailable() : netnsAvailability().reason;
  if (missing) return { measured: false, reason: missing };
  const c: HaCluster = await startHaCluster({ prefix: "hab" });
  current = { store: "failover", socket: "", stop: () => c.destroy() };
  try {
    const settled = async (): Promise<NetnsBaton> => {
      let leader: NetnsBaton | undefined;
      await pollUntil(
        async () => {
          for (const m of c.managers) {
            const st = await managerStatuses(m);
            if ([...st.values()].filter((v) => v === "reachable").length !== 2 || ![...st.values()].includes("leader")) return false;
          }
          leader = undefined;
          for (const m of c.managers) if (await isLeader(m)) leader = m;
          return !!leader;
        },
        30_000,
        50,
        "3 managers: one Leader, two Reachable, seen by each",
      );
      return leader!;
    };
    const results: Record<string, unknown> = {};
    const termAtStart = raftTerm(c.etcd);
    for (const kind of cases) {
      const runs: FailoverMeasure[] = [];
      const hit: string[] = [];
      for (let rep = 0; rep < reps; rep++) {
        const old = await settled();
        await sleep(1000);
        const i = c.indexOf(old);
        const member = c.etcd.members[i]!;
        // Where etcd's raft leader is decides whether etcd must elect one first: placed, not left to chance.
        await placeRaftLeader(c, kind.endsWith("_raft_leader") ? i : (i + 1) % 3);
        const inject = kind === "kill_baton" ? () => old.kill("SIGKILL") : kind.startsWith("kill_etcd_member") ? () => member.kill() : () => c.net.partition(old.host);
        let m: FailoverMeasure;
        try {
          m = await measureOne(c, old, inject, { tag: `${kind}-${rep}`, oldStillEligible: kind.startsWith("kill_etcd_member"), settleMs: 500 });
        } finally {
          // Undo the fault: back to three managers on three members.
          if (kind === "kill_baton") {
            const again = new NetnsBaton(c.net, old.host, { argv: ["init"], dataDir: old.dataDir, logLevel: "info" });
            c.managers[i] = again;
            await again.start();
          } else if (kind.startsWith("kill_etcd_member")) await member.start();
          else await c.net.heal(old.host);
        }
        runs.push(m);
        hit.push(old.host.name);
        log(`ha: failover ${kind} rep ${rep}: ${old.host.name}; first write ${m.firstWriteMs} ms, leader ${m.leader} ${m.leaderMs} ms, node ls ${m.nodeLsMs} ms, longest gap ${m.writeGapMs} ms`);
      }
      const pick = (f: (x: FailoverMeasure) => number) => summary(runs.map(f));
      results[kind] = {
        what: FAILOVER_CASES[kind],
        leaders_hit: hit,
        first_write_through_another_manager: pick((x) => x.firstWriteMs),
        new_leader: pick((x) => x.leaderMs),
        new_leader_in_node_ls: pick((x) => x.nodeLsMs),
        longest_write_gap: pick((x) => x.writeGapMs),
        writes: runs.map((x) => ({ acknowledged: x.ops.filter((o) => o.status === 201).length, refused: x.ops.filter((o) => o.status !== 201).length })),
      };
    }
    return {
      measured: true,
      setup: "3 managers (1 init + 2 manager joins) in network namespaces h1..h3, one etcd member per namespace (heartbeat 50 ms, election 500 ms, pre-vote: Baton's managed timings), all on this machine; write load: 2 clients per running manager",
      repetitions: reps,
      cases: results,
      etcd_raft_terms: { at_start: termAtStart, at_end: raftTerm(c.etcd) },
      target_ms: TARGET_FAILOVER_MS,
    };
  } finally {
    await c.destroy();
    current = undefined;
  }
}

const sections: Record<string, () => Promise<Record<string, unknown>>> = { write_latency: measureWriteLatency, failover: measureFailover };

async function main(): Promise<void> {
  for (const name of SECTIONS) {
    const fn = sections[name];
    if (!fn) throw new Error(`unknown section "${name}" in BENCH_HA_SECTIONS (${Object.keys(sections).join(", ")})`);
    try {
      out[name] = await fn();
    } catch (err) {
      out[name] = { measured: false, error: String((err as Error).message ?? err) };
      log(`ha: ${name} failed: ${(err as Error).message}`);
    }
    save();
  }
  (out.conditions as Record<string, unknown>).loadavg_end = loadavg();
  out.complete = true;
  save();
}

try {
  await main();
} catch (err) {
  out.error = String((err as Error).message ?? err);
  save();
}
process.stdout.write(haTable(out) + "\n" + JSON.stringify(out) + "\n");
process.exit(out.error ? 1 : 0);
