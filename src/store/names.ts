import type { Kind } from "../model/objects.js";
import type { StoredObject } from "./store.js";

/**
 * An object's unique name within its kind: `spec.name` (services) or `name` (secrets, configs,
 * networks, volumes, and any later kind that has one). Kinds without a name (tasks, nodes: two
 * hosts may share a hostname, the cluster record) have none. The store keeps one index per kind
 * and refuses a second object with a taken name (NAME_IN_USE), on every backend.
 */
export function nameOf(object: StoredObject): string | undefined {
  const o = object as unknown as { name?: unknown; spec?: { name?: unknown } };
  if (typeof o.name === "string") return o.name;
  if (o.spec && typeof o.spec === "object" && typeof o.spec.name === "string") return o.spec.name;
  return undefined;
}

/** "service", "secret": the singular of a kind, for messages. */
export function singular(kind: Kind): string {
  return kind.endsWith("s") ? kind.slice(0, -1) : kind;
}
