import { test } from "node:test";
import assert from "node:assert/strict";
import { healthOf } from "./docker-driver.js";

test("an image's HEALTHCHECK CMD-SHELL runs with /bin/sh -c, with docker's defaults for unset durations", () => {
  assert.deepEqual(healthOf({ Test: ["CMD-SHELL", "wget -q -O- localhost || exit 1"] }), {
    check: { kind: "exec", command: ["/bin/sh", "-c", "wget -q -O- localhost || exit 1"] },
    intervalMs: 30_000,
    timeoutMs: 30_000,
    retries: 3,
    startPeriodMs: 0,
  });
});

test("an image's HEALTHCHECK CMD runs its arguments as they are, durations converted from ns", () => {
  assert.deepEqual(healthOf({ Test: ["CMD", "test", "-f", "/tmp/ok"], Interval: 200e6, Timeout: 2e9, Retries: 2, StartPeriod: 5e9 }), {
    check: { kind: "exec", command: ["test", "-f", "/tmp/ok"] },
    intervalMs: 200,
    timeoutMs: 2000,
    retries: 2,
    startPeriodMs: 5000,
  });
});

test("no HEALTHCHECK, HEALTHCHECK NONE or an empty test: no check", () => {
  assert.equal(healthOf(undefined), undefined);
  assert.equal(healthOf({ Test: ["NONE"] }), undefined);
  assert.equal(healthOf({ Test: [] }), undefined);
  assert.equal(healthOf({ Test: ["CMD"] }), undefined);
  assert.equal(healthOf({ Test: ["CMD-SHELL", ""] }), undefined);
});
