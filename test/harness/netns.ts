// Several real hosts on one machine: Linux network namespaces joined by veth pairs to a bridge.
// See docs/testing.md. Needs root and iproute2 (`ip`); nothing here touches the root namespace's
// interfaces, routes or firewall: the bridge lives in a namespace of its own and every veth is
// created directly inside the namespaces (`ip link add … netns …`), never in the root namespace.
import { execFile, spawn as spawnChild, spawnSync, type ChildProcess, type SpawnOptions } from "node:child_process";
import { randomBytes, randomInt } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BIN, BatonProcess, ROOT, waitFor } from "./baton.js";

const IP = "ip";
/** Runs of this harness, one JSON file each, so a run that was SIGKILLed can be reaped by a later one. */
const REGISTRY = "/run/baton-netns";
/** Test subnets are /24s under this /16, the third octet picked at random per run. */
const RANGE = [10, 231] as const;
const IFNAMSIZ = 15;

export interface TestHost {
  /** "h1" … "hn". */
  name: string;
  /** The namespace's name, for `ip netns exec` / `ip -n`. */
  ns: string;
  /** The host's IPv4 address on the test bridge, e.g. 10.231.57.11. */
  address: string;
  /** The interface inside the host namespace. */
  iface: string;
  /** The veth end in the bridge namespace: what partition()/heal() set down/up. */
  bridgePort: string;
}

export interface ExecResult {
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Killed (SIGKILL) after this long; default 30 s. */
  timeoutMs?: number;
}

export interface TestNetworkOptions {
  hosts: number;
  /** 1–6 lowercase letters/digits starting with a letter; default "bt". Names are `<prefix><4 hex>-h1`. */
  prefix?: string;
  /** "10.231.X.0/24"; default: a random X not in use on this machine nor by another live run. */
  subnet?: string;
}

type HostRef = TestHost | string;

const live = new Set<TestNetwork>();
let handlersInstalled = false;

