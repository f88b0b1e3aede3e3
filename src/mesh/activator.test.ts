import { test } from "node:test";
import assert from "node:assert/strict";
import { FakeClock, settle } from "../../test/harness/fake-clock.js";
import { pickNow, withActivator } from "./activator.js";
import { ServicePool, type BackendState } from "./pool.js";

const backend = { id: "t1", host: "127.0.0.1", port: 1 };

test("with no backend, acquire waits and resolves when one is added", async () => {
  const clock = new FakeClock();
  const woken: string[] = [];
  const acquire = withActivator(pickNow, { clock, onWaiting: (id) => woken.push(id) });
  const pool = new ServicePool("web", clock);
  const got = acquire(pool);
  assert.ok(got instanceof Promise, "no backend: a promise");
  await clock.advance(300);
  pool.setBackends([backend]);
  assert.equal((await got)?.id, "t1");
  assert.deepEqual(woken, ["web"], "the scale-from-zero hook heard about the wait once");
  assert.equal(clock.pendingTimers(), 0, "the wait's timer was cancelled");
});

test("the wait expires after waitForBackendMs", async () => {
  const clock = new FakeClock();
  const acquire = withActivator(pickNow, { clock });
  const pool = new ServicePool("web", clock);
  pool.policy.waitForBackendMs = 1000;
  let result: BackendState | undefined | "pending" = "pending";
  void Promise.resolve(acquire(pool)).then((b) => (result = b));
  await clock.advance(999);
  assert.equal(result, "pending");
  await clock.advance(1);
  await settle();
  assert.equal(result, undefined);
});

test("a backend present is returned synchronously, and a retry that ran out of backends does not wait", () => {
  const clock = new FakeClock();
  const acquire = withActivator(pickNow, { clock });
  const pool = new ServicePool("web", clock);
  pool.setBackends([backend]);
  const b = acquire(pool) as BackendState;
  assert.equal(b.id, "t1");
  assert.equal(acquire(pool, new Set([b])), undefined);
});

test("an aborted wait resolves undefined at once", async () => {
  const clock = new FakeClock();
  const acquire = withActivator(pickNow, { clock });
  const ac = new AbortController();
  const got = acquire(new ServicePool("web", clock), undefined, ac.signal);
  ac.abort();
  assert.equal(await got, undefined);
  assert.equal(clock.pendingTimers(), 0);
});
