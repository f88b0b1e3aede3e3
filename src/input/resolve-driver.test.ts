import { test } from "node:test";
import assert from "node:assert/strict";
import { BatonError } from "../lib/errors.js";
import { resolveServiceSpec } from "./resolve.js";
import type { ServiceSpecInput } from "./schemas.js";

const problems = (input: ServiceSpecInput): string[] => {
  try {
    resolveServiceSpec(input);
    return [];
  } catch (e) {
    assert.ok(e instanceof BatonError);
    return e.fields.map((f) => `${f.path.join(".")}: ${f.problem}`);
  }
};

test("an image means the docker driver, tagged :latest when it has no tag; the command may be empty", () => {
  const t = resolveServiceSpec({ name: "web", image: "nginx", command: [] }).task;
  assert.equal(t.driver, "docker");
  assert.equal(t.image, "nginx:latest");
  assert.deepEqual(t.command, []);
  assert.equal(resolveServiceSpec({ name: "w", image: "registry:5000/team/app:1.2", command: ["x"], user: "nobody", entrypoint: ["sh", "-c"] }).task.image, "registry:5000/team/app:1.2");
  assert.equal(resolveServiceSpec({ name: "p", command: ["node"] }).task.driver, "process");
});

test("driver problems name the field", () => {
  assert.deepEqual(problems({ name: "a", driver: "docker", command: [] }), ["image: the docker driver needs an image"]);
  assert.deepEqual(problems({ name: "a", image: "Not An Image", command: [] }), ['image: "Not An Image" is not an image reference (e.g. nginx:alpine, registry:5000/team/app:1.2)']);
  assert.deepEqual(problems({ name: "a", driver: "process", image: "nginx:1", user: "x", command: ["sleep"] }), ["image: only the docker driver takes this field (use driver docker)", "user: only the docker driver takes this field (use driver docker)"]);
  assert.deepEqual(problems({ name: "a", driver: "process", command: [] }), ["command.0: the command must not be empty"]);
});

test("noHealthcheck turns off an image's HEALTHCHECK: docker only, and not together with a health check of the service's own", () => {
  assert.equal(resolveServiceSpec({ name: "w", image: "nginx:1", command: [], noHealthcheck: true }).task.noHealthcheck, true);
  assert.equal("noHealthcheck" in resolveServiceSpec({ name: "w", image: "nginx:1", command: [] }).task, false, "absent unless set: older specs compare equal");
  assert.deepEqual(problems({ name: "a", image: "nginx:1", command: [], noHealthcheck: true, healthcheck: { cmd: "true" } }), ["noHealthcheck: conflicts with healthcheck (the service's own check replaces the image's anyway)"]);
  assert.deepEqual(problems({ name: "a", command: ["sleep", "1"], noHealthcheck: true }), ["noHealthcheck: only the docker driver takes this field (use driver docker)"]);
});
