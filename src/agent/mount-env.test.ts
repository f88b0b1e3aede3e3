import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { processMountEnv } from "./executor.js";
import { StartError } from "./drivers/driver.js";
import { AnonymousVolumes } from "./anonymous-volumes.js";

test("a process task gets each mount's host path by target, and a volume directory made per node", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "baton-vols-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const env = processMountEnv([{ type: "volume", source: "my-data", target: "/data" }, { type: "bind", source: "/srv/conf", target: "/var/lib/conf" }], dir);
  assert.deepEqual(env, { BATON_VOLUME_MY_DATA: join(dir, "my-data"), BATON_MOUNT_DATA: join(dir, "my-data"), BATON_MOUNT_VAR_LIB_CONF: "/srv/conf" });
  assert.ok(existsSync(join(dir, "my-data")));
  assert.deepEqual(processMountEnv(undefined, dir), {});
  assert.throws(() => processMountEnv([{ type: "volume", source: "x", target: "/x" }], undefined), StartError);
});

test("an anonymous volume is a directory of the task's own, removed with it (and at agent start when its task is gone)", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "baton-anon-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const anon = new AnonymousVolumes(join(dir, "anonymous-volumes"));
  const env = processMountEnv([{ type: "volume", target: "/var/cache" }], join(dir, "volumes"), anon.dirOf("task1"));
  assert.deepEqual(env, { BATON_MOUNT_VAR_CACHE: join(dir, "anonymous-volumes", "task1", "VAR_CACHE") });
  assert.ok(existsSync(env.BATON_MOUNT_VAR_CACHE!));
  processMountEnv([{ type: "volume", target: "/c" }], undefined, anon.dirOf("task2"));
  processMountEnv([{ type: "volume", target: "/c" }], undefined, anon.dirOf("task3"));
  anon.remove("task1");
  assert.ok(!existsSync(join(dir, "anonymous-volumes", "task1")));
  anon.removeAllBut(new Set(["task3"]));
  assert.ok(!existsSync(join(dir, "anonymous-volumes", "task2")));
  assert.ok(existsSync(join(dir, "anonymous-volumes", "task3", "C")));
  assert.throws(() => processMountEnv([{ type: "volume", target: "/c" }], join(dir, "volumes"), undefined), StartError);
  assert.throws(() => anon.dirOf("../x"));
});
