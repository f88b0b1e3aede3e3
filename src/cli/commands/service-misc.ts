import type { Command } from "commander";
import type { Service, Task } from "../../model/objects.js";
import { taskName } from "../../model/objects.js";
import { shortId } from "../../lib/ids.js";
import type { ServiceStatus } from "../../model/service-status.js";
import type { LogLine } from "../../api/logs.js";
import { withClient } from "../context.js";
import { printList } from "../output/table.js";
import { currentState, desiredState, taskError } from "../output/state.js";
import { waitConverged } from "../output/progress.js";
import { BatonError } from "../../lib/errors.js";
import { slotSortKey } from "../../model/slots.js";
import type { RebalanceResult } from "../../api/rebalance.js";
import type { ApiClient } from "../client.js";

export type ServiceWithStatus = Service & { status: ServiceStatus };

export function registerServiceCommands(service: Command): void {
  service
    .command("ls")
    .alias("list")
    .description("List services")
    .option("-q, --quiet", "only ids")
    .option("--format <format>", "table or json (one object per line)")
    .action(async (opts: { quiet?: boolean; format?: string }, cmd: Command) =>
      withClient(cmd, async (c) => printServices(await c.call<ServiceWithStatus[]>("GET", "/v1/services"), opts)),
    );

  service
    .command("ps")
    .description("List the tasks of one or more services, each slot's earlier tasks under it")
    .argument("<service...>")
    .option("-q, --quiet", "only ids")
    .option("--format <format>", "table or json (one object per line)")
    .option("--no-trunc", "do not truncate ids and errors")
    .action(async (refs: string[], opts: { quiet?: boolean; format?: string; trunc: boolean }, cmd: Command) =>
      withClient(cmd, (c) => printTasks(c, refs, opts)),
    );

  service
    .command("inspect")
    .description("Show services as JSON: spec, version, status")
    .argument("<service...>")
    .action(async (refs: string[], _opts: unknown, cmd: Command) =>
      withClient(cmd, async (c) => {
        const out: ServiceWithStatus[] = [];
        for (const r of refs) out.push(await c.call<ServiceWithStatus>("GET", `/v1/services/${encodeURIComponent(r)}`));
        process.stdout.write(JSON.stringify(out, null, 2) + "\n");
      }),
    );

  service
    .command("scale")
    .description("Scale replicated services: SERVICE=REPLICAS ...")
    .argument("<service=replicas...>")
    .option("-d, --detach", "return at once instead of waiting for convergence")
    .action(async (pairs: string[], opts: { detach?: boolean }, cmd: Command) => {
      const parsed = pairs.map((p) => {
        const m = /^([^=]+)=(-?\d+)$/.exec(p);
        if (!m) throw new BatonError("BAD_REQUEST", `invalid scale specifier "${p}": expected SERVICE=REPLICAS`);
        return { ref: m[1]!, replicas: Number(m[2]) };
      });
      await withClient(cmd, async (c) => {
        for (const { ref, replicas } of parsed) {
          const s = await c.call<Service>("POST", `/v1/services/${encodeURIComponent(ref)}/scale`, { replicas });
          process.stdout.write(`${s.spec.name} scaled to ${replicas}\n`);
          if (!opts.detach) await waitConverged(c, s.id);
        }
      });
    });

  service
    .command("rebalance")
    .description("Move a replicated service's tasks toward an even spread over the nodes that can take them; each new task is up before the old one stops")
    .argument("<service...>")
    .option("-d, --detach", "return at once instead of waiting for the moves to finish")
    .action(async (refs: string[], opts: { detach?: boolean }, cmd: Command) =>
      withClient(cmd, async (c) => {
        for (const ref of refs) {
          const r = await c.call<RebalanceResult>("POST", `/v1/services/${encodeURIComponent(ref)}/rebalance`);
          await reportRebalance(c, r, opts.detach === true);
        }
      }),
    );

  service
    .command("rm")
    .alias("remove")
    .description("Remove services; their tasks are stopped gracefully")
    .argument("<service...>")
    .action(async (refs: string[], _opts: unknown, cmd: Command) =>
      withClient(cmd, async (c) => {
        for (const r of refs) {
          const removed = await c.call<{ name: string }>("DELETE", `/v1/services/${encodeURIComponent(r)}`);
          process.stdout.write(removed.name + "\n");
        }
      }),
    );

  service
    .command("logs")
    .description("Logs of all of a service's tasks, prefixed like docker's (web.2.<id>@node)")
    .argument("<service>")
    .option("-f, --follow", "keep streaming new lines and new tasks")
    .option("-n, --tail <lines>", "lines from the end of each task's log (default all)")
    .option("--raw", "no prefix")
    .action(async (ref: string, opts: { follow?: boolean; tail?: string; raw?: boolean }, cmd: Command) =>
      withClient(cmd, async (c) => {
        const q = new URLSearchParams();
        if (opts.follow) q.set("follow", "1");
        if (opts.tail !== undefined) q.set("tail", opts.tail);
        const ac = new AbortController();
        process.once("SIGINT", () => ac.abort());
        await c.stream(`/v1/services/${encodeURIComponent(ref)}/logs?${q.toString()}`, (line) => {
          const l = JSON.parse(line) as LogLine;
          if (l.error !== undefined) return void process.stderr.write(`${l.task}@${l.node}: logs unavailable: ${l.error}\n`);
          process.stdout.write(opts.raw ? `${l.line}\n` : `${l.task}@${l.node}    | ${l.line}\n`);
        }, ac.signal);
      }),
    );
}

