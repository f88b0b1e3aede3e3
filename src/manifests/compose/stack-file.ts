import { basename } from "node:path";
import { Ajv } from "ajv";
import { BatonError, formatPath, type FieldProblem } from "../../lib/errors.js";
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
  const { file, problems } = validateComposeFile(model);
  // A problem with the whole file (not a mapping) is named after the file.
  if (!file) throw stackFileError(problems.map((p) => ({ path: p.path.length ? p.path : [basename(paths.at(-1)!)], problem: `${p.problem}${loaded.locate(p.path)}` })));
  const { spec, problems: translated } = translateStack(file, { namespace, dir: loaded.dir, env: loaded.env, locate: loaded.locate });
  const all = [...translated];
  for (const s of spec.services) {
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
