import { BatonError, validationError, type FieldProblem } from "../lib/errors.js";
import type { ServiceSpec } from "../model/objects.js";
import { resolveServiceSpec } from "../input/resolve.js";
import type { ServiceSpecInput } from "../input/schemas.js";
import type { ReferenceLookup } from "../input/file-refs.js";
import type { ReadTx, Store } from "../store/store.js";
import { attachNetworks } from "./attachments.js";
import { portConflicts, portsInUseOnHost, publishedByBaton } from "./published-ports.js";

/** What a create would make, answered by `POST /v1/services?dryRun=true`. */
export interface CreatePreview {
  dryRun: true;
  name: string;
  /** The spec as it would be stored (network ids, bound secret and config ids). */
  spec: ServiceSpec;
  /** Named volumes its mounts would create (docker creates a volume on first use). */
  volumes: string[];
  /** Whether it would get a service address (VIP): it has ports and endpoint mode vip. */
  vip: boolean;
}

const fieldsOf = (err: unknown): FieldProblem[] => {
  if (err instanceof BatonError && err.code === "VALIDATION_FAILED") return err.fields;
  throw err;
};

/**
 * Every check a create makes — the body, secret and config references, networks (an internal-only
 * service publishing), the name, published ports held by another service or by a program on this
 * host — without writing. Unlike a create, it does not stop at the first kind of problem: all are
 * answered together (a caller such as `stack deploy` can then tell a reference to an object it
 * creates first from a port someone else holds). The write repeats these checks in its transaction.
 */
export async function previewCreate(store: Store, input: ServiceSpecInput, lookup: (tx: ReadTx) => ReferenceLookup): Promise<CreatePreview> {
  const problems: FieldProblem[] = [];
  let resolved: ServiceSpec;
  try {
    resolved = resolveServiceSpec(input, store.view(lookup));
  } catch (err) {
    problems.push(...fieldsOf(err));
    // Unbound references: the rest of the spec is still checked. A body that does not resolve
    // even so has problems of its own, already collected.
    try {
      resolved = resolveServiceSpec(input);
    } catch {
      throw validationError(problems);
    }
  }
  const { spec, volumes } = store.view((tx) => {
    let spec = resolved;
    try {
      spec = attachNetworks(tx, resolved);
    } catch (err) {
      problems.push(...fieldsOf(err));
    }
    if (tx.serviceByName(spec.name)) problems.push({ path: ["name"], problem: `"${spec.name}" is already in use` });
    problems.push(...portConflicts(tx, spec.endpoint.ports));
    const existing = new Set(tx.list("volumes").map((v) => v.name));
    const volumes = [...new Set((spec.task.mounts ?? []).flatMap((m) => (m.type === "volume" && m.source && !existing.has(m.source) ? [m.source] : [])))];
    return { spec, volumes };
  });
  const taken = new Set(problems.map((p) => p.path.join(".")));
  // A port another service publishes is named once, by the store's check.
  problems.push(...(await portsInUseOnHost(spec.endpoint.ports, store.view(publishedByBaton))).filter((p) => !taken.has(p.path.join("."))));
  if (problems.length) throw validationError(problems);
  return { dryRun: true, name: spec.name, spec, volumes, vip: spec.endpoint.ports.length > 0 && spec.endpoint.mode !== "dnsrr" };
}
