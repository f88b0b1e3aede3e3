import { Ajv, type ErrorObject } from "ajv";
import { DURATION_PATTERN } from "../../input/schemas.js";
import { durationProblem } from "../../lib/duration.js";
import type { FieldProblem } from "../../lib/errors.js";
import type { Path } from "./lines.js";
import { ComposeFile } from "./schema.js";

const ajv = new Ajv({ allErrors: true, removeAdditional: false, coerceTypes: false, useDefaults: false, strict: false, verbose: true });
const check = ajv.compile<ComposeFile>(ComposeFile);

type Schema = { type?: string; description?: string; enum?: string[]; minimum?: number; maximum?: number; items?: Schema; anyOf?: Schema[]; patternProperties?: Record<string, unknown> };

/** "an integer >= 0", "a list", "a mapping": what a schema asks for, in words. */
function describe(s: Schema | undefined): string {
  if (!s) return "something else";
  if (s.description) return s.description;
  if (s.enum) return `one of: ${s.enum.join(", ")}`;
  if (s.anyOf) return s.anyOf.map(describe).join(" or ");
  switch (s.type) {
    case "integer":
      return "an integer";
    case "number":
      return "a number";
    case "string":
      return "a string";
    case "boolean":
      return "true or false";
    case "null":
      return "empty";
    case "array":
      return "a list";
    case "object":
      return "a mapping";
    default:
      return "something else";
  }
}

const toPath = (pointer: string): Path =>
  pointer
    .split("/")
    .slice(1)
    .map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"))
    .map((p) => (/^\d+$/.test(p) ? Number(p) : p));

/** Levenshtein distance ≤ 2 to a known key: the likely typo. */
function suggest(key: string, known: string[]): string | undefined {
  const dist = (a: string, b: string): number => {
    const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
    for (let j = 1; j <= b.length; j++) d[0]![j] = j;
    for (let i = 1; i <= a.length; i++) for (let j = 1; j <= b.length; j++) d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    return d[a.length]![b.length]!;
  };
  return known.find((k) => dist(key, k) <= 2);
}

function problemOf(e: ErrorObject): FieldProblem {
  const path = toPath(e.instancePath);
  const params = e.params as Record<string, unknown>;
  const parent = e.parentSchema as Schema & { properties?: Record<string, unknown> };
  switch (e.keyword) {
    case "required":
      return { path: [...path, String(params.missingProperty)], problem: "is required" };
    case "additionalProperties": {
      const key = String(params.additionalProperty);
      if (parent.properties) {
        // A deploy key written on the service (replicas, resources…) is a common slip.
        const deploy = (parent.properties.deploy as { properties?: Record<string, unknown> } | undefined)?.properties;
        const hint = suggest(key, Object.keys(parent.properties)) ?? (deploy && suggest(key, Object.keys(deploy)) ? `deploy.${suggest(key, Object.keys(deploy))}` : undefined);
        return { path: [...path, key], problem: `unknown key${hint ? ` (did you mean ${hint}?)` : ""}` };
      }
      return { path: [...path, key], problem: "is not a valid name: use letters, digits, '_', '.' and '-', starting with a letter or digit" };
    }
    case "type":
      return { path, problem: `must be ${describe(parent)}` };
    case "minimum":
    case "maximum":
      return { path, problem: `must be ${describe(parent)} ${e.keyword === "minimum" ? ">=" : "<="} ${String(params.limit)}` };
    case "enum":
      return { path, problem: `must be one of: ${(params.allowedValues as string[]).join(", ")} (not ${JSON.stringify(e.data)})` };
    case "pattern":
      if (String(params.pattern) === DURATION_PATTERN) return { ...durationProblem(path, String(e.data)), path };
      return { path, problem: `must be ${describe(parent)}` };
    case "minProperties":
      return { path, problem: "must not be empty" };
    case "maxItems":
    case "maxProperties":
      return { path, problem: `must have at most ${String(params.limit)} entries` };
    case "maxLength":
      return { path, problem: `must be at most ${String(params.limit)} characters` };
    case "minLength":
      return { path, problem: "must not be empty" };
    default:
      return { path, problem: e.message ?? "is invalid" };
  }
}

/**
 * Reduces ajv's errors to one problem per mistake. A value that fits no branch of a union (a
 * number where a list or a mapping is expected) is one problem naming the branches; when it has
 * the type of one branch, that branch's own errors are the problems.
 */
function reduce(errors: ErrorObject[]): ErrorObject[] {
  const dropped = new Set<ErrorObject>();
  const unions = errors.filter((e) => e.keyword === "anyOf").sort((a, b) => b.schemaPath.length - a.schemaPath.length);
  for (const u of unions) {
    const inside = errors.filter((e) => e !== u && e.schemaPath.startsWith(`${u.schemaPath}/`));
    const branches = new Map<string, ErrorObject[]>();
    for (const e of inside) {
      const b = e.schemaPath.slice(u.schemaPath.length + 1).split("/")[0]!;
      branches.set(b, [...(branches.get(b) ?? []), e]);
    }
    const typeMiss = (list: ErrorObject[]): boolean => list.some((e) => e.keyword === "type" && e.instancePath === u.instancePath);
    const fitting = [...branches.values()].filter((l) => !typeMiss(l));
    if (fitting.length > 0) {
      dropped.add(u);
      for (const [, l] of branches) if (typeMiss(l)) l.forEach((e) => dropped.add(e));
    } else inside.forEach((e) => dropped.add(e));
  }
  return errors.filter((e) => !dropped.has(e));
}

/** Schema problems of a (merged, stripped) stack file; the paths are the file's. */
export function validateComposeFile(model: unknown): { file?: ComposeFile; problems: FieldProblem[] } {
  if (check(model)) return { file: model, problems: [] };
  const seen = new Set<string>();
  const problems: FieldProblem[] = [];
  for (const e of reduce(check.errors ?? [])) {
    const p = e.keyword === "anyOf" ? { path: toPath(e.instancePath), problem: `must be ${describe(e.parentSchema as Schema)}` } : problemOf(e);
    const key = JSON.stringify(p);
    if (!seen.has(key)) problems.push(p);
    seen.add(key);
  }
  return { problems };
}