/** Synchronous `ip …`; throws with stderr when it fails. */
function ipSync(args: string[]): string {
  const r = spawnSync(IP, args, { encoding: "utf8", timeout: 10_000 });
  if (r.error) throw new Error(`ip ${args.join(" ")}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`ip ${args.join(" ")} failed (${r.status}): ${r.stderr.trim()}`);
  return r.stdout;
}

function ip(args: string[]): Promise<string> {
  return new Promise((res, rej) => {
    execFile(IP, args, { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) rej(new Error(`ip ${args.join(" ")} failed: ${stderr.trim() || err.message}`));
      else res(stdout);
    });
  });
}

const pidAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
};

function nsPids(ns: string): number[] {
  const r = spawnSync(IP, ["netns", "pids", ns], { encoding: "utf8", timeout: 10_000 });
  if (r.status !== 0) return [];
  return r.stdout.split(/\s+/).filter(Boolean).map(Number).filter((p) => p > 1 && p !== process.pid);
}

function existingNamespaces(): Set<string> {
  const r = spawnSync(IP, ["netns", "list"], { encoding: "utf8", timeout: 10_000 });
  return new Set((r.stdout ?? "").split("\n").map((l) => l.trim().split(/\s+/)[0]!).filter(Boolean));
}

/** Kills every process inside the namespaces and deletes them (their veths go with them). Synchronous: usable on exit. */
function removeNamespacesSync(namespaces: string[]): void {
  const existing = existingNamespaces();
  const present = namespaces.filter((ns) => existing.has(ns));
  for (const ns of present) for (const pid of nsPids(ns)) killQuietly(pid, "SIGKILL");
  for (const ns of present) spawnSync(IP, ["netns", "del", ns], { timeout: 10_000 });
}

function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    /* gone */
  }
}

// ---- subnets -------------------------------------------------------------------------------

const toInt = (a: string): number => a.split(".").reduce((n, o) => n * 256 + Number(o), 0);

function overlaps(cidrA: string, cidrB: string): boolean {
  const [a, la] = cidrA.split("/") as [string, string | undefined];
  const [b, lb] = cidrB.split("/") as [string, string | undefined];
  const len = Math.min(Number(la ?? 32), Number(lb ?? 32));
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return ((toInt(a) & mask) >>> 0) === ((toInt(b) & mask) >>> 0);
}

/** IPv4 prefixes routed or addressed in the root namespace (any table). */
function prefixesInUse(): string[] {
  const out: string[] = [];
  try {
    for (const r of JSON.parse(ipSync(["-j", "-4", "route", "show", "table", "all"])) as { dst?: string }[]) {
      if (r.dst && r.dst !== "default" && /^\d+\.\d+\.\d+\.\d+/.test(r.dst)) out.push(r.dst);
    }
    for (const l of JSON.parse(ipSync(["-j", "-4", "addr"])) as { addr_info?: { local: string; prefixlen: number }[] }[]) {
      for (const a of l.addr_info ?? []) out.push(`${a.local}/${a.prefixlen}`);
    }
  } catch {
    /* an old iproute2 without -j: the namespaces are isolated anyway */
  }
  return out;
}

interface RunRecord {
  pid: number;
  id: string;
  subnet: string;
  namespaces: string[];
}

function readRegistry(): RunRecord[] {
  if (!existsSync(REGISTRY)) return [];
  const out: RunRecord[] = [];
  for (const f of readdirSync(REGISTRY)) {
    try {
      out.push(JSON.parse(readFileSync(join(REGISTRY, f), "utf8")) as RunRecord);
    } catch {
      /* half-written by a parallel run */
    }
  }
  return out;
}

/**
 * Deletes the namespaces of earlier runs whose process is gone (a run killed with SIGKILL cannot
 * clean up after itself). Runs of live processes are left alone, so parallel runs are safe.
 * Returns the namespaces it removed.
 */
export function reapStaleNetworks(): string[] {
  const removed: string[] = [];
  for (const run of readRegistry()) {
    if (pidAlive(run.pid)) continue;
    removeNamespacesSync(run.namespaces);
    rmSync(join(REGISTRY, `${run.id}.json`), { force: true });
    removed.push(...run.namespaces);
  }
  return removed;
}

function pickSubnet(): string {
  const used = [...prefixesInUse(), ...readRegistry().filter((r) => pidAlive(r.pid)).map((r) => r.subnet)];
  for (let i = 0; i < 64; i++) {
    const candidate = `${RANGE[0]}.${RANGE[1]}.${randomInt(1, 255)}.0/24`;
    if (!used.some((u) => overlaps(u, candidate))) return candidate;
  }
  throw new Error(`no free /24 under ${RANGE.join(".")}.0.0/16 on this machine`);
}

// ---- availability --------------------------------------------------------------------------

let availability: { ok: boolean; reason?: string } | undefined;

/** Whether this process can create network namespaces: root, iproute2, and `ip netns` working. */
export function netnsAvailability(): { ok: boolean; reason?: string } {
  if (availability) return availability;
  availability = probe();
  return availability;
}

function probe(): { ok: boolean; reason?: string } {
  if (process.platform !== "linux") return { ok: false, reason: `network namespaces need Linux (this is ${process.platform})` };
  if (process.getuid?.() !== 0) return { ok: false, reason: "network namespaces need root (run the test as root, e.g. sudo -E)" };
  const v = spawnSync(IP, ["-V"], { encoding: "utf8" });
  if (v.error || v.status !== 0) return { ok: false, reason: "`ip` (iproute2) is not installed: apt-get install -y iproute2" };
  const ns = `btprobe${randomBytes(3).toString("hex")}`;
  try {
    ipSync(["netns", "add", ns]);
    const r = spawnSync(IP, ["netns", "exec", ns, "true"], { encoding: "utf8", timeout: 10_000 });
    if (r.status !== 0) return { ok: false, reason: `\`ip netns exec\` does not work here: ${r.stderr.trim()}` };
    return { ok: true };
  } catch (e) {
    return { ok: false, reason: `\`ip netns add\` does not work here: ${(e as Error).message}` };
  } finally {
    spawnSync(IP, ["netns", "del", ns]);
  }
}

export function isNetnsAvailable(): boolean {
  return netnsAvailability().ok;
}

/**
 * For `describe(name, { skip: netnsSkipReason() }, …)`: undefined when namespaces work; otherwise
 * the reason to print when skipping locally. Under CI=true it throws instead: CI must run these.
 */
