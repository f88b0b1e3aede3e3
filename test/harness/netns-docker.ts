// A Docker Engine per test host: one dockerd (with the containerd it manages) inside each host's
// network namespace, so a Baton agent there runs its containers on its own host, as on real
// machines. See docs/testing.md. Needs root, dockerd and nsenter.
//
// dockerd is started with `nsenter --net=…`, not `ip netns exec`: the latter gives the process a
// mount namespace with a fresh /sys, without the cgroup mounts dockerd needs ("Devices cgroup
// isn't mounted"). So the engine shares the machine's mounts (its overlay mounts are visible to
// the tests and cleaned up here) and only its network is the host's: its bridges, iptables rules
// and published ports live in the namespace.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Docker from "dockerode";
import { waitFor } from "./baton.js";
import { netnsAvailability, type TestHost, type TestNetwork } from "./netns.js";

/** Per-run records, so the engines of a run that was SIGKILLed are reaped by a later one. */
const REGISTRY = "/run/baton-test-engines";
const DATA_BASE = "/var/lib/baton-test";
const RUN_BASE = "/run/baton-test";

export interface HostEngine {
  host: TestHost;
  /** The engine's socket: DOCKER_HOST=unix://<socket> for a baton on this host. */
  socket: string;
  docker: Docker;
  dataRoot: string;
  execRoot: string;
  proc: ChildProcess;
}

interface EngineRecord {
  /** The test process. */
  pid: number;
  engines: { dockerd: number; dataRoot: string; execRoot: string; socket: string }[];
}

const pidAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
};

const kill = (pid: number, sig: NodeJS.Signals): void => {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone */
  }
};

/** Whether dockerd can run per namespace here: namespaces, dockerd and nsenter. */
export function engineAvailability(): { ok: boolean; reason?: string } {
  const ns = netnsAvailability();
  if (!ns.ok) return ns;
  for (const bin of ["dockerd", "nsenter", "docker"]) {
    if (spawnSync("sh", ["-c", `command -v ${bin}`]).status !== 0) return { ok: false, reason: `${bin} is not installed (apt-get install docker.io util-linux)` };
  }
  return { ok: true };
}

/** For `describe(…, { skip })`: undefined when engines can run; else the reason. Throws under CI=true. */
export function engineSkipReason(): string | undefined {
  const a = engineAvailability();
  if (a.ok) return undefined;
  const reason = `needs a Docker Engine per network namespace: ${a.reason}`;
  if (process.env.CI === "true") throw new Error(`CI=true and this test ${reason}`);
  return reason;
}

/** The engine's containers' processes, from its data root (state files), killed: the sweep for engines that did not stop them. */
function killContainerProcesses(dataRoot: string): void {
  const dir = join(dataRoot, "containers");
  if (!existsSync(dir)) return;
  for (const id of readdirSync(dir)) {
    try {
      const cfg = JSON.parse(readFileSync(join(dir, id, "config.v2.json"), "utf8")) as { State?: { Pid?: number } };
      const pid = cfg.State?.Pid;
      // Only a process still in that container's cgroup: the pid may have been reused.
      if (pid && pid > 1 && readFileSync(`/proc/${pid}/cgroup`, "utf8").includes(id)) kill(pid, "SIGKILL");
    } catch {
      /* no state, or the process is gone */
    }
  }
}

/** Unmounts whatever the engine left mounted under its directories (deepest first), then removes them. */
function removeEngineDirs(dirs: string[]): void {
  const mounts = readFileSync("/proc/self/mounts", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[1] ?? "")
    .filter((m) => dirs.some((d) => m === d || m.startsWith(`${d}/`)))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) spawnSync("umount", ["-l", m], { timeout: 10_000 });
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}

