import { test } from "node:test";
import assert from "node:assert/strict";
import { ProbeLoop } from "./probe-loop.js";
import { TaskProbes } from "./task-probes.js";
import type { ProbeConfig, TaskSpec } from "../../model/objects.js";
import type { ProbeResult } from "./probe.js";
import { FakeClock } from "../../../test/harness/fake-clock.js";
import { aService } from "../../../test/harness/builders.js";

const cfg = (over: Partial<ProbeConfig> = {}): ProbeConfig => ({ check: { kind: "tcp" }, initialDelayMs: 0, periodMs: 1000, timeoutMs: 100, successThreshold: 1, failureThreshold: 3, ...over });

/** A probe whose answers the test scripts, one per call (the last one repeats). */
function scripted(results: boolean[]) {
  let calls = 0;
  const probe = async (): Promise<ProbeResult> => ({ ok: results[Math.min(calls++, results.length - 1)]!, output: `probe ${calls}` });
  return { probe, calls: () => calls };
}

function loop(c: ProbeConfig, results: boolean[]) {
  const clock = new FakeClock();
  const seen: boolean[] = [];
  const p = scripted(results);
  const l = new ProbeLoop(c, { env: {} }, clock, (pass) => seen.push(pass), p.probe);
  l.start();
  return { clock, seen, calls: p.calls };
}

test("the first probe waits the initial delay, then passes on success", async () => {
  const { clock, seen, calls } = loop(cfg({ initialDelayMs: 2000 }), [true]);
  await clock.advance(1999);
  assert.equal(calls(), 0);
  await clock.advance(1);
  assert.deepEqual(seen, [true]);
});

test("success threshold: readiness passes only after N successes in a row", async () => {
  const { clock, seen } = loop(cfg({ successThreshold: 3, periodMs: 100 }), [true, true, false, true, true, true]);
  await clock.advance(0);
  await clock.advance(5 * 100);
  assert.deepEqual(seen, [true], "passed at the 3rd success after the failure reset the count");
});

test("failure threshold after passing: N failures in a row, one per period", async () => {
  const { clock, seen, calls } = loop(cfg({ failureThreshold: 3, periodMs: 1000 }), [true, false, false, true, false, false, false]);
  await clock.advance(0);
  await clock.advance(6000);
  assert.equal(calls(), 7);
  assert.deepEqual(seen, [true, false], "a success in between reset the failures");
});

test("before the first pass it probes every 250 ms, but counts at most one failure per period", async () => {
  const { clock, seen, calls } = loop(cfg({ failureThreshold: 2, periodMs: 1000 }), [false]);
  await clock.advance(0);
  await clock.advance(900);
  assert.ok(calls() >= 4, `probed fast (${calls()} calls in 0.9 s)`);
  assert.deepEqual(seen, [], "one counted failure so far");
  await clock.advance(200);
  assert.deepEqual(seen, [false], "failed after failureThreshold × period");
});

const spec = (over: Partial<TaskSpec>): TaskSpec => ({ ...aService().spec.task, ...over });

function probes(s: TaskSpec, answer: (kind: string) => boolean, port: number | undefined = 30000) {
  const clock = new FakeClock();
  const events: string[] = [];
  const t = new TaskProbes(s, { env: {}, ...(port !== undefined ? { port } : {}) }, clock.now(), clock, {
    health: (h) => events.push(`health ${h}`),
    ready: (r) => events.push(`ready ${r}`),
    failed: (why) => events.push(`failed ${why}`),
  }, async (check) => ({ ok: answer(check.kind === "http" ? check.path : check.kind), output: "x" }));
  t.start();
  return { clock, events, t };
}

test("a startup probe holds liveness back until it passes; then liveness can fail the task", async () => {
  let started = false;
  let alive = true;
  const s = spec({ probes: { startup: cfg({ check: { kind: "http", path: "/startup" }, periodMs: 200, failureThreshold: 30 }), liveness: cfg({ check: { kind: "http", path: "/live" }, periodMs: 200, failureThreshold: 2 }) } });
  const { clock, events } = probes(s, (path) => (path === "/startup" ? started : path === "/live" ? started && alive : true));
  await clock.advance(3000);
  assert.deepEqual(events.filter((e) => e.startsWith("failed")), [], "liveness did not run while starting");
  started = true;
  await clock.advance(300);
  assert.ok(events.includes("ready true"), `ready once started: ${events}`);
  alive = false;
  await clock.advance(600);
  assert.ok(events.some((e) => e.startsWith("failed liveness probe failed")), events.join(", "));
});

test("readiness goes false and true again, and never fails the task", async () => {
  let ok = true;
  const s = spec({ probes: { readiness: cfg({ check: { kind: "http", path: "/ready" }, periodMs: 100, failureThreshold: 1 }) } });
  const { clock, events } = probes(s, () => ok);
  await clock.advance(100);
  ok = false;
  await clock.advance(300);
  ok = true;
  await clock.advance(300);
  assert.deepEqual(events, ["ready true", "ready false", "ready true"]);
});

test("no probe, service ports: ready once the port accepts connections; no ports: ready at once", async () => {
  let open = false;
  const { clock, events } = probes(spec({ targets: [80] }), () => open);
  await clock.advance(1000);
  assert.deepEqual(events, []);
  open = true;
  await clock.advance(300);
  assert.deepEqual(events, ["ready true"]);
  const plain = probes(spec({}), () => false);
  await plain.clock.advance(0);
  assert.deepEqual(plain.events, ["ready true"]);
});
