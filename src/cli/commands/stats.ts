import type { Command } from "commander";
import type { TaskStatsRow } from "../../api/stats.js";
import { formatBytes } from "../../input/bytes.js";
import { withClient } from "../context.js";
import { printList } from "../output/table.js";

/** `docker stats --no-stream`: one sample of every running task (or of some services). */
export function registerStats(program: Command): void {
  program
    .command("stats")
    .description("CPU and memory of running tasks, one sample (about a second) from their nodes' drivers, like `docker stats --no-stream`")
    .argument("[service...]", "only these services (default: all)")
    .option("--format <format>", "table or json (one object per line)")
    .option("--no-trunc", "do not truncate container ids")
    .action(async (refs: string[], opts: { format?: string; trunc: boolean }, cmd: Command) =>
      withClient(cmd, async (c) => {
        const rows: TaskStatsRow[] = [];
        if (refs.length === 0) rows.push(...(await c.call<TaskStatsRow[]>("GET", "/v1/stats")));
        for (const ref of refs) rows.push(...(await c.call<TaskStatsRow[]>("GET", `/v1/stats?service=${encodeURIComponent(ref)}`)));
        printList(
          rows,
          opts,
          ["CONTAINER/PID", "NAME", "CPU %", "MEM USAGE / LIMIT", "CPU LIMIT"],
          (r) => [
            r.containerId ? (opts.trunc ? r.containerId.slice(0, 12) : r.containerId) : String(r.pid ?? ""),
            r.task,
            r.error ? `(${r.error})` : `${((r.cpus ?? 0) * 100).toFixed(2)}%`,
            r.error ? "" : `${formatBytes(r.memoryBytes ?? 0)} / ${r.memoryLimitBytes !== undefined ? formatBytes(r.memoryLimitBytes) : "—"}`,
            r.cpuLimit !== undefined ? String(r.cpuLimit) : "—",
          ],
          (r) => r.taskId,
        );
      }),
    );
}
