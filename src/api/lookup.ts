import { BatonError } from "../lib/errors.js";
import type { Network, Node, Service, Task, Volume } from "../model/objects.js";
import type { ReadTx } from "../store/store.js";

function byPrefix<T extends { id: string }>(items: T[], ref: string, what: string): T {
  const matches = items.filter((i) => i.id.startsWith(ref));
  if (matches.length === 1) return matches[0]!;
  if (matches.length > 1) throw new BatonError("NOT_FOUND", `${what} "${ref}" is ambiguous (${matches.length} matches)`);
  throw new BatonError("NOT_FOUND", `${what} "${ref}" not found`);
}

/** Full id, exact name, or unique id prefix, like docker. */
export function findService(tx: ReadTx, ref: string): Service {
  return tx.get("services", ref) ?? tx.serviceByName(ref) ?? byPrefix(tx.list("services"), ref, "service");
}

export function findNode(tx: ReadTx, ref: string): Node {
  const nodes = tx.list("nodes");
  const byId = tx.get("nodes", ref);
  if (byId) return byId;
  const named = nodes.filter((n) => n.hostname === ref);
  if (named.length > 1) throw new BatonError("NOT_FOUND", `node "${ref}" is ambiguous (${named.length} nodes have that hostname): use the node id`);
  return named[0] ?? byPrefix(nodes, ref, "node");
}

export function findTask(tx: ReadTx, ref: string): Task {
  return tx.get("tasks", ref) ?? byPrefix(tx.list("tasks"), ref, "task");
}

/** Full id, exact name, or unique id prefix: networks and volumes are found as services are. */
export function findNamed<K extends "networks" | "volumes">(tx: ReadTx, kind: K, ref: string): K extends "networks" ? Network : Volume {
  const what = kind === "networks" ? "network" : "volume";
  const items = tx.list(kind) as (Network | Volume)[];
  const found = tx.get(kind, ref) ?? items.find((i) => i.name === ref) ?? byPrefix(items, ref, what);
  return found as K extends "networks" ? Network : Volume;
}
