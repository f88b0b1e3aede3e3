import { BatonError } from "../lib/errors.js";
import type { Service, ServiceSpec, UpdateStatus } from "../model/objects.js";

const freshStatus = (state: UpdateStatus["state"], message: string, now: number): UpdateStatus => ({ state, message, reason: message, startedAt: now, updated: [], failures: 0, nextStartAt: now });

/** Everything but the replica count: scale alone is not a new spec version (as in Swarm). */
const sameApartFromReplicas = (a: ServiceSpec, b: ServiceSpec): boolean =>
  JSON.stringify({ ...a, mode: a.mode.kind }) === JSON.stringify({ ...b, mode: b.mode.kind });

/**
 * A service after a spec change: a new spec version (the previous spec kept as the rollback
 * target) and a fresh update, unless only the replica count changed (or nothing did, without
 * `force`).
 */
export function withNewSpec(svc: Service, spec: ServiceSpec, specInput: unknown, now: number, force = false): Service {
  if (!force && sameApartFromReplicas(svc.spec, spec)) return { ...svc, spec, specInput };
  return {
    ...svc,
    spec,
    specInput,
    specVersion: svc.specVersion + 1,
    previousSpec: svc.spec,
    ...(svc.specInput !== undefined ? { previousSpecInput: svc.specInput } : {}),
    updateStatus: { ...freshStatus("updating", "update started", now), ...(spec.update.strategy === "blue-green" ? { blueGreen: true } : {}), ...(force ? { force: true } : {}) },
  };
}

/** Back to the previous spec (a new spec version), rolled out with the rollback config. */
export function withRollback(svc: Service, now: number, message = "manual rollback"): Service {
  if (!svc.previousSpec) throw new BatonError("VALIDATION_FAILED", `service "${svc.spec.name}" has no previous spec to roll back to`);
  // Keep the replica count the user has now: a rollback undoes the last change, not a later scale.
  const spec: ServiceSpec = { ...svc.previousSpec, mode: svc.spec.mode.kind === svc.previousSpec.mode.kind ? svc.spec.mode : svc.previousSpec.mode };
  return {
    ...svc,
    spec,
    ...(svc.previousSpecInput !== undefined ? { specInput: svc.previousSpecInput } : {}),
    specVersion: svc.specVersion + 1,
    previousSpec: svc.spec,
    ...(svc.specInput !== undefined ? { previousSpecInput: svc.specInput } : {}),
    // Rolling back a blue-green or canary update: the old color takes all traffic at once.
    updateStatus: { ...freshStatus("rollback_started", message, now), ...(svc.updateStatus?.blueGreen || svc.updateStatus?.canary ? { blueGreen: true } : {}) },
  };
}
