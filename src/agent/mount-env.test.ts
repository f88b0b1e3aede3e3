import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { processMountEnv } from "./executor.js";
import { StartError } from "./drivers/driver.js";

test("a process task gets each mount's host path by target, and a volume directory made per node", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "baton-vols-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const env = processMountEnv([{ type: "volume", source: "my-data", target: "/data" }, { type: "bind", source: "/srv/conf", target: "/var/lib/conf" }], dir);
  assert.deepEqual(env, { BATON_VOLUME_MY_DATA: join(dir, "my-data"), BATON_MOUNT_DATA: join(dir, "my-data"), BATON_MOUNT_VAR_LIB_CONF: "/srv/conf" });
  assert.ok(existsSync(join(dir, "my-data")));
  assert.deepEqual(processMountEnv(undefined, dir), {});
  assert.throws(() => processMountEnv([{ type: "volume", source: "x", target: "/x" }], undefined), StartError);
});
