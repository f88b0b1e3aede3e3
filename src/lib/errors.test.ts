import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { errorCodes, BatonError, formatPath } from "./errors.js";

test("every error code is documented in docs/errors.md with its status, and nothing else is", () => {
  const doc = readFileSync(new URL("../../docs/errors.md", import.meta.url), "utf8");
  const rows = [...doc.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1], Number(m[2])]);
  assert.deepEqual(Object.fromEntries(rows), { ...errorCodes });
});

test("errors serialize to code, message and fields", () => {
  const e = new BatonError("VALIDATION_FAILED", "bad", [{ path: ["restartPolicy", "delay"], problem: "x" }]);
  assert.deepEqual(e.toJSON(), { code: "VALIDATION_FAILED", message: "bad", fields: [{ path: ["restartPolicy", "delay"], problem: "x" }] });
  assert.equal(e.status, 400);
});

test("field paths read like code", () => {
  assert.equal(formatPath(["spec", "ports", 0, "published"]), "spec.ports[0].published");
  assert.equal(formatPath(["env", 3]), "env[3]");
});
