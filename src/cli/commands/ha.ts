import type { Command } from "commander";
import { resolve } from "node:path";
import { withClient } from "../context.js";

/** `baton ha …`: operations on the HA managers' etcd store. */
export function registerHaCommands(program: Command): void {
  const ha = program.command("ha").description("The etcd store of HA managers: backup");
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
