// Three HA managers on a 3-member etcd in network namespaces, plus a worker, and the measurement
// of a failover under a write load (test/integration/ha-failover.test.ts, bench/ha.ts).
//
//   const c = await startHaCluster({ prefix: "hf", worker: true });
//   const m = await measureFailover(c, old, () => c.etcd.members[c.indexOf(old)]!.kill());
//   await c.destroy();
//
// h1..h3 each run an etcd member (members[i] on hosts[i]) and a manager (h1 `baton init --store
// etcd://…`, h2 and h3 `baton join` with the manager token); h4, when asked, a worker.
import { Agent, request } from "node:http";
import { NetnsBaton, createTestNetwork, type TestHost, type TestNetwork } from "./netns.js";
import { startEtcd, type EtcdCluster } from "./etcd.js";
import { ELECTION_TIMEOUT_MS, HEARTBEAT_INTERVAL_MS } from "../../src/ha/etcd-args.js";

export interface HaCluster {
  net: TestNetwork;
  etcd: EtcdCluster;
  /** managers[i] runs on net.hosts[i], beside etcd.members[i]. */
  managers: NetnsBaton[];
  worker: NetnsBaton | undefined;
  /** The host index of a manager (its etcd member's index too). */
  indexOf(m: NetnsBaton): number;
  destroy(): Promise<void>;
}

export async function startHaCluster(opts: { prefix: string; worker?: boolean; logLevel?: string }): Promise<HaCluster> {
  const net = await createTestNetwork({ hosts: opts.worker ? 4 : 3, prefix: opts.prefix });
  const managers: NetnsBaton[] = [];
  let worker: NetnsBaton | undefined;
  let etcd: EtcdCluster | undefined;
  const destroy = async (): Promise<void> => {
    // The etcd harness unrefs its members: keep the loop alive while waiting for their exit.
    const keepAlive = setInterval(() => undefined, 1000);
    try {
      await worker?.destroy().catch(() => undefined);
      for (const m of managers) await m.destroy().catch(() => undefined);
      await etcd?.stop();
      await net.destroy();
    } finally {
      clearInterval(keepAlive);
    }
  };
  try {
    const hosts = net.hosts as TestHost[];
    // The raft timings of Baton's managed etcd (src/ha/etcd-args.ts), which docs/ha.md also
    // recommends for an etcd you run: they decide etcd's shortest lease TTL.
    etcd = await startEtcd({ members: 3, raftTiming: { heartbeatMs: HEARTBEAT_INTERVAL_MS, electionMs: ELECTION_TIMEOUT_MS, preVote: true }, member: (i) => ({ host: hosts[i]!.address, wrap: (cmd) => ["ip", "netns", "exec", hosts[i]!.ns, ...cmd] }) });
    const store = `etcd://${etcd.endpoints.map((e) => e.replace(/^http:\/\//, "")).join(",")}`;
    const logLevel = opts.logLevel ?? "info";
    const m1 = new NetnsBaton(net, hosts[0]!, { argv: ["init", "--advertise-addr", hosts[0]!.address, "--store", store], logLevel });
    managers.push(m1);
    await m1.start();
    const managerToken = (await m1.cliOk("join-token", "manager", "-q")).trim();
    for (const h of hosts.slice(1, 3)) {
      const m = new NetnsBaton(net, h, { argv: ["join", "--token", managerToken, "--advertise-addr", h.address, `${hosts[0]!.address}:4242`], logLevel });
      managers.push(m);
      await m.start();
    }
    if (opts.worker) {
      const workerToken = (await m1.cliOk("join-token", "worker", "-q")).trim();
      worker = new NetnsBaton(net, hosts[3]!, { argv: ["join", "--token", workerToken, `${hosts[0]!.address}:4242`], logLevel });
      await worker.start();
    }
  } catch (err) {
    await destroy();
    throw err;
  }
  return { net, etcd, managers, worker, indexOf: (m) => net.hosts.findIndex((h) => h.name === m.host.name), destroy };
}

/** One request to a manager's API over its unix socket; never throws (status 0 with the error). */
export function apiCall(socket: string, method: string, path: string, body?: unknown, timeoutMs = 10_000, agent?: Agent): Promise<{ status: number; text: string }> {
  return new Promise((resolve) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      { socketPath: socket, method, path, ...(agent ? { agent } : {}), headers: data ? { "content-type": "application/json", "content-length": Buffer.byteLength(data) } : {} },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
        res.on("error", (e) => resolve({ status: 0, text: e.message }));
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", (e) => resolve({ status: 0, text: e.message }));
    req.end(data);
  });
}

