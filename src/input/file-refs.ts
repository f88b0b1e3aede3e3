import type { FieldProblem } from "../lib/errors.js";
import type { DriverName, FileReference } from "../model/objects.js";
import type { FileReferenceInput } from "./schemas.js";

/** Which object a name refers to (its id), for binding references; undefined: no such object. */
export type ReferenceLookup = (kind: "secrets" | "configs", name: string) => string | undefined;

const DEFAULT_MODE = { secrets: 0o400, configs: 0o444 } as const;

/**
 * A relative target is a file in the task's directory: plain path segments, no `..`, nothing
 * hidden behind a leading dot-dot. An absolute one is a path in a container (docker only).
 */
function targetProblem(target: string, driver: DriverName): string | undefined {
  if (target.includes("\0")) return "must not contain NUL";
  const absolute = target.startsWith("/");
  if (absolute && driver !== "docker") return `"${target}" is an absolute path: only the docker driver takes one (the process driver puts files in $BATON_SECRETS_DIR / $BATON_CONFIGS_DIR)`;
  const segments = target.split("/").filter((s, i) => !(absolute && i === 0));
  if (segments.some((s) => s === "" || s === "." || s === "..")) return `"${target}" must be a plain path (no empty, "." or ".." segments)`;
  if (absolute && segments.length === 0) return `"${target}" names no file`;
  return undefined;
}

/**
 * Resolves a service's `secrets` or `configs`: the default target (the name) and mode, the
 * object's id through `lookup`, one target per file. Problems are appended with paths such as
 * `secrets[1].source`; nothing is returned for an empty list (specs without compare equal).
 */
export function resolveFileReferences(
  kind: "secrets" | "configs",
  input: FileReferenceInput[] | undefined,
  driver: DriverName,
  lookup: ReferenceLookup | undefined,
  problems: FieldProblem[],
): FileReference[] | undefined {
  if (!input?.length) return undefined;
  const out: FileReference[] = [];
  const targets = new Map<string, number>();
  input.forEach((r, i) => {
    const target = r.target ?? r.source;
    const bad = targetProblem(target, driver);
    if (bad) problems.push({ path: [kind, i, "target"], problem: bad });
    const earlier = targets.get(target);
    if (earlier !== undefined) problems.push({ path: [kind, i, "target"], problem: `"${target}" is already the target of ${kind}[${earlier}]` });
    targets.set(target, i);
    const id = lookup?.(kind, r.source);
    if (lookup && id === undefined) problems.push({ path: [kind, i, "source"], problem: `${kind === "secrets" ? "secret" : "config"} "${r.source}" not found` });
    out.push({ id: id ?? "", name: r.source, target, mode: r.mode ?? DEFAULT_MODE[kind], ...(r.uid !== undefined ? { uid: r.uid } : {}), ...(r.gid !== undefined ? { gid: r.gid } : {}) });
  });
  return out;
}

/**
 * The references of a spec whose object is gone (removed between validation and the write):
 * checked inside the write's transaction, so a service never refers to a missing secret.
 */
export function missingReferences(spec: { secrets?: FileReference[]; configs?: FileReference[] }, exists: (kind: "secrets" | "configs", id: string) => boolean): FieldProblem[] {
  const problems: FieldProblem[] = [];
  for (const kind of ["secrets", "configs"] as const) {
    (spec[kind] ?? []).forEach((r, i) => {
      if (!exists(kind, r.id)) problems.push({ path: [kind, i, "source"], problem: `${kind === "secrets" ? "secret" : "config"} "${r.name}" not found` });
    });
  }
  return problems;
}
