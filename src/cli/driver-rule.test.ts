import { test } from "node:test";
import assert from "node:assert/strict";
import { chooseDriver } from "./driver-rule.js";

const onPath = new Set(["node", "worker.sh", "tools/run"]);
const choose = (args: string[], extra: { driver?: "process" | "docker"; image?: string } = {}) => chooseDriver({ args, ...extra, isExecutable: (n) => onPath.has(n) });

test("an image-looking first argument that is not an executable runs on docker", () => {
  assert.deepEqual(choose(["nginx:alpine"]), { driver: "docker", image: "nginx:alpine", command: [] });
  assert.deepEqual(choose(["baton-test/busybox", "httpd", "-f"]), { driver: "docker", image: "baton-test/busybox", command: ["httpd", "-f"] });
  assert.deepEqual(choose(["registry:5000/app@sha256:ab"]), { driver: "docker", image: "registry:5000/app@sha256:ab", command: [] });
});

test("commands, paths and executables found on PATH stay processes", () => {
  assert.deepEqual(choose(["node", "server.js"]), { driver: "process", command: ["node", "server.js"] });
  assert.deepEqual(choose(["nginx"]), { driver: "process", command: ["nginx"] }, "a bare name is a command: nginx:latest is the image");
  assert.deepEqual(choose(["./worker.sh"]), { driver: "process", command: ["./worker.sh"] });
  assert.deepEqual(choose(["/usr/bin/env", "a:b"]), { driver: "process", command: ["/usr/bin/env", "a:b"] });
  assert.deepEqual(choose(["tools/run"]), { driver: "process", command: ["tools/run"] }, "an executable file wins over the image form");
});

test("--driver wins, and --image makes every argument the container's command", () => {
  assert.deepEqual(choose(["nginx"], { driver: "docker" }), { driver: "docker", image: "nginx", command: [] });
  assert.deepEqual(choose(["app:1", "x"], { driver: "process" }), { driver: "process", command: ["app:1", "x"] });
  assert.deepEqual(choose(["httpd", "-f"], { image: "bb:1" }), { driver: "docker", image: "bb:1", command: ["httpd", "-f"] });
});