/** Synchronous stop of one engine: its containers removed through the CLI, dockerd TERM then KILL, leftovers swept. */
function stopEngineSync(e: EngineRecord["engines"][number]): void {
  if (pidAlive(e.dockerd) && existsSync(e.socket)) {
    const ids = spawnSync("docker", ["-H", `unix://${e.socket}`, "ps", "-aq"], { encoding: "utf8", timeout: 10_000 }).stdout?.split(/\s+/).filter(Boolean) ?? [];
    if (ids.length) spawnSync("docker", ["-H", `unix://${e.socket}`, "rm", "-fv", ...ids], { timeout: 30_000 });
  }
  if (isDockerd(e.dockerd, e.dataRoot)) {
    kill(e.dockerd, "SIGTERM");
    const deadline = Date.now() + 15_000;
    while (pidAlive(e.dockerd) && Date.now() < deadline) spawnSync("sleep", ["0.1"]);
    kill(e.dockerd, "SIGKILL");
  }
  killContainerProcesses(e.dataRoot);
  removeEngineDirs([e.dataRoot, e.execRoot]);
}

/** The pid is a dockerd of this data root (not a reused pid). */
function isDockerd(pid: number, dataRoot: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").includes(dataRoot);
  } catch {
    return false;
  }
}

/** Stops the engines of earlier runs whose test process is gone, and removes their directories. */
export function reapStaleEngines(): void {
  if (!existsSync(REGISTRY)) return;
  for (const f of readdirSync(REGISTRY)) {
    let rec: EngineRecord;
    try {
      rec = JSON.parse(readFileSync(join(REGISTRY, f), "utf8")) as EngineRecord;
    } catch {
      continue;
    }
    if (pidAlive(rec.pid)) continue;
    for (const e of rec.engines) stopEngineSync(e);
    rmSync(join(REGISTRY, f), { force: true });
  }
}

const live = new Set<HostEngines>();
let handlersInstalled = false;

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  // Prepended: they must run before the test network's, which kills every process in the
  // namespaces (dockerd included) and would leave the containers running.
  process.prependListener("exit", () => {
    for (const e of live) e.destroySync();
  });
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.prependListener(sig, () => {
      for (const e of live) e.destroySync();
    });
  }
}

/** The engines of one test network's hosts. */
export class HostEngines {
  private readonly byHost = new Map<string, HostEngine>();
  private destroyed = false;

  /** Use startHostEngines(). */
  constructor(
    readonly net: TestNetwork,
    private readonly recordFile: string,
  ) {}

  /** The engine of a host (by name, e.g. "h2"). */
  engine(host: TestHost | string): HostEngine {
    const name = typeof host === "string" ? host : host.name;
    const e = this.byHost.get(name);
    if (!e) throw new Error(`no engine on ${name}`);
    return e;
  }

  get all(): HostEngine[] {
    return [...this.byHost.values()];
  }

  /** `docker -H <host's engine> ARGS` to its end. */
  cli(host: TestHost | string, args: readonly string[], timeoutMs = 30_000): { code: number; stdout: string; stderr: string } {
    const r = spawnSync("docker", ["-H", `unix://${this.engine(host).socket}`, ...args], { encoding: "utf8", timeout: timeoutMs });
    return { code: r.status ?? 1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
  }

  /** @internal */
  async add(host: TestHost, index: number): Promise<void> {
    const tag = `${this.net.id}-${host.name}`;
    const dataRoot = join(DATA_BASE, tag);
    const execRoot = join(RUN_BASE, tag);
    mkdirSync(dataRoot, { recursive: true });
    mkdirSync(execRoot, { recursive: true });
    const socket = join(execRoot, "docker.sock");
    const logFile = join(execRoot, "dockerd.log");
    const out = openSync(logFile, "a");
    // Distinct private ranges per host (172.21–172.31), so a container's address names one host.
    if (index < 1 || index > 11) throw new Error(`engines run on hosts h1…h11 (172.${20 + index} is not a private range)`);
    const octet = 20 + index;
    const proc = spawn(
      "nsenter",
      [
        `--net=/run/netns/${host.ns}`,
        "dockerd",
        "--data-root", dataRoot,
        "--exec-root", join(execRoot, "exec"),
        "--pidfile", join(execRoot, "docker.pid"),
        "-H", `unix://${socket}`,
        "--exec-opt", "native.cgroupdriver=cgroupfs",
        "--storage-driver", "overlay2",
        "--bip", `172.${octet}.255.1/24`,
        "--default-address-pool", `base=172.${octet}.0.0/17,size=24`,
        "--log-level", "warn",
      ],
      { stdio: ["ignore", out, out], detached: true },
    );
    closeSync(out);
    const docker = new Docker({ socketPath: socket });
    const engine: HostEngine = { host, socket, docker, dataRoot, execRoot, proc };
    this.byHost.set(host.name, engine);
    this.record();
    const tail = (): string => (existsSync(logFile) ? readFileSync(logFile, "utf8").slice(-2000) : "(no log)");
    await waitFor(
      async () => {
        if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`dockerd on ${host.name} exited (${proc.exitCode ?? proc.signalCode}):\n${tail()}`);
        return existsSync(socket) && (await docker.ping().then(() => true, () => false));
      },
      60_000,
      () => `dockerd on ${host.name} never answered:\n${tail()}`,
      200,
    );
  }

