import { test } from "node:test";
import assert from "node:assert/strict";
import { KeyedQueue } from "./queue.js";
import { silentLogger } from "./log.js";
import { FakeClock, settle } from "../../test/harness/fake-clock.js";

/** A promise the test resolves by hand: holds a handler "running" as long as it likes. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

function setup(handler: (key: string) => Promise<void>, opts: { concurrency?: number; maxBackoffMs?: number } = {}) {
  const clock = new FakeClock();
  const q = new KeyedQueue(handler, { clock, log: silentLogger(), ...opts });
  return { clock, q };
}

test("a key added again while queued is processed once", async () => {
  const calls: string[] = [];
  const { q } = setup(async (k) => void calls.push(k));
  q.add("a");
  q.add("a");
  q.add("b");
  q.add("a");
  await settle();
  assert.deepEqual(calls, ["a", "b"]);
});

test("a key added while running is never processed twice at once, and runs once more after", async () => {
  let active = 0;
  let maxActive = 0;
  const gates: ReturnType<typeof gate>[] = [];
  const { q } = setup(async () => {
    active++;
    maxActive = Math.max(maxActive, active);
    const g = gate();
    gates.push(g);
    await g.promise;
    active--;
  });
  q.add("a");
  await settle();
  assert.equal(gates.length, 1);
  q.add("a");
  q.add("a");
  await settle();
  assert.equal(gates.length, 1, "not started again while running");
  gates[0]!.open();
  await settle();
  assert.equal(gates.length, 2, "runs once more after the running one");
  gates[1]!.open();
  await settle();
  assert.equal(gates.length, 2, "the two adds while running made one more run, not two");
  assert.equal(maxActive, 1);
});

test("delayed adds keep the earliest due time", async () => {
  const at: number[] = [];
  const { clock, q } = setup(async () => void at.push(clock.now()));
  const t0 = clock.now();
  q.addAfter("a", 1000);
  q.addAfter("a", 500);
  q.addAfter("a", 800);
  assert.equal(clock.pendingTimers(), 1, "one timer per key");
  await clock.advance(499);
  assert.deepEqual(at, []);
  await clock.advance(1);
  assert.deepEqual(at, [t0 + 500]);
  await clock.advance(2000);
  assert.deepEqual(at, [t0 + 500], "the later due times were dropped, not run again");
});

test("addAfter with no delay is an add", async () => {
  const calls: string[] = [];
  const { q } = setup(async (k) => void calls.push(k));
  q.addAfter("a", 0);
  await settle();
  assert.deepEqual(calls, ["a"]);
});

test("failures retry with exponential backoff on the clock, capped", async () => {
  const at: number[] = [];
  const { clock, q } = setup(
    async () => {
      at.push(clock.now());
      throw new Error("conflict");
    },
    { maxBackoffMs: 100 },
  );
  const t0 = clock.now();
  q.add("a");
  await settle();
  await clock.advance(1000);
  const gaps = at.slice(1, 7).map((t, i) => t - at[i]!);
  assert.equal(at[0], t0);
  // 10 × 2^n: 20, 40, 80, then the 100 ms cap.
  assert.deepEqual(gaps, [20, 40, 80, 100, 100, 100]);
  q.stop();
});

test("a success resets the backoff of its key", async () => {
  let failNext = 3;
  const at: number[] = [];
  const { clock, q } = setup(async () => {
    at.push(clock.now());
    if (failNext-- > 0) throw new Error("conflict");
  });
  q.add("a");
  await settle();
  await clock.advance(1000);
  assert.equal(at.length, 4, "three failures then a success");
  at.length = 0;
  failNext = 1;
  q.add("a");
  await settle();
  await clock.advance(1000);
  assert.equal(at.length, 2);
  assert.equal(at[1]! - at[0]!, 20, "first retry after a success waits the first step again");
});

test("idle resolves only when nothing is queued or running", async () => {
  const g = gate();
  const { q } = setup(() => g.promise);
  await q.idle();
  q.add("a");
  let idle = false;
  void q.idle().then(() => (idle = true));
  await settle();
  assert.equal(idle, false, "a handler is still running");
  g.open();
  await settle();
  assert.equal(idle, true);
});

test("stop cancels timers, drops queued work and ignores later adds", async () => {
  const calls: string[] = [];
  const { clock, q } = setup(async (k) => void calls.push(k));
  q.addAfter("later", 100);
  q.add("queued");
  q.stop();
  assert.equal(clock.pendingTimers(), 0);
  q.add("after-stop");
  q.addAfter("after-stop-timer", 10);
  assert.equal(clock.pendingTimers(), 0);
  await clock.advance(1000);
  assert.deepEqual(calls, []);
});

test("at most `concurrency` keys are processed at once; all of them run", async () => {
  let active = 0;
  let maxActive = 0;
  const done: string[] = [];
  const gates = new Map<string, ReturnType<typeof gate>>();
  const { q } = setup(
    async (k) => {
      active++;
      maxActive = Math.max(maxActive, active);
      const g = gate();
      gates.set(k, g);
      await g.promise;
      active--;
      done.push(k);
    },
    { concurrency: 2 },
  );
  for (const k of ["a", "b", "c", "d", "e"]) q.add(k);
  await settle();
  assert.deepEqual([...gates.keys()], ["a", "b"]);
  for (let i = 0; i < 5; i++) {
    for (const g of gates.values()) g.open();
    await settle();
  }
  assert.deepEqual(done.sort(), ["a", "b", "c", "d", "e"]);
  assert.equal(maxActive, 2);
});

/** The accessor the lead's fix would add; undefined until then. */
type FailureCounter = { failureCount?: (key: string) => number };

test(
  "the failure counter of a key is dropped once it succeeds and after stop",
  async () => {
    let fail = true;
    const g = gate();
    const { clock, q } = setup(async (k) => {
      if (k === "stopped") await g.promise;
      if (fail) throw new Error("conflict");
    });
    const count = (q as unknown as FailureCounter).failureCount?.bind(q);
    assert.ok(count, "KeyedQueue has no failureCount(key) accessor");
    q.add("a");
    await settle();
    assert.equal(count("a"), 1);
    fail = false;
    await clock.advance(1000);
    assert.equal(count("a"), 0, "dropped on success");
    // A key that fails while the queue stops keeps no counter behind.
    fail = true;
    q.add("stopped");
    await settle();
    q.stop();
    g.open();
    await settle();
    assert.equal(count("stopped"), 0, "dropped after stop");
  },
);
