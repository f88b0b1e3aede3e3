import type { Service, ServiceSpec, Task } from "../model/objects.js";
import { slotKey } from "../model/slots.js";
import { withNewSpec } from "./transitions.js";

export interface FieldChange {
  path: string;
  from?: unknown;
  to?: unknown;
}

export interface UpdatePreview {
  /** Spec versions before and after (equal when only the replica count changes). */
  specVersion: { from: number; to: number };
  changes: FieldChange[];
  /** How the tasks would be replaced; absent when no task would be. */
  rollout?: { strategy: string; order: string; parallelism: number; delayMs: number; monitorMs: number; batches: string[][]; kept: string[] };
  replicas?: { from: number; to: number };
}

/** Leaves of a JSON value as dotted paths: task.env.VERSION → "2". */
function flatten(v: unknown, prefix: string, out: Map<string, unknown>): void {
  if (v !== null && typeof v === "object" && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) flatten(x, prefix ? `${prefix}.${k}` : k, out);
  } else out.set(prefix, v);
}

/** The field diff between two specs, sorted by path (arrays compare whole). */
export function specChanges(a: ServiceSpec, b: ServiceSpec): FieldChange[] {
  const fa = new Map<string, unknown>();
  const fb = new Map<string, unknown>();
  flatten(a, "", fa);
  flatten(b, "", fb);
  const out: FieldChange[] = [];
  for (const path of [...new Set([...fa.keys(), ...fb.keys()])].sort()) {
    const [x, y] = [fa.get(path), fb.get(path)];
    if (JSON.stringify(x) === JSON.stringify(y)) continue;
    out.push({ path, ...(fa.has(path) ? { from: x } : {}), ...(fb.has(path) ? { to: y } : {}) });
  }
  return out;
}

/**
 * What `service update` would do, like `nomad job plan`: the field diff, whether it is a new spec
 * version, and which slots would be replaced in what batches (which are kept as they are).
 * Pure: nothing is written.
 */
export function previewUpdate(svc: Service, spec: ServiceSpec, tasks: Task[], now: number, force = false): UpdatePreview {
  const next = withNewSpec(svc, spec, undefined, now, force);
  const preview: UpdatePreview = { specVersion: { from: svc.specVersion, to: next.specVersion }, changes: specChanges(svc.spec, spec) };
  if (svc.spec.mode.kind === "replicated" && spec.mode.kind === "replicated" && svc.spec.mode.replicas !== spec.mode.replicas) {
    preview.replicas = { from: svc.spec.mode.replicas, to: spec.mode.replicas };
  }
  if (next.specVersion === svc.specVersion) return preview;
  const cfg = spec.update;
  const running = tasks.filter((t) => t.desiredState === "running");
  const slots = spec.mode.kind === "replicated" ? Array.from({ length: spec.mode.replicas }, (_, i) => String(i + 1)) : [...new Set(running.map(slotKey))].sort();
  const same = (t: Task): boolean => !force && JSON.stringify(t.spec) === JSON.stringify(spec.task);
  const kept = slots.filter((k) => running.some((t) => slotKey(t) === k && same(t)));
  const replaced = slots.filter((k) => !kept.includes(k));
  const size = cfg.parallelism === 0 || cfg.strategy !== "rolling" ? replaced.length : cfg.parallelism;
  const batches: string[][] = [];
  for (let i = 0; i < replaced.length; i += Math.max(size, 1)) batches.push(replaced.slice(i, i + Math.max(size, 1)));
  preview.rollout = { strategy: cfg.strategy, order: cfg.order, parallelism: cfg.parallelism, delayMs: cfg.delayMs, monitorMs: cfg.monitorMs, batches, kept };
  return preview;
}
