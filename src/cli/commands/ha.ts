import type { Command } from "commander";
import { resolve } from "node:path";
import { withClient } from "../context.js";
import { printList, type ListOptions } from "../output/table.js";
import type { MemberStatus } from "../../ha/membership.js";

/** `baton ha …`: operations on the HA managers' etcd store. */
export function registerHaCommands(program: Command): void {
  const ha = program.command("ha").description("The etcd store of HA managers: members and backups");
  ha.command("members")
    .description("The etcd store's members: id, name, client URL, and STATUS (leader, healthy, learner, or why not healthy)")
    .option("--format <format>", "table or json")
    .option("-q, --quiet", "only the ids")
    .action(async (opts: ListOptions, cmd: Command) =>
      withClient(cmd, async (c) => {
        const members = await c.call<MemberStatus[]>("GET", "/v1/store/members");
        printList(
          members,
          opts,
          ["ID", "NAME", "CLIENT URL", "STATUS"],
          (m) => [m.id, m.name || "(not started)", m.clientUrls.join(",") || "-", m.healthy ? [m.leader ? "leader" : "healthy", ...(m.isLearner ? ["learner"] : [])].join(", ") : `unhealthy: ${m.error ?? "?"}`],
          (m) => m.id,
        );
      }),
    );
  const snapshot = ha.command("snapshot").description("etcd snapshots of the store (restore: docs/ha.md, Backup and restore)");
  snapshot
    .command("save")
    .description("Save a snapshot of the etcd store to FILE (0600; whole or absent), as `etcdctl snapshot save` would")
    .argument("<file>", "where to write the snapshot")
    .action(async (file: string, _opts: unknown, cmd: Command) =>
      withClient(cmd, async (c) => {
        const path = resolve(file);
        const { bytes, headers } = await c.download("/v1/store/snapshot", path);
        process.stdout.write(`snapshot (store revision ${String(headers["x-baton-revision"] ?? "?")}) saved to ${path} (${bytes} bytes)\n`);
      }),
    );
}