/**
 * Makes the etcd member on host `i` etcd's raft leader (etcdctl move-leader, run inside that
 * namespace: the members are not reachable from the root namespace). Failing over a host that
 * runs both Baton's leader and etcd's raft leader is the slow case: etcd must elect first.
 */
export async function placeRaftLeader(c: HaCluster, i: number): Promise<void> {
  const host = c.net.hosts[i]!;
  const env = { ...process.env, ETCDCTL_API: "3" };
  const run = async (args: string[]): Promise<string> => {
    const r = await c.net.exec(host, "/usr/bin/etcdctl", ["--dial-timeout", "2s", "--command-timeout", "5s", ...args], { env });
    if (r.code !== 0) throw new Error(`etcdctl ${args.join(" ")}: ${r.stderr.trim()}`);
    return r.stdout;
  };
  // Member ids are 64-bit: read them as text, not through JSON.parse (which would round them).
  const status = await run(["--endpoints", c.etcd.endpoints.join(","), "endpoint", "status", "-w", "json"]);
  const rows = [...status.matchAll(/"Endpoint":"([^"]+)".*?"member_id":(\d+).*?"leader":(\d+)/g)].map((m) => ({ endpoint: m[1]!, id: m[2]!, leader: m[3]! }));
  const target = rows.find((r) => r.endpoint === c.etcd.members[i]!.clientUrl);
  const current = rows.find((r) => r.id === rows[0]?.leader);
  if (!target || !current) throw new Error(`etcd status without the members or their leader: ${status}`);
  if (current.id === target.id) return;
  await run(["--endpoints", current.endpoint, "move-leader", BigInt(target.id).toString(16)]);
}

/** The highest raft term any member logged: each election (a needed one or a spurious one) raises it. */
export function raftTerm(etcd: EtcdCluster): number {
  let term = 0;
  for (const m of etcd.members) for (const x of m.log().matchAll(/at term (\d+)/g)) term = Math.max(term, Number(x[1]));
  return term;
}

export async function isLeader(m: NetnsBaton): Promise<boolean> {
  const r = await apiCall(m.socket, "GET", "/v1/info?stale=true", undefined, 1000);
  return r.status === 200 && (JSON.parse(r.text) as { isLeader?: boolean }).isLeader === true;
}

/** `node ls` as a manager answers it (GET /v1/nodes): hostname → manager status. */
export async function managerStatuses(m: NetnsBaton): Promise<Map<string, string>> {
  const r = await apiCall(m.socket, "GET", "/v1/nodes", undefined, 2000);
  if (r.status !== 200) return new Map();
  return new Map((JSON.parse(r.text) as { hostname: string; managerStatus?: string }[]).filter((n) => n.managerStatus).map((n) => [n.hostname, n.managerStatus!]));
}

export interface WriteOp {
  /** The manager's host name. */
  via: string;
  name: string;
  invokeAt: number;
  endAt: number;
  status: number;
  error?: string;
}

/**
 * `perManager` clients on each of `targets`, each creating services (0 replicas) one after the
 * other on its own keep-alive connection until stopped. Every operation is recorded.
 */
export function writeLoad(targets: NetnsBaton[], perManager: number, tag: string): { ops: WriteOp[]; stop(): Promise<WriteOp[]> } {
  let stopped = false;
  const ops: WriteOp[] = [];
  const loops = targets.flatMap((m) =>
    Array.from({ length: perManager }, async (_, c) => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      for (let n = 0; !stopped; n++) {
        const name = `${tag}-${m.host.name}-${c}-${n}`;
        const invokeAt = Date.now();
        const r = await apiCall(m.socket, "POST", "/v1/services", { name, replicas: 0, command: ["sleep", "3600"] }, 10_000, agent);
        ops.push({ via: m.host.name, name, invokeAt, endAt: Date.now(), status: r.status, ...(r.status === 201 ? {} : { error: r.text.slice(0, 200) }) });
        // A manager that refuses at once (its socket gone) must not spin.
        if (r.status === 0) await new Promise((res) => setTimeout(res, 20));
      }
      agent.destroy();
    }),
  );
  return {
    ops,
    stop: async () => {
      stopped = true;
      await Promise.all(loops);
      return ops;
    },
  };
}

