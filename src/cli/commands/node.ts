import type { Command } from "commander";
import { Option } from "commander";
import type { Node } from "../../model/objects.js";
import { shortId } from "../../lib/ids.js";
import { withClient } from "../context.js";
import { printList } from "../output/table.js";
import { collect, parseLabels } from "../parse.js";
import type { RebalanceResult } from "../../api/rebalance.js";
import { reportRebalance } from "./service-misc.js";

const cap = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

/** Leader | Reachable | Unreachable, as the manager answering knows it (etcd leases with HA managers). */
const managerStatus = (n: Node & { managerStatus?: string }): string => (n.role !== "manager" ? "" : cap(n.managerStatus ?? (n.status.state === "ready" ? "leader" : "unreachable")));

export function registerNodeCommands(node: Command): void {
  node
    .command("ls")
    .alias("list")
    .description("List nodes")
    .option("-q, --quiet", "only ids")
    .option("--format <format>", "table or json (one object per line)")
    .action(async (opts: { quiet?: boolean; format?: string }, cmd: Command) =>
      withClient(cmd, async (c) => {
        const self = (await c.call<{ nodeId?: string }>("GET", "/v1/info")).nodeId;
        const nodes = await c.call<Node[]>("GET", "/v1/nodes");
        printList(
          nodes,
          opts,
          ["ID", "HOSTNAME", "STATUS", "AVAILABILITY", "MANAGER STATUS", "ADDRESS", "DRIVERS", "VERSION"],
          (n) => [`${shortId(n.id)}${n.id === self ? " *" : ""}`, n.hostname, cap(n.status.state), cap(n.availability), managerStatus(n), n.status.address ?? "", n.drivers.join(","), n.agentVersion],
          (n) => n.id,
          (n) => ({ ID: n.id, Self: n.id === self, Hostname: n.hostname, Status: cap(n.status.state), Availability: cap(n.availability), ManagerStatus: managerStatus(n), Address: n.status.address ?? "", Drivers: n.drivers, Version: n.agentVersion }),
        );
      }),
    );

  node
    .command("inspect")
    .description("Show nodes as JSON (`self`: the node of the manager answering)")
    .argument("<node...>")
    .action(async (refs: string[], _o: unknown, cmd: Command) =>
      withClient(cmd, async (c) => {
        const out: Node[] = [];
        for (const r of refs) {
          const ref = r === "self" ? ((await c.call<{ nodeId?: string }>("GET", "/v1/info")).nodeId ?? r) : r;
          out.push(await c.call<Node>("GET", `/v1/nodes/${encodeURIComponent(ref)}`));
        }
        process.stdout.write(JSON.stringify(out, null, 2) + "\n");
      }),
    );

  node
    .command("update")
    .description("Change a node's availability or labels")
    .argument("<node>")
    .addOption(new Option("--availability <availability>", "active, pause or drain").choices(["active", "pause", "drain"]))
    .option("--label-add <key=value>", "add or change a label (repeatable)", collect)
    .option("--label-rm <key>", "remove a label (repeatable)", collect)
    .option("--rebalance", "then move replicated services' tasks toward an even spread (e.g. onto a node made active again)")
    .option("-d, --detach", "with --rebalance: return at once instead of waiting for the moves")
    .action(async (ref: string, opts: { availability?: string; labelAdd?: string[]; labelRm?: string[]; rebalance?: boolean; detach?: boolean }, cmd: Command) =>
      withClient(cmd, async (c) => {
        const cur = await c.call<Node>("GET", `/v1/nodes/${encodeURIComponent(ref)}`);
        const labels = { ...cur.labels, ...parseLabels(opts.labelAdd) };
        for (const k of opts.labelRm ?? []) delete labels[k];
        const n = await c.call<Node & { rebalanced?: RebalanceResult[] }>("POST", `/v1/nodes/${cur.id}/update`, { ...(opts.availability ? { availability: opts.availability } : {}), labels, ...(opts.rebalance ? { rebalance: true } : {}) });
        process.stdout.write(n.id + "\n");
        if (!n.rebalanced) return;
        const busy = n.rebalanced.filter((r) => r.moving > 0);
        if (busy.length === 0) process.stdout.write("nothing to move: every replicated service is balanced\n");
        for (const r of busy) await reportRebalance(c, r, opts.detach === true);
      }),
    );

  node
    .command("rm")
    .alias("remove")
    .description("Remove nodes from the cluster: their certificates are refused from then on, their tasks move elsewhere")
    .argument("<node...>")
    .option("-f, --force", "remove a node even while it is up (its tasks are replaced; it can no longer reconnect)")
    .action(async (refs: string[], opts: { force?: boolean }, cmd: Command) =>
      withClient(cmd, async (c) => {
        for (const r of refs) {
          const res = await c.call<{ id: string }>("DELETE", `/v1/nodes/${encodeURIComponent(r)}${opts.force ? "?force=true" : ""}`);
          process.stdout.write(res.id + "\n");
        }
      }),
    );

  for (const [verb, role, what] of [
    ["promote", "manager", "Make workers managers (an etcd store is needed: `baton init --ha`): each fetches its manager certificate, starts the manager parts and, on --ha, its etcd member; tasks keep running"],
    ["demote", "worker", "Make managers workers: each steps down, its etcd member leaves the cluster, it keeps running its tasks; refused for the last manager or when the etcd quorum would be lost"],
  ] as const) {
    node
      .command(verb)
      .description(what)
      .argument("<node...>")
      .option("-d, --detach", "return once the change is declared, without waiting for the node to carry it out")
      .action(async (refs: string[], opts: { detach?: boolean }, cmd: Command) =>
        withClient(cmd, async (c) => {
          const self = (await c.call<{ nodeId?: string }>("GET", "/v1/info")).nodeId;
          for (const r of refs) {
            const n = await c.call<Node>("POST", `/v1/nodes/${encodeURIComponent(r)}/${verb}`);
            if (n.role === role && !n.desiredRole) {
              process.stdout.write(`node ${n.hostname} is already a ${role}\n`);
              continue;
            }
            if (opts.detach || n.id === self) {
              // The manager answering is the one stepping down: it stops answering as a manager.
              if (n.id === self) process.stdout.write(`node ${n.hostname} is the manager answering: it steps down now and runs on as a worker (see \`baton node ls\` on another manager)\n`);
              else process.stdout.write(`node ${n.hostname}: ${verb} declared\n`);
              continue;
            }
            process.stdout.write(`node ${n.hostname}: ${verb} declared; waiting for it to become a ${role}…\n`);
            if (await waitForRole(c, n.id, role)) process.stdout.write(`node ${n.hostname} is now a ${role}\n`);
            else process.stdout.write(`node ${n.hostname} has not taken the role yet after 60 s: see \`baton node ls\` and the node's log\n`);
          }
        }),
      );
  }
}

/** Polls the node until its role is `role` (60 s); false when it did not in time or the manager went away. */
async function waitForRole(c: { call<T>(method: string, path: string): Promise<T> }, id: string, role: Node["role"]): Promise<boolean> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const n = await c.call<Node>("GET", `/v1/nodes/${encodeURIComponent(id)}`).catch(() => undefined);
    if (n && n.role === role && n.status.state === "ready" && !n.desiredRole) return true;
    await new Promise((r) => setTimeout(r, 500));
  }
  return false;
}
