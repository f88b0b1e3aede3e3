import type { NodeDescription, TaskStatusUpdate } from "../dispatcher/protocol.js";
import { taskStates } from "../model/task-state.js";

/**
 * What a node sends is checked before it reaches the store: a node with a valid certificate is
 * still only trusted to describe itself and report on its own tasks, with well-formed values.
 */
const str = (v: unknown, max: number): v is string => typeof v === "string" && v.length <= max;
const num = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v) && v >= 0;

const validLimits = (v: unknown): boolean => {
  if (!v || typeof v !== "object") return false;
  const l = v as Record<string, unknown>;
  return typeof l.memory === "boolean" && typeof l.cpu === "boolean" && (l.cgroup === "v1" || l.cgroup === "v2" || l.cgroup === "none");
};

export function validDescription(d: unknown): d is NodeDescription {
  if (!d || typeof d !== "object") return false;
  const x = d as Record<string, unknown>;
  const res = x.resources as Record<string, unknown> | undefined;
  const plat = x.platform as Record<string, unknown> | undefined;
  return (
    str(x.nodeId, 64) &&
    str(x.hostname, 253) &&
    !!res && num(res.cpus) && num(res.memoryBytes) &&
    Array.isArray(x.drivers) && x.drivers.length <= 16 && x.drivers.every((v) => str(v, 64)) &&
    !!plat && str(plat.os, 64) && str(plat.arch, 64) &&
    str(x.agentVersion, 64) &&
    (x.limits === undefined || validLimits(x.limits)) &&
    (x.address === undefined || str(x.address, 253))
  );
}

const states = new Set<string>(taskStates);
const optional = (v: unknown, ok: (v: unknown) => boolean): boolean => v === undefined || ok(v);

/** Keeps the well-formed updates; a malformed one is dropped, not half-applied. */
export function validUpdates(u: unknown): TaskStatusUpdate[] {
  if (!Array.isArray(u)) return [];
  return u.filter((x): x is TaskStatusUpdate => {
    if (!x || typeof x !== "object") return false;
    const r = x as Record<string, unknown>;
    return (
      str(r.taskId, 64) && typeof r.state === "string" && states.has(r.state) && num(r.seq) && optional(r.message, (v) => str(v, 65_536)) &&
      optional(r.err, (v) => str(v, 65_536)) && optional(r.exitCode, (v) => typeof v === "number") && optional(r.signal, (v) => str(v, 32)) &&
      optional(r.pid, num) && optional(r.port, num) && optional(r.ready, (v) => typeof v === "boolean") &&
      optional(r.health, (v) => v === "starting" || v === "healthy" || v === "unhealthy") &&
      optional(r.ports, (v) => !!v && typeof v === "object" && Object.values(v).every(num)) &&
      optional(r.traffic, (v) => !!v && typeof v === "object" && num((v as Record<string, unknown>).requests) && num((v as Record<string, unknown>).errors))
    );
  });
}
