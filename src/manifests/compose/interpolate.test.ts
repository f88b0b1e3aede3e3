import { test } from "node:test";
import assert from "node:assert/strict";
import { interpolateString, interpolateTree, InterpolationError } from "./interpolate.js";

const env: Record<string, string> = { TAG: "1.25", EMPTY: "", NAME: "web" };
const lookup = (n: string): string | undefined => env[n];
const run = (s: string): string => interpolateString(s, lookup);

test("variables in every compose form", () => {
  assert.equal(run("nginx:${TAG}"), "nginx:1.25");
  assert.equal(run("nginx:$TAG-alpine"), "nginx:1.25-alpine");
  assert.equal(run("${MISSING:-default}"), "default");
  assert.equal(run("${EMPTY:-default}"), "default", ":- also replaces an empty value");
  assert.equal(run("${EMPTY-default}"), "", "- replaces only an unset one");
  assert.equal(run("${MISSING-default}"), "default");
  assert.equal(run("${TAG:+set}|${MISSING:+set}|${EMPTY+set}"), "set||set");
  assert.equal(run("$$TAG costs $$5"), "$TAG costs $5");
  assert.equal(run("${MISSING:-${NAME}-${TAG}}"), "web-1.25", "a default may hold variables");
  assert.equal(run("no variables"), "no variables");
});

test("required variables fail with their message", () => {
  assert.throws(() => run("${MISSING:?set MISSING to the db host}"), /required variable MISSING is not set: set MISSING to the db host/);
  assert.throws(() => run("${EMPTY:?}"), /required variable EMPTY is empty/);
  assert.equal(run("${EMPTY?}"), "", "? accepts an empty value");
  assert.throws(() => run("${MISSING?no}"), InterpolationError);
});

test("malformed references are errors, unset plain variables are reported", () => {
  assert.throws(() => run("${TAG"), /never closed/);
  assert.throws(() => run("price: $5"), /lone \$/);
  assert.throws(() => run("${1abc}"), /not a variable name/);
  assert.throws(() => run("${TAG/x/y}"), /unknown modifier/);
  const unset: string[] = [];
  assert.equal(interpolateString("a${NOPE}b$ALSO", lookup, (n) => unset.push(n)), "ab");
  assert.deepEqual(unset, ["NOPE", "ALSO"]);
});

test("a tree: values are interpolated, keys are not; failures name the path", () => {
  const fails: string[] = [];
  const out = interpolateTree({ services: { $NAME: { image: "x:${TAG}", command: ["echo", "$$HOME", "${BAD"] } } }, lookup, (p, problem) => fails.push(`${p.join(".")}: ${problem}`), () => {});
  assert.deepEqual(out, { services: { $NAME: { image: "x:1.25", command: ["echo", "$HOME", "${BAD"] } } });
  assert.deepEqual(fails, ['services.$NAME.command.2: "${BAD": ${ is never closed with }']);
});
