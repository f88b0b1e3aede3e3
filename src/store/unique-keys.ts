import { BatonError, validationError } from "../lib/errors.js";
import type { Kind, PublishedPort, Service } from "../model/objects.js";
import { nameOf, singular } from "./names.js";
import type { StoredObject } from "./store.js";

/**
 * What at most one object may hold at a time, as keys every backend keeps an index of:
 *
 * | key | held by |
 * |---|---|
 * | `names/<kind>/<name>` | the object of that kind with that name (store/names.ts) |
 * | `ports/<tcp\|udp>/<port>` | the service publishing that port (TCP and HTTP share one space, UDP has its own) |
 * | `vips/<address>` | the service with that virtual IP |
 *
 * A write that makes an object claim a key another holds fails (claimConflict). On one writer
 * (SQLite, memory) the committed index decides; on etcd each key is an etcd key created on
 * absence in the claiming transaction, so two managers cannot both take one.
 */
export function uniqueKeysOf(kind: Kind, object: StoredObject): string[] {
  const keys: string[] = [];
  const name = nameOf(object);
  if (name !== undefined) keys.push(nameKey(kind, name));
  if (kind === "services") {
    const s = object as Service;
    for (const p of s.spec.endpoint?.ports ?? []) if (p.published !== undefined) keys.push(publishedPortKey(p));
    if (s.vip) keys.push(vipKey(s.vip));
  }
  return [...new Set(keys)];
}

export const nameKey = (kind: Kind, name: string): string => `names/${kind}/${name}`;
export const vipKey = (address: string): string => `vips/${address}`;

/** TCP and HTTP share one port space; UDP has its own. */
export const portSpace = (p: Pick<PublishedPort, "protocol">): "tcp" | "udp" => (p.protocol === "udp" ? "udp" : "tcp");
export const publishedPortKey = (p: Pick<PublishedPort, "protocol" | "published">): string => `ports/${portSpace(p)}/${p.published}`;

/**
 * The error for `claimant` wanting `key` that `holder` has (undefined: a holder this manager has
 * not seen yet), as the API words it: NAME_IN_USE for a name; for a published port the field
 * error the API gives (`publish[i].published: 8080 is already published by service "web"`); for a
 * VIP a retryable conflict (the API chose it as free: choosing again picks another).
 */
export function claimConflict(key: string, claimant: StoredObject, holder: StoredObject | undefined): BatonError {
  const [space, ...rest] = key.split("/");
  const by = holder ? `service "${nameOf(holder) ?? holder.id}"` : "another service";
  if (space === "names") {
    const kind = rest[0] as Kind;
    const name = rest.slice(1).join("/");
    return new BatonError("NAME_IN_USE", `${singular(kind)} name "${name}" is already in use`, [{ path: ["name"], problem: `"${name}" is already in use` }]);
  }
  if (space === "ports") {
    const ports = (claimant as Service).spec.endpoint.ports;
    const fields = ports.flatMap((p, i) =>
      p.published !== undefined && publishedPortKey(p) === key ? [{ path: ["publish", i, "published"], problem: `${p.published} is already published by ${by}` }] : [],
    );
    return validationError(fields);
  }
  return new BatonError("VERSION_CONFLICT", `service address ${rest.join("/")} was just taken by ${by}; try again`, [{ path: ["vip"], problem: `${rest.join("/")} is taken` }], { retryable: true });
}
