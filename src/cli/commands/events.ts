import type { Command } from "commander";
import type { Network, Node, Service, Task, Volume } from "../../model/objects.js";
import type { PublicSecret } from "../../secrets/public.js";
import { taskName } from "../../model/objects.js";
import { withClient } from "../context.js";
import { StreamError } from "../client.js";

interface WireEvent {
  revision: number;
  kind: "nodes" | "services" | "tasks" | "networks" | "volumes" | "secrets" | "configs";
  op: string;
  id: string;
  /** Secrets and configs come as metadata only (never their data). */
  object: Node | Service | Task | Network | Volume | PublicSecret;
}

/** docker events style: time, type, action, id, (attributes). */
function describe(e: WireEvent): string {
  let attrs: string;
  if (e.kind === "tasks") {
    const t = e.object as Task;
    attrs = `name=${taskName(t)}, service=${t.serviceName}, desired=${t.desiredState}, state=${t.status.state}${t.status.err ? `, error=${JSON.stringify(t.status.err)}` : ""}`;
  } else if (e.kind === "services") {
    attrs = `name=${(e.object as Service).spec.name}`;
  } else if (e.kind === "networks" || e.kind === "volumes" || e.kind === "secrets" || e.kind === "configs") {
    attrs = `name=${(e.object as { name: string }).name}`;
  } else if (e.kind === "nodes") {
    const n = e.object as Node;
    attrs = `hostname=${n.hostname}, state=${n.status.state}, availability=${n.availability}`;
  } else {
    // A kind this CLI does not know yet (a newer manager): its id is enough.
    attrs = "";
  }
  return `${new Date(e.object.updatedAt).toISOString()} ${e.kind.slice(0, -1)} ${e.op} ${e.id} (${attrs})`;
}

export function registerEvents(program: Command): void {
  program
    .command("events")
    .description("Stream store changes live (server-sent events)")
    .option("--since <revision>", "replay from after this revision")
    .option("--filter <kind>", "nodes, services, tasks, networks, volumes, secrets or configs (comma-separated)")
    .option("--format <format>", "text or json (one event per line)")
    .action(async (opts: { since?: string; filter?: string; format?: string }, cmd: Command) =>
      withClient(cmd, async (c) => {
        const ac = new AbortController();
        process.once("SIGINT", () => ac.abort());
        let since = opts.since;
        for (;;) {
          const q = new URLSearchParams();
          if (since !== undefined) q.set("since", since);
          if (opts.filter) q.set("kind", opts.filter);
          try {
            await c.events(`?${q.toString()}`, (data) => {
              const e = data as WireEvent;
              process.stdout.write((opts.format === "json" ? JSON.stringify(e) : describe(e)) + "\n");
            }, ac.signal);
            return;
          } catch (err) {
            // Fell behind (a slow terminal): pick up exactly where the server says, nothing lost.
            if (!(err instanceof StreamError) || err.resumeFrom === undefined) throw err;
            since = String(err.resumeFrom);
          }
        }
      }),
    );
}