export function netnsSkipReason(): string | undefined {
  const a = netnsAvailability();
  if (a.ok) return undefined;
  const reason = `needs network namespaces: ${a.reason}`;
  if (process.env.CI === "true") throw new Error(`CI=true and this test ${reason}`);
  return reason;
}

// ---- the network ---------------------------------------------------------------------------

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on("exit", () => {
    for (const n of live) n.destroySync();
  });
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const onSignal = (): void => {
      for (const n of live) n.destroySync();
      process.removeListener(sig, onSignal);
      process.kill(process.pid, sig); // the default action now: exit with that signal
    };
    process.on(sig, onSignal);
  }
}

export class TestNetwork {
  readonly hosts: TestHost[];
  readonly bridgeNs: string;
  readonly bridge: string;
  private readonly children = new Set<ChildProcess>();
  private destroyed = false;

  /** Use createTestNetwork(). */
  constructor(
    readonly id: string,
    readonly subnet: string,
    hostCount: number,
  ) {
    const base = subnet.split("/")[0]!.split(".").slice(0, 3).join(".");
    this.bridgeNs = `${id}-br`;
    this.bridge = `${id}-br`;
    this.hosts = Array.from({ length: hostCount }, (_, i) => ({
      name: `h${i + 1}`,
      ns: `${id}-h${i + 1}`,
      address: `${base}.${i + 11}`,
      iface: "eth0",
      bridgePort: `${id}-h${i + 1}`,
    }));
  }

  get namespaces(): string[] {
    return [...this.hosts.map((h) => h.ns), this.bridgeNs];
  }

  host(ref: HostRef): TestHost {
    if (typeof ref !== "string") return ref;
    const h = this.hosts.find((x) => x.name === ref || x.ns === ref);
    if (!h) throw new Error(`no host ${ref} in test network ${this.id}`);
    return h;
  }

  /** @internal */
  async setUp(): Promise<void> {
    const b = this.bridgeNs;
    await ip(["netns", "add", b]);
    await ip(["-n", b, "link", "set", "lo", "up"]);
    await ip(["-n", b, "link", "add", this.bridge, "type", "bridge"]);
    await ip(["-n", b, "link", "set", this.bridge, "up"]);
    await Promise.all(
      this.hosts.map(async (h) => {
        await ip(["netns", "add", h.ns]);
        // Both ends created in their namespaces directly: nothing ever appears in the root namespace.
        await ip(["-n", b, "link", "add", h.bridgePort, "type", "veth", "peer", "name", h.iface, "netns", h.ns]);
        await ip(["-n", b, "link", "set", h.bridgePort, "master", this.bridge]);
        await ip(["-n", b, "link", "set", h.bridgePort, "up"]);
        await ip(["-n", h.ns, "link", "set", "lo", "up"]);
        await ip(["-n", h.ns, "addr", "add", `${h.address}/24`, "dev", h.iface]);
        await ip(["-n", h.ns, "link", "set", h.iface, "up"]);
      }),
    );
  }

  private argv(host: HostRef, cmd: string, args: readonly string[]): string[] {
    if (this.destroyed) throw new Error(`test network ${this.id} is destroyed`);
    return ["netns", "exec", this.host(host).ns, cmd, ...args];
  }

  /**
   * A long-running process inside the host's namespace (`ip netns exec` execs the command, so the
   * pid is the command's). Detached (its own process group) unless opts say otherwise; killed by destroy().
   */
  spawn(host: HostRef, cmd: string, args: readonly string[] = [], opts: SpawnOptions = {}): ChildProcess {
    const child = spawnChild(IP, this.argv(host, cmd, args), { stdio: ["ignore", "pipe", "pipe"], detached: true, ...opts });
    this.children.add(child);
    child.once("exit", () => this.children.delete(child));
    child.once("error", () => this.children.delete(child));
    return child;
  }