  private record(): void {
    const rec: EngineRecord = { pid: process.pid, engines: this.all.map((e) => ({ dockerd: e.proc.pid!, dataRoot: e.dataRoot, execRoot: e.execRoot, socket: e.socket })) };
    writeFileSync(this.recordFile, JSON.stringify(rec));
  }

  /**
   * Removes every container of every engine, stops the engines (TERM, then KILL after 15 s),
   * unmounts what they left and removes their directories and the bridges they made in the
   * namespaces. Idempotent.
   */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await Promise.all(
      this.all.map(async (e) => {
        try {
          const containers = await e.docker.listContainers({ all: true });
          await Promise.all(containers.map((c) => e.docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => undefined)));
        } catch {
          /* the engine is down: swept below */
        }
        if (e.proc.exitCode === null && e.proc.signalCode === null) {
          const exited = new Promise<void>((r) => e.proc.once("exit", () => r()));
          e.proc.kill("SIGTERM");
          const timer = setTimeout(() => e.proc.kill("SIGKILL"), 15_000);
          await exited;
          clearTimeout(timer);
        }
      }),
    );
    this.finish();
  }

  /** destroy() for process exit and signals: synchronous, best effort. */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const e of this.all) stopEngineSync({ dockerd: e.proc.pid!, dataRoot: e.dataRoot, execRoot: e.execRoot, socket: e.socket });
    this.finish();
  }

  private finish(): void {
    for (const e of this.all) {
      killContainerProcesses(e.dataRoot);
      removeEngineDirs([e.dataRoot, e.execRoot]);
      // The engine's bridges (docker0, br-…) stay in the namespace after it stops: deleted, so a
      // namespace that outlives this helper holds only what the test network made.
      const links = spawnSync("ip", ["-n", e.host.ns, "-j", "link", "show", "type", "bridge"], { encoding: "utf8", timeout: 10_000 });
      try {
        for (const l of JSON.parse(links.stdout || "[]") as { ifname: string }[]) spawnSync("ip", ["-n", e.host.ns, "link", "del", l.ifname], { timeout: 10_000 });
      } catch {
        /* the namespace is gone */
      }
    }
    live.delete(this);
    rmSync(this.recordFile, { force: true });
  }
}

/**
 * Starts a dockerd in each of `hosts`' namespaces (in parallel), each with its own data root
 * (/var/lib/baton-test/<net id>-hN), exec root and socket (/run/baton-test/<net id>-hN/docker.sock)
 * and address ranges (172.(20+i).x), then runs `prepare` on each (e.g. build the test images:
 * there is no registry). Give a baton on host hN `env: { DOCKER_HOST: "unix://" + socket }`.
 */
export async function startHostEngines(net: TestNetwork, hosts: readonly TestHost[], prepare?: (docker: Docker, host: TestHost) => Promise<void>): Promise<HostEngines> {
  const a = engineAvailability();
  if (!a.ok) throw new Error(`engines per namespace unavailable: ${a.reason}`);
  reapStaleEngines();
  mkdirSync(REGISTRY, { recursive: true });
  const engines = new HostEngines(net, join(REGISTRY, `${net.id}.json`));
  live.add(engines);
  installExitHandlers();
  try {
    // Started together (each records its pid before it is waited for).
    await Promise.all(hosts.map((h) => engines.add(h, net.hosts.indexOf(h) + 1)));
    if (prepare) await Promise.all(hosts.map((h) => prepare(engines.engine(h).docker, h)));
  } catch (e) {
    await engines.destroy();
    throw e;
  }
  return engines;
}
