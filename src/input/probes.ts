import type { FieldProblem } from "../lib/errors.js";
import type { HealthCheck, ProbeConfig, Probes } from "../model/objects.js";
import type { ServiceSpecInput } from "./schemas.js";

/** Kubernetes' probe defaults, except a shorter period: 10 s → 5 s keeps a failing task's pull-out quick. */
export const probeDefaults = { initialDelayMs: 0, periodMs: 5_000, timeoutMs: 1_000, successThreshold: 1, failureThreshold: 3 } as const;

/** One of cmd, http or tcp → a check; problems name the field under `path`. */
export function parseCheck(path: (string | number)[], c: { cmd?: string; http?: string; tcp?: number }, problems: FieldProblem[]): HealthCheck | undefined {
  const checks: HealthCheck[] = [];
  if (c.cmd !== undefined) checks.push({ kind: "exec", command: ["/bin/sh", "-c", c.cmd] });
  if (c.http !== undefined) {
    const m = /^(?::(\d+))?(\/.*)?$/.exec(c.http);
    const port = m?.[1] ? Number(m[1]) : undefined;
    if (!m || (port !== undefined && port > 65535)) {
      problems.push({ path: [...path, "http"], problem: `"${c.http}" is not a path or :port/path` });
      return undefined;
    }
    checks.push({ kind: "http", path: m[2] ?? "/", ...(port !== undefined ? { port } : {}) });
  }
  if (c.tcp !== undefined) checks.push({ kind: "tcp", ...(c.tcp ? { port: c.tcp } : {}) });
  if (checks.length !== 1) {
    problems.push({ path, problem: "give exactly one of cmd, http or tcp" });
    return undefined;
  }
  return checks[0];
}

/** `probes.{liveness,readiness,startup}` → resolved probes with defaults. */
export function resolveProbes(input: ServiceSpecInput["probes"], dur: (path: string[], text: string | undefined, fallback: number) => number, problems: FieldProblem[]): Probes | undefined {
  if (!input) return undefined;
  const out: Probes = {};
  for (const kind of ["liveness", "readiness", "startup"] as const) {
    const p = input[kind];
    if (!p) continue;
    const path = ["probes", kind];
    const check = parseCheck(path, p, problems);
    const cfg: ProbeConfig | undefined = check && {
      check,
      initialDelayMs: dur([...path, "initialDelay"], p.initialDelay, probeDefaults.initialDelayMs),
      periodMs: dur([...path, "period"], p.period, probeDefaults.periodMs),
      timeoutMs: dur([...path, "timeout"], p.timeout, probeDefaults.timeoutMs),
      successThreshold: p.successThreshold ?? probeDefaults.successThreshold,
      failureThreshold: p.failureThreshold ?? probeDefaults.failureThreshold,
    };
    if (!cfg) continue;
    if (cfg.periodMs < 10) problems.push({ path: [...path, "period"], problem: "must be at least 10ms" });
    if (cfg.timeoutMs < 1) problems.push({ path: [...path, "timeout"], problem: "must be at least 1ms" });
    // Kubernetes: liveness and startup must pass on one success.
    if (kind !== "readiness" && cfg.successThreshold !== 1) problems.push({ path: [...path, "successThreshold"], problem: `must be 1 for a ${kind} probe` });
    out[kind] = cfg;
  }
  return Object.keys(out).length ? out : undefined;
}
