// Real etcd members for tests: a single member or an N-member cluster on loopback, each with its
// own data dir, started from Debian's `etcd-server` binary and killed after.
//
//   const cluster = await startEtcd({ members: 3 });
//   new Etcd3({ hosts: cluster.endpoints });         // client URLs of every member
//   await cluster.members[0]!.kill();                // SIGKILL; data dir kept
//   await cluster.members[0]!.start();               // same name, ports and data dir
//   await cluster.stop();                            // every member, then the data dirs
//
// Later HA tests run members inside network namespaces: `host` picks each member's address and
// `wrap` the command line (e.g. `(cmd) => ["ip", "netns", "exec", ns, ...cmd]`).
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const ETCD_BINARY = process.env.BATON_ETCD_BINARY ?? "/usr/bin/etcd";

/**
 * Why etcd tests cannot run here, or undefined when they can. Under CI=true a missing binary is
 * not a reason to skip: `requireEtcd` throws instead, so the suite fails loudly.
 */
export function etcdUnavailable(): string | undefined {
  if (existsSync(ETCD_BINARY)) return undefined;
  const reason = `no etcd binary at ${ETCD_BINARY} (apt-get install etcd-server, or set BATON_ETCD_BINARY)`;
  if (process.env.CI === "true") throw new Error(`CI=true and ${reason}: etcd tests must run in CI`);
  return reason;
}

/**
 * The gate of a test file that needs etcd: `opts` skips its tests (the reason printed once) where
 * etcd cannot run; under CI=true a missing binary is `missingInCi`, which the tests throw so the
 * suite fails loudly instead of skipping.
 */
export function etcdTestGate(what: string): { skip: string | undefined; missingInCi: unknown; opts: { skip?: string } } {
  let skip: string | undefined;
  let missingInCi: unknown;
  try {
    skip = etcdUnavailable();
  } catch (err) {
    missingInCi = err;
  }
  if (skip) console.log(`# ${what} skipped: ${skip}`);
  return { skip, missingInCi, opts: skip ? { skip } : {} };
}

export interface EtcdMemberOptions {
  /** Address the member listens on and advertises. @default 127.0.0.1 */
  host?: string;
  /** Wraps the command line, e.g. to run it inside a network namespace. */
  wrap?: (cmd: string[]) => string[];
}

export interface EtcdOptions {
  /** @default 1 */
  members?: number;
  /** etcd's --max-txn-ops (operations per transaction). @default etcd's own, 128 */
  maxTxnOps?: number;
  /** etcd's --heartbeat-interval and --election-timeout (ms), and --pre-vote. @default etcd's own, 100 and 1000, no pre-vote (3.4) */
  raftTiming?: { heartbeatMs: number; electionMs: number; preVote?: boolean };
  /** Per member (by index): address and command wrapper. */
  member?: (index: number) => EtcdMemberOptions;
  /** How long a member may take to answer /health. @default 15000 */
  startTimeoutMs?: number;
  /**
   * Client TLS with --client-cert-auth (one certificate for every member, valid for their
   * addresses); peers stay plain http. /health is checked with the same certificate.
   */
  tls?: { caFile: string; certFile: string; keyFile: string };
}

export interface EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  /** Whether its process is running. */
  readonly running: boolean;
  /** (Re)starts the member with the same name, ports and data dir; resolves once it is healthy. */
  start(): Promise<void>;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<void>;
  /** SIGKILL (kill -9): nothing is flushed that was not already. */
  kill(): Promise<void>;
  /** SIGSTOP / SIGCONT: the member holds its connections but answers nothing, like a host cut off (without netns). */
  pause(): void;
  resume(): void;
  /** What the member wrote to stderr (its log), for failure messages. */
  log(): string;
}

export interface EtcdCluster {
  readonly members: EtcdMember[];
  /** Client URLs of every member, for `new Etcd3({ hosts })` or `etcd://` store URLs. */
  readonly endpoints: string[];
  /** Stops every member and removes the data dirs. Idempotent. */
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const p of live) p.kill("SIGKILL");
});

