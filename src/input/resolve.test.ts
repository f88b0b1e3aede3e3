import { test } from "node:test";
import assert from "node:assert/strict";
import { BatonError } from "../lib/errors.js";
import { resolveServiceSpec } from "./resolve.js";
import type { ServiceSpecInput } from "./schemas.js";

const base: ServiceSpecInput = { name: "job", command: ["./worker.sh"] };

/** The field problems a bad input is refused with, as `path: problem` lines. */
function problemsOf(input: Partial<ServiceSpecInput>): string[] {
  try {
    resolveServiceSpec({ ...base, ...input });
  } catch (err) {
    assert.ok(err instanceof BatonError);
    assert.equal(err.code, "VALIDATION_FAILED");
    return err.fields.map((f) => `${f.path.join(".")}: ${f.problem}`);
  }
  return [];
}

test("limits resolve to cpus and bytes on the task spec", () => {
  const spec = resolveServiceSpec({ ...base, limitCpus: 0.5, limitMemory: "64m" });
  assert.deepEqual(spec.task.limits, { cpus: 0.5, memoryBytes: 64 * 1024 * 1024 });
});

test("a spec without limits has no limits field, so it equals one stored before limits existed", () => {
  assert.equal("limits" in resolveServiceSpec(base).task, false);
});

test("a limit of 0 means no limit, as in docker (service update --limit-memory 0 removes it)", () => {
  assert.equal("limits" in resolveServiceSpec({ ...base, limitCpus: 0, limitMemory: "0" }).task, false);
  assert.deepEqual(resolveServiceSpec({ ...base, limitCpus: 0, limitMemory: "1g" }).task.limits, { memoryBytes: 1024 ** 3 });
});

test("a limit below its reservation is refused, naming both fields", () => {
  assert.deepEqual(problemsOf({ reserveCpus: 1, limitCpus: 0.5, reserveMemory: "128m", limitMemory: "64m" }), [
    "limitCpus: 0.5 is below reserveCpus 1",
    "limitMemory: 64 MiB is below reserveMemory 128 MiB",
  ]);
});

test("a limit equal to its reservation is fine", () => {
  assert.deepEqual(resolveServiceSpec({ ...base, reserveCpus: 0.5, limitCpus: 0.5, reserveMemory: "64m", limitMemory: "64m" }).task.limits, { cpus: 0.5, memoryBytes: 64 * 1024 * 1024 });
});

test("limits too small for a cgroup to enforce, and sizes that are not sizes, are refused by field", () => {
  assert.deepEqual(problemsOf({ limitCpus: 0.001, limitMemory: "1m" }), [
    "limitCpus: 0.001 is below the smallest enforceable limit, 0.01",
    "limitMemory: 1 MiB is below the smallest limit, 6 MiB",
  ]);
  assert.deepEqual(problemsOf({ limitMemory: "lots" }), ['limitMemory: invalid size "lots" (use e.g. 64m, 1g)']);
});
