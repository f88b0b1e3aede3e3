import { BatonError, validationError, type FieldProblem } from "../lib/errors.js";
import { newId } from "../lib/ids.js";
import type { Network, Service, ServiceSpec, Volume } from "../model/objects.js";
import type { ReadTx, WriteTx } from "../store/store.js";

/**
 * Turns the network names or ids of a resolved spec into ids, in a transaction: an unknown one
 * is a problem naming `networks[i]`. A service only on internal networks may not publish ports
 * (nothing outside could reach them anyway). Returns the spec with ids.
 */
export function attachNetworks(tx: ReadTx, spec: ServiceSpec): ServiceSpec {
  const refs = spec.task.networks;
  if (!refs?.length) return spec;
  const problems: FieldProblem[] = [];
  const found: Network[] = [];
  refs.forEach((ref, i) => {
    const n = tx.get("networks", ref) ?? tx.byName("networks", ref);
    if (n) found.push(n);
    else problems.push({ path: ["networks", i], problem: `network "${ref}" not found (baton network create ${ref})` });
  });
  if (!problems.length && found.every((n) => n.internal)) {
    spec.endpoint.ports.forEach((p, i) => {
      if (p.published !== undefined) problems.push({ path: ["publish", i, "published"], problem: `the service is only on internal networks (${found.map((n) => n.name).join(", ")}): it cannot publish ports` });
    });
  }
  if (problems.length) throw validationError(problems);
  const ids = [...new Set(found.map((n) => n.id))];
  return { ...spec, task: { ...spec.task, networks: ids } };
}

/** Volumes named by volume mounts and not created yet are created, as docker does on first use. */
export function createMissingVolumes(tx: WriteTx, spec: ServiceSpec): Volume[] {
  const existing = new Set(tx.list("volumes").map((v) => v.name));
  const created: Volume[] = [];
  for (const m of spec.task.mounts ?? []) {
    if (m.type !== "volume" || !m.source || existing.has(m.source)) continue;
    existing.add(m.source);
    created.push(tx.create("volumes", { id: newId(), name: m.source, driver: "local", labels: {} }));
  }
  return created;
}

/** Services whose spec (current, or the one a rollback returns to) uses the network or volume. */
export function servicesUsing(tx: ReadTx, what: { network: Network } | { volume: Volume }): Service[] {
  const uses = (s: ServiceSpec | undefined): boolean => {
    if (!s) return false;
    if ("network" in what) return (s.task.networks ?? []).includes(what.network.id);
    return (s.task.mounts ?? []).some((m) => m.type === "volume" && m.source === what.volume.name);
  };
  return tx.list("services").filter((s) => uses(s.spec) || uses(s.previousSpec));
}

/** Refuses a removal while services use the object: 409 IN_USE naming them. */
export function refuseWhileUsed(kind: "network" | "volume", name: string, users: Service[]): void {
  if (!users.length) return;
  const names = users.map((s) => s.spec.name).sort();
  throw new BatonError("IN_USE", `${kind} "${name}" is in use by service${names.length > 1 ? "s" : ""} ${names.join(", ")}`, [{ path: ["name"], problem: `in use by ${names.join(", ")}` }]);
}
