import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, existsSync, readFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { isLiveProcess } from "../../src/agent/drivers/process/proc-stat.js";
import { tmpfsRootOf } from "../../src/agent/task-files.js";

export const ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));
export const BIN = join(ROOT, "bin", "baton.js");

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A real `baton up` process in a temp data dir, driven through the real CLI. */
export class BatonProcess {
  proc: ChildProcess | undefined;
  output = "";

  constructor(
    readonly dataDir = mkdtempSync(join(tmpdir(), "baton-it-")),
    /** More `baton up` flags, e.g. ["--dns-addr", "127.77.0.1:0"]. */
    readonly upArgs: string[] = [],
  ) {}

  get socket(): string {
    return join(this.dataDir, "baton.sock");
  }

  async start(): Promise<void> {
    // detached: its own process group, like a terminal session of its own.
    this.proc = spawn(process.execPath, [BIN, "up", "--data-dir", this.dataDir, "--log-level", "debug", ...this.upArgs], { stdio: ["ignore", "pipe", "pipe"], detached: true, cwd: ROOT });
    this.proc.stdout!.on("data", (d: Buffer) => (this.output += d.toString()));
    this.proc.stderr!.on("data", (d: Buffer) => (this.output += d.toString()));
    await waitFor(async () => existsSync(this.socket) && (await this.cli("node", "ls", "-q")).code === 0, 15_000, () => `baton up never answered; output:\n${this.output.slice(-3000)}`);
  }

  get pid(): number {
    return this.proc!.pid!;
  }

  cli(...args: string[]): Promise<CliResult> {
    return runCli(this.socket, args);
  }

  async cliOk(...args: string[]): Promise<string> {
    const r = await this.cli(...args);
    if (r.code !== 0) throw new Error(`baton ${args.join(" ")} failed (${r.code}): ${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  async tasks(service: string): Promise<PsRow[]> {
    const out = await this.cliOk("service", "ps", service, "--format", "json");
    return out.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as PsRow);
  }

  async info(): Promise<{ revision: number; nodeId: string }> {
    return getJson(this.socket, "/v1/info") as Promise<{ revision: number; nodeId: string }>;
  }

  kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const p = this.proc!;
    return new Promise((r) => {
      if (p.exitCode !== null || p.signalCode !== null) return r();
      p.once("exit", () => r());
      p.kill(signal);
    });
  }

  /** Stops every task (baton down) and removes the data dir. */
  async destroy(): Promise<void> {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      await this.cli("down");
      await this.kill("SIGKILL");
    }
    // Anything a failed test left running under this data dir goes too.
    const records = join(this.dataDir, "agent", "tasks");
    if (existsSync(records)) {
      for (const f of await import("node:fs").then((fs) => fs.readdirSync(records))) {
        try {
          const r = JSON.parse(readFileSync(join(records, f), "utf8")) as { handle?: { pid: number; groupId?: number } };
          if (r.handle) process.kill(-(r.handle.groupId ?? r.handle.pid), "SIGKILL");
        } catch {
          /* gone */
        }
      }
    }
    rmSync(this.dataDir, { recursive: true, force: true });
    // The agent's secret files live on the tmpfs, outside the data dir.
    rmSync(tmpfsRootOf(join(resolve(this.dataDir), "agent")), { recursive: true, force: true });
  }
}

export interface PsRow {
  ID: string;
  Name: string;
  DesiredState: string;
  CurrentState: string;
  Error: string;
  Message: string;
  Port: number | null;
  Pid: number | null;
  /** docker: the full container id. */
  ContainerId: string | null;
  ExitCode: number | null;
  Slot: number;
}

export function runCli(socket: string, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolvePromise) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...process.env, BATON_HOST: `unix://${socket}`, ...env }, cwd: ROOT, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      resolvePromise({ code, stdout, stderr });
    });
  });
}

export function getJson(socket: string, path: string): Promise<unknown> {
  return new Promise((res, rej) => {
    const req = request({ socketPath: socket, path }, (r) => {
      let b = "";
      r.on("data", (c: Buffer) => (b += c.toString()));
      r.on("end", () => res(JSON.parse(b)));
    });
    req.on("error", rej);
    req.end();
  });
}

/** GET http://127.0.0.1:port/ → body, or undefined when it does not answer. */
export function httpGet(port: number, timeoutMs = 1000, host = "127.0.0.1"): Promise<string | undefined> {
  return new Promise((res) => {
    const req = request({ host, port, path: "/", agent: false, timeout: timeoutMs }, (r) => {
      let b = "";
      r.on("data", (c: Buffer) => (b += c.toString()));
      r.on("end", () => res(r.statusCode === 200 ? b : undefined));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => res(undefined));
    req.end();
  });
}

/** Polls until fn returns truthy; fails with what never happened. No fixed sleeps in tests. */
export async function waitFor<T>(fn: () => Promise<T> | T, timeoutMs: number, what: string | (() => string), intervalMs = 50): Promise<Exclude<T, false | undefined | null | "" | 0>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as Exclude<T, false | undefined | null | "" | 0>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${typeof what === "string" ? what : what()}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** A pid that runs and is not a zombie: the same check the process driver uses. */
export const isAlive = (pid: number): boolean => isLiveProcess(pid);

export const HELLO = join(ROOT, "examples", "hello", "server.js");