/**
 * Prints what a rebalance moves (one line per task, the expected target: the scheduler decides)
 * and, unless detached, waits until the moves are done as `service scale` does.
 */
export async function reportRebalance(c: ApiClient, r: RebalanceResult, detach: boolean): Promise<void> {
  process.stdout.write(r.moves.length ? `moving ${r.moves.length} task${r.moves.length === 1 ? "" : "s"} of ${r.name}:\n` : `${r.message}\n`);
  for (const m of r.moves) process.stdout.write(`  ${m.task}  ${m.from.hostname} → ${m.to.hostname}\n`);
  if (r.moving > 0 && !detach) await waitConverged(c, r.serviceId);
}

/** The update state, with progress while one runs: "updating 2/4", "paused", "completed". */
function updateColumn(s: ServiceWithStatus): string {
  const u = s.updateStatus;
  if (!u) return "";
  const inFlight = u.state === "updating" || u.state === "rollback_started";
  return inFlight ? `${u.state} ${u.updated.length}/${s.status.desired}` : u.state;
}

/** In the mesh's pools or not: only a running task has an answer. */
/** docker: the container id (12 characters, as `docker ps`); process: the task's pid. */
function containerOrPid(t: Task, trunc: boolean): string {
  if (t.status.containerId) return trunc ? t.status.containerId.slice(0, 12) : t.status.containerId;
  return t.status.pid ? String(t.status.pid) : "";
}

function readiness(t: Task): string {
  if (t.status.state !== "running") return "";
  return t.status.ready ? "yes" : "no";
}

/** Per slot: the current task first, its earlier tasks under it, newest first (docker's ps). */
export function orderForPs(tasks: Task[]): { task: Task; history: boolean }[] {
  const bySlot = new Map<string, Task[]>();
  for (const t of tasks) {
    const k = slotSortKey(t);
    const l = bySlot.get(k);
    if (l) l.push(t);
    else bySlot.set(k, [t]);
  }
  const out: { task: Task; history: boolean }[] = [];
  for (const k of [...bySlot.keys()].sort()) {
    const l = bySlot.get(k)!.sort((a, b) => (a.desiredState === "running" ? 0 : 1) - (b.desiredState === "running" ? 0 : 1) || b.createdAt - a.createdAt);
    l.forEach((task, i) => out.push({ task, history: i > 0 }));
  }
  return out;
}


/** `service ls` (and `stack services`): one row per service. */
export function printServices(list: ServiceWithStatus[], opts: { quiet?: boolean; format?: string }): void {
  printList(
    list,
    opts,
    ["ID", "NAME", "MODE", "REPLICAS", "UPDATE", "COMMAND"],
    (s) => [shortId(s.id), s.spec.name, s.spec.mode.kind, `${s.status.running}/${s.status.desired}`, updateColumn(s), s.spec.task.command.join(" ").slice(0, 60)],
    (s) => s.id,
    (s) => ({ ID: s.id, Name: s.spec.name, Mode: s.spec.mode.kind, Replicas: `${s.status.running}/${s.status.desired}`, UpdateState: s.updateStatus?.state ?? null, UpdateMessage: s.updateStatus?.message ?? null, Command: s.spec.task.command.join(" ") }),
  );
}

/** `service ps` (and `stack ps`): the tasks of the services, per slot with its history. */
export async function printTasks(c: ApiClient, refs: string[], opts: { quiet?: boolean; format?: string; trunc: boolean }): Promise<void> {
  const nodes = new Map((await c.call<{ id: string; hostname: string }[]>("GET", "/v1/nodes")).map((n) => [n.id, n.hostname]));
  const rows: { task: Task; history: boolean }[] = [];
  for (const ref of refs) {
    const tasks = await c.call<Task[]>("GET", `/v1/tasks?service=${encodeURIComponent(ref)}`);
    rows.push(...orderForPs(tasks));
  }
  const now = Date.now();
  const id = (t: Task): string => (opts.trunc ? shortId(t.id) : t.id);
  const err = (t: Task): string => {
    const e = taskError(t);
    return opts.trunc && e.length > 60 ? e.slice(0, 59) + "…" : e;
  };
  printList(
    rows,
    opts,
    ["ID", "NAME", "NODE", "CONTAINER/PID", "DESIRED STATE", "CURRENT STATE", "READY", "ERROR", "PORTS"],
    ({ task: t, history }) => [id(t), `${history ? " \\_ " : ""}${taskName(t)}`, t.nodeId ? nodes.get(t.nodeId) ?? shortId(t.nodeId) : "", containerOrPid(t, opts.trunc), desiredState(t), currentState(t, now), readiness(t), err(t), t.status.port && t.status.state === "running" ? `*:${t.status.port}` : ""],
    ({ task: t }) => t.id,
    ({ task: t }) => ({ ID: t.id, Name: taskName(t), Node: t.nodeId ? nodes.get(t.nodeId) ?? t.nodeId : "", DesiredState: t.desiredState, CurrentState: t.status.state, Timestamp: new Date(t.status.timestamp).toISOString(), Error: t.status.err ?? "", Message: t.status.message, Port: t.status.port ?? null, Ports: t.status.ports ?? null, Ready: t.status.state === "running" ? t.status.ready === true : null, Pid: t.status.pid ?? null, ContainerId: t.status.containerId ?? null, ExitCode: t.status.exitCode ?? null, Slot: t.slot }),
  );
}
