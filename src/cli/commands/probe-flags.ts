import type { Command } from "commander";
import { parseInteger } from "../parse.js";

const PROBE_KINDS = ["liveness", "readiness", "startup"] as const;
/** Per probe kind: --<kind>-http PATH | --<kind>-tcp [PORT] | --<kind>-cmd CMD, and its timings. */
const PROBE_FIELDS = { Http: "http", Tcp: "tcp", Cmd: "cmd", InitialDelay: "initialDelay", Period: "period", Timeout: "timeout", SuccessThreshold: "successThreshold", FailureThreshold: "failureThreshold" } as const;

/** --liveness-*, --readiness-*, --startup-* on create and update. */
export function addProbeFlags(cmd: Command): Command {
  for (const kind of PROBE_KINDS) {
    cmd
      .option(`--${kind}-http <path>`, `${kind} probe: HTTP GET on the task's PORT (/path or :port/path)`)
      .option(`--${kind}-tcp [port]`, `${kind} probe: TCP connect (default the task's PORT)`, parseInteger)
      .option(`--${kind}-cmd <command>`, `${kind} probe: command run with /bin/sh -c`)
      .option(`--${kind}-initial-delay <duration>`, `${kind} probe: wait before the first probe (default 0s)`)
      .option(`--${kind}-period <duration>`, `${kind} probe: time between probes (default 5s)`)
      .option(`--${kind}-timeout <duration>`, `${kind} probe: time a probe may take (default 1s)`)
      .option(`--${kind}-success-threshold <n>`, `${kind} probe: consecutive successes to pass (default 1)`, parseInteger)
      .option(`--${kind}-failure-threshold <n>`, `${kind} probe: consecutive failures to fail (default 3)`, parseInteger);
  }
  return cmd;
}

/** --liveness-*, --readiness-*, --startup-* → the API's `probes`. `--X-tcp` alone means the task's PORT. */
export function probesFrom(opts: Record<string, unknown>): { probes?: Record<string, Record<string, unknown>> } {
  const probes: Record<string, Record<string, unknown>> = {};
  for (const kind of PROBE_KINDS) {
    const p: Record<string, unknown> = {};
    for (const [suffix, field] of Object.entries(PROBE_FIELDS)) {
      const v = opts[`${kind}${suffix}`];
      if (v !== undefined) p[field] = v === true ? 0 : v;
    }
    if (Object.keys(p).length) probes[kind] = p;
  }
  return Object.keys(probes).length ? { probes } : {};
}