export interface FailoverMeasure {
  /** Fault → a manager that can lead reports isLeader (0: leadership was never lost). */
  leaderMs: number;
  /** Who led after the fault. */
  leader: string;
  /** Fault → `node ls` through a manager other than the old leader's shows a Leader that is not the old one (or the old one, when it still leads). */
  nodeLsMs: number;
  /** Fault → the first write answered 201 through a manager other than the old leader, among those invoked after the fault. */
  firstWriteMs: number;
  /** Fault → the first write answered 201 through the old leader's manager (undefined: none, e.g. it is dead or cut off). */
  firstWriteViaOldMs: number | undefined;
  /** The longest time without a 201 through the other managers, from the fault on. */
  writeGapMs: number;
  ops: WriteOp[];
}

/**
 * Injects a fault while `perManager` clients write through every running manager, then measures
 * (polling every 20 ms) until a leader is back, `node ls` shows it, and writes through the other
 * managers succeed again; `settleMs` more of load after that. `oldStillEligible`: the old leader
 * may lead again (its etcd member was killed, not itself).
 */
export async function measureFailover(
  c: HaCluster,
  old: NetnsBaton,
  inject: () => Promise<void>,
  opts: { tag: string; perManager?: number; oldStillEligible?: boolean; timeoutMs?: number; settleMs?: number },
): Promise<FailoverMeasure> {
  const others = c.managers.filter((m) => m !== old && m.running);
  const load = writeLoad(c.managers.filter((m) => m.running), opts.perManager ?? 2, opts.tag);
  await new Promise((r) => setTimeout(r, 1000));
  const t0 = Date.now();
  await inject();
  const eligible = opts.oldStillEligible ? [old, ...others] : others;
  let leaderMs: number | undefined;
  let leader = "";
  /** When a survivor's `node ls` first showed each host as Leader, from the fault on. */
  const shownAsLeader = new Map<string, number>();
  let lostAt: number | undefined;
  const deadline = t0 + (opts.timeoutMs ?? 20_000);
  const firstOk = (via: (w: WriteOp) => boolean): number | undefined => {
    const ok = load.ops.filter((o) => o.status === 201 && o.invokeAt >= t0 && via(o)).map((o) => o.endAt - t0);
    return ok.length ? Math.min(...ok) : undefined;
  };
  const otherNames = new Set(others.map((m) => m.host.name));
  while (Date.now() < deadline) {
    const now = Date.now();
    const shown = managerStatuses(others[0]!).then(
      (st) => {
        for (const [host, status] of st) if (status === "leader" && !shownAsLeader.has(host)) shownAsLeader.set(host, Date.now() - t0);
      },
      () => undefined,
    );
    if (leaderMs === undefined) {
      const leads = await Promise.all(eligible.map((m) => isLeader(m).catch(() => false)));
      const i = leads.indexOf(true);
      // With the old leader still eligible, "never lost" counts only if it still leads once its
      // etcd member is gone and its watchdog had its chance (1.5 s): until then keep looking.
      if (i >= 0 && (eligible[i] !== old || lostAt !== undefined || now - t0 > 2000)) {
        leaderMs = lostAt === undefined && eligible[i] === old ? 0 : now - t0;
        leader = eligible[i]!.host.name;
      } else if (i < 0) lostAt ??= now;
    }
    await shown;
    if (leaderMs !== undefined && shownAsLeader.has(leader) && firstOk((o) => otherNames.has(o.via)) !== undefined) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, opts.settleMs ?? 1500));
  const ops = await load.stop();
  const firstWriteMs = firstOk((o) => otherNames.has(o.via));
  // Shown before the fault's effects, for a leader that never lost its term: 0.
  const nodeLsMs = leaderMs === 0 ? 0 : shownAsLeader.get(leader);
  if (leaderMs === undefined || nodeLsMs === undefined || firstWriteMs === undefined) {
    const errs = ops.filter((o) => o.status !== 201 && o.invokeAt >= t0).slice(-5).map((o) => `${o.via}: ${o.status} ${o.error}`);
    throw new Error(`failover not complete within ${opts.timeoutMs ?? 20_000} ms: leader ${leaderMs} ms, node ls ${nodeLsMs} ms, first write ${firstWriteMs} ms; last errors: ${errs.join(" | ")}`);
  }
  // The longest stretch without a success through the other managers, from the fault to the end.
  const oks = ops.filter((o) => o.status === 201 && otherNames.has(o.via) && o.endAt >= t0).map((o) => o.endAt).sort((a, b) => a - b);
  let gap = 0;
  let prev = t0;
  for (const t of oks) {
    gap = Math.max(gap, t - prev);
    prev = t;
  }
  return { leaderMs, leader, nodeLsMs, firstWriteMs, firstWriteViaOldMs: firstOk((o) => o.via === old.host.name), writeGapMs: gap, ops };
}
