import { BatonError } from "../lib/errors.js";
import type { Collections, Node, Service, Task } from "../model/objects.js";
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

/** The kinds found by name as services are: networks, volumes, secrets, configs. */
export type NamedKind = "networks" | "volumes" | "secrets" | "configs";
const singular: Record<NamedKind, string> = { networks: "network", volumes: "volume", secrets: "secret", configs: "config" };

/** Full id, exact name (the store's name index), or unique id prefix, like docker. */
export function findNamed<K extends NamedKind>(tx: ReadTx, kind: K, ref: string): Collections[K] {
  return tx.get(kind, ref) ?? tx.byName(kind, ref) ?? byPrefix(tx.list(kind) as Collections[K][], ref, singular[kind]);
}
