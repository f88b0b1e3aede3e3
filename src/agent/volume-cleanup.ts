import { existsSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../lib/log.js";
import type { Driver } from "./drivers/driver.js";

/**
 * `baton volume rm` removes a volume's data on every node, as docker removes a volume's data:
 * given every volume name the cluster has, this node's data of any other volume — a directory
 * of the process driver under `volumesDir`, an engine volume Baton made — is removed, unless a
 * task of this node still mounts it (it is removed at a later change or agent start). What is
 * removed is found here (the directory's entries, the engine's labelled volumes), never named
 * by the manager: a name it sends is only ever kept.
 */
export async function removeDeletedVolumes(opts: { names: readonly string[]; inUse: ReadonlySet<string>; volumesDir: string | undefined; drivers: readonly Driver[]; log: Logger }): Promise<string[]> {
  const keep = new Set([...opts.names, ...opts.inUse]);
  const removed: string[] = [];
  if (opts.volumesDir && existsSync(opts.volumesDir)) {
    for (const entry of readdirSync(opts.volumesDir)) {
      if (keep.has(entry)) continue;
      try {
        rmSync(join(opts.volumesDir, entry), { recursive: true, force: true });
        removed.push(`directory ${entry}`);
      } catch (err) {
        opts.log.warn({ volume: entry, err: (err as Error).message }, "cannot remove a removed volume's directory");
      }
    }
  }
  for (const d of opts.drivers) {
    if (!d.pruneVolumes) continue;
    try {
      for (const name of await d.pruneVolumes(keep)) removed.push(`${d.name} volume ${name}`);
    } catch (err) {
      opts.log.warn({ driver: d.name, err: (err as Error).message }, "cannot list the driver's volumes");
    }
  }
  if (removed.length) opts.log.info({ removed }, "data of removed volumes deleted on this node");
  return removed;
}
