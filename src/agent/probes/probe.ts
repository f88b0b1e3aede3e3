import { spawn } from "node:child_process";
import { request } from "node:http";
import { connect } from "node:net";
import type { HealthCheck } from "../../model/objects.js";

export interface ProbeResult {
  ok: boolean;
  output: string;
}

export interface ProbeTarget {
  port?: number;
  env: Record<string, string>;
  workdir?: string;
  /** Runs an exec check where the task runs (inside its container); absent: on the host. */
  exec?: (command: string[], timeoutMs: number) => Promise<ProbeResult>;
}

/** Runs one health check with a timeout: exec (exit 0), HTTP GET (2xx/3xx) or TCP connect. */
export function runProbe(check: HealthCheck, target: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
  switch (check.kind) {
    case "exec":
      return target.exec ? target.exec(check.command, timeoutMs) : execProbe(check.command, target, timeoutMs);
    case "http":
      return httpProbe(check.port ?? target.port, check.path, timeoutMs);
    case "tcp":
      return tcpProbe(check.port ?? target.port, timeoutMs);
  }
}

function execProbe(command: string[], target: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let out = "";
    const child = spawn(command[0]!, command.slice(1), { cwd: target.workdir, env: target.env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    const keep = (b: Buffer): void => {
      out = (out + b.toString()).slice(-512);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        /* gone */
      }
      resolve({ ok: false, output: `health check timed out after ${timeoutMs}ms` });
    }, timeoutMs);
    child.once("error", (err) => {
      clearTimeout(timer);
      resolve({ ok: false, output: err.message });
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ ok: code === 0, output: out.trim() || `exit code ${code}` });
    });
  });
}

function httpProbe(port: number | undefined, path: string, timeoutMs: number): Promise<ProbeResult> {
  if (!port) return Promise.resolve({ ok: false, output: "no port to probe" });
  return new Promise((resolve) => {
    const req = request({ host: "127.0.0.1", port, path, method: "GET", timeout: timeoutMs, agent: false }, (res) => {
      res.resume();
      const code = res.statusCode ?? 0;
      resolve({ ok: code >= 200 && code < 400, output: `GET ${path}: ${code}` });
    });
    req.on("timeout", () => req.destroy(new Error(`timed out after ${timeoutMs}ms`)));
    req.on("error", (err) => resolve({ ok: false, output: `GET ${path}: ${err.message}` }));
    req.end();
  });
}

function tcpProbe(port: number | undefined, timeoutMs: number): Promise<ProbeResult> {
  if (!port) return Promise.resolve({ ok: false, output: "no port to probe" });
  return new Promise((resolve) => {
    const sock = connect({ host: "127.0.0.1", port, timeout: timeoutMs });
    sock.once("connect", () => {
      sock.destroy();
      resolve({ ok: true, output: `connected to ${port}` });
    });
    sock.once("timeout", () => sock.destroy(new Error(`timed out after ${timeoutMs}ms`)));
    sock.once("error", (err) => resolve({ ok: false, output: `tcp ${port}: ${err.message}` }));
  });
}
