import type { ErrorObject } from "ajv";
import type { FieldProblem } from "../lib/errors.js";
import { durationProblem } from "../lib/duration.js";
import { DURATION_PATTERN } from "../input/schemas.js";

/** ajv error → the field path and a sentence a user reads: `replicas: must be an integer >= 0`. */
export function problemFromAjv(e: ErrorObject): FieldProblem {
  const path: (string | number)[] = e.instancePath
    .split("/")
    .slice(1)
    .map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"))
    .map((p) => (/^\d+$/.test(p) ? Number(p) : p));
  const params = e.params as Record<string, unknown>;
  const isInteger = (e.parentSchema as { type?: string } | undefined)?.type === "integer";
  switch (e.keyword) {
    case "required":
      return { path: [...path, String(params.missingProperty)], problem: "is required" };
    case "additionalProperties":
      return { path: [...path, String(params.additionalProperty)], problem: "unknown field" };
    case "minimum":
      return { path, problem: `must be ${isInteger ? "an integer" : "a number"} >= ${String(params.limit)}` };
    case "maximum":
      return { path, problem: `must be ${isInteger ? "an integer" : "a number"} <= ${String(params.limit)}` };
    case "type":
      return { path, problem: `must be ${params.type === "integer" ? "an integer" : `a ${String(params.type)}`}` };
    case "enum":
      return { path, problem: `must be one of: ${(params.allowedValues as string[]).join(", ")}` };
    case "pattern":
      if (String(params.pattern) === DURATION_PATTERN) return durationProblem(path, String(e.data));
      return path.at(-1) === "name"
        ? { path, problem: "must start with a letter or digit and contain only letters, digits, '_', '.' and '-'" }
        : { path, problem: `must match ${String(params.pattern)}` };
    case "maxLength":
      return { path, problem: `must be at most ${String(params.limit)} characters` };
    case "minLength":
      return { path, problem: Number(params.limit) === 1 ? "must not be empty" : `must be at least ${String(params.limit)} characters` };
    case "maxItems":
      return { path, problem: `must have at most ${String(params.limit)} entries` };
    case "minItems":
      return { path, problem: `must have at least ${String(params.limit)} entr${Number(params.limit) === 1 ? "y" : "ies"}` };
    case "maxProperties":
      return { path, problem: `must have at most ${String(params.limit)} entries` };
    default:
      return { path, problem: e.message ?? "is invalid" };
  }
}
