import type { Command } from "commander";
import { Option } from "commander";
import { parseInteger, parseNumber } from "../parse.js";

/**
 * The flags of a task's spec that `service create` and `service update` share. Create's help
 * adds the default each one has; on update, an absent flag keeps what the service has.
 */
const TASK_FLAGS: { flags: string; help: string; createDefault?: string; parse?: (v: string) => number }[] = [
  { flags: "-w, --workdir <dir>", help: "working directory of the command", createDefault: "the current directory" },
  { flags: "--restart-condition <cond>", help: "none, on-failure or any", createDefault: "any" },
  { flags: "--restart-delay <duration>", help: "fixed delay between restarts", createDefault: "immediate, then backoff up to 10s" },
  { flags: "--restart-max-attempts <n>", help: "restarts before giving up", createDefault: "0 = unlimited", parse: parseInteger },
  { flags: "--restart-window <duration>", help: "window in which max attempts are counted" },
  { flags: "--health-cmd <command>", help: "health check run with /bin/sh -c; exit 0 = healthy" },
  { flags: "--health-http <path>", help: "health check: HTTP GET on the task's PORT (/path or :port/path)" },
  { flags: "--health-tcp <port>", help: "health check: TCP connect (0 = the task's PORT)", parse: parseInteger },
  { flags: "--health-interval <duration>", help: "time between checks", createDefault: "30s" },
  { flags: "--health-timeout <duration>", help: "time a check may take", createDefault: "30s" },
  { flags: "--health-retries <n>", help: "consecutive failures before unhealthy", createDefault: "3", parse: parseInteger },
  { flags: "--health-start-period <duration>", help: "failures in this period after start do not count" },
  { flags: "--stop-signal <signal>", help: "signal that stops a task", createDefault: "SIGTERM" },
  { flags: "--stop-grace-period <duration>", help: "time to wait before SIGKILL", createDefault: "10s" },
  { flags: "--replicas-max-per-node <n>", help: "at most this many tasks of the service per node (0 = no limit)", parse: parseInteger },
  { flags: "--reserve-cpu <cpus>", help: "CPUs reserved per task", parse: parseNumber },
  { flags: "--reserve-memory <bytes>", help: "memory reserved per task (512m, 2g)" },
  { flags: "--limit-cpu <cpus>", help: "CPUs a task may use at most, e.g. 0.5 (0 = no limit; enforced by a cgroup, docs/limits.md)", parse: parseNumber },
  { flags: "--limit-memory <bytes>", help: "memory a task may use at most before it is OOM-killed (64m, 1g; 0 = no limit)" },
  { flags: "--wait-for-backend <duration>", help: "how long a request waits for a ready task before failing", createDefault: "5s" },
];

export function addTaskFlags(cmd: Command, on: "create" | "update"): Command {
  for (const f of TASK_FLAGS) {
    const help = on === "create" && f.createDefault ? `${f.help} (default ${f.createDefault})` : f.help;
    if (f.parse) cmd.option(f.flags, help, f.parse);
    else cmd.option(f.flags, help);
  }
  return cmd.addOption(new Option("--load-balance <how>", `how the mesh picks a task${on === "create" ? " (default round-robin)" : ""}`).choices(["round-robin", "least-connections"]));
}
