import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { DeadLeaderDetector, REFUSALS_TO_REVOKE, probeListener } from "./leader-probe.js";

test("dead leader: revoked only after it was seen accepting, then refused REFUSALS_TO_REVOKE times in a row", () => {
  const d = new DeadLeaderDetector();
  // Never seen alive in this term: refusals alone prove nothing (a firewall, a wrong address).
  for (let i = 0; i < 10; i++) assert.equal(d.observe("7", "refused"), false);
  assert.equal(d.observe("7", "accepted"), false);
  for (let i = 1; i < REFUSALS_TO_REVOKE; i++) assert.equal(d.observe("7", "refused"), false);
  // An unanswered probe (a partition, a slow host) resets the count: only refusals in a row count.
  assert.equal(d.observe("7", "no-answer"), false);
  for (let i = 1; i < REFUSALS_TO_REVOKE; i++) assert.equal(d.observe("7", "refused"), false);
  assert.equal(d.observe("7", "refused"), true);
  // A new term (another lease) starts over: not seen alive yet.
  for (let i = 0; i < 5; i++) assert.equal(d.observe("8", "refused"), false);
});

test("probeListener: a listening port is accepted, a closed one refused, a name that does not resolve is no answer", async () => {
  const srv = createServer((s) => s.destroy());
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  assert.equal(await probeListener(`127.0.0.1:${port}`, 500), "accepted");
  await new Promise((r) => srv.close(r));
  assert.equal(await probeListener(`127.0.0.1:${port}`, 500), "refused");
  assert.equal(await probeListener("baton-no-such-host.invalid:4242", 500), "no-answer");
});