/** A port nobody listens on now (the kernel's pick; racy in theory, fine on loopback in tests). */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, host, () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Starts `members` etcd members as one new cluster and waits until each answers /health. */
export async function startEtcd(opts: EtcdOptions = {}): Promise<EtcdCluster> {
  const n = opts.members ?? 1;
  const root = mkdtempSync(join(tmpdir(), "baton-etcd-"));
  const specs = [];
  for (let i = 0; i < n; i++) {
    const m = opts.member?.(i) ?? {};
    const host = m.host ?? "127.0.0.1";
    specs.push({ name: `m${i}`, host, wrap: m.wrap, clientPort: await freePort(m.wrap ? undefined : host), peerPort: await freePort(m.wrap ? undefined : host) });
  }
  const initialCluster = specs.map((s) => `${s.name}=http://${s.host}:${s.peerPort}`).join(",");
  // One token for every member: computed per member, Date.now() could tick between two of them,
  // giving them different cluster ids ("cluster ID mismatch", the cluster never forms).
  const token = `baton-test-${process.pid}-${Date.now()}`;
  const members = specs.map((s) =>
    makeMember({
      name: s.name,
      clientUrl: `${opts.tls ? "https" : "http"}://${s.host}:${s.clientPort}`,
      peerUrl: `http://${s.host}:${s.peerPort}`,
      dataDir: join(root, s.name),
      initialCluster,
      token,
      timeoutMs: opts.startTimeoutMs ?? 15_000,
      ...(opts.maxTxnOps ? { maxTxnOps: opts.maxTxnOps } : {}),
      ...(opts.raftTiming ? { raftTiming: opts.raftTiming } : {}),
      ...(s.wrap ? { wrap: s.wrap } : {}),
      ...(opts.tls ? { tls: opts.tls } : {}),
    }),
  );
  let stopped: Promise<void> | undefined;
  const cluster: EtcdCluster = {
    members,
    endpoints: members.map((m) => m.clientUrl),
    stop: () =>
      (stopped ??= (async () => {
        await Promise.all(members.map((m) => m.kill()));
        rmSync(root, { recursive: true, force: true });
      })()),
  };
  try {
    // A member of a new multi-member cluster is healthy only once a quorum is up: start them together.
    await Promise.all(members.map((m) => m.start()));
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

interface MemberConfig {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  initialCluster: string;
  token: string;
  timeoutMs: number;
  maxTxnOps?: number;
  raftTiming?: { heartbeatMs: number; electionMs: number; preVote?: boolean };
  wrap?: (cmd: string[]) => string[];
  tls?: { caFile: string; certFile: string; keyFile: string };
}

function makeMember(c: MemberConfig): EtcdMember {
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let stderr = "";
  const cmd = [
    ETCD_BINARY,
    "--name", c.name,
    "--data-dir", c.dataDir,
    "--listen-client-urls", c.clientUrl,
    "--advertise-client-urls", c.clientUrl,
    "--listen-peer-urls", c.peerUrl,
    "--initial-advertise-peer-urls", c.peerUrl,
    "--initial-cluster", c.initialCluster,
    "--initial-cluster-token", c.token,
    // Ignored once the data dir holds a member: a restart rejoins the same cluster.
    "--initial-cluster-state", "new",
    ...(c.maxTxnOps ? ["--max-txn-ops", String(c.maxTxnOps)] : []),
    ...(c.raftTiming ? ["--heartbeat-interval", String(c.raftTiming.heartbeatMs), "--election-timeout", String(c.raftTiming.electionMs), ...(c.raftTiming.preVote ? ["--pre-vote"] : [])] : []),
    ...(c.tls ? ["--cert-file", c.tls.certFile, "--key-file", c.tls.keyFile, "--trusted-ca-file", c.tls.caFile, "--client-cert-auth"] : []),
  ];
  const member: EtcdMember = {
    name: c.name,
    clientUrl: c.clientUrl,
    peerUrl: c.peerUrl,
    dataDir: c.dataDir,
    get running() {
      return child !== undefined;
    },
    async start() {
      if (child) return;
      const argv = c.wrap ? c.wrap(cmd) : cmd;
      const p = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "ignore", "pipe"] });
      child = p;
      // Unref'd: node:test runs top-level after() hooks (which stop the cluster) only once the
      // event loop is otherwise empty. A member still running when the process exits is killed.
      p.unref();
      (p.stderr as unknown as { unref(): void }).unref();
      live.add(p);
      p.stderr!.on("data", (d: Buffer) => {
        stderr += d.toString();
        if (stderr.length > 200_000) stderr = stderr.slice(-100_000);
      });
      exited = new Promise((resolve) => p.once("exit", () => {
        live.delete(p);
        if (child === p) child = undefined;
        resolve();
      }));
      await waitHealthy(member, c.timeoutMs, c.tls, c.wrap);
    },
    async stop() {
      child?.kill("SIGTERM");
      await exited;
    },
    async kill() {
      child?.kill("SIGKILL");
      await exited;
    },
    pause() {
      child?.kill("SIGSTOP");
    },
    resume() {
      child?.kill("SIGCONT");
    },
    log: () => stderr,
  };
  return member;
}

/** GET /health from where the member listens: through `wrap` (its namespace) when given. */
async function checkHealth(url: string, wrap: ((cmd: string[]) => string[]) | undefined): Promise<{ health?: string }> {
  if (!wrap) return (await (await fetch(url, { signal: AbortSignal.timeout(1000) })).json()) as { health?: string };
  const script = `fetch(process.argv[1],{signal:AbortSignal.timeout(1000)}).then(r=>r.text()).then(t=>process.stdout.write(t),e=>{console.error(e.message);process.exit(1)})`;
  const argv = wrap([process.execPath, "-e", script, url]);
  const out = await new Promise<string>((resolve, reject) =>
    execFile(argv[0]!, argv.slice(1), { timeout: 5000 }, (err, stdout, stderr) => (err ? reject(new Error(stderr.trim() || err.message)) : resolve(stdout))),
  );
  return JSON.parse(out) as { health?: string };
}

async function waitHealthy(m: EtcdMember, timeoutMs: number, tls?: { caFile: string; certFile: string; keyFile: string }, wrap?: (cmd: string[]) => string[]): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    if (!m.running) throw new Error(`etcd member ${m.name} exited while starting:\n${m.log().slice(-2000)}`);
    try {
      // TLS members are checked from here (their tests run them on reachable addresses).
      const body = tls ? (JSON.parse(await httpsGet(`${m.clientUrl}/health`, tls)) as { health?: string }) : await checkHealth(`${m.clientUrl}/health`, wrap);
      if (body.health === "true") return;
      last = JSON.stringify(body);
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`etcd member ${m.name} not healthy at ${m.clientUrl} within ${timeoutMs} ms (last: ${last}):\n${m.log().slice(-2000)}`);
}

function httpsGet(url: string, tls: { caFile: string; certFile: string; keyFile: string }): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca: readFileSync(tls.caFile), cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile), timeout: 1000 }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => resolve(body));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}
