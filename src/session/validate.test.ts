import { test } from "node:test";
import assert from "node:assert/strict";
import { validDescription } from "./validate.js";

const desc = { nodeId: "n1", hostname: "n1", role: "worker", resources: { cpus: 1, memoryBytes: 1 }, drivers: ["process"], platform: { os: "linux", arch: "x64" }, agentVersion: "t" };

test("a node describes the limits it enforces, or nothing (an agent that predates limits)", () => {
  assert.equal(validDescription(desc), true);
  assert.equal(validDescription({ ...desc, limits: { memory: true, cpu: false, cgroup: "v1" } }), true);
  assert.equal(validDescription({ ...desc, limits: { memory: "yes", cpu: false, cgroup: "v1" } }), false);
  assert.equal(validDescription({ ...desc, limits: { memory: true, cpu: true, cgroup: "v3" } }), false);
  assert.equal(validDescription({ ...desc, limits: null }), false);
});
