import { test } from "node:test";
import assert from "node:assert/strict";
import { HealthMonitor, type Health } from "./health-monitor.js";
import type { HealthConfig } from "../../model/objects.js";
import type { ProbeResult } from "./probe.js";
import { FakeClock } from "../../../test/harness/fake-clock.js";

function monitor(cfg: Partial<HealthConfig>, results: boolean[]) {
  const clock = new FakeClock();
  const seen: Health[] = [];
  let calls = 0;
  const probe = async (): Promise<ProbeResult> => ({ ok: results[Math.min(calls++, results.length - 1)]!, output: `probe ${calls}` });
  const m = new HealthMonitor({ check: { kind: "tcp" }, intervalMs: 1000, timeoutMs: 100, retries: 3, startPeriodMs: 0, ...cfg }, { env: {} }, clock.now(), clock, (h) => seen.push(h), probe);
  m.start();
  return { clock, seen, calls: () => calls };
}

test("the first probe runs within 250 ms, then every interval", async () => {
  const { clock, seen, calls } = monitor({}, [true]);
  await clock.advance(250);
  assert.equal(calls(), 1);
  assert.deepEqual(seen, ["healthy"]);
  await clock.advance(1000);
  assert.equal(calls(), 2);
});

test("retries consecutive failures make it unhealthy; a success in between resets the count", async () => {
  const { clock, seen } = monitor({ retries: 3 }, [true, false, false, true, false, false, false]);
  await clock.advance(250 + 6 * 1000);
  assert.deepEqual(seen, ["healthy", "unhealthy"]);
});

test("failures inside the start period do not count", async () => {
  const { clock, seen } = monitor({ retries: 1, startPeriodMs: 3000 }, [false, false, false, false]);
  await clock.advance(250 + 2000);
  assert.deepEqual(seen, [], "still starting");
  await clock.advance(1000);
  assert.deepEqual(seen, ["unhealthy"]);
});

test("a success ends the start period early", async () => {
  const { clock, seen } = monitor({ retries: 1, startPeriodMs: 60_000 }, [true, false]);
  await clock.advance(250 + 1000);
  assert.deepEqual(seen, ["healthy", "unhealthy"]);
});

test("before the first success probes run every 500 ms, but a failure counts once per interval", async () => {
  const { clock, seen, calls } = monitor({ intervalMs: 5000, retries: 2 }, [false, false, false, true]);
  await clock.advance(250 + 3 * 500);
  assert.equal(calls(), 4, "probed at 250, 750, 1250, 1750 ms, not once in 5 s");
  assert.deepEqual(seen, ["healthy"], "one counted failure (of 2 allowed), then healthy at 1.75 s");
});

test("a task that never answers is unhealthy after retries × interval, not sooner", async () => {
  const { clock, seen } = monitor({ intervalMs: 1000, retries: 3 }, [false]);
  await clock.advance(2200);
  assert.deepEqual(seen, [], "two counted failures by 2.2 s");
  await clock.advance(100);
  assert.deepEqual(seen, ["unhealthy"]);
});