  /** Runs a command inside the host's namespace to completion. Never rejects: see code/signal. */
  exec(host: HostRef, cmd: string, args: readonly string[] = [], opts: ExecOptions = {}): Promise<ExecResult> {
    const argv = this.argv(host, cmd, args);
    return new Promise((res) => {
      const child = execFile(IP, argv, { env: opts.env ?? process.env, cwd: opts.cwd, timeout: opts.timeoutMs ?? 30_000, killSignal: "SIGKILL", maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
        this.children.delete(child);
        const e = err as (Error & { code?: number | string; signal?: NodeJS.Signals | null }) | null;
        res({ code: e ? (typeof e.code === "number" ? e.code : 1) : 0, signal: e?.signal ?? null, stdout, stderr });
      });
      this.children.add(child);
    });
  }

  /** Cuts the host off: its veth's bridge end goes down (the host sees NO-CARRIER; packets to/from it are dropped, no RST). */
  async partition(host: HostRef): Promise<void> {
    await ip(["-n", this.bridgeNs, "link", "set", this.host(host).bridgePort, "down"]);
  }

  async heal(host: HostRef): Promise<void> {
    await ip(["-n", this.bridgeNs, "link", "set", this.host(host).bridgePort, "up"]);
  }

  async isPartitioned(host: HostRef): Promise<boolean> {
    const out = await ip(["-n", this.bridgeNs, "-o", "link", "show", this.host(host).bridgePort]);
    return !/[<,]UP[,>]/.test(out);
  }

  /**
   * Kills every process started through this network and every other process inside its
   * namespaces (e.g. tasks a baton started), then deletes the namespaces; their veths and the
   * bridge go with them. Idempotent.
   */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    this.killChildren();
    const existing = existingNamespaces();
    const present = this.namespaces.filter((ns) => existing.has(ns));
    // Until no process holds a namespace: a namespace with a process in it outlives `ip netns del`.
    await waitFor(
      () => {
        const pids = present.flatMap(nsPids);
        for (const p of pids) killQuietly(p, "SIGKILL");
        return pids.length === 0;
      },
      10_000,
      () => `processes left in ${present.join(", ")}: ${present.flatMap(nsPids).join(" ")}`,
    );
    for (const ns of present) await ip(["netns", "del", ns]);
    this.forget();
  }

  /** destroy() for process exit and signals: synchronous, best effort. */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.killChildren();
    removeNamespacesSync(this.namespaces);
    this.forget();
  }

  private killChildren(): void {
    for (const c of this.children) {
      if (!c.pid) continue;
      killQuietly(-c.pid, "SIGKILL"); // its group, when detached
      killQuietly(c.pid, "SIGKILL");
    }
  }

  private forget(): void {
    live.delete(this);
    rmSync(join(REGISTRY, `${this.id}.json`), { force: true });
  }
}

/**
 * A bridge in its own namespace and `hosts` namespaces `<prefix><hex>-h1…hn`, each with a veth to
 * the bridge, loopback up and an address in a private /24 (h1 = .11, h2 = .12, …). The namespaces
 * have no default route: the only reachable addresses are the hosts' and each one's loopback.
 */
export async function createTestNetwork(opts: TestNetworkOptions): Promise<TestNetwork> {
  const prefix = opts.prefix ?? "bt";
  if (!/^[a-z][a-z0-9]{0,5}$/.test(prefix)) throw new Error(`prefix ${JSON.stringify(prefix)}: 1–6 lowercase letters/digits, starting with a letter`);
  if (!Number.isInteger(opts.hosts) || opts.hosts < 1 || opts.hosts > 200) throw new Error(`hosts: 1–200, got ${opts.hosts}`);
  const a = netnsAvailability();
  if (!a.ok) throw new Error(`network namespaces unavailable: ${a.reason}`);
  reapStaleNetworks();

  const subnet = opts.subnet ?? pickSubnet();
  const m = /^10\.231\.(\d{1,3})\.0\/24$/.exec(subnet);
  if (!m || Number(m[1]) > 255) throw new Error(`subnet must be 10.231.X.0/24, got ${subnet}`);

  const existing = existingNamespaces();
  let id = "";
  do id = `${prefix}${randomBytes(2).toString("hex")}`;
  while ([...existing].some((n) => n.startsWith(`${id}-`)));
  const longest = `${id}-h${opts.hosts}`;
  if (longest.length > IFNAMSIZ) throw new Error(`interface name ${longest} is longer than ${IFNAMSIZ}`);

  const net = new TestNetwork(id, subnet, opts.hosts);
  mkdirSync(REGISTRY, { recursive: true });
  writeFileSync(join(REGISTRY, `${id}.json`), JSON.stringify({ pid: process.pid, id, subnet, namespaces: net.namespaces } satisfies RunRecord));
  live.add(net);
  installExitHandlers();
  try {
    await net.setUp();
  } catch (e) {
    net.destroySync();
    throw e;
  }
  return net;
}

