import { test } from "node:test";
import assert from "node:assert/strict";
import { engineSocket } from "./docker-driver.js";

test("engine socket from DOCKER_HOST: unset is the default socket, unix:// a path, anything else an error naming it", () => {
  assert.deepEqual(engineSocket(undefined), { socketPath: "/var/run/docker.sock" });
  assert.deepEqual(engineSocket(""), { socketPath: "/var/run/docker.sock" });
  assert.deepEqual(engineSocket("unix:///run/baton-test/h2/docker.sock"), { socketPath: "/run/baton-test/h2/docker.sock" });
  for (const bad of ["tcp://10.0.0.1:2376", "unix://relative.sock", "/var/run/docker.sock", "ssh://me@host"]) {
    const r = engineSocket(bad);
    assert.ok("error" in r, bad);
    assert.match(r.error, new RegExp(`DOCKER_HOST "${bad.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}": Baton reaches the engine on a unix socket only`));
  }
});
