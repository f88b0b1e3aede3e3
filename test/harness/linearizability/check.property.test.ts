import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { checkHistory } from "./check.js";
import { serviceModel } from "./service-model.js";
import { prng } from "./prng.js";
import { mutateInventedRead, mutateStaleRead, simulate, type SimOptions } from "./simulated-services.js";

const runs = fc.record({
  seed: fc.integer(),
  clients: fc.integer({ min: 1, max: 5 }),
  opsPerClient: fc.integer({ min: 1, max: 30 }),
  names: fc.integer({ min: 1, max: 3 }),
  // Realistic: a few unanswered operations (a kill, a partition). Each one that stays possible
  // doubles what the search must visit to prove a failing history wrong.
  timeoutRate: fc.constantFrom(0, 0.02, 0.05),
  staleRate: fc.constantFrom(0, 0.2),
  systemWrites: fc.boolean(),
});

const modelFor = (o: SimOptions) => serviceModel({ systemWrites: o.systemWrites === true });

describe("linearizability checker: generated histories", () => {
  test("every history of an atomic execution is linearizable", () => {
    fc.assert(
      fc.property(runs, (o) => {
        const r = checkHistory(modelFor(o), simulate(o).history);
        assert.equal(r.ok, true, r.ok ? "" : r.text);
      }),
      { numRuns: 300 },
    );
  });

  test("a read changed to show a replaced state is caught", () => {
    let mutated = 0;
    fc.assert(
      fc.property(runs, (o) => {
        const h = mutateStaleRead(simulate(o), prng(o.seed ^ 0x5bd1e995));
        if (!h) return;
        mutated++;
        const r = checkHistory(modelFor(o), h);
        assert.ok(!r.ok && r.violations.length > 0, "a stale read went unnoticed");
      }),
      { numRuns: 300 },
    );
    assert.ok(mutated > 50, `only ${mutated} histories could be mutated`);
  });

  test("a read changed to show a spec nobody wrote is caught", () => {
    let mutated = 0;
    fc.assert(
      fc.property(runs, (o) => {
        const h = mutateInventedRead(simulate(o), prng(o.seed ^ 0x27d4eb2f));
        if (!h) return;
        mutated++;
        const r = checkHistory(modelFor(o), h);
        assert.ok(!r.ok && (r.violations.length > 0 || r.unordered.length > 0), "an invented read went unnoticed");
        if (!r.ok) assert.match(r.text, /never-written/);
      }),
      { numRuns: 300 },
    );
    assert.ok(mutated > 50, `only ${mutated} histories could be mutated`);
  });

  test("10 clients × 200 operations are checked quickly (time printed, not asserted)", (t) => {
    for (const o of [
      { seed: 1, clients: 10, opsPerClient: 200, names: 5 },
      { seed: 2, clients: 10, opsPerClient: 200, names: 5, timeoutRate: 0.02, systemWrites: true },
      { seed: 3, clients: 10, opsPerClient: 200, names: 2, timeoutRate: 0.02 },
      { seed: 4, clients: 10, opsPerClient: 200, names: 1 },
    ] satisfies SimOptions[]) {
      const { history } = simulate(o);
      const t0 = performance.now();
      const r = checkHistory(modelFor(o), history);
      const ms = performance.now() - t0;
      t.diagnostic(`${history.length} operations on ${o.names} names, timeouts ${o.timeoutRate ?? 0}, system writes ${o.systemWrites ?? false}: ${ms.toFixed(0)} ms`);
      assert.equal(r.ok, true, r.ok ? "" : r.text);
    }
  });
});