// ---- helpers for tests ---------------------------------------------------------------------

/**
 * GET url from inside a host's namespace (a node process there): the body on 200, undefined on
 * anything else, including no answer within timeoutMs.
 */
export async function httpGetFrom(net: TestNetwork, host: HostRef, url: string, timeoutMs = 1000): Promise<string | undefined> {
  const script = `const r=require("http").get(process.argv[1],{timeout:${timeoutMs}},(s)=>{let b="";s.on("data",(c)=>b+=c);s.on("end",()=>{process.stdout.write(b);process.exit(s.statusCode===200?0:2)})});r.on("timeout",()=>{r.destroy();process.exit(3)});r.on("error",()=>process.exit(4));`;
  const r = await net.exec(host, process.execPath, ["-e", script, url], { timeoutMs: timeoutMs + 5000 });
  return r.code === 0 ? r.stdout : undefined;
}

export interface NetnsBatonOptions {
  /** The server command and its flags, without --data-dir/--log-level: ["up"] (default), later ["init", "--advertise-addr", addr] or ["join", "--token", t, addr]. */
  argv?: string[];
  /** Default: a fresh temp dir, removed by destroy(). */
  dataDir?: string;
  /** Default "debug". */
  logLevel?: string;
  /** How long start() waits for the CLI to answer; default 15 s. */
  startTimeoutMs?: number;
  /** More environment for the server, e.g. DOCKER_HOST of the host's own engine (netns-docker.ts). */
  env?: NodeJS.ProcessEnv;
}

/**
 * A real baton server process inside a host's namespace: BatonProcess (cli, cliOk, tasks, info,
 * kill, destroy) but spawned through `ip netns exec`. The CLI runs in the root namespace and talks to
 * the unix socket in the data dir (a filesystem object, reachable from any network namespace).
 * start() again after kill() restarts it on the same data dir.
 */
export class NetnsBaton extends BatonProcess {
  readonly host: TestHost;
  readonly argv: string[];

  constructor(
    readonly net: TestNetwork,
    host: HostRef,
    private readonly opts: NetnsBatonOptions = {},
  ) {
    super(opts.dataDir ?? mkdtempSync(join(tmpdir(), "baton-ns-")), []);
    this.host = net.host(host);
    this.argv = opts.argv ?? ["up"];
  }

  override async start(): Promise<void> {
    this.output = "";
    const args = [BIN, ...this.argv, "--data-dir", this.dataDir, "--log-level", this.opts.logLevel ?? "debug"];
    // Its own UTS namespace too, so each host has its own hostname (h1, h2, …) as real hosts do.
    const proc = this.net.spawn(this.host, "unshare", ["--uts", "sh", "-c", `hostname ${this.host.name} && exec "$0" "$@"`, process.execPath, ...args], { cwd: ROOT, env: { ...process.env, ...this.opts.env } });
    this.proc = proc;
    proc.stdout!.on("data", (d: Buffer) => (this.output += d.toString()));
    proc.stderr!.on("data", (d: Buffer) => (this.output += d.toString()));
    await waitFor(
      async () => {
        if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`baton ${this.argv.join(" ")} in ${this.host.ns} exited (${proc.exitCode ?? proc.signalCode}); output:\n${this.output.slice(-3000)}`);
        // `info` answers on managers and workers alike.
        return existsSync(this.socket) && (await this.cli("info")).code === 0;
      },
      this.opts.startTimeoutMs ?? 15_000,
      () => `baton ${this.argv.join(" ")} in ${this.host.ns} never answered; output:\n${this.output.slice(-3000)}`,
    );
  }

  get running(): boolean {
    return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }
}
