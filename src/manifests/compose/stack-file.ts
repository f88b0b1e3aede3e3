import { basename } from "node:path";
import { Ajv } from "ajv";
import { BatonError, formatPath, type FieldProblem } from "../../lib/errors.js";
import type { ComposeFile } from "./schema.js";
import { NAME_PATTERN, ServiceSpecInput } from "../../input/schemas.js";
import { resolveServiceSpec } from "../../input/resolve.js";
import { loadStackFiles } from "./load.js";
import { stripUnsupported } from "./unsupported.js";
import { validateComposeFile } from "./validate.js";
import { composePathOf, translateStack, type StackSpec } from "./translate.js";
import type { Path } from "./lines.js";

const ajv = new Ajv({ allErrors: true, removeAdditional: false, coerceTypes: false, useDefaults: false, strict: false, verbose: true });
const checkServiceInput = ajv.compile(ServiceSpecInput);
/** Fields of the service body this build's API knows; the others (another build's) are left to the API to check. */
const knownFields = new Set(Object.keys(ServiceSpecInput.properties));

/** Turns a list of problems into the one error the CLI prints: the first in the message, all in `fields`. */
export function stackFileError(problems: FieldProblem[]): BatonError {
  const first = problems[0]!;
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : "";
  return new BatonError("VALIDATION_FAILED", `invalid stack file: ${formatPath(first.path)}: ${first.problem}${more}`, problems);
}

/**
 * The whole pipeline from files to API bodies: read (size cap, YAML limits), interpolate, merge,
 * drop unsupported keys (warned), validate against the schema, translate, then check each service
 * body with the same validation the API runs. Throws one VALIDATION_FAILED error listing every
 * problem with its path and line, before anything is sent anywhere.
 */
export function readStack(paths: string[], namespace: string, env: NodeJS.ProcessEnv = process.env): StackSpec {
  if (!new RegExp(NAME_PATTERN).test(namespace) || namespace.length > 50) {
    throw new BatonError("BAD_REQUEST", `"${namespace.slice(0, 60)}" is not a stack name: letters, digits, '_', '.' and '-', starting with a letter or digit, at most 50 characters`);
  }
  const loaded = loadStackFiles(paths, env);
  if (loaded.problems.length) throw stackFileError(loaded.problems);
  const { model, removed } = stripUnsupported(loaded.model);
  const warnings = [...loaded.warnings];
  if (removed.length) warnings.push(`not supported by Baton, ignored: ${removed.map((p) => `${formatPath(p)}${loaded.locate(p)}`).join(", ")}`);
  const top = model as Record<string, unknown> | null;
  if (top && typeof top === "object" && typeof top.name === "string") warnings.push(`name is ignored: the stack is named by the deploy command (${namespace})`);
  const checked = validateComposeFile(model);
  // A problem with the whole file (not a mapping) is named after the file.
  const all: FieldProblem[] = checked.problems.map((p) => ({ path: p.path.length ? p.path : [basename(paths.at(-1)!)], problem: `${p.problem}${loaded.locate(p.path)}` }));
  // With schema problems, Baton's own rules still run on the rest, so one run lists every mistake.
  const valid = checked.file ? { file: checked.file, removed: [] } : validRest(model, checked.problems);
  if (!valid) throw stackFileError(all);
  const { spec, problems: translated } = translateStack(valid.file, { namespace, dir: loaded.dir, env: loaded.env, locate: loaded.locate, serviceKeys: Object.keys(valid.file.services).concat(valid.removed.filter((r) => r.length === 2 && r[0] === "services").map((r) => String(r[1]))) });
  const under = (prefix: Path, path: Path): boolean => prefix.length <= path.length && prefix.every((x, i) => String(x) === String(path[i]));
  all.push(...translated.filter((t) => !valid.removed.some((r) => under(r, t.path))));
  for (const s of spec.services) {
    if (valid.removed.some((r) => under(r, ["services", s.key]) || under(["services", s.key], r))) continue;
    const local = Object.fromEntries(Object.entries(s.input).filter(([k]) => knownFields.has(k)));
    const fail = (path: Path, problem: string): void => {
      const p = composePathOf(s.key, path);
      all.push({ path: p, problem: `${problem}${loaded.locate(p)}` });
    };
    if (!checkServiceInput(local)) {
      for (const e of checkServiceInput.errors ?? []) fail(e.instancePath.split("/").slice(1).map((x) => (/^\d+$/.test(x) ? Number(x) : x)), e.message ?? "is invalid");
      continue;
    }
    try {
      resolveServiceSpec(local as ServiceSpecInput);
    } catch (err) {
      if (!(err instanceof BatonError)) throw err;
      for (const f of err.fields) fail(f.path, f.problem);
    }
  }
  if (all.length) throw stackFileError(all);
  spec.warnings.unshift(...warnings);
  return spec;
}

const OBJECT_SECTIONS: Record<string, unknown> = { networks: null, volumes: null, secrets: { external: true }, configs: { external: true } };

/**
 * The file without the values the schema refused: each is removed (a whole list when one of its
 * entries is wrong, so the indexes of other problems stay right); a refused network, volume,
 * secret or config becomes a valid stand-in, so references to it are not reported again. Up to
 * a few rounds; undefined when what is left still does not validate (the file's shape is wrong).
 */
function validRest(model: unknown, problems: FieldProblem[]): { file: ComposeFile; removed: Path[] } | undefined {
  const m = structuredClone(model) as Record<string, unknown>;
  const removed: Path[] = [];
  const valueAt = (path: Path): unknown => path.reduce<unknown>((v, k) => (v !== null && typeof v === "object" ? (v as Record<string, unknown>)[k] : undefined), m);
  let current = problems;
  for (let round = 0; round < 5; round++) {
    for (const problem of current) {
      let path = problem.path;
      if (valueAt(path) === undefined) path = path.slice(0, -1); // "is required": the parent is wrong
      if (path.length < 2 && !(path.length === 1 && String(path[0]) !== "services")) return undefined;
      if (path.length === 1) {
        delete m[path[0]!];
        removed.push(path);
        continue;
      }
      const [section, key] = path as [string, string];
      if (section in OBJECT_SECTIONS) {
        (m[section] as Record<string, unknown>)[key] = structuredClone(OBJECT_SECTIONS[section]);
        removed.push([section, key]);
        continue;
      }
      const firstList = path.findIndex((_, i) => i >= 2 && Array.isArray(valueAt(path.slice(0, i + 1))));
      const cut = firstList >= 0 ? path.slice(0, firstList + 1) : path;
      const parent = valueAt(cut.slice(0, -1));
      if (parent !== null && typeof parent === "object") delete (parent as Record<string, unknown>)[cut.at(-1)!];
      removed.push(cut);
    }
    const again = validateComposeFile(m);
    if (again.file) return { file: again.file, removed };
    current = again.problems;
  }
  return undefined;
}
