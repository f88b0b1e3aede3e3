import type { Command } from "commander";
import { Option } from "commander";
import type { Network, Volume } from "../../model/objects.js";
import { shortId } from "../../lib/ids.js";
import { withClient } from "../context.js";
import { printList } from "../output/table.js";
import { collect, parseLabels } from "../parse.js";

/** `baton network create|ls|inspect|rm`, as docker's (docs/networks.md). */
export function registerNetworkCommands(network: Command): void {
  network
    .command("create")
    .description("Create a network: services on it discover each other (docker: a bridge network per node; between nodes, the mesh)")
    .argument("<name>")
    .addOption(new Option("-d, --driver <driver>", "overlay (default: spans the nodes through the mesh) or bridge").choices(["overlay", "bridge"]))
    .option("--internal", "services only on internal networks cannot publish ports; containers get no outbound NAT")
    .option("--attachable", "standalone containers may join: its engine network baton-NAME is kept on every node with docker")
    .option("-l, --label <key=value>", "label (repeatable)", collect)
    .action(async (name: string, opts: { driver?: string; internal?: boolean; attachable?: boolean; label?: string[] }, cmd: Command) =>
      withClient(cmd, async (c) => {
        const n = await c.call<Network>("POST", "/v1/networks", { name, ...(opts.driver ? { driver: opts.driver } : {}), ...(opts.internal ? { internal: true } : {}), ...(opts.attachable ? { attachable: true } : {}), ...(opts.label ? { labels: parseLabels(opts.label) } : {}) });
        process.stdout.write(n.id + "\n");
      }),
    );
  network
    .command("ls")
    .alias("list")
    .description("List networks")
    .option("-q, --quiet", "only ids")
    .option("--format <format>", "table or json (one object per line)")
    .action(async (opts: { quiet?: boolean; format?: string }, cmd: Command) =>
      withClient(cmd, async (c) => {
        const list = await c.call<Network[]>("GET", "/v1/networks");
        printList(list, opts, ["NETWORK ID", "NAME", "DRIVER", "INTERNAL", "ATTACHABLE"], (n) => [shortId(n.id), n.name, n.driver, String(n.internal), String(n.attachable)], (n) => n.id);
      }),
    );
  registerInspectRm(network, "networks", "network");
}

/** `baton volume create|ls|inspect|rm`, as docker's (docs/volumes.md). */
export function registerVolumeCommands(volume: Command): void {
  volume
    .command("create")
    .description("Create a named volume: a directory per node (process tasks), a docker volume (containers)")
    .argument("<name>")
    .addOption(new Option("-d, --driver <driver>", "local (the only one)").choices(["local"]))
    .option("-l, --label <key=value>", "label (repeatable)", collect)
    .action(async (name: string, opts: { driver?: string; label?: string[] }, cmd: Command) =>
      withClient(cmd, async (c) => {
        const v = await c.call<Volume>("POST", "/v1/volumes", { name, ...(opts.driver ? { driver: opts.driver } : {}), ...(opts.label ? { labels: parseLabels(opts.label) } : {}) });
        process.stdout.write(v.name + "\n");
      }),
    );
  volume
    .command("ls")
    .alias("list")
    .description("List volumes")
    .option("-q, --quiet", "only names")
    .option("--format <format>", "table or json (one object per line)")
    .action(async (opts: { quiet?: boolean; format?: string }, cmd: Command) =>
      withClient(cmd, async (c) => {
        const list = await c.call<Volume[]>("GET", "/v1/volumes");
        printList(list, opts, ["DRIVER", "VOLUME NAME"], (v) => [v.driver, v.name], (v) => v.name);
      }),
    );
  registerInspectRm(volume, "volumes", "volume");
}

function registerInspectRm(cmd: Command, path: "networks" | "volumes", what: string): void {
  cmd
    .command("inspect")
    .description(`Show ${path} as JSON, with the services using each`)
    .argument(`<${what}...>`)
    .action(async (refs: string[], _o: unknown, c0: Command) =>
      withClient(c0, async (c) => {
        const out: unknown[] = [];
        for (const r of refs) out.push(await c.call("GET", `/v1/${path}/${encodeURIComponent(r)}`));
        process.stdout.write(JSON.stringify(out, null, 2) + "\n");
      }),
    );
  cmd
    .command("rm")
    .alias("remove")
    .description(`Remove ${path} (refused while a service uses one)`)
    .argument(`<${what}...>`)
    .action(async (refs: string[], _o: unknown, c0: Command) =>
      withClient(c0, async (c) => {
        for (const r of refs) {
          const res = await c.call<{ id: string; name: string }>("DELETE", `/v1/${path}/${encodeURIComponent(r)}`);
          process.stdout.write((path === "volumes" ? res.name : res.id) + "\n");
        }
      }),
    );
}
