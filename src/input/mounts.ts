import type { FieldProblem } from "../lib/errors.js";
import type { DriverName, TaskMount } from "../model/objects.js";
import { parseBytes } from "./bytes.js";
import type { MountInput } from "./schemas.js";

const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const isAbsolute = (p: string): boolean => p.startsWith("/") && !p.split("/").includes("..");

/**
 * `mounts` (schema-valid) → the task's mounts, every problem named by its field. Docker's rules
 * (absolute paths, a source for bind, a name or none (anonymous) for volume, none for tmpfs, one mount per target) plus what
 * the process driver cannot do: a host process cannot be given a tmpfs or a read-only view.
 */
export function resolveMounts(input: MountInput[] | undefined, driver: DriverName, problems: FieldProblem[]): TaskMount[] {
  const out: TaskMount[] = [];
  const targets = new Map<string, number>();
  (input ?? []).forEach((m, i) => {
    const at = (field: string, problem: string): void => void problems.push({ path: ["mounts", i, field], problem });
    const before = problems.length;
    const target = m.target.length > 1 ? m.target.replace(/\/+$/, "") : m.target;
    if (!isAbsolute(target)) at("target", `"${m.target.slice(0, 80)}" is not an absolute path without ".."`);
    else if (target === "/") at("target", "cannot mount over /");
    else if (targets.has(target)) at("target", `${target} is already the target of mounts[${targets.get(target)}]`);
    else targets.set(target, i);
    if (m.type === "volume") {
      // No source: an anonymous volume, the task's own for its life (docker's `-v /cache`).
      if (m.source === undefined) {
        /* anonymous */
      } else if (!VOLUME_NAME.test(m.source) || m.source.length > 63) at("source", `"${m.source.slice(0, 80)}" is not a volume name (letters, digits, _ . -; a bind mount needs type bind)`);
    } else if (m.type === "bind") {
      if (m.source === undefined) at("source", "a bind mount needs the host path");
      else if (!isAbsolute(m.source)) at("source", `"${m.source.slice(0, 80)}" is not an absolute host path without ".."`);
    } else if (m.source !== undefined) at("source", "a tmpfs mount has no source");
    let tmpfsSizeBytes: number | undefined;
    if (m.tmpfsSize !== undefined) {
      if (m.type !== "tmpfs") at("tmpfsSize", "only a tmpfs mount has a size");
      else if ((tmpfsSizeBytes = parseBytes(m.tmpfsSize)) === undefined || tmpfsSizeBytes <= 0) at("tmpfsSize", `invalid size "${m.tmpfsSize}" (use e.g. 64m)`);
    }
    if (driver === "process") {
      if (m.type === "tmpfs") at("type", "the process driver cannot give a host process a tmpfs mount (use driver docker)");
      if (m.readOnly) at("readOnly", "the process driver cannot enforce a read-only mount (use driver docker)");
    }
    if (problems.length > before) return;
    out.push({ type: m.type, ...(m.source !== undefined ? { source: m.source } : {}), target, ...(m.readOnly ? { readOnly: true } : {}), ...(tmpfsSizeBytes !== undefined ? { tmpfsSizeBytes } : {}) });
  });
  return out;
}
