import { test } from "node:test";
import assert from "node:assert/strict";
import { parseMount } from "./parse-mount.js";
import { applyChanges } from "./commands/service-update.js";

test("--mount takes docker's keys and spellings", () => {
  assert.deepEqual(parseMount("type=volume,source=data,target=/data"), { type: "volume", source: "data", target: "/data" });
  assert.deepEqual(parseMount("type=bind,src=/srv,dst=/srv,readonly"), { type: "bind", source: "/srv", target: "/srv", readOnly: true });
  assert.deepEqual(parseMount("type=bind,source=/a,destination=/b,ro=false"), { type: "bind", source: "/a", target: "/b", readOnly: false });
  assert.deepEqual(parseMount("type=tmpfs,target=/t,tmpfs-size=64m"), { type: "tmpfs", target: "/t", tmpfsSize: "64m" });
  // docker's default type is volume.
  assert.deepEqual(parseMount("source=data,target=/data"), { type: "volume", source: "data", target: "/data" });
});

test("--mount refuses unknown keys, valueless keys and a missing target, naming them", () => {
  assert.throws(() => parseMount("type=volume,source=d,target=/d,propagation=shared"), /unknown key "propagation"/);
  assert.throws(() => parseMount("type=volume,source,target=/d"), /source needs a value/);
  assert.throws(() => parseMount("type=volume,source=d"), /target=… is required/);
  assert.throws(() => parseMount("target=/d,readonly=maybe"), /readonly takes true or false/);
});

test("service update edits networks and mounts: -rm by name or target, -add without duplicates", () => {
  const input = { name: "web", command: ["x"], networks: ["a", "b"], mounts: [{ type: "volume" as const, source: "d", target: "/data" }, { type: "tmpfs" as const, target: "/t" }] };
  const next = applyChanges(input, { networkRm: ["a"], networkAdd: ["b", "c"], mountRm: ["/t/"], mountAdd: [{ type: "bind", source: "/srv", target: "/srv" }] });
  assert.deepEqual(next.networks, ["b", "c"]);
  assert.deepEqual(next.mounts, [{ type: "volume", source: "d", target: "/data" }, { type: "bind", source: "/srv", target: "/srv" }]);
  assert.deepEqual(input.networks, ["a", "b"], "the input is not changed");
  assert.equal(applyChanges(input, { endpointMode: "dnsrr" }).endpointMode, "dnsrr");
});
